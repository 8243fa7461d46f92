"""Real LSL on loopback: outlet -> StreamReader -> SessionWriter -> file, and replay -> record."""

from __future__ import annotations

import dataclasses
import threading
import time
import uuid

import numpy as np
import pylsl
import pytest

from kneegui.acquisition.discovery import full_info, view_from_info
from kneegui.acquisition.reader import StreamReader
from kneegui.recording import SessionWriter, StreamSpec, open_session
from kneegui.recording.replay import Replayer, replay_source_id
from kneegui.recording.streaminfo import parse_desc

LABELS = ("RF", "BF", "VM", "ST")


def _view(source_id: str, timeout: float = 5.0):
    """The full StreamInfoView of the stream with ``source_id`` (inlet-ready handle)."""
    found = pylsl.resolve_byprop("source_id", source_id, minimum=1, timeout=timeout)
    assert found, f"stream {source_id} not found on loopback"
    short = found[0]
    return dataclasses.replace(full_info(view_from_info(short)), handle=short)


def _outlet(name: str, source_id: str, rate: float) -> pylsl.StreamOutlet:
    info = pylsl.StreamInfo(name, "EMG", 4, rate, pylsl.cf_float32, source_id)
    info.desc().append_child_value("manufacturer", "KneeGUI tests")
    channels = info.desc().append_child("channels")
    for label in LABELS:
        ch = channels.append_child("channel")
        ch.append_child_value("label", label)
        ch.append_child_value("unit", "mV")
        ch.append_child_value("type", "EMG")
    return pylsl.StreamOutlet(info)


def _warm_up(outlet, reader, n_ch: int) -> None:
    """Push until the reader receives (samples sent before an inlet connects are never seen)."""
    deadline = time.monotonic() + 10
    while reader.buffer.total_written == 0:
        assert time.monotonic() < deadline, f"reader never received: {reader.status()}"
        outlet.push_sample(np.zeros(n_ch, np.float32))
        time.sleep(0.02)


