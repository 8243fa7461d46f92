"""Gait-cycle detection from the knee flexion angle (flexion positive, 0 = extended).

A cycle runs from one swing-phase rise of the knee angle through ``rise_deg`` to the next one
(the rise happens just after toe-off, so cycles are aligned to swing onset, not heel strike).
A rise only counts after the angle has come back down to ``fall_deg`` (hysteresis, so noise and
the small stance-phase flexion of ~10-20 deg never trigger). A cycle is kept only when it lasts
``min_period_s``..``max_period_s``; longer gaps (standing, turning) start a fresh cycle.

:class:`GaitCycleCounter` is the streaming detector; :class:`GaitSegmenter` runs the same
detector over a whole recording, so offline and live results are identical.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class GaitCycle:
    start: int  # sample index of the swing rise that opens the cycle
    end: int  # sample index of the next swing rise (exclusive end)
    peak: int  # sample index of the maximum flexion (swing peak) inside the cycle
    peak_deg: float
    t_start: float  # timestamps (or sample index / fs without timestamps)
    t_end: float
    t_peak: float

    @property
    def duration(self) -> float:
        return self.t_end - self.t_start


@dataclass(frozen=True)
class GaitParams:
    rise_deg: float = 30.0
    fall_deg: float = 20.0
    min_period_s: float = 0.5
    max_period_s: float = 3.0

    def __post_init__(self):
        if not self.fall_deg < self.rise_deg:
            raise ValueError(f"fall_deg ({self.fall_deg}) must be below rise_deg ({self.rise_deg})")
        if not 0 < self.min_period_s < self.max_period_s:
            raise ValueError("need 0 < min_period_s < max_period_s")


class GaitCycleCounter:
    """Streaming gait-cycle detector: ``update(angle_chunk, timestamps)`` -> newly completed cycles.

    Sample indices count from construction / ``reset()``; ``count`` is the number of cycles so far.
    """

    def __init__(self, fs: float, params: GaitParams | None = None):
        if fs <= 0:
            raise ValueError(f"sampling rate must be > 0 Hz, got {fs}")
        self.fs = float(fs)
        self.params = params or GaitParams()
        self.reset()

    def reset(self) -> None:
        self.count = 0
        self._seen = 0
        self._armed = False  # angle has been at or below fall_deg since the last rise
        self._open: tuple[int, float] | None = None  # (index, time) of the last rise
        self._peak = (-np.inf, 0, 0.0)  # (value, index, time) of the open cycle's maximum

    def _track_peak(self, x, t, offset: int, lo: int, hi: int) -> None:
        if self._open is None or hi <= lo:
            return
        segment = x[lo:hi]
        if np.isnan(segment).all():
            return
        k = lo + int(np.nanargmax(segment))
        if x[k] > self._peak[0]:
            self._peak = (float(x[k]), offset + k, float(t[k]))

    def _close(self, end: int, t_end: float) -> GaitCycle | None:
        start, t_start = self._open
        value, peak, t_peak = self._peak
        if self.params.min_period_s <= (end - start) / self.fs <= self.params.max_period_s:
            self.count += 1
            return GaitCycle(start, end, peak, value, t_start, t_end, t_peak)
        return None

    def update(self, angle, timestamps=None) -> list[GaitCycle]:
        """Feed ``angle`` [n] (degrees, flexion positive); return the cycles completed by it.

        NaN samples (dropouts) are neutral: they neither rise, fall nor peak.
        """
        x = np.asarray(angle, dtype=np.float64).reshape(-1)
        offset = self._seen
        if timestamps is None:
            t = (offset + np.arange(len(x))) / self.fs
        else:
            t = np.asarray(timestamps, dtype=np.float64).reshape(-1)
            if t.shape != x.shape:
                raise ValueError(f"need one timestamp per sample: {t.shape} vs {x.shape}")
        p = self.params
        rises = np.flatnonzero(x >= p.rise_deg)
        falls = np.flatnonzero(x <= p.fall_deg)
        done: list[GaitCycle] = []
        pos = 0  # next sample to inspect
        tracked = 0  # samples before this index are already in the peak tracker
        while True:
            events = falls if not self._armed else rises
            j = int(np.searchsorted(events, pos))
            if j == len(events):
                break
            i = int(events[j])
            if not self._armed:
                self._armed = True
            else:
                self._track_peak(x, t, offset, tracked, i)
                tracked = i
                if self._open is not None:
                    cycle = self._close(offset + i, float(t[i]))
                    if cycle is not None:
                        done.append(cycle)
                self._open = (offset + i, float(t[i]))
                self._peak = (-np.inf, 0, 0.0)
                self._armed = False
            pos = i
        self._track_peak(x, t, offset, tracked, len(x))
        self._seen += len(x)
        return done


class GaitSegmenter:
    """Offline gait segmentation: ``segment(angle) -> list[GaitCycle]`` at any ``fs``."""

    def __init__(self, fs: float, params: GaitParams | None = None):
        self.fs = float(fs)
        self.params = params or GaitParams()

    def segment(self, angle, timestamps=None) -> list[GaitCycle]:
        return GaitCycleCounter(self.fs, self.params).update(angle, timestamps)
