"""Session format 1.1: raw stamps, raw clock measurements, filter settings, compression,
format-1.0 files, and reading a session while it is being recorded."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import h5py
import numpy as np
import pylsl
import pytest

from kneegui.acquisition import Hub, Role, StreamReader
from kneegui.acquisition.clock import SAME_HOST_TOLERANCE
from kneegui.acquisition.discovery import full_info, view_from_info
from kneegui.cli import main
from kneegui.dsp import FilterChain, FilterSettings
from kneegui.recording import SessionWriter, StreamSpec, open_session
from kneegui.recording.storage import COMPRESSION


def _reader(sid: str) -> StreamReader:
    short = pylsl.resolve_byprop("source_id", sid, minimum=1, timeout=10)[0]
    return StreamReader(dataclasses.replace(full_info(view_from_info(short)), handle=short))


class _Sender:
    """A counter stream pushed in 10-sample chunks stamped with jitter (like a real device)."""

    def __init__(self, name: str, rate: float = 500.0, channels: int = 2, kind: str = "EMG",
                 labels: tuple[str, ...] = ()):
        self.sid = f"kneegui-test-{name}-{uuid.uuid4().hex[:8]}"
        info = pylsl.StreamInfo(name, kind, channels, rate, pylsl.cf_float32, self.sid)
        if labels:
            chans = info.desc().append_child("channels")
            for label in labels:
                ch = chans.append_child("channel")
                ch.append_child_value("label", label)
                ch.append_child_value("unit", "mV")
        self.outlet = pylsl.StreamOutlet(info)
        self.rate, self.channels = rate, channels
        self.stamps: dict[int, float] = {}  # counter value -> stamp sent
        self.rng = np.random.default_rng(7)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        t0 = pylsl.local_clock()
        k = 0
        while not self._stop.is_set():
            due = int((pylsl.local_clock() - t0) * self.rate)
            if due - k >= 10:
                idx = np.arange(k, k + 10)
                stamps = t0 + idx / self.rate + self.rng.uniform(-2e-3, 2e-3)  # chunk jitter
                data = np.column_stack([idx] + [self.rng.standard_normal(10)
                                                for _ in range(self.channels - 1)])
                self.outlet.push_chunk(data.astype(np.float32), stamps.tolist())
                self.stamps.update(zip(idx.tolist(), stamps.tolist(), strict=True))
                k += 10
            time.sleep(0.002)

    def __enter__(self) -> _Sender:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def test_kneegui_record_keeps_raw_stamps_and_raw_clock_measurements(tmp_path, capsys):
    with _Sender("RawEMG") as sender:
        rc = main(["record", "--out", str(tmp_path / "raw.h5"), "--duration", "2",
                   "--streams", sender.sid, "--quiet"])
    assert rc == 0, capsys.readouterr().err
    with open_session(tmp_path / "raw.h5") as s:
        st = s.streams["RawEMG"]
        assert st.length > 500
        counter = st.data[:, 0].astype(int)
        sent = np.array([sender.stamps[k] for k in counter])
        np.testing.assert_array_equal(st.raw_timestamps, sent)  # exactly what the sender sent
        # the corrected stamps are dejittered: they are not the raw ones, but close to them
        assert np.std(np.diff(st.timestamps)) < 0.2 * np.std(np.diff(st.raw_timestamps))
        assert np.max(np.abs(st.timestamps - st.raw_timestamps)) < 0.01
        m = st.clock_measurements
        assert m.shape[1] == 3 and len(m) >= 1
        assert np.all(np.isfinite(m)) and np.all(m[:, 2] > 0) and np.all(m[:, 2] < 0.1)
        assert np.all(np.abs(m[:, 1]) < 0.01)  # same machine
        assert np.all(np.diff(m[:, 0]) > 0)
        offsets = st.clock_offsets
        # no placeholder: the first applied offset comes from the first measurement, applied
        # just after it was taken; every later row follows a measurement and is the median of
        # the recent ones - or 0 for this same-host sender, which shares the clock
        # (kneegui.acquisition.clock.SAME_HOST_TOLERANCE): the measurements are kept anyway
        def applied(median: float) -> float:
            return 0.0 if abs(median) <= SAME_HOST_TOLERANCE else median

        assert len(offsets) >= 1 and offsets[0, 1] == applied(m[0, 1])
        assert 0 <= offsets[0, 0] - m[0, 0] < 3.0
        assert np.all(np.diff(offsets[:, 0]) > 0)
        for t, value in offsets:
            recent = m[m[:, 0] <= t][-12:, 1]
            assert value == pytest.approx(applied(float(np.median(recent))), abs=1e-12)
        assert s.format_version == "1.1"


def _hub_session(tmp_path):
    """Record 2.5 s from a hub; the display filters change after 1.2 s."""
    tag = uuid.uuid4().hex[:8]
    emg_sid, ang_sid = f"kneegui-test-femg-{tag}", f"kneegui-test-fang-{tag}"
    info = pylsl.StreamInfo("Filt EMG", "EMG", 4, 1000.0, pylsl.cf_float32, emg_sid)
    chans = info.desc().append_child("channels")
    for label in ("RF", "BF", "VM", "ST"):
        chans.append_child("channel").append_child_value("label", label)
    emg_out = pylsl.StreamOutlet(info)
    ang_out = pylsl.StreamOutlet(pylsl.StreamInfo("Filt knee", "Angle", 1, 100.0,
                                                  pylsl.cf_float32, ang_sid))
    hub = Hub(model_rate=100.0)
    hub.assign(Role.EMG, _reader(emg_sid))
    hub.assign(Role.KNEE_ANGLE, _reader(ang_sid))
    hub.start()
    for reader in hub.readers:
        assert reader.wait_until_open(10)
    writer = SessionWriter(tmp_path, {"subject_id": "filt"}, hub).start()
    time.sleep(0.3)  # the pump has started following the (still empty) buffers
    rng = np.random.default_rng(11)
    t0, k = pylsl.local_clock(), 0
    changed = False
    while k < 2500:
        due = min(2500, int((pylsl.local_clock() - t0) * 1000))
        if due > k:
            n = due - k
            emg_out.push_chunk(rng.standard_normal((n, 4)).astype(np.float32),
                               (t0 + (k + np.arange(n)) / 1000).tolist())
            i0, i1 = (k + 9) // 10, (due + 9) // 10
            if i1 > i0:
                ang_out.push_chunk(np.full((i1 - i0, 1), 20.0, np.float32),
                                   (t0 + np.arange(i0, i1) / 100).tolist())
            k = due
        if k > 1200 and not changed:
            hub.set_filter_settings(FilterSettings(low=30.0, high=300.0, mains=60.0))
            changed = True
        time.sleep(0.005)
    time.sleep(0.5)
    status = writer.stop()
    hub.stop()
    assert status.error is None
    return status.path


def test_derived_emg_carries_its_filter_settings_and_their_changes(tmp_path):
    path = _hub_session(tmp_path)
    with open_session(path) as s:
        raw = s.streams["Filt_EMG"]
        filtered = s.derived["emg_filtered/Filt_EMG"]
        envelope = s.derived["emg_envelope/Filt_EMG"]
        for series in (filtered, envelope):
            attrs = series.attrs
            assert series.filter_settings == FilterSettings(low=30.0, high=300.0, mains=60.0)
            assert attrs["highpass_hz"] == 30.0 and attrs["lowpass_hz"] == 300.0
            assert list(attrs["notch_hz"]) == [60.0, 120.0, 180.0]
            history = json.loads(attrs["filter_history"])
            assert [h["settings"]["low"] for h in history] == [20.0, 30.0]
            assert history[0]["settings"] == dataclasses.asdict(FilterSettings())
            assert "Butterworth band-pass 30-300 Hz" in attrs["filter_description"]
        assert envelope.attrs["envelope_cutoff_hz"] == 6.0
        assert "envelope_cutoff_hz" not in filtered.attrs
        labels = [lab for _, lab, o in s.events.as_list() if o == "recorder"]
        assert sum("display filter changed" in x for x in labels) == 2  # filtered + envelope
        # the stored settings are the ones really used: recompute the first segment offline
        t_change = history[1]["from_time"]
        first = json.loads(filtered.attrs["filter_history"])[0]["settings"]
        assert raw.timestamps[0] == filtered.timestamps[0]  # both start at the first sample
        n = int(np.searchsorted(filtered.timestamps, t_change)) - 1
        out = FilterChain(1000.0, 4, FilterSettings(**first)).process(raw.data[:n])
        np.testing.assert_allclose(filtered.data[:n], out.filtered, rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(envelope.data[:n], out.envelope, rtol=1e-4, atol=1e-5)


def test_numeric_datasets_are_shuffled_and_deflated(tmp_path):
    from kneegui.acquisition.simulator import default_clip
    from kneegui.datasets.uci import read_uci_file

    rec = read_uci_file(default_clip())
    emg = np.tile(rec.emg, (1, 4))[:20000]  # 16 channels of real EMG (mV)
    stamps = 100 + np.arange(len(emg)) / 2000
    sizes = {}
    for compress in (True, False):
        w = SessionWriter(tmp_path / f"c{compress}.h5", compression=compress).start()
        key = w.add_stream(StreamSpec("EMG", "EMG", 16, 2000.0, "float32", "c"))
        w.write_samples(key, emg, stamps, raw_timestamps=stamps - 5)
        status = w.stop()
        path = status.path
        assert status.compressed == compress and status.warning is None
        assert not path.with_name(path.name + ".compacting").exists()
        sizes[compress] = path.stat().st_size
        with h5py.File(path, "r") as f:
            for name in ("data", "timestamps", "timestamps_raw"):
                ds = f[f"streams/{key}/{name}"]
                assert (ds.compression, ds.shuffle) == (("gzip", True) if compress
                                                        else (None, False))
                if compress:
                    assert ds.compression_opts == COMPRESSION["compression_opts"]
        with open_session(path) as s:
            np.testing.assert_array_equal(s.streams[key].data, emg)
            np.testing.assert_array_equal(s.streams[key].raw_timestamps, stamps - 5)
    assert sizes[True] < 0.75 * sizes[False]


def _write_format_10(path) -> None:
    """A file exactly as format 1.0 wrote it (no raw stamps, placeholder clock row, no
    event durations, uncompressed)."""
    s = h5py.string_dtype()
    with h5py.File(path, "w-") as f:
        f.attrs.update({"format": "kneegui-session", "format_version": "1.0",
                        "subject_id": "OLD", "session_start_time": "2026-01-02T03:04:05.000Z",
                        "session_start_lsl": 1000.0, "complete": True})
        g = f.create_group("streams/EMG")
        g.attrs.update({"name": "EMG", "type": "EMG", "channel_count": 2,
                        "nominal_srate": 100.0, "channel_format": "float32"})
        g.attrs["channel_labels"] = np.array(["RF", "BF"], dtype=s)
        g.attrs["channel_units"] = np.array(["mV", "mV"], dtype=s)
        g.create_dataset("data", data=np.arange(20, dtype=np.float32).reshape(10, 2),
                         maxshape=(None, 2), chunks=True)
        g.create_dataset("timestamps", data=1000.5 + np.arange(10) / 100, maxshape=(None,),
                         chunks=True)
        g.create_dataset("clock_offsets", data=[[1000.0, 0.0], [1001.0, -1e-5]])
        e = f.create_group("events")
        e.create_dataset("timestamp", data=[1000.6])
        e.create_dataset("label", data=np.array(["old marker"], dtype=object), dtype=s)
        e.create_dataset("origin", data=np.array(["operator"], dtype=object), dtype=s)
        d = f.create_group("derived/emg_envelope/EMG")
        d.attrs["rate"] = 100.0
        d.create_dataset("data", data=np.ones((10, 2), np.float32))
        d.create_dataset("timestamps", data=1000.5 + np.arange(10) / 100)


def test_format_10_files_still_open_and_export(tmp_path, capsys):
    old = tmp_path / "old.h5"
    _write_format_10(old)
    with open_session(old) as s:
        assert s.format_version == "1.0"
        st = s.streams["EMG"]
        assert np.isnan(st.raw_timestamps).all() and len(st.raw_timestamps) == 10
        assert st.clock_measurements.shape == (0, 3)
        np.testing.assert_array_equal(st.clock_offsets, [[1000.0, 0.0], [1001.0, -1e-5]])
        assert s.events.as_list() == [(1000.6, "old marker", "operator")]
        assert s.events.duration.tolist() == [0.0]
        assert s.derived["emg_envelope/EMG"].filter_settings is None
        assert s.start_lsl == 1000.0
    assert main(["export", str(old), "--format", "csv", "--out", str(tmp_path / "csv")]) == 0
    assert main(["export", str(old), "--format", "nwb", "--out", str(tmp_path / "o.nwb")]) == 0
    assert main(["export", str(old), "--format", "bids", "--out", str(tmp_path / "bids")]) == 0
    capsys.readouterr()


def test_a_session_being_recorded_is_read_without_the_lock(tmp_path):
    """`kneegui record` runs in a child process; this process reads the file while it grows:
    with ``open_session(live=True)``, with ``h5py.File(..., locking=False)`` and with plain
    ``h5py.File`` under ``HDF5_USE_FILE_LOCKING=FALSE`` (what h5dump/MATLAB users set)."""
    out = tmp_path / "live.h5"
    with _Sender("LiveEMG", rate=1000.0) as sender:
        child = subprocess.Popen(
            [sys.executable, "-m", "kneegui", "record", "--out", str(out), "--duration", "6",
             "--streams", sender.sid, "--quiet"], stderr=subprocess.PIPE, text=True)
        try:
            deadline = time.monotonic() + 20
            while not out.exists() and time.monotonic() < deadline:
                time.sleep(0.05)
            time.sleep(1.0)
            with pytest.raises(OSError, match="(?i)lock"):
                h5py.File(out, "r")  # the default: refused while the writer holds the lock
            lengths, prefixes = [], []
            for _ in range(8):
                with open_session(out, live=True) as s:
                    st = s.streams["LiveEMG"]
                    lengths.append(st.length)
                    prefixes.append(st.data[:, 0].copy())
                    assert not s.complete
                with h5py.File(out, "r", locking=False) as f:
                    assert f["streams/LiveEMG/data"].shape[0] >= lengths[-1]
                time.sleep(0.4)
            env = {**os.environ, "HDF5_USE_FILE_LOCKING": "FALSE"}
            code = ("import h5py,sys; f=h5py.File(sys.argv[1],'r'); "
                    "print(f['streams/LiveEMG/timestamps'].shape[0])")
            done = subprocess.run([sys.executable, "-c", code, str(out)], env=env,
                                  capture_output=True, text=True, timeout=30)
            assert done.returncode == 0, done.stderr
            assert int(done.stdout) >= lengths[-1]
        finally:
            _, err = child.communicate(timeout=30)
    assert child.returncode == 0, err
    assert lengths == sorted(lengths) and lengths[-1] > lengths[0]  # it grew while read
    with open_session(out) as s:
        final = s.streams["LiveEMG"].data[:, 0]
        assert s.complete
    for prefix in prefixes:  # every live read was an exact prefix of the final file
        np.testing.assert_array_equal(prefix, final[: len(prefix)])


def test_a_killed_recording_stays_uncompressed_and_intact_a_stopped_one_is_compressed(tmp_path):
    """Compression happens after the file is closed (kneegui.recording.compact): a recording
    killed with SIGKILL keeps plain, readable chunks up to its last flush."""
    import signal

    from kneegui.recording.compact import SUFFIX

    child_script = str(Path(__file__).resolve().parent / "crash_child.py")
    out = tmp_path / "killed.h5"
    child = subprocess.Popen([sys.executable, child_script, str(out)], stdout=subprocess.PIPE,
                             text=True)
    try:
        assert child.stdout.readline().strip() == "ready"
        time.sleep(1.6)
    finally:
        os.kill(child.pid, signal.SIGKILL)
        child.wait(10)
    with h5py.File(out, "r") as f:
        ds = f["streams/emg/data"]
        assert ds.compression is None and ds.shape[0] > 1000
        k = np.arange(ds.shape[0])
        np.testing.assert_array_equal(ds[:], (k[:, None] * 16 + np.arange(16)).astype(np.float32))
    assert not out.with_name(out.name + SUFFIX).exists()


def test_a_file_that_cannot_be_compressed_is_kept_whole_with_a_warning(tmp_path):
    from kneegui.recording.compact import SUFFIX

    path = tmp_path / "w.h5"
    path.with_name(path.name + SUFFIX).mkdir()  # the copy cannot be created
    w = SessionWriter(path).start()
    key = w.add_stream(StreamSpec("EMG", "EMG", 2, 100.0, "float32", "w"))
    w.write_samples(key, np.ones((50, 2)), 10 + np.arange(50) / 100)
    status = w.stop()
    assert status.state.value == "stopped" and status.error is None
    assert not status.compressed and "kept uncompressed" in status.warning
    with open_session(path) as s:
        assert s.complete and s.streams[key].length == 50
        assert s.streams[key].group["data"].compression is None


def test_stop_without_waiting_returns_a_complete_file_compressed_later(tmp_path):
    w = SessionWriter(tmp_path / "nw.h5").start()
    key = w.add_stream(StreamSpec("EMG", "EMG", 16, 2000.0, "float32", "nw"))
    data = np.random.default_rng(1).standard_normal((200_000, 16)).astype(np.float32)
    w.write_samples(key, data, 10 + np.arange(len(data)) / 2000, block=True)
    status = w.stop(wait=False)  # what a GUI does: the file is closed and complete now
    assert status.state.value == "stopped" and status.error is None
    with open_session(status.path) as s:  # readable at once, compressed or not yet
        assert s.complete and s.streams[key].length == len(data)
    assert w.wait_compressed(60)
    final = w.status()
    assert final.compressed and final.file_bytes == status.path.stat().st_size
    with open_session(status.path) as s:
        np.testing.assert_array_equal(s.streams[key].data, data)
        assert s.streams[key].group["data"].compression == "gzip"


def test_compaction_keeps_every_dataset_attribute_and_order(tmp_path):
    from kneegui.recording.compact import compact

    path = tmp_path / "all.h5"
    rng = np.random.default_rng(4)
    arrays = {
        "i8": rng.integers(-128, 127, (1000, 3)).astype(np.int8),
        "i16": rng.integers(-30000, 30000, (777, 5)).astype(np.int16),
        "i64": rng.integers(-2**60, 2**60, (300, 2)).astype(np.int64),
        "f64_1d": rng.standard_normal(12345),
        "f32_nan": np.where(rng.random((999, 4)) < 0.1, np.nan, rng.standard_normal((999, 4)))
        .astype(np.float32),
        "one_row": np.ones((1, 7), np.float32),
    }
    with h5py.File(path, "w", track_order=True) as f:
        f.attrs["format"] = "kneegui-session"
        f.attrs["labels"] = np.array(["a", "ü"], dtype=h5py.string_dtype())
        g = f.create_group("z_first", track_order=True)
        for name, arr in arrays.items():
            chunks = (min(len(arr), 256), *arr.shape[1:])
            ds = g.create_dataset(name, data=arr, maxshape=(None, *arr.shape[1:]), chunks=chunks)
            ds.attrs["unit"] = "mV"
        f.create_group("a_second").create_dataset(
            "text", data=np.array(["x", "y ü"], dtype=object), dtype=h5py.string_dtype())
        f.create_dataset("empty", shape=(0, 3), maxshape=(None, 3), dtype="f4", chunks=(64, 3))
        f.create_dataset("scalar", data=3.5)
    saved = compact(path)
    assert saved > 0
    with h5py.File(path, "r") as f:
        assert list(f) == ["z_first", "a_second", "empty", "scalar"]  # creation order kept
        assert list(f.attrs["labels"]) == ["a", "ü"] and f.attrs["format"] == "kneegui-session"
        for name, arr in arrays.items():
            ds = f["z_first"][name]
            assert ds.compression == "gzip" and ds.shuffle and ds.attrs["unit"] == "mV"
            assert ds.dtype == arr.dtype and ds.maxshape[0] is None
            np.testing.assert_array_equal(ds[:], arr)
        assert list(f["a_second/text"].asstr()[:]) == ["x", "y ü"]
        assert f["empty"].shape == (0, 3) and f["scalar"][()] == 3.5


def test_a_program_exiting_right_after_stop_without_waiting_still_compresses(tmp_path):
    from kneegui.recording.compact import SUFFIX

    out = tmp_path / "exit.h5"
    code = (
        "import sys, numpy as np\n"
        "from kneegui.recording import SessionWriter, StreamSpec\n"
        "w = SessionWriter(sys.argv[1]).start()\n"
        "k = w.add_stream(StreamSpec('EMG', 'EMG', 16, 2000.0, 'float32', 'x'))\n"
        "d = np.random.default_rng(0).standard_normal((300000, 16)).astype(np.float32)\n"
        "w.write_samples(k, d, np.arange(len(d)) / 2000, block=True)\n"
        "print(w.stop(wait=False).compressed)\n"  # then the interpreter exits at once
    )
    done = subprocess.run([sys.executable, "-c", code, str(out)], capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "False"  # not yet compressed when stop() returned
    assert not out.with_name(out.name + SUFFIX).exists()
    with h5py.File(out, "r") as f:  # the exit waited for the compression
        assert f["streams/EMG/data"].compression == "gzip"
        assert f["streams/EMG/data"].shape == (300000, 16)