def _wait_for(reader, n: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while reader.buffer.total_written < n and time.monotonic() < deadline:
        time.sleep(0.01)
    assert reader.buffer.total_written >= n, reader.status()


def test_outlet_to_file_equals_what_was_sent(tmp_path):
    sid = f"kneegui-test-rt-{uuid.uuid4().hex[:8]}"
    rate = 500.0
    outlet = _outlet("RT EMG", sid, rate)
    reader = StreamReader(_view(sid)).start()
    try:
        _warm_up(outlet, reader, 4)
        before = reader.buffer.total_written
        writer = SessionWriter(tmp_path, {"subject_id": "rt"}, sources=[reader]).start()
        rng = np.random.default_rng(1)
        sent = rng.standard_normal((600, 4)).astype(np.float32)
        t0 = pylsl.local_clock() + 0.05
        stamps = t0 + np.arange(600) / rate
        for i in range(0, 600, 25):  # in real time, as a device would (never ahead of now)
            while pylsl.local_clock() < stamps[i + 24]:
                time.sleep(0.001)
            outlet.push_chunk(sent[i:i + 25], stamps[i:i + 25].tolist())
        _wait_for(reader, before + 600)
        time.sleep(0.2)
        writer.add_event("done sending", origin="operator")
        status = writer.stop()
    finally:
        reader.stop()
    assert status.error is None and status.lost_samples == 0 and status.dropped_samples == 0
    with open_session(status.path) as s:
        st = s.streams["RT_EMG"]
        # warm-up samples that arrived after the pump started may precede the payload
        assert st.length >= 600
        np.testing.assert_array_equal(st.data[-600:], sent)
        # time stamps: clock-corrected (same machine: offset ~0) and dejittered, so within 1 ms
        np.testing.assert_allclose(st.timestamps[-600:], stamps, atol=1e-3)
        assert st.channel_labels == LABELS and st.channel_units == ("mV",) * 4
        assert st.source_id == sid and st.type == "EMG" and st.nominal_srate == rate
        assert st.attrs["name"] == "RT EMG" and st.attrs["hostname"]
        assert parse_desc(st.info_xml).findtext("manufacturer") == "KneeGUI tests"
        assert len(st.clock_offsets) >= 1 and abs(st.clock_offsets[0, 1]) < 0.01
        assert ("done sending", "operator") in [(lab, o) for _, lab, o in s.events.as_list()]


def _recorded_session(path):
    """A session written directly: 4-ch EMG at 250 Hz with a gap, plus a marker stream."""
    xml_outlet_info = pylsl.StreamInfo("Replay EMG", "EMG", 4, 250.0, pylsl.cf_float32,
                                       f"kneegui-test-src-{uuid.uuid4().hex[:8]}")
    xml_outlet_info.desc().append_child_value("manufacturer", "KneeGUI tests")
    channels = xml_outlet_info.desc().append_child("channels")
    for label in LABELS:
        ch = channels.append_child("channel")
        ch.append_child_value("label", label)
        ch.append_child_value("unit", "mV")
    spec = StreamSpec.from_info(view_from_info(xml_outlet_info))
    w = SessionWriter(path).start()
    emg = w.add_stream(spec)
    mk = w.add_stream(StreamSpec("Replay markers", "Markers", 1, 0.0, "string",
                                 f"kneegui-test-mk-{uuid.uuid4().hex[:8]}"))
    rng = np.random.default_rng(2)
    ts = 50.0 + np.arange(400) / 250.0
    ts[300:] += 0.2  # a 200 ms gap must survive the replay
    w.write_samples(emg, rng.standard_normal((400, 4)).astype(np.float32), ts)
    w.write_samples(mk, [["start"], ["middle"], ["end"]], [50.1, 50.7, 51.3])
    return w.stop().path


def test_replay_then_record_gives_the_same_data(tmp_path):
    original = _recorded_session(tmp_path / "a.h5")
    with open_session(original) as a:
        speed = 2.0
        replayer = Replayer(a, speed=speed)
        replayer.open()
        emg_a, mk_a = a.streams["Replay_EMG"], a.streams["Replay_markers"]
        readers = [StreamReader(_view(replay_source_id(st))) for st in (emg_a, mk_a)]
        assert readers[0].info.source_id == emg_a.source_id + "-replay"
        writer = SessionWriter(tmp_path / "b.h5", sources=readers).start()
        for r in readers:
            r.start()
        assert replayer.wait_for_consumers(10)
        time.sleep(0.3)  # let the readers finish connecting (clock offset) before data flows
        thread = threading.Thread(target=replayer.run)
        thread.start()
        thread.join(20)
        assert not thread.is_alive() and replayer.samples_pushed == 403
        for r, n in zip(readers, (400, 3), strict=True):
            _wait_for(r, n)
        time.sleep(0.2)
        status = writer.stop()
        for r in readers:
            r.stop()
        replayer.stop()
        with open_session(status.path) as b:
            emg_b, mk_b = b.streams["Replay_EMG"], b.streams["Replay_markers"]
            np.testing.assert_array_equal(emg_b.data, emg_a.data)
            assert mk_b.data[:, 0].tolist() == ["start", "middle", "end"]
            # same timing (scaled by the speed), within 2 ms after dejitter/clock correction
            rel_a = (emg_a.timestamps - emg_a.timestamps[0]) / speed
            rel_b = emg_b.timestamps - emg_b.timestamps[0]
            np.testing.assert_allclose(rel_b, rel_a, atol=2e-3)
            shift = emg_b.timestamps[0] - emg_a.timestamps[0] / speed
            np.testing.assert_allclose(mk_b.timestamps - mk_a.timestamps / speed, shift,
                                       atol=5e-3)
            # metadata and the full <desc> survive the replay
            assert emg_b.channel_labels == LABELS and emg_b.channel_units == ("mV",) * 4
            assert emg_b.attrs["name"] == "Replay EMG"
            assert emg_b.nominal_srate == 250.0 * speed  # samples really come that fast
            assert parse_desc(emg_b.info_xml).findtext("manufacturer") == "KneeGUI tests"
            assert emg_b.source_id == replay_source_id(emg_a)


def test_replay_rejects_bad_arguments(tmp_path):
    path = _recorded_session(tmp_path / "a.h5")
    with open_session(path) as s:
        with pytest.raises(ValueError, match="speed"):
            Replayer(s, speed=0)
        with pytest.raises(KeyError, match="no stream"):
            Replayer(s, ["nope"])
