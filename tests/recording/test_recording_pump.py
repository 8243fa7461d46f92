"""RecordingPump: follows ring buffers losslessly, counts what it missed, logs reader events."""

from __future__ import annotations

import time

import numpy as np

from kneegui.acquisition import events as ev
from kneegui.acquisition.discovery import StreamInfoView
from kneegui.acquisition.reader import StreamReader
from kneegui.recording import SessionWriter, open_session
from kneegui.recording.pump import RecordingPump


def _reader(rate: float = 100.0, seconds: float = 1.0) -> StreamReader:
    """A real StreamReader whose buffer we fill by hand (it is never started)."""
    view = StreamInfoView("pump test", "EMG", 2, rate, "float32", "pump-src", "host", "uid",
                          ("a", "b"), ("mV", "mV"))
    return StreamReader(view, buffer_seconds=seconds)


def test_pump_counts_overwritten_samples_and_logs_reader_events_only(tmp_path):
    reader = _reader()
    capacity = reader.buffer.capacity
    writer = SessionWriter(tmp_path).start()
    pump = RecordingPump(writer, [reader], poll_interval=0.5, drain_events=False).start()
    time.sleep(0.1)  # the pump made its first (empty) pass and now sleeps 0.5 s
    k = np.arange(3 * capacity)
    reader.buffer.write(np.column_stack([k, -k]).astype(np.float32), 10 + k / 100.0)
    time.sleep(0.6)  # the pump finds 2 * capacity samples overwritten
    k2 = np.arange(3 * capacity, 3 * capacity + 50)
    ts2 = 10 + k2 / 100.0 + 0.5  # a 0.5 s hole in the stamps ...
    reader.buffer.write(np.column_stack([k2, -k2]).astype(np.float32), ts2)
    # ... is not judged by the pump: the reader's detector is the one gap rule
    reader._events.put(ev.AcquisitionEvent(ev.GAP, "pump test", "pump-src", 12.0, 0.51, 50,
                                           "50 samples missing in pump test (510.0 ms)"))
    time.sleep(0.1)
    assert reader.events()[0].kind == ev.GAP  # the GUI's queue still has it too
    pump.stop()
    status = writer.stop()
    assert status.lost_samples == 2 * capacity
    with open_session(status.path) as s:
        st = s.streams["pump_test"]
        np.testing.assert_array_equal(st.data[:, 0], np.r_[k[2 * capacity:], k2])
        labels = [lab for _, lab, origin in s.events.as_list() if origin == "recorder"]
        assert any(f"{2 * capacity} samples of pump test were overwritten" in x for x in labels)
        assert not any("gap" in x for x in labels)
        acquisition = [(t, lab) for t, lab, origin in s.events.as_list()
                       if origin == "acquisition"]
        assert acquisition == [(12.0, "gap: 50 samples missing in pump test (510.0 ms)")]


def test_writer_with_reader_sources_starts_and_stops_its_pump(tmp_path):
    reader = _reader()
    writer = SessionWriter(tmp_path, sources=reader).start()
    reader.buffer.write(np.ones((30, 2), np.float32), 5 + np.arange(30) / 100)
    time.sleep(0.2)
    status = writer.stop()
    assert status.samples_written == {"pump_test": 30}
