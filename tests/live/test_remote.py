"""The window's predictor process: shared ring buffers read from another process without torn
reads, and a window crash that leaves the recording going until the predictor is told to stop."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import numpy as np
import pytest

from kneegui.acquisition import SimulatedLab
from kneegui.acquisition.shared import Arena, RingView
from kneegui.recording import open_session

HERE = Path(__file__).resolve().parent

_WRITER = """
import sys, time, numpy as np
from kneegui.acquisition.ringbuffer import RingBuffer
from kneegui.acquisition.shared import Arena
arena = Arena(sys.argv[1])
ring = RingBuffer(256, 3, np.float32, arena=arena, name="test")
import json; print(json.dumps(ring.spec), flush=True)
sys.stdin.readline()
k = 0
end = time.monotonic() + 2.0
while time.monotonic() < end:
    n = 1 + k % 37  # chunks of many sizes, wrapping the ring many times
    idx = np.arange(k, k + n)
    ring.write(np.repeat(idx[:, None], 3, axis=1).astype(np.float32), idx.astype(np.float64))
    k += n
print(k, flush=True)
sys.stdin.readline()
arena.close()
"""


def test_ring_view_reads_a_writing_process_without_torn_rows(tmp_path):
    """Every row a view returns (copied while another process writes as fast as it can)
    is one the writer wrote: value == timestamp == its absolute index."""
    import json

    proc = subprocess.Popen([sys.executable, "-c", _WRITER, str(tmp_path)],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        view = RingView(json.loads(proc.stdout.readline()))
        proc.stdin.write("go\n")
        proc.stdin.flush()
        reads, cursor, seen = 0, 0, 0
        end = time.monotonic() + 1.8
        while time.monotonic() < end:
            data, ts = view.latest(200)
            r = view.read_from(max(cursor, view.oldest_index))
            for d, t in ((data, ts), (r.data, r.timestamps)):
                assert (d[:, 0] == t).all() and (d == d[:, :1]).all()
                assert (np.diff(t) == 1).all()
            seen += len(r.timestamps)
            cursor = r.next_index
            reads += 1
        written = int(proc.stdout.readline())
        assert reads > 100 and seen > 0 and view.total_written == written
    finally:
        proc.stdin.write("done\n")
        proc.stdin.close()
        proc.wait(10)
    assert not any(tmp_path.iterdir())  # the arena removed its files


def test_arena_files_live_in_shared_memory_and_are_removed():
    arena = Arena()
    from kneegui.acquisition.ringbuffer import RingBuffer

    ring = RingBuffer(10, 2, np.float32, arena=arena, name="x")
    ring.write(np.ones((3, 2)), np.arange(3.0))
    assert RingView(ring.spec).latest(5)[0].shape == (3, 2)
    if Path("/dev/shm").is_dir():
        assert str(arena.path).startswith("/dev/shm/")
    arena.close()
    assert not arena.path.exists()


@pytest.mark.timeout(120)
def test_a_window_crash_keeps_the_recording_until_the_predictor_is_stopped(tmp_path):
    tag = uuid.uuid4().hex[:8]
    sim = SimulatedLab(source_id_prefix=f"crash-{tag}", name_prefix=f"Crash-{tag}").start()
    try:
        # (The predictor inherits the window's output pipe: read the one line, never to EOF.)
        child = subprocess.Popen(
            [sys.executable, str(HERE / "window_child.py"), sim.emg_source_id,
             sim.angle_source_id, str(tmp_path), f"crash test {tag}"],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        pid_text, path_text = child.stdout.readline().split()
        assert child.wait(timeout=60) == 3
        pid, path = int(pid_text), Path(path_text)
        time.sleep(2.0)
        os.kill(pid, 0)  # the predictor outlived its window
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                break
            time.sleep(0.1)
        else:
            pytest.fail("the predictor did not end on SIGTERM")
    finally:
        sim.stop()
    with open_session(path) as s:
        assert s.complete, "the recording was not closed cleanly"
        labels = [label for _, label, _ in s.events.as_list()]
        assert any("window closed unexpectedly" in label for label in labels), labels
        assert any("headless recording ended" in label for label in labels), labels
        emg = next(st for st in s.streams.values() if st.type == "EMG")
        assert emg.length > 2000  # > 2 s of samples: it kept recording after the crash
