"""Helpers for the fault tests: the shared LSL fault sender, unique names, outlets that push.

Each ``test_item<N>_*.py`` module holds the tests of one item of issue #17 (a fault a demanding
lab hits); each failed on the code before the fix.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pylsl
import pytest

REPO = Path(__file__).resolve().parents[2]
#: The pylsl fault sender shared by the project (NaN values, clock jumps, bursts, odd formats).
FAULT_SENDER = Path(os.environ.get(
    "KNEEGUI_FAULT_SENDER", REPO.parent / "shared/tools/lsl_fault_sender.py"))


@pytest.fixture
def uid() -> str:
    """A short unique tag: other LSL streams run on this machine at the same time."""
    return uuid.uuid4().hex[:10]


@pytest.fixture(scope="session")
def fault_sender_path() -> Path:
    """``lsl_fault_sender.py`` (shared tools; set KNEEGUI_FAULT_SENDER elsewhere)."""
    if not FAULT_SENDER.is_file():
        raise RuntimeError(f"fault sender not found at {FAULT_SENDER}; set KNEEGUI_FAULT_SENDER")
    return FAULT_SENDER


@pytest.fixture
def fault_sender() -> Iterator[Callable[..., subprocess.Popen]]:
    """Start ``lsl_fault_sender.py`` with the given options; stopped at teardown."""
    if not FAULT_SENDER.is_file():
        raise RuntimeError(f"fault sender not found at {FAULT_SENDER}; set KNEEGUI_FAULT_SENDER")
    procs: list[subprocess.Popen] = []

    def start(*args: str) -> subprocess.Popen:
        proc = subprocess.Popen([sys.executable, str(FAULT_SENDER), *args],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                env=dict(os.environ))
        procs.append(proc)
        return proc

    yield start
    for proc in procs:
        if proc.poll() is None:
            proc.terminate()
    for proc in procs:
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


class Pusher:
    """An in-process outlet that pushes a counter (channel 0) in real time from a thread;
    push-stamped (liblsl stamps each chunk when it is pushed), like most amplifier drivers."""

    def __init__(self, name: str, source_id: str, channels: int = 2, rate: float = 500.0,
                 stype: str = "EMG", chunk: int = 10):
        self.outlet = pylsl.StreamOutlet(
            pylsl.StreamInfo(name, stype, channels, rate, pylsl.cf_float32, source_id))
        self.rate, self.chunk, self.channels = rate, chunk, channels
        self.sent = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"pusher-{name}", daemon=True)

    def start(self) -> Pusher:
        self._thread.start()
        return self

    def _run(self) -> None:
        t0 = time.monotonic()
        while not self._stop.is_set():
            due = int((time.monotonic() - t0) * self.rate)
            while self.sent + self.chunk <= due:
                block = np.zeros((self.chunk, self.channels), np.float32)
                block[:, 0] = np.arange(self.sent, self.sent + self.chunk)
                self.outlet.push_chunk(block)
                self.sent += self.chunk
            time.sleep(0.005)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self.outlet = None


@pytest.fixture
def pusher() -> Iterator[Callable[..., Pusher]]:
    """Start :class:`Pusher` outlets; stopped (and their outlets destroyed) at teardown."""
    made: list[Pusher] = []

    def start(*args, **kwargs) -> Pusher:
        p = Pusher(*args, **kwargs).start()
        made.append(p)
        return p

    yield start
    for p in made:
        p.stop()
