"""A recording killed with SIGKILL, or stopped by a real I/O limit, keeps its data readable."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pylsl

from kneegui.recording import open_session

HERE = Path(__file__).resolve().parent


def _expected(n: int) -> np.ndarray:
    k = np.arange(n)
    return (k[:, None] * 16 + np.arange(16)).astype(np.float32)


def test_sigkill_keeps_everything_up_to_one_second_before_the_kill(tmp_path):
    for trial, run_for in enumerate((1.3, 2.2)):
        out = tmp_path / f"crash{trial}.h5"
        child = subprocess.Popen([sys.executable, str(HERE / "crash_child.py"), str(out)],
                                 stdout=subprocess.PIPE, text=True)
        try:
            assert child.stdout.readline().strip() == "ready"
            time.sleep(run_for)
            killed_at = pylsl.local_clock()  # same monotonic clock as the child's stamps
            os.kill(child.pid, signal.SIGKILL)
        finally:
            child.wait(10)
        assert child.returncode == -signal.SIGKILL
        with open_session(out) as s:
            assert not s.complete  # never closed cleanly
            emg = s.streams["emg"]
            assert emg.length > 0
            np.testing.assert_array_equal(emg.data, _expected(emg.length))  # exact, in order
            np.testing.assert_allclose(np.diff(emg.timestamps), 1 / 2000, rtol=1e-6)
            assert killed_at - emg.timestamps[-1] <= 1.0
            assert s.warnings == []


def test_real_file_size_limit_stops_recording_and_keeps_what_was_written(tmp_path):
    out = tmp_path / "limited.h5"
    limit = 3_000_000
    done = subprocess.run([sys.executable, str(HERE / "fsize_child.py"), str(out), str(limit)],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["state"] == "failed"
    assert "File too large" in report["error"] and "start a new recording" in report["error"]
    assert 0 < report["written"] < report["sent"]
    assert report["dropped"] == report["sent"] - report["written"]
    with open_session(out) as s:
        emg = s.streams["emg"]
        assert emg.length == report["written"]
        np.testing.assert_array_equal(emg.data, _expected(emg.length))
        assert not s.complete
    assert out.stat().st_size <= limit


def test_sigkill_of_kneegui_record_on_a_live_lsl_stream(tmp_path):
    import threading
    import uuid

    sid = f"kneegui-test-kill-{uuid.uuid4().hex[:8]}"
    outlet = pylsl.StreamOutlet(pylsl.StreamInfo("Kill EMG", "EMG", 16, 2000.0,
                                                 pylsl.cf_float32, sid))
    stop = threading.Event()

    def push() -> None:  # sample k, channel c = k * 16 + c, stamped at its due time
        t0, sent = pylsl.local_clock(), 0
        while not stop.is_set():
            due = int((pylsl.local_clock() - t0) * 2000)
            if due > sent:
                k = np.arange(sent, due)
                outlet.push_chunk(_expected(due)[sent:], (t0 + k / 2000).tolist())
                sent = due
            time.sleep(0.005)

    pusher = threading.Thread(target=push, daemon=True)
    pusher.start()
    out = tmp_path / "killed.h5"
    child = subprocess.Popen(
        [sys.executable, "-m", "kneegui", "record", "--out", str(out), "--streams", sid,
         "--discover-timeout", "1", "--quiet"], stderr=subprocess.PIPE, text=True)
    try:
        lines = []
        while not any("recording 1 stream" in line for line in lines):  # liblsl logs first
            line = child.stderr.readline()
            assert line, f"kneegui record ended early: {''.join(lines)}"
            lines.append(line)
        time.sleep(2.5)
        killed_at = pylsl.local_clock()
    finally:
        os.kill(child.pid, signal.SIGKILL)
        child.wait(10)
        stop.set()
        pusher.join()
    with open_session(out) as s:
        assert not s.complete
        st = s.streams["Kill_EMG"]
        assert st.length > 2000
        first = int(st.data[0, 0]) // 16
        np.testing.assert_array_equal(st.data, _expected(first + st.length)[first:])
        assert killed_at - st.timestamps[-1] <= 1.0
