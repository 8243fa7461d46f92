"""SessionWriter + open_session: everything written comes back; names never collide."""

from __future__ import annotations

import errno
import json
import re
import time

import h5py
import numpy as np
import pytest

from kneegui.recording import (
    FORMAT_VERSION,
    OutputExistsError,
    SessionFormatError,
    SessionWriter,
    StreamSpec,
    WriterState,
    open_session,
)
from kneegui.recording.layout import sanitize_name, unique_name

EMG = StreamSpec("EMG amp #1", "EMG", 4, 2000.0, "float32", "amp-1", "labpc", "uid-1",
                 ("RF", "BF", "VM", "ST"), ("mV",) * 4)


def test_everything_written_is_read_back(tmp_path):
    rng = np.random.default_rng(0)
    writer = SessionWriter(tmp_path, {"subject_id": "S07", "operator": "AB", "notes": "first"})
    writer.start()
    emg = writer.add_stream(EMG)
    angle = writer.add_stream(StreamSpec("knee", "Angle", 1, 100.0, "double64", "gonio"))
    markers = writer.add_stream(StreamSpec("EMG amp #1", "Markers", 1, 0.0, "string", "mk"))
    chunks = [rng.standard_normal((137, 4)).astype(np.float32) for _ in range(7)]
    stamps = [100.0 + (np.arange(137) + i * 137) / 2000.0 for i in range(7)]
    for data, ts in zip(chunks, stamps, strict=True):
        assert writer.write_samples(emg, data, ts)
    writer.write_samples(angle, np.arange(10.0)[:, None], 100.0 + np.arange(10) / 100)
    writer.write_samples(markers, [["heel strike"], ["toe off ü"]], [100.5, 100.9])
    writer.add_clock_offset(emg, 101.0, -0.0012)
    writer.add_event("start walking", t=100.1)
    writer.add_prediction(100.2, np.linspace(0, 49, 50), "base-v1")
    writer.add_prediction([100.21, 100.22], np.ones((2, 50)), "subject-S07")
    writer.add_derived("emg_envelope/EMG_amp_1", np.full((5, 4), 0.5), 100 + np.arange(5) / 100,
                       rate=100.0, labels=EMG.channel_labels, units=("mV",) * 4, source=emg)
    writer.add_calibration("mvc", {"rms": np.arange(4.0), "names": np.array(["a", "b"])},
                           {"step": "mvc", "params": {"seconds": 5}})
    writer.add_model("subject-S07", json.dumps({"name": "subject-S07", "window": 30}), "ab12")
    writer.set_notes("first; second thoughts")
    status = writer.stop()

    assert status.state is WriterState.STOPPED and status.error is None
    assert status.samples_written == {emg: 7 * 137, angle: 10, markers: 2}
    assert (emg, markers) == ("EMG_amp_1", "EMG_amp_1_2")
    assert status.path.parent == tmp_path and status.path.name.startswith("S07_")
    with open_session(status.path) as s:
        assert s.complete and s.subject_id == "S07" and s.operator == "AB"
        assert s.notes == "first; second thoughts"
        assert s.format_version == FORMAT_VERSION and s.app_version
        assert s.start_time.endswith("Z") and s.start_time[:4].isdigit()
        assert list(s.streams) == [emg, angle, markers]
        st = s.streams[emg]
        np.testing.assert_array_equal(st.data, np.concatenate(chunks))
        np.testing.assert_array_equal(st.timestamps, np.concatenate(stamps))
        assert st.data.dtype == np.float32 and s.streams[angle].data.dtype == np.float64
        assert st.channel_labels == EMG.channel_labels and st.channel_units == ("mV",) * 4
        assert st.attrs["name"] == "EMG amp #1" and st.source_id == "amp-1"
        assert st.attrs["hostname"] == "labpc" and st.nominal_srate == 2000.0
        assert "<label>VM</label>" in st.info_xml
        np.testing.assert_array_equal(st.clock_offsets, [[101.0, -0.0012]])
        assert s.streams[markers].data[:, 0].tolist() == ["heel strike", "toe off ü"]
        assert s.events.as_list() == [(100.1, "start walking", "operator")]
        pred = s.predictions
        assert pred.values.shape == (3, 50) and pred.horizons_ms[[0, -1]].tolist() == [10, 500]
        assert pred.model_id.tolist() == ["base-v1", "subject-S07", "subject-S07"]
        np.testing.assert_allclose(pred.values[0], np.linspace(0, 49, 50))
        env = s.derived["emg_envelope/EMG_amp_1"]
        assert env.data.shape == (5, 4) and env.attrs["rate"] == 100.0
        assert env.attrs["channel_labels"] == EMG.channel_labels
        cal = s.calibration["mvc"]
        np.testing.assert_array_equal(cal["arrays"]["rms"], np.arange(4.0))
        assert cal["arrays"]["names"].tolist() == ["a", "b"]
        assert json.loads(cal["attrs"]["params"]) == {"seconds": 5}
        assert s.models["subject-S07"].card["window"] == 30
        assert s.models["subject-S07"].sha256 == "ab12"
    # any HDF5 tool sees the documented layout
    with h5py.File(status.path, "r") as f:
        assert f.attrs["format"] == "kneegui-session"
        assert f[f"streams/{emg}/data"].chunks is not None
        assert f[f"streams/{emg}/data"].maxshape == (None, 4)


def test_never_overwrites(tmp_path):
    existing = tmp_path / "taken.h5"
    existing.write_bytes(b"precious")
    with pytest.raises(OutputExistsError, match="never overwrites"):
        SessionWriter(existing)
    assert existing.read_bytes() == b"precious"
    # a directory target gets fresh names with a counter, even within the same second
    paths = []
    for _ in range(3):
        w = SessionWriter(tmp_path / "sessions", {"subject_id": "S 01/x"}).start()
        paths.append(w.stop().path)
    assert len(set(paths)) == 3 and all(p.exists() for p in paths)
    pattern = re.compile(r"S_01_x_\d{8}T\d{6}Z_\d{3}\.h5")
    assert all(pattern.fullmatch(p.name) for p in paths), paths


