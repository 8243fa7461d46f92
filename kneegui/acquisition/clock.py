"""Map sender timestamps onto the local LSL clock: offset tracking, dejitter, monotonic output.

KneeGUI corrects timestamps by hand instead of using pylsl's post-processing flags, so every
step is visible and the raw sender timestamps stay available for gap detection:

1. ``ClockOffset``: ``inlet.time_correction()`` is sampled every few seconds; the applied
   offset is the median of the recent estimates (robust to one bad round trip) and the jitter
   is their standard deviation. Both are shown in the status.
2. ``Dejitter`` (regular-rate streams only): a straight line ``t = a + b * k`` over the sample
   count ``k``, fitted by exponentially-forgetting least squares (time constant ~10 s), replaces
   each raw timestamp. That removes the chunk-arrival jitter of senders that stamp a chunk with
   the time they pushed it, while following a sender rate that differs from the nominal one.
   The fit restarts after every gap or reconnect, so it never smears across a hole.
3. Output is forced strictly increasing (a sample never gets a timestamp at or before its
   predecessor's), which the ring buffer's time-based reads and the hub's alignment rely on.
"""

from __future__ import annotations

import math
from collections import deque

import numpy as np


class ClockOffset:
    """Recent ``time_correction`` estimates of one inlet: applied offset and jitter."""

    def __init__(self, history: int = 12):
        self._values: deque[float] = deque(maxlen=history)

    def add(self, value: float) -> None:
        if math.isfinite(value):
            self._values.append(float(value))

    def reset(self) -> None:
        self._values.clear()

    @property
    def known(self) -> bool:
        return bool(self._values)

    @property
    def offset(self) -> float:
        """Seconds to add to a sender timestamp to get local time (0 until measured)."""
        return float(np.median(self._values)) if self._values else 0.0

    @property
    def jitter(self) -> float:
        """Standard deviation of the recent estimates, seconds (0 with < 2 estimates)."""
        return float(np.std(self._values)) if len(self._values) >= 2 else 0.0


class Dejitter:
    """Exponentially-forgetting linear fit of timestamp against sample count."""

    def __init__(self, srate: float, time_constant: float = 10.0, min_span: float = 2.0):
        if srate <= 0:
            raise ValueError("dejitter needs a regular sampling rate")
        self.period = 1.0 / srate
        self.time_constant = time_constant
        self.min_span = min_span  # seconds of data before the slope is trusted
        self.reset()

    def reset(self) -> None:
        """Forget the fit (after a gap or reconnect)."""
        self._count = 0  # samples seen since the reset
        self._span = 0.0  # seconds covered since the reset
        self._x0 = 0.0  # reference for x (seconds of nominal time)
        self._y0 = 0.0  # reference for y (first raw timestamp)
        self._w = self._sx = self._sy = self._sxx = self._sxy = 0.0

    @property
    def has_fit(self) -> bool:
        return self._w > 0

    def _line(self) -> tuple[float, float, float]:
        """(mean x, mean y, slope) of the current fit."""
        mx, my = self._sx / self._w, self._sy / self._w
        slope = 1.0
        if self._span >= self.min_span:
            var = self._sxx / self._w - mx * mx
            if var > 0:
                fitted = (self._sxy / self._w - mx * my) / var
                if abs(fitted - 1.0) < 0.1:  # a clock off by > 10 % is a wrong nominal rate
                    slope = fitted
        return mx, my, slope

    def expected_next(self) -> float:
        """The fitted timestamp of the next sample (needs :attr:`has_fit`)."""
        return float(self.predict(1)[0])

    def predict(self, n: int) -> np.ndarray:
        """Fitted timestamps of the next ``n`` samples, without using or counting them."""
        mx, my, slope = self._line()
        x = (self._count + np.arange(n)) * self.period - self._x0
        return self._y0 + my + slope * (x - mx)

    def skip(self, n: int) -> None:
        """Count ``n`` samples (that exist) without using their timestamps in the fit."""
        self._count += int(n)

    def process(self, ts: np.ndarray) -> np.ndarray:
        """Dejittered timestamps for the next ``len(ts)`` consecutive samples."""
        n = ts.shape[0]
        if n == 0:
            return ts
        if self._count == 0:
            self._y0 = float(ts[0])
        x = (self._count + np.arange(n)) * self.period - self._x0
        y = ts - self._y0
        decay = math.exp(-n * self.period / self.time_constant)
        self._w = self._w * decay + n
        self._sx = self._sx * decay + float(x.sum())
        self._sy = self._sy * decay + float(y.sum())
        self._sxx = self._sxx * decay + float(x @ x)
        self._sxy = self._sxy * decay + float(x @ y)
        self._count += n
        self._span += n * self.period
        mx, my, slope = self._line()
        out = self._y0 + my + slope * (x - mx)
        self._recenter()
        return out

    def _recenter(self) -> None:
        """Move the x reference to the current sample to keep the sums well-conditioned."""
        d = self._count * self.period - self._x0
        if d < 60.0:
            return
        self._sxy -= d * self._sy
        self._sxx += -2.0 * d * self._sx + self._w * d * d
        self._sx -= self._w * d
        self._x0 += d


def make_increasing(ts: np.ndarray, previous: float | None, min_step: float) -> np.ndarray:
    """``ts`` made strictly increasing and later than ``previous`` (steps >= ``min_step``)."""
    if ts.shape[0] == 0:
        return ts
    out = ts.copy()
    prev = -math.inf if previous is None else previous
    if out[0] > prev + min_step and (out.shape[0] == 1 or np.all(np.diff(out) >= min_step)):
        return out
    for i in range(out.shape[0]):
        if out[i] < prev + min_step:
            out[i] = prev + min_step
        prev = out[i]
    return out
