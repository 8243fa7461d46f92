"""Map sender timestamps onto the local LSL clock: offset tracking, dejitter, monotonic output.

KneeGUI corrects timestamps by hand instead of using pylsl's post-processing flags, so every
step is visible and the raw sender timestamps stay available for gap detection:

1. ``ClockOffset``: ``inlet.time_correction()`` is sampled every few seconds; the applied
   offset is the median of the recent estimates (robust to one bad round trip) and the jitter
   is their standard deviation. Both are shown in the status. A stream sent from this very
   machine shares its clock: its true offset is exactly 0, and the estimate (tens of
   microseconds of round-trip asymmetry) is kept for the status but not applied, as long as it
   stays below :data:`SAME_HOST_TOLERANCE` (a larger one means another clock after all).
2. ``Dejitter`` (regular-rate streams only): a straight line ``t = a + b * k`` over the sample
   count ``k``, fitted by exponentially-forgetting least squares (time constant ~10 s), replaces
   each raw timestamp. That removes the chunk-arrival jitter of senders that stamp a chunk with
   the time they pushed it, while following a sender rate that differs from the nominal one.
   The fit restarts after every gap or reconnect, so it never smears across a hole.
3. Output is forced strictly increasing (a sample never gets a timestamp at or before its
   predecessor's), which the ring buffer's time-based reads and the hub's alignment rely on.

Every raw measurement (local time, offset, round trip) and every change of the applied offset is
kept in a :class:`ClockLog`, so a recording can store them and a wrong correction can be redone.
"""

from __future__ import annotations

import ctypes
import math
import threading
from collections import deque
from typing import Any, NamedTuple

import numpy as np

#: Largest estimated offset (seconds) still taken as "same clock" for a same-host stream.
#: Round-trip asymmetry is tens of microseconds on an idle machine, but one estimate taken
#: while the machine was overloaded was seen at -38 ms; another machine that shares this
#: machine's name would differ by its boot time, far beyond this.
SAME_HOST_TOLERANCE = 0.5


def is_this_host(hostname: str) -> bool:
    """True when a stream's ``hostname`` is this machine's."""
    import socket

    return bool(hostname) and hostname == socket.gethostname()


class ClockMeasurement(NamedTuple):
    """One ``time_correction`` measurement of an inlet.

    ``time``: local LSL time of the measurement (the sender's clock reading + ``offset``);
    ``offset``: seconds to add to a sender stamp; ``round_trip``: round-trip time of the probe
    liblsl chose (its uncertainty; NaN if unknown); ``applied``: the offset the reader applies
    from local time ``applied_from`` on (median of the recent measurements).
    """

    time: float
    offset: float
    round_trip: float
    applied: float
    applied_from: float = float("nan")


class ClockLog:
    """Append-only, thread-safe list of :class:`ClockMeasurement` with a cursor read.

    Bounded (oldest dropped first); ``read_from(index)`` returns ``(rows, next_index)`` where
    ``index`` counts measurements ever logged.
    """

    def __init__(self, maxlen: int = 100_000):
        self._rows: deque[ClockMeasurement] = deque(maxlen=maxlen)
        self._total = 0
        self._lock = threading.Lock()

    def append(self, row: ClockMeasurement) -> None:
        with self._lock:
            self._rows.append(row)
            self._total += 1

    @property
    def total(self) -> int:
        with self._lock:
            return self._total

    def read_from(self, index: int) -> tuple[list[ClockMeasurement], int]:
        """Measurements logged from absolute ``index`` on (those still held) and the next index."""
        with self._lock:
            oldest = self._total - len(self._rows)
            start = max(int(index), oldest)
            rows = list(self._rows)[start - oldest:]
            return rows, self._total


def measure_time_correction(inlet: Any, timeout: float) -> tuple[float, float, float]:
    """``(offset, remote_time, round_trip)`` of a pylsl inlet (``lsl_time_correction_ex``).

    ``remote_time`` is the sender's clock when the measurement was taken and ``round_trip`` the
    probe's round-trip time (liblsl's "uncertainty"). Raises like ``inlet.time_correction``.
    """
    from pylsl.lib import lib
    from pylsl.util import handle_error

    func = lib.lsl_time_correction_ex
    func.restype = ctypes.c_double
    func.argtypes = [ctypes.c_void_p, ctypes.POINTER(ctypes.c_double),
                     ctypes.POINTER(ctypes.c_double), ctypes.c_double,
                     ctypes.POINTER(ctypes.c_int)]
    remote, uncertainty, errcode = ctypes.c_double(), ctypes.c_double(), ctypes.c_int()
    offset = func(inlet.obj, ctypes.byref(remote), ctypes.byref(uncertainty),
                  ctypes.c_double(timeout), ctypes.byref(errcode))
    handle_error(errcode)
    return float(offset), float(remote.value), float(uncertainty.value)


class ClockOffset:
    """Recent ``time_correction`` estimates of one inlet: applied offset and jitter.

    ``same_host``: the sender runs on this machine (see the module docstring)."""

    def __init__(self, history: int = 12, same_host: bool = False):
        self._values: deque[float] = deque(maxlen=history)
        self.same_host = same_host
        self._measured = 0.0  # median of _values, kept up to date by add/reset (read per chunk)

    def add(self, value: float) -> None:
        if math.isfinite(value):
            self._values.append(float(value))
            self._measured = float(np.median(self._values))

    def reset(self) -> None:
        self._values.clear()
        self._measured = 0.0

    @property
    def known(self) -> bool:
        return bool(self._values)

    @property
    def measured(self) -> float:
        """Median of the recent estimates, seconds (0 until measured)."""
        return self._measured

    @property
    def offset(self) -> float:
        """Seconds to add to a sender timestamp to get local time (0 until measured, and 0 for
        a same-host sender whose estimate is within :data:`SAME_HOST_TOLERANCE`)."""
        measured = self._measured
        if self.same_host and abs(measured) <= SAME_HOST_TOLERANCE:
            return 0.0
        return measured

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
