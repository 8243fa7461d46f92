"""Causal, stateful EMG filters: band-pass, mains notch, envelope.

Every filter has ``process(x[n, ch]) -> y[n, ch]`` and ``reset()``; any chunking of the input
gives the same output as a single call. Cut-offs above ``NYQUIST_FRACTION * fs / 2`` are clamped
to it (see :func:`kneegui.dsp.sos.clamp_cutoff`); the effective values are attributes.
"""

from __future__ import annotations

import numpy as np
from scipy.signal import butter, iirnotch, tf2sos

from kneegui.dsp.sos import NYQUIST_FRACTION, SosState, as_chunk, clamp_cutoff


class _SosFilter:
    sos: np.ndarray

    def __init__(self, sos: np.ndarray, n_channels: int):
        self.sos = sos
        self.n_channels = int(n_channels)
        self._state = SosState(sos, n_channels)

    def process(self, x) -> np.ndarray:
        return self._state.process(as_chunk(x, self.n_channels))

    def reset(self) -> None:
        self._state.reset()


class BandPass(_SosFilter):
    """Butterworth band-pass (``order`` per edge); ``high`` clamped below Nyquist."""

    def __init__(self, fs: float, n_channels: int, low=20.0, high=450.0, order: int = 4):
        self.fs = float(fs)
        self.low = clamp_cutoff(low, fs)
        self.high = clamp_cutoff(high, fs)
        if self.low >= self.high:
            raise ValueError(
                f"band-pass low cut-off {low} Hz must be below the high cut-off "
                f"{self.high:g} Hz (clamped to {NYQUIST_FRACTION:g} x Nyquist at fs={fs:g} Hz)"
            )
        sos = butter(int(order), [self.low, self.high], "bandpass", fs=self.fs, output="sos")
        super().__init__(sos, n_channels)


class MainsNotch(_SosFilter):
    """IIR notches at ``mains`` and its multiples: ``harmonics`` frequencies in total
    (50, 100, 150 Hz for ``harmonics=3``), skipping those above the clamp limit."""

    def __init__(self, fs: float, n_channels: int, mains=50.0, harmonics: int = 3, q=30.0):
        if mains <= 0 or harmonics < 1:
            raise ValueError("mains must be > 0 Hz and harmonics >= 1")
        self.fs = float(fs)
        limit = NYQUIST_FRACTION * self.fs / 2.0
        self.frequencies = tuple(
            k * float(mains) for k in range(1, int(harmonics) + 1) if k * mains < limit
        )
        sections = [tf2sos(*iirnotch(f, q, fs=self.fs)) for f in self.frequencies]
        sos = np.vstack(sections) if sections else np.zeros((0, 6))
        super().__init__(sos, n_channels)


def lowpass_sos(fs: float, cutoff: float, order: int) -> np.ndarray:
    """Butterworth low-pass SOS with the cut-off clamped below Nyquist."""
    return butter(int(order), clamp_cutoff(cutoff, fs), "lowpass", fs=float(fs), output="sos")


class Envelope(_SosFilter):
    """Full-wave rectification followed by a Butterworth low-pass (default 6 Hz, order 2)."""

    def __init__(self, fs: float, n_channels: int, cutoff=6.0, order: int = 2):
        self.fs = float(fs)
        self.cutoff = clamp_cutoff(cutoff, fs)
        super().__init__(lowpass_sos(fs, cutoff, order), n_channels)

    def process(self, x) -> np.ndarray:
        return self._state.process(np.abs(as_chunk(x, self.n_channels)))
