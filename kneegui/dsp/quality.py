"""Per-channel EMG signal quality over a sliding window: RMS, clipping, flat line, mains hum.

Each metric is unit-independent except RMS (reported in the stream's unit):

* ``clip_fraction``: share of window samples at the clip level (``|x| >= clip_level``) or, when
  no clip level is given, at the channel's rail = the largest ``|x|`` seen since ``reset()``.
  Clipped signals pile up on the rail; clean EMG touches its maximum a handful of times.
* ``repeated_fraction``: share of consecutive samples that are exactly equal; ``flat`` is set when
  it reaches ``flat_repeat`` or the standard deviation is at most ``flat_std``.
* ``mains_ratio``: power within +-1 Hz of the mains frequency and its harmonics divided by the
  power in the EMG band (20 Hz .. 0.9 x Nyquist, at most 450 Hz), from a Hann-windowed FFT.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from kneegui.dsp.sos import NYQUIST_FRACTION, as_chunk


@dataclass(frozen=True)
class QualityThresholds:
    clip_warn: float = 0.005
    clip_bad: float = 0.02
    flat_repeat: float = 0.9  # real UCI EMG: at most 0.33 of steps repeat within 1 s
    flat_std: float = 0.0
    repeat_warn: float = 0.6
    mains_warn: float = 0.3  # real UCI EMG: at most 0.18
    mains_bad: float = 0.6
    min_fill: float = 0.5  # share of the window that must be filled before judging


@dataclass(frozen=True)
class ChannelQuality:
    rms: float  # of the mean-removed window, stream units
    clip_fraction: float
    flat: bool
    mains_ratio: float
    status: str  # "ok" | "warn" | "bad"
    reason: str  # human-readable, empty when ok
    repeated_fraction: float = 0.0


class QualityMonitor:
    """Sliding-window quality metrics per channel; ``update(chunk)`` then ``metrics()``."""

    def __init__(
        self,
        fs: float,
        n_channels: int,
        window_s: float = 1.0,
        clip_level: float | None = None,
        mains: float | None = 50.0,
        thresholds: QualityThresholds | None = None,
    ):
        if fs <= 0 or window_s <= 0:
            raise ValueError("sampling rate and window length must be > 0")
        self.fs = float(fs)
        self.n_channels = int(n_channels)
        self.window = max(8, int(round(window_s * fs)))
        self.clip_level = clip_level
        self.mains = mains
        self.thresholds = thresholds or QualityThresholds()
        self._masks = self._spectral_masks(self.window)
        self.reset()

    def reset(self) -> None:
        self._buf = np.zeros((self.window, self.n_channels))
        self._filled = 0
        self._pos = 0
        self._rail = np.zeros(self.n_channels)

    def _spectral_masks(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        """Boolean rfft-bin masks (mains bins inside the band, band bins) for ``n`` samples."""
        f = np.fft.rfftfreq(n, 1.0 / self.fs)
        high = min(450.0, NYQUIST_FRACTION * self.fs / 2.0)
        band = (f >= 20.0) & (f <= high)
        mains = np.zeros_like(band)
        if self.mains:
            for h in np.arange(self.mains, high + 1e-9, self.mains):
                mains |= np.abs(f - h) <= 1.0
        return mains & band, band

    def update(self, chunk) -> None:
        """Add raw samples ``[n, n_channels]`` (oldest first)."""
        x = as_chunk(chunk, self.n_channels)[-self.window :]
        if x.shape[0] == 0:
            return
        magnitude = np.abs(x)
        magnitude[~np.isfinite(magnitude)] = 0.0  # NaN/inf never define the rail
        self._rail = np.maximum(self._rail, magnitude.max(axis=0))
        n = x.shape[0]
        end = self._pos + n
        if end <= self.window:
            self._buf[self._pos : end] = x
        else:
            first = self.window - self._pos
            self._buf[self._pos :] = x[:first]
            self._buf[: n - first] = x[first:]
        self._pos = end % self.window
        self._filled = min(self.window, self._filled + n)

    def window_data(self) -> np.ndarray:
        """The current window, oldest sample first."""
        if self._filled < self.window:
            return self._buf[: self._filled].copy()
        return np.roll(self._buf, -self._pos, axis=0)

    def metrics(self) -> list[ChannelQuality]:
        """One :class:`ChannelQuality` per channel for the current window."""
        w = self.window_data()
        th = self.thresholds
        if self._filled < max(8, th.min_fill * self.window):
            note = f"collecting data ({self._filled}/{self.window} samples)"
            return [ChannelQuality(0.0, 0.0, False, 0.0, "warn", note)] * self.n_channels
        nonfinite = (~np.isfinite(w)).mean(axis=0)
        w = np.where(np.isfinite(w), w, 0.0)
        centred = w - w.mean(axis=0)
        rms = np.sqrt(np.mean(centred**2, axis=0))
        repeated = np.mean(np.diff(w, axis=0) == 0, axis=0)
        level = np.full(self.n_channels, self.clip_level) if self.clip_level else self._rail
        at_rail = np.abs(w) >= level * (1 - 1e-9)
        clip = np.where(level > 0, at_rail.mean(axis=0), 0.0)
        spectrum = np.abs(np.fft.rfft(centred * np.hanning(len(w))[:, None], axis=0)) ** 2
        mains_mask, band_mask = (
            self._masks if len(w) == self.window else self._spectral_masks(len(w))
        )
        band_power = spectrum[band_mask].sum(axis=0)
        mains_power = spectrum[mains_mask].sum(axis=0)
        mains_ratio = np.divide(
            mains_power, band_power, out=np.zeros_like(band_power), where=band_power > 0
        )
        out = []
        for c in range(self.n_channels):
            flat = bool(repeated[c] >= th.flat_repeat or rms[c] <= th.flat_std)
            status, reason = self._judge(flat, clip[c], mains_ratio[c], repeated[c], nonfinite[c])
            out.append(
                ChannelQuality(
                    float(rms[c]),
                    float(clip[c]),
                    flat,
                    float(mains_ratio[c]),
                    status,
                    reason,
                    float(repeated[c]),
                )
            )
        return out

    def _judge(self, flat: bool, clip: float, mains: float, repeated: float, nonfinite: float):
        th = self.thresholds
        bad, warn = [], []
        if nonfinite > 0:
            bad.append(f"{nonfinite:.1%} of samples are NaN/inf: check the amplifier stream")
        if flat:
            bad.append("flat line: no signal, check electrode and cable")
        if clip >= th.clip_bad:
            bad.append(f"clipping {clip:.1%} of samples: lower the amplifier gain")
        elif clip >= th.clip_warn:
            warn.append(f"clipping {clip:.1%} of samples")
        if mains >= th.mains_bad:
            bad.append(f"mains hum {mains:.0%} of EMG power: check reference/ground electrode")
        elif mains >= th.mains_warn:
            warn.append(f"mains hum {mains:.0%} of EMG power")
        if not flat and repeated >= th.repeat_warn:
            warn.append(f"{repeated:.0%} repeated values: signal barely changes")
        if bad:
            return "bad", "; ".join(bad + warn)
        if warn:
            return "warn", "; ".join(warn)
        return "ok", ""