def test_names_are_sanitized_and_unique():
    assert sanitize_name("EMG amp #1") == "EMG_amp_1"
    assert sanitize_name("../..") == "stream"
    assert sanitize_name("") == "stream"
    assert unique_name("a", {"a", "a_2"}) == "a_3"


def test_full_queue_drops_and_counts_instead_of_blocking(tmp_path):
    writer = SessionWriter(tmp_path, queue_size=2).start()
    key = writer.add_stream(EMG)
    accepted = sum(writer.write_samples(key, np.zeros((10, 4)), np.arange(10.0))
                   for _ in range(200))
    status = writer.stop()
    assert accepted < 200
    assert status.dropped_samples == (200 - accepted) * 10
    assert status.samples_written[key] == accepted * 10


def test_bad_shapes_and_unknown_streams_are_refused(tmp_path):
    writer = SessionWriter(tmp_path).start()
    key = writer.add_stream(EMG)
    with pytest.raises(ValueError, match="does not match"):
        writer.write_samples(key, np.zeros((5, 3)), np.arange(5.0))
    with pytest.raises(KeyError, match="add_stream"):
        writer.write_samples("nope", np.zeros((5, 4)), np.arange(5.0))
    with pytest.raises(ValueError, match="unknown LSL channel format"):
        writer.add_stream(StreamSpec("x", channel_format="complex"))
    with pytest.raises(ValueError, match="not numbers"):
        writer.write_samples(key, [["a", "b", "c", "d"]], [0.0])
    markers = writer.add_stream(StreamSpec("m", "Markers", 1, 0.0, "string"))
    assert writer.write_samples(markers, [[b"caf\xc3\xa9"], [7]], [1.0, 2.0])
    status = writer.stop()
    assert status.ok
    with open_session(status.path) as s:
        assert s.streams[markers].data[:, 0].tolist() == ["café", "7"]


def test_injected_disk_full_stops_cleanly_and_keeps_the_file(tmp_path):
    calls = {"reserve": 0}

    def disk_fills_up(op: str) -> None:
        if op == "reserve":
            calls["reserve"] += 1
            if calls["reserve"] >= 4:
                raise OSError(errno.ENOSPC, "No space left on device")

    errors: list[str] = []
    writer = SessionWriter(tmp_path, fault_hook=disk_fills_up, flush_interval=0.05,
                           on_error=errors.append).start()
    key = writer.add_stream(EMG)
    sent = 0
    for _ in range(400):  # 500-sample blocks: the reservation (1 MiB ahead) is renewed often
        k = np.arange(sent, sent + 500)
        if not writer.write_samples(key, np.repeat(k[:, None], 4, 1), k / 2000.0):
            break
        sent += 500
        if not writer.recording:
            break
        time.sleep(0.005)
    status = writer.stop()
    assert status.state is WriterState.FAILED and not status.ok
    assert "No space left on device" in status.error and "free disk space" in status.error
    assert errors == [status.error]
    assert not writer.write_samples(key, np.zeros((1, 4)), [0.0])  # refused after failure
    with open_session(status.path) as s:  # what was flushed is intact
        st = s.streams[key]
        assert 0 < st.length == status.samples_written[key] < sent
        np.testing.assert_array_equal(st.data[:, 0], np.arange(st.length))
        assert not s.complete


def test_foreign_and_damaged_files_give_clear_errors(tmp_path):
    with pytest.raises(SessionFormatError, match="does not exist"):
        open_session(tmp_path / "missing.h5")
    text = tmp_path / "notes.h5"
    text.write_text("hello")
    with pytest.raises(SessionFormatError, match="not an HDF5 file"):
        open_session(text)
    other = tmp_path / "other.h5"
    with h5py.File(other, "w") as f:
        f["x"] = 1
    with pytest.raises(SessionFormatError, match="not a KneeGUI session"):
        open_session(other)
    newer = tmp_path / "newer.h5"
    with h5py.File(newer, "w") as f:
        f.attrs["format"] = "kneegui-session"
        f.attrs["format_version"] = "9.0"
    with pytest.raises(SessionFormatError, match="update KneeGUI"):
        open_session(newer)
    good = SessionWriter(tmp_path / "s.h5").start()
    good.add_stream(EMG)
    path = good.stop().path
    damaged = tmp_path / "damaged.h5"
    damaged.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(SessionFormatError, match="is truncated: the file is shorter"):
        open_session(damaged)


def test_a_file_being_recorded_is_reported_as_such_and_readable_live(tmp_path):
    import subprocess
    import sys

    writer = SessionWriter(tmp_path).start()
    key = writer.add_stream(EMG)
    writer.write_samples(key, np.ones((10, 4)), np.arange(10.0))
    time.sleep(0.8)  # one flush
    code = ("import sys; from kneegui.recording import open_session, SessionFormatError\n"
            "try:\n    open_session(sys.argv[1])\nexcept SessionFormatError as e:\n"
            "    print(e)\n"
            "print(open_session(sys.argv[1], live=True).streams[sys.argv[2]].length)")
    try:
        out = subprocess.run([sys.executable, "-c", code, str(writer.path), key],
                             capture_output=True, text=True, timeout=30)
    finally:
        writer.stop()
    assert out.returncode == 0, out.stderr
    message, length = out.stdout.strip().splitlines()
    assert "being recorded right now" in message and "live=True" in message
    assert length == "10"
