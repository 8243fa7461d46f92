"""Rate conversion to the model rate: anti-aliased, integer or non-integer ratios, streaming.

Output sample ``k`` lies at the fractional *input* position ``k * fs_in / fs_out`` (counted from
the first sample after construction or ``reset()``): it is the linear interpolation between the
two input samples around that position, so output ``k`` is emitted as soon as the input sample
after that position has arrived (no look-ahead beyond one input sample). ``last_output_positions``
holds those positions for the outputs of the latest call, and ``process_with_times`` maps them to
timestamps by interpolating the input timestamps the same way.
"""

from __future__ import annotations

import math

import numpy as np

from kneegui.dsp.filters import lowpass_sos
from kneegui.dsp.sos import SosState, as_chunk

#: Anti-alias low-pass cut-off as a fraction of the output Nyquist frequency.
ANTI_ALIAS_FRACTION = 0.8
ANTI_ALIAS_ORDER = 8


class RatePicker:
    """Pick (interpolate) output samples at ``k * fs_in / fs_out``; no filtering."""

    def __init__(self, fs_in: float, fs_out: float, n_channels: int):
        if fs_out <= 0 or fs_in <= 0:
            raise ValueError("sampling rates must be > 0 Hz")
        if fs_out > fs_in:
            raise ValueError(f"cannot decimate {fs_in:g} Hz to a higher rate {fs_out:g} Hz")
        self.fs_in = float(fs_in)
        self.fs_out = float(fs_out)
        self.ratio = self.fs_in / self.fs_out
        self.n_channels = int(n_channels)
        self.reset()

    def reset(self) -> None:
        self._seen = 0  # input samples consumed so far
        self._next_k = 0  # index of the next output sample
        self._prev = np.zeros((1, self.n_channels))
        self._prev_t = np.zeros(1)
        self.last_output_positions = np.zeros(0)

    def _select(self, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        last = self._seen + n - 1  # global index of the newest input sample
        k_hi = int(np.floor((last + 1) / self.ratio)) + 1
        ks = np.arange(self._next_k, max(k_hi, self._next_k) + 1)
        pos = ks * self.ratio
        i0 = np.floor(pos).astype(np.int64)
        frac = pos - i0
        ready = i0 + (frac > 0) <= last
        return pos[ready], i0[ready], frac[ready]

    def _interp(self, prev: np.ndarray, x: np.ndarray, i0, frac) -> np.ndarray:
        ext = np.concatenate([prev, x])  # ext[j] is global sample (seen - 1 + j)
        j0 = i0 - (self._seen - 1)
        j1 = np.minimum(j0 + 1, len(ext) - 1)
        f = frac.reshape((-1,) + (1,) * (ext.ndim - 1))
        return ext[j0] * (1.0 - f) + ext[j1] * f

    def _process_few(self, x: np.ndarray, t: np.ndarray | None):
        """Scalar-loop version of the vectorised path for small chunks (identical arithmetic)."""
        last = self._seen + x.shape[0] - 1
        rows, times, positions = [], [], []
        k = self._next_k
        while True:
            p = k * self.ratio
            i = math.floor(p)
            f = p - i
            if i + (f > 0) > last:
                break
            j0 = i - self._seen  # -1 means the last sample of the previous chunk
            j1 = min(j0 + 1, x.shape[0] - 1)
            a = self._prev[0] if j0 < 0 else x[j0]
            rows.append(a * (1.0 - f) + x[j1] * f)
            if t is not None:
                ta = self._prev_t[0] if j0 < 0 else t[j0]
                times.append(ta * (1.0 - f) + t[j1] * f)
            positions.append(p)
            k += 1
        y = np.array(rows) if rows else np.zeros((0, self.n_channels))
        t_out = None if t is None else np.array(times, dtype=np.float64)
        return y, t_out, np.array(positions, dtype=np.float64)

    def process(self, x: np.ndarray, t: np.ndarray | None = None):
        """Return output samples (and their timestamps when ``t`` is given)."""
        n = x.shape[0]
        if 0 < n <= 4 * self.ratio:
            y, t_out, pos = self._process_few(x, t)
        else:
            pos, i0, frac = self._select(n)
            y = self._interp(self._prev, x, i0, frac)
            t_out = None if t is None else self._interp(self._prev_t, t, i0, frac)
        if n:
            self._prev = x[-1:].copy()
            if t is not None:
                self._prev_t = t[-1:].copy()
        self._seen += n
        self._next_k += len(pos)
        self.last_output_positions = pos
        return y, t_out


class Decimator:
    """Anti-aliased decimation ``fs_in -> fs_out`` (e.g. 2148 -> 100 Hz), state across chunks.

    Anti-alias filter: Butterworth low-pass, order ``ANTI_ALIAS_ORDER``, at
    ``ANTI_ALIAS_FRACTION * fs_out / 2`` (skipped when ``fs_out == fs_in``).
    """

    def __init__(self, fs_in: float, fs_out: float, n_channels: int):
        self.n_channels = int(n_channels)
        self._picker = RatePicker(fs_in, fs_out, n_channels)
        self.sos = anti_alias_sos(fs_in, fs_out)
        self._filter = SosState(self.sos, n_channels)

    @property
    def last_output_positions(self) -> np.ndarray:
        """Fractional global input indices of the outputs of the latest call."""
        return self._picker.last_output_positions

    def process(self, x) -> np.ndarray:
        return self._picker.process(self._filter.process(as_chunk(x, self.n_channels)))[0]

    def process_with_times(self, x, t) -> tuple[np.ndarray, np.ndarray]:
        """Like :meth:`process`, also returning the output timestamps interpolated from ``t``."""
        x = as_chunk(x, self.n_channels)
        t = np.asarray(t, dtype=np.float64)
        if t.shape != (x.shape[0],):
            raise ValueError(f"need one timestamp per sample: {t.shape} vs {x.shape[0]} samples")
        return self._picker.process(self._filter.process(x), t)

    def reset(self) -> None:
        self._filter.reset()
        self._picker.reset()


def anti_alias_sos(fs_in: float, fs_out: float) -> np.ndarray:
    """Low-pass SOS that removes content above the output Nyquist (empty when no rate change)."""
    if fs_out >= fs_in:
        return np.zeros((0, 6))
    return lowpass_sos(fs_in, ANTI_ALIAS_FRACTION * fs_out / 2.0, ANTI_ALIAS_ORDER)
