"""Recording from an acquisition.Hub: raw streams plus the hub's filtered EMG and envelope."""

from __future__ import annotations

import dataclasses
import threading
import time
import uuid

import numpy as np
import pylsl

from kneegui.acquisition import Hub, Role, StreamReader
from kneegui.acquisition.discovery import full_info, view_from_info
from kneegui.recording import SessionWriter, open_session


def _outlet(name, kind, n, rate, sid, labels):
    info = pylsl.StreamInfo(name, kind, n, rate, pylsl.cf_float32, sid)
    channels = info.desc().append_child("channels")
    for label in labels:
        ch = channels.append_child("channel")
        ch.append_child_value("label", label)
        ch.append_child_value("unit", "mV" if kind == "EMG" else "deg")
    return pylsl.StreamOutlet(info)


def _reader(sid):
    short = pylsl.resolve_byprop("source_id", sid, minimum=1, timeout=10)[0]
    view = full_info(view_from_info(short))
    return StreamReader(dataclasses.replace(view, handle=short))


def test_writer_records_hub_readers_and_derived_emg(tmp_path):
    tag = uuid.uuid4().hex[:8]
    emg_out = _outlet("Hub EMG", "EMG", 4, 1000.0, f"kneegui-test-hemg-{tag}",
                      ("RF", "BF", "VM", "ST"))
    ang_out = _outlet("Hub knee", "Angle", 1, 100.0, f"kneegui-test-hang-{tag}",
                      ("knee_flexion",))
    hub = Hub(model_rate=100.0)
    hub.assign(Role.EMG, _reader(f"kneegui-test-hemg-{tag}"))
    hub.assign(Role.KNEE_ANGLE, _reader(f"kneegui-test-hang-{tag}"))
    stop = threading.Event()
    rng = np.random.default_rng(3)

    def push() -> None:
        t0 = pylsl.local_clock()
        k = 0
        while not stop.is_set():
            due = int((pylsl.local_clock() - t0) * 1000)
            if due > k:
                n = due - k
                ts = (t0 + (k + np.arange(n)) / 1000).tolist()
                emg_out.push_chunk(rng.standard_normal((n, 4)).astype(np.float32), ts)
                i0, i1 = (k + 9) // 10, (due + 9) // 10
                if i1 > i0:
                    idx = np.arange(i0, i1)
                    ang_out.push_chunk((30 + 20 * np.sin(idx / 50))[:, None].astype(np.float32),
                                       (t0 + idx / 100).tolist())
                k = due
            time.sleep(0.01)

    pusher = threading.Thread(target=push, daemon=True)
    pusher.start()
    hub.start()
    try:
        deadline = time.monotonic() + 10
        while hub.aligned_count() == 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        writer = SessionWriter(tmp_path, {"subject_id": "hub"}, hub).start()
        time.sleep(1.5)
        writer.add_event("hub test done")
        status = writer.stop()
    finally:
        stop.set()
        pusher.join()
        hub.stop()
    assert status.error is None and status.lost_samples == 0
    with open_session(status.path) as s:
        assert set(s.streams) == {"Hub_EMG", "Hub_knee"}
        emg, knee = s.streams["Hub_EMG"], s.streams["Hub_knee"]
        assert emg.length > 800 and knee.length > 80  # ~1.5 s
        assert knee.channel_labels == ("knee_flexion",) and knee.channel_units == ("deg",)
        filtered = s.derived["emg_filtered/Hub_EMG"]
        envelope = s.derived["emg_envelope/Hub_EMG"]
        for series in (filtered, envelope):
            assert series.data.shape[1] == 4 and len(series.timestamps) > 800
            assert series.attrs["rate"] == 1000.0
            assert series.attrs["channel_labels"] == ("RF", "BF", "VM", "ST")
            assert np.all(np.diff(series.timestamps) > 0)
        # band-passed white noise: zero mean; its envelope (rectified + low-passed): positive
        assert abs(float(np.mean(filtered.data))) < 0.1
        assert float(np.mean(envelope.data[200:])) > 0.2
        # the derived series cover the same time span as the raw EMG they came from
        assert abs(filtered.timestamps[0] - emg.timestamps[0]) < 0.2
