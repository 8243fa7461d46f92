"""The EMG chain: band-pass -> mains notch -> rectify -> envelope -> model rate.

:class:`EmgFeatureExtractor` is the ONE feature path: the acquisition hub runs it live on every
EMG chunk and :func:`emg_features_offline` runs the same object on a whole recording for
training, so model inputs are identical live and offline.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from kneegui.dsp.decimate import RatePicker, anti_alias_sos
from kneegui.dsp.filters import BandPass, Envelope, MainsNotch
from kneegui.dsp.sos import SosState, as_chunk


@dataclass(frozen=True)
class FilterSettings:
    """User-facing EMG filter settings (the GUI filter panel edits these)."""

    low: float = 20.0  # band-pass low cut-off, Hz
    high: float = 450.0  # band-pass high cut-off, Hz (clamped to 0.9 x Nyquist)
    order: int = 4
    mains: float | None = 50.0  # 50 or 60 Hz; None disables the notch
    harmonics: int = 3  # notched frequencies: mains, 2 x mains, ... (below the clamp limit)
    notch_q: float = 30.0
    envelope_cutoff: float = 6.0  # Hz
    envelope_order: int = 2

    def __post_init__(self):
        if not 0 < self.low < self.high:
            raise ValueError(f"need 0 < low < high, got low={self.low} high={self.high}")
        if self.mains is not None and self.mains <= 0:
            raise ValueError(f"mains frequency must be > 0 Hz or None, got {self.mains}")
        if self.order < 1 or self.harmonics < 1 or self.envelope_order < 1:
            raise ValueError("filter orders and harmonics must be >= 1")
        if self.envelope_cutoff <= 0 or self.notch_q <= 0:
            raise ValueError("envelope cut-off and notch Q must be > 0")


def _finite(x: np.ndarray, owner) -> np.ndarray:
    """Replace NaN/inf by 0 (they would poison the filter state forever) and count them."""
    if np.isfinite(x).all():
        return x
    bad = ~np.isfinite(x)
    owner.nonfinite_samples += int(bad.sum())
    return np.where(bad, 0.0, x)


def _cleaning_sos(fs: float, n_channels: int, settings: FilterSettings) -> np.ndarray:
    """Band-pass and notch sections as one cascade (same maths as applying them in turn)."""
    parts = [BandPass(fs, n_channels, settings.low, settings.high, settings.order).sos]
    if settings.mains is not None:
        notch = MainsNotch(fs, n_channels, settings.mains, settings.harmonics, settings.notch_q)
        parts.append(notch.sos)
    return np.vstack(parts)


@dataclass(frozen=True)
class ChainOutput:
    filtered: np.ndarray  # [n, ch] band-passed + notched EMG
    envelope: np.ndarray  # [n, ch] rectified + low-passed, at the input rate


class FilterChain:
    """Band-pass + notch + envelope at the input rate (for display and recording)."""

    def __init__(self, fs: float, n_channels: int, settings: FilterSettings | None = None):
        self.fs = float(fs)
        self.n_channels = int(n_channels)
        self.settings = settings or FilterSettings()
        self._clean = SosState(_cleaning_sos(fs, n_channels, self.settings), n_channels)
        env = Envelope(fs, n_channels, self.settings.envelope_cutoff, self.settings.envelope_order)
        self._envelope = SosState(env.sos, n_channels)
        self.nonfinite_samples = 0  # NaN/inf input values replaced by 0 since construction

    def process(self, chunk) -> ChainOutput:
        filtered = self._clean.process(_finite(as_chunk(chunk, self.n_channels), self))
        return ChainOutput(filtered, self._envelope.process(np.abs(filtered)))

    def reset(self) -> None:
        self._clean.reset()
        self._envelope.reset()


class EmgFeatureExtractor:
    """Raw EMG chunks in, envelope at ``model_rate`` out (causal, stateful).

    NaN/inf input samples are replaced by 0 and counted in ``nonfinite_samples``.

    Output sample ``k`` corresponds to input sample position ``k * fs / model_rate`` counted from
    construction or ``reset()`` (see :mod:`kneegui.dsp.decimate`); ``process_with_times`` returns
    the matching timestamps.
    """

    def __init__(
        self,
        fs: float,
        n_channels: int,
        model_rate: float = 100.0,
        settings: FilterSettings | None = None,
    ):
        self.fs = float(fs)
        self.n_channels = int(n_channels)
        self.model_rate = float(model_rate)
        self.settings = settings or FilterSettings()
        s = self.settings
        self._clean = SosState(_cleaning_sos(fs, n_channels, s), n_channels)
        env = Envelope(fs, n_channels, s.envelope_cutoff, s.envelope_order)
        # envelope low-pass and anti-alias low-pass are both linear: one cascade
        smooth = np.vstack([env.sos, anti_alias_sos(fs, model_rate)])
        self._smooth = SosState(smooth, n_channels)
        self._picker = RatePicker(fs, model_rate, n_channels)
        self.nonfinite_samples = 0  # NaN/inf input values replaced by 0 since construction

    @property
    def last_output_positions(self) -> np.ndarray:
        """Fractional input-sample indices of the outputs of the latest call."""
        return self._picker.last_output_positions

    def _envelope(self, chunk) -> np.ndarray:
        x = _finite(as_chunk(chunk, self.n_channels), self)
        return self._smooth.process(np.abs(self._clean.process(x)))

    def process(self, chunk) -> np.ndarray:
        """Raw ``[n, ch]`` EMG -> ``[m, ch]`` envelope features at the model rate."""
        return self._picker.process(self._envelope(chunk))[0]

    def process_with_times(self, chunk, timestamps) -> tuple[np.ndarray, np.ndarray]:
        """Like :meth:`process`, plus the timestamp of every output (interpolated input times)."""
        t = np.asarray(timestamps, dtype=np.float64)
        n = np.shape(chunk)[0]
        if t.shape != (n,):
            raise ValueError(f"need one timestamp per sample: {t.shape} vs {n} samples")
        return self._picker.process(self._envelope(chunk), t)

    def reset(self) -> None:
        self._clean.reset()
        self._smooth.reset()
        self._picker.reset()


def emg_features_offline(
    emg: np.ndarray,
    fs: float,
    model_rate: float = 100.0,
    settings: FilterSettings | None = None,
) -> np.ndarray:
    """Features of a whole recording, exactly as the live path computes them.

    Row ``k`` belongs to time ``k / model_rate`` s after the first EMG sample.
    """
    emg = np.asarray(emg)
    return EmgFeatureExtractor(fs, emg.shape[1], model_rate, settings).process(emg)
