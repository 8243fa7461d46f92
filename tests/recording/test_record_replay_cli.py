"""`kneegui record` and `kneegui replay` from the command line, on loopback LSL."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import uuid

import numpy as np
import pylsl

from kneegui.cli import main
from kneegui.recording import SessionWriter, StreamSpec, open_session
from kneegui.recording.replay import SOURCE_SUFFIX


def test_record_cli_records_a_stream_for_the_duration(tmp_path, capsys):
    sid = f"kneegui-test-cli-{uuid.uuid4().hex[:8]}"
    info = pylsl.StreamInfo("CLI EMG", "EMG", 2, 200.0, pylsl.cf_float32, sid)
    outlet = pylsl.StreamOutlet(info)
    stop = threading.Event()

    def push() -> None:
        k = 0
        while not stop.is_set():
            block = np.arange(k, k + 10, dtype=np.float32)
            outlet.push_chunk(np.column_stack([block, -block]))
            k += 10
            time.sleep(0.05)

    pusher = threading.Thread(target=push, daemon=True)
    pusher.start()
    try:
        rc = main(["record", "--out", str(tmp_path / "rec"), "--duration", "1.5",
                   "--streams", sid, "--subject", "S9", "--operator", "op", "--quiet"])
    finally:
        stop.set()
        pusher.join()
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    path = captured.out.strip()
    assert path.startswith(str(tmp_path / "rec" / "S9_")) and "recording 1 stream" in captured.err
    with open_session(path) as s:
        assert s.complete and s.subject_id == "S9" and s.operator == "op"
        st = s.streams["CLI_EMG"]
        assert st.length >= 150  # ~1.5 s at 200 Hz, minus connection time
        first = st.data[0, 0]
        # contiguous: exactly the samples that were pushed, none lost or repeated
        np.testing.assert_array_equal(st.data[:, 0], first + np.arange(st.length))
        np.testing.assert_array_equal(st.data[:, 1], -st.data[:, 0])
        assert np.all(np.diff(st.timestamps) > 0)


def test_record_cli_errors_are_one_line_and_exit_2(tmp_path, capsys):
    missing = f"kneegui-test-none-{uuid.uuid4().hex[:8]}"
    assert main(["record", "--out", str(tmp_path), "--streams", missing,
                 "--discover-timeout", "0.5"]) == 2
    err = capsys.readouterr().err
    assert missing in err and "kneegui streams" in err
    assert main(["record", "--out", str(tmp_path), "--duration", "-1"]) == 2
    assert "--duration" in capsys.readouterr().err


def _session(path, sid: str) -> None:
    w = SessionWriter(path).start()
    key = w.add_stream(StreamSpec("CLI replay", "EMG", 1, 100.0, "float32", sid,
                                  channel_labels=("RF",), channel_units=("mV",)))
    w.write_samples(key, np.arange(50, dtype=np.float32)[:, None], 10 + np.arange(50) / 100)
    w.stop()


def _inlet(source_id: str) -> pylsl.StreamInlet:
    found = pylsl.resolve_byprop("source_id", source_id, minimum=1, timeout=10)
    assert found, f"no replay stream {source_id}"
    inlet = pylsl.StreamInlet(found[0])
    inlet.open_stream(timeout=5)
    return inlet


def _pull(inlet, n: int, timeout: float) -> tuple[np.ndarray, np.ndarray]:
    values, stamps = [], []
    deadline = time.monotonic() + timeout
    while sum(len(v) for v in values) < n and time.monotonic() < deadline:
        data, ts = inlet.pull_chunk(timeout=0.2)
        if ts:
            values.append(np.asarray(data)[:, 0])
            stamps.append(np.asarray(ts))
    return np.concatenate(values), np.concatenate(stamps)


def test_replay_cli_publishes_with_timing_speed_and_metadata(tmp_path, capsys):
    sid = f"kneegui-test-rp-{uuid.uuid4().hex[:8]}"
    path = tmp_path / "s.h5"
    _session(path, sid)
    result = {}
    runner = threading.Thread(target=lambda: result.setdefault("rc", main(
        ["replay", str(path), "--speed", "2", "--wait-for-consumers", "10"])))
    runner.start()
    inlet = _inlet(sid + SOURCE_SUFFIX)
    info = inlet.info(timeout=5)
    values, stamps = _pull(inlet, 50, timeout=10)
    runner.join(10)
    assert result["rc"] == 0
    np.testing.assert_array_equal(values, np.arange(50))
    np.testing.assert_allclose(np.diff(stamps), 0.005, atol=1e-6)  # 10 ms recorded, 2x speed
    assert info.name() == "CLI replay" and info.nominal_srate() == 200.0
    assert info.desc().child("channels").child("channel").child_value("unit") == "mV"
    assert "replayed 50 samples" in capsys.readouterr().err


def test_replay_cli_loops_until_interrupted(tmp_path):
    sid = f"kneegui-test-loop-{uuid.uuid4().hex[:8]}"
    path = tmp_path / "s.h5"
    _session(path, sid)
    child = subprocess.Popen(
        [sys.executable, "-m", "kneegui", "replay", str(path), "--loop", "--speed", "5",
         "--wait-for-consumers", "10"], stderr=subprocess.PIPE, text=True,
        env=dict(os.environ))
    try:
        inlet = _inlet(sid + SOURCE_SUFFIX)
        values, stamps = _pull(inlet, 120, timeout=15)
    finally:
        child.send_signal(signal.SIGINT)
        try:  # a busy machine may take seconds to close the outlets
            _, err = child.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            child.kill()
            _, err = child.communicate()
            raise AssertionError(f"replay did not stop within 60 s of SIGINT: {err}") from None
    assert child.returncode == 0, err
    assert len(values) >= 120  # more than two passes of 50 samples
    np.testing.assert_array_equal(values[:120], np.tile(np.arange(50), 3)[:120])
    assert np.all(np.diff(stamps) > 0)  # each pass continues the time line


def _limit_file_size() -> None:
    """In the child: a 1.2 MB file-size limit; EFBIG instead of SIGXFSZ (kept across exec)."""
    import resource

    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (1_200_000, 1_200_000))


def test_record_cli_reports_a_write_failure_and_exits_1(tmp_path):
    sid = f"kneegui-test-full-{uuid.uuid4().hex[:8]}"
    outlet = pylsl.StreamOutlet(pylsl.StreamInfo("Full EMG", "EMG", 16, 2000.0,
                                                 pylsl.cf_float32, sid))
    stop = threading.Event()

    def push() -> None:
        while not stop.is_set():
            outlet.push_chunk(np.ones((40, 16), np.float32))
            time.sleep(0.02)

    pusher = threading.Thread(target=push, daemon=True)
    pusher.start()
    out = tmp_path / "full.h5"
    try:
        done = subprocess.run(
            [sys.executable, "-m", "kneegui", "record", "--out", str(out), "--duration", "20",
             "--streams", sid, "--quiet"], capture_output=True, text=True, timeout=60,
            preexec_fn=_limit_file_size)
    finally:
        stop.set()
        pusher.join()
    assert done.returncode == 1, done.stderr
    assert "recording stopped" in done.stderr and "File too large" in done.stderr
    assert "Traceback" not in done.stderr
    with open_session(out) as s:  # the file is still a readable session
        assert not s.complete and "Full_EMG" in s.streams
