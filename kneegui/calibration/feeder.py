"""Moves aligned frames from the acquisition hub into a protocol and notices lost streams.

:class:`CapturePump` is polled by its owner (the wizard's QTimer, or the CLI loop): each
:meth:`~CapturePump.poll` takes the frames aligned since the last poll, feeds them to the
protocol, pauses the protocol when no frame arrived for ``stall_s`` (a stream was lost) and
lets it resume when frames flow again. It also keeps the last seconds for live plots.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, Protocol

import numpy as np

from kneegui.calibration.protocol import CalibrationProtocol


class FrameSource(Protocol):
    """Where aligned model-rate frames come from."""

    def read_new(self) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """Frames aligned since the previous call: ``t [m]``, ``emg_env [m, 4]``, ``angle [m]``."""
        ...

    def problem(self) -> str | None:
        """Why frames are missing (e.g. 'EMG stream disconnected'), or None if unknown."""
        ...


class HubFrameSource:
    """A :class:`FrameSource` over ``kneegui.acquisition.Hub`` (cursor-based, no re-delivery)."""

    def __init__(self, hub: Any) -> None:
        self.hub = hub
        self._cursor: Any = None

    def read_new(self) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        frame, self._cursor = _hub_read(self.hub, self._cursor)
        if frame is None:
            return np.zeros(0), np.zeros((0, 4), np.float32), np.zeros(0, np.float32)
        return frame.t, frame.emg_env, frame.angle

    def problem(self) -> str | None:
        for st in self.hub.statuses():
            if not getattr(st, "connected", True):
                return f"stream '{st.name}' disconnected"
        return None


def _hub_read(hub: Any, cursor: Any) -> tuple[Any, Any]:
    """Read the frames aligned after ``cursor``; returns (frame or None, new cursor)."""
    if cursor is None:  # start from "now": older frames belong to before the calibration
        return None, hub.aligned_count()
    frame = hub.aligned_from(cursor)
    if frame is None or len(frame.t) == 0:
        return None, cursor
    return frame, frame.next_index


class CapturePump:
    """Polls a :class:`FrameSource` into a :class:`CalibrationProtocol`."""

    def __init__(
        self,
        source: FrameSource,
        protocol: CalibrationProtocol,
        stall_s: float = 0.5,
        display_s: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.source = source
        self.protocol = protocol
        self.stall_s = stall_s
        self.display_s = display_s
        self._clock = clock
        self._last_data = clock()
        self._t = np.zeros(0)
        self._angle = np.zeros(0, np.float32)
        self._emg = np.zeros((0, 4), np.float32)
        self.frames = 0

    def poll(self) -> int:
        """Move new frames into the protocol; returns how many arrived."""
        t, emg, angle = self.source.read_new()
        now = self._clock()
        n = len(t)
        if n:
            self._last_data = now
            self.frames += n
            self._remember(t, emg, angle)
            self.protocol.feed(t, emg, angle)
        elif now - self._last_data > self.stall_s:
            reason = self.source.problem() or f"no data for {now - self._last_data:.1f} s"
            self.protocol.stream_lost(reason)
        self.protocol.tick()
        return n

    def _remember(self, t: np.ndarray, emg: np.ndarray, angle: np.ndarray | None) -> None:
        a = np.full(len(t), np.nan, np.float32) if angle is None else np.asarray(angle, np.float32)
        self._t = np.concatenate([self._t, np.asarray(t, np.float64)])
        self._angle = np.concatenate([self._angle, a])
        self._emg = np.concatenate([self._emg, np.asarray(emg, np.float32).reshape(len(t), -1)])
        keep = self._t >= self._t[-1] - self.display_s
        self._t, self._angle, self._emg = self._t[keep], self._angle[keep], self._emg[keep]

    def recent(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The last ``display_s`` seconds: ``t``, ``angle``, ``emg_env`` (for live plots)."""
        return self._t, self._angle, self._emg


class RecordedFrames:
    """A :class:`FrameSource` over aligned rows of a recording (``kneegui calibrate --from``):
    each :meth:`read_new` serves the next ``chunk`` rows, as the hub would have delivered them.
    :meth:`clock` is the recording's time at the last row served, so the protocol's walking time
    and time-outs count recorded seconds, not how fast the file is read."""

    def __init__(self, t: np.ndarray, emg_env: np.ndarray, angle: np.ndarray | None,
                 chunk: int = 10) -> None:
        self.t = np.asarray(t, np.float64)
        self.emg_env = np.asarray(emg_env, np.float32).reshape(len(self.t), -1)
        self.angle = None if angle is None else np.asarray(angle, np.float32)
        self.chunk = max(1, int(chunk))
        self.position = 0
        self._now = float(self.t[0]) if len(self.t) else 0.0

    @property
    def exhausted(self) -> bool:
        return self.position >= len(self.t)

    def clock(self) -> float:
        return self._now

    def read_new(self) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        a, b = self.position, min(self.position + self.chunk, len(self.t))
        self.position = b
        if b > a:
            self._now = float(self.t[b - 1])
        return (self.t[a:b], self.emg_env[a:b],
                None if self.angle is None else self.angle[a:b])

    def problem(self) -> str | None:
        return "the recording has a hole here" if not self.exhausted else "end of the recording"
