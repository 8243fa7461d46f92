"""Reference predictors: persistence, constant velocity, calibration mean, ridge on TD features."""

from __future__ import annotations

import numpy as np


def persistence(angle: np.ndarray, ends: np.ndarray, horizons: int) -> np.ndarray:
    """Repeat the last measured angle at every horizon."""
    last = np.asarray(angle, np.float64)[ends]
    return np.repeat(last[:, None], horizons, axis=1)


def last_steps(angle: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """One-step angle change at each window end (0 at the very first sample)."""
    a = np.asarray(angle, np.float64)
    return a[ends] - a[np.maximum(ends - 1, 0)]


def constant_velocity(angle: np.ndarray, ends: np.ndarray, horizons: int) -> np.ndarray:
    """Extrapolate the last one-step angle change linearly."""
    a = np.asarray(angle, np.float64)
    return a[ends][:, None] + last_steps(a, ends)[:, None] * np.arange(1, horizons + 1)[None, :]


def calibration_mean(mean_angle: float, n: int, horizons: int) -> np.ndarray:
    """Predict the subject's mean calibration angle at every horizon."""
    return np.full((n, horizons), float(mean_angle))


def td_features(filtered: np.ndarray, fs: float, model_rate: float, n_ticks: int,
                window_s: float = 0.25, zc_threshold: float = 0.0,
                ends: np.ndarray | None = None) -> np.ndarray:
    """Hudgins time-domain features per channel over the last ``window_s`` at each model tick.

    Returns ``[n_ticks, 5 * channels]`` = MAV, WL, ZC, SSC, RMS for each channel. ``filtered`` is
    band-passed EMG at ``fs`` (ticks as in :func:`kneegui.research.data.angle_at_model_rate`,
    or given: ``ends[k]`` = the number of samples up to tick ``k``).
    """
    x = np.asarray(filtered, np.float64)
    n = len(x)
    w = int(round(window_s * fs))
    d = np.diff(x, axis=0, prepend=x[:1])
    zc = np.zeros_like(x)
    zc[1:] = ((x[1:] * x[:-1]) < 0) & (np.abs(x[1:] - x[:-1]) >= zc_threshold)
    ssc = np.zeros_like(x)
    ssc[1:-1] = (d[1:-1] * d[2:]) < 0
    streams = [np.abs(x), np.abs(d), zc, ssc, x**2]
    if ends is None:
        ends = np.round((np.arange(n_ticks) + 1) * fs / model_rate).astype(np.int64)
    ends = np.minimum(np.asarray(ends, np.int64), n)
    starts = np.maximum(ends - w, 0)
    counts = np.maximum(ends - starts, 1)[:, None]
    feats = []
    for k, s in enumerate(streams):
        c = np.vstack([np.zeros((1, s.shape[1])), np.cumsum(s, axis=0)])
        total = c[ends] - c[starts]
        if k == 4:
            total = np.sqrt(total / counts)
        elif k == 0:
            total = total / counts
        feats.append(total)
    out = np.concatenate(feats, axis=1)
    return out.astype(np.float32)


class RidgeBaseline:
    """Multi-output ridge regression from TD features to the 50 future angles (degrees)."""

    def __init__(self, alpha: float = 0.1) -> None:
        self.alpha = alpha

    def fit(self, feats: np.ndarray, targets: np.ndarray) -> RidgeBaseline:
        f = np.asarray(feats, np.float64)
        self.mu, self.sd = f.mean(0), np.maximum(f.std(0), 1e-9)
        z = (f - self.mu) / self.sd
        self.y0 = targets.mean(0)
        a = z.T @ z + self.alpha * len(z) * np.eye(z.shape[1])  # penalty scales with n
        self.w = np.linalg.solve(a, z.T @ (targets - self.y0))
        return self

    def predict(self, feats: np.ndarray) -> np.ndarray:
        z = (np.asarray(feats, np.float64) - self.mu) / self.sd
        return z @ self.w + self.y0
