"""Stateful second-order-section filtering of ``[n, ch]`` chunks (the core of every filter)."""

from __future__ import annotations

import numpy as np
from scipy.signal import sosfilt

try:  # scipy's compiled kernel behind sosfilt; skips ~25 us of per-call checks per chunk
    from scipy.signal._sosfilt import _sosfilt as _sosfilt_kernel
except ImportError:  # pragma: no cover - other scipy layouts fall back to the public API
    _sosfilt_kernel = None

#: Cut-offs are clamped to this fraction of the Nyquist frequency (fs / 2).
NYQUIST_FRACTION = 0.9


def clamp_cutoff(freq: float, fs: float) -> float:
    """Clamp a cut-off to ``NYQUIST_FRACTION * fs / 2`` (a Butterworth needs ``f < fs/2``)."""
    if freq <= 0:
        raise ValueError(f"cut-off frequency must be > 0 Hz, got {freq}")
    return min(float(freq), NYQUIST_FRACTION * fs / 2.0)


def as_chunk(x, n_channels: int) -> np.ndarray:
    """Validate a ``[n, n_channels]`` chunk and return it as float64."""
    x = np.asarray(x, dtype=np.float64)
    if x.ndim == 1 and n_channels == 1:
        x = x[:, None]
    if x.ndim != 2 or x.shape[1] != n_channels:
        raise ValueError(f"expected a chunk of shape [n, {n_channels}], got {x.shape}")
    return x


class SosState:
    """A cascade of second-order sections applied causally, state carried across chunks.

    ``use_kernel=False`` forces the public ``scipy.signal.sosfilt`` (same results; slower).
    """

    def __init__(self, sos: np.ndarray, n_channels: int, use_kernel: bool = True):
        self.sos = np.ascontiguousarray(np.atleast_2d(sos), dtype=np.float64)
        self.n_channels = int(n_channels)
        self._kernel = _sosfilt_kernel if use_kernel else None
        self.reset()

    def reset(self) -> None:
        """Forget the past: the filter starts from rest (zero state)."""
        self._zi = np.zeros((self.n_channels, self.sos.shape[0], 2))

    def process(self, x: np.ndarray) -> np.ndarray:
        """Filter a float64 ``[n, ch]`` chunk; returns a new ``[n, ch]`` array."""
        if x.shape[0] == 0 or self.sos.shape[0] == 0:
            return x.copy()
        y = np.array(x.T, dtype=np.float64, order="C")  # [ch, n] copy, filtered in place
        if self._kernel is not None:
            self._kernel(self.sos, y, self._zi)
        else:
            zi = np.ascontiguousarray(self._zi.transpose(1, 0, 2))  # [sections, ch, 2]
            y, zi = sosfilt(self.sos, y, axis=-1, zi=zi)
            self._zi = np.ascontiguousarray(zi.transpose(1, 0, 2))
        return y.T
