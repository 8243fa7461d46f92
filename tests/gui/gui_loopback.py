"""Real LSL loopback senders for the GUI tests (unique names per instance)."""

from __future__ import annotations

import threading
import time
import uuid

import numpy as np


class LoopbackSender:
    """Pushes a synthetic gait (EMG 4 ch @ 1 kHz + knee angle @ 100 Hz) on real LSL outlets.

    The angle is a ~1 Hz gait-like curve; EMG bursts are phase-locked to it so an envelope
    has structure. ``pause(s)`` stops sending for ``s`` seconds (a sender outage).
    """

    def __init__(self, emg_channels: int = 4, emg_rate: float = 1000.0, tag: str | None = None):
        import pylsl

        self.tag = tag or uuid.uuid4().hex[:8]
        self.emg_rate = emg_rate
        self.emg_channels = emg_channels
        labels = ["RF", "BF", "VM", "ST"] + [f"E{i}" for i in range(5, emg_channels + 1)]
        emg = pylsl.StreamInfo(f"guitest-EMG-{self.tag}", "EMG", emg_channels, emg_rate,
                               pylsl.cf_float32, f"guitest-emg-{self.tag}")
        chans = emg.desc().append_child("channels")
        for label in labels[:emg_channels]:
            ch = chans.append_child("channel")
            ch.append_child_value("label", label)
            ch.append_child_value("unit", "mV")
        ang = pylsl.StreamInfo(f"guitest-knee-{self.tag}", "Angle", 1, 100.0,
                               pylsl.cf_float32, f"guitest-angle-{self.tag}")
        ch = ang.desc().append_child("channels").append_child("channel")
        ch.append_child_value("label", "knee_flexion")
        ch.append_child_value("unit", "degrees")
        self.source_ids = (emg.source_id(), ang.source_id())
        self._emg_out = pylsl.StreamOutlet(emg, chunk_size=10)
        self._ang_out = pylsl.StreamOutlet(ang, chunk_size=1)
        self._clock = pylsl.local_clock
        self._rng = np.random.default_rng(7)
        self._stop = threading.Event()
        self._paused_until = 0.0
        self._thread = threading.Thread(target=self._run, daemon=True)
        self.sent_emg = 0

    @staticmethod
    def angle(t: np.ndarray) -> np.ndarray:
        ph = 2 * np.pi * 0.9 * t
        return 30 + 25 * np.sin(ph) + 8 * np.sin(2 * ph + 0.5)

    def start(self) -> LoopbackSender:
        self._thread.start()
        return self

    def pause(self, seconds: float) -> None:
        self._paused_until = time.monotonic() + seconds

    def _run(self) -> None:
        t0 = self._clock()
        n_emg = 0
        n_ang = 0
        while not self._stop.is_set():
            time.sleep(0.01)
            now = self._clock()
            if time.monotonic() < self._paused_until:
                # Samples not sent during an outage are skipped, like a dead sender.
                n_emg = int((now - t0) * self.emg_rate)
                n_ang = int((now - t0) * 100)
                continue
            want = int((now - t0) * self.emg_rate)
            if want > n_emg:
                idx = np.arange(n_emg, want)
                ts = t0 + idx / self.emg_rate
                leads = np.linspace(0, np.pi, self.emg_channels)[None, :]
                act = np.clip(np.sin(2 * np.pi * 0.9 * ts[:, None] + leads + 0.6), 0, None)
                x = self._rng.standard_normal((idx.size, self.emg_channels)) * (0.02 + 0.2 * act)
                self._emg_out.push_chunk(x.astype(np.float32), ts)
                self.sent_emg += idx.size
                n_emg = want
            want_a = int((now - t0) * 100)
            if want_a > n_ang:
                ts = t0 + np.arange(n_ang, want_a) / 100.0
                self._ang_out.push_chunk(self.angle(ts).astype(np.float32)[:, None], ts)
                n_ang = want_a

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(2)
        self._emg_out = None
        self._ang_out = None


def resolve_sender_streams(sender: LoopbackSender, timeout: float = 10.0) -> list:
    """The sender's two streams, resolved by source_id."""
    from kneegui.acquisition.discovery import resolve_source_id

    infos = []
    for sid in sender.source_ids:
        found = resolve_source_id(sid, timeout=timeout)
        assert found, f"stream {sid} not found on loopback LSL"
        infos.append(found[0])
    return infos


def wait_until(condition, timeout: float) -> bool:
    """Process Qt events until ``condition()`` holds (module fixtures cannot use qtbot)."""
    from PySide6 import QtTest

    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        QtTest.QTest.qWait(20)
    return True
