"""Per-horizon mixing of two forecasts: the constant-velocity blend of pretrained networks, the
calibration memory and the subject extrapolator all use these two functions."""

from __future__ import annotations

import numpy as np


def mix(base: np.ndarray, other: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """``(1 - w_h) * base + w_h * other`` for predictions ``[n, H]`` and weights ``[H]``."""
    w = np.asarray(weight, np.float64)[None, :]
    return (1.0 - w) * np.asarray(base, np.float64) + w * np.asarray(other, np.float64)


def least_squares_weight(base: np.ndarray, other: np.ndarray, true: np.ndarray,
                         usable: np.ndarray | None = None) -> np.ndarray:
    """Per-horizon weight in [0, 1] of ``other`` in :func:`mix` minimising the squared error
    against ``true`` (0 where ``usable`` is False)."""
    base = np.asarray(base, np.float64)
    d = np.asarray(other, np.float64) - base
    num = (d * (np.asarray(true, np.float64) - base)).sum(axis=0)
    den = np.maximum((d * d).sum(axis=0), 1e-12)
    weight = np.clip(num / den, 0.0, 1.0)
    return weight if usable is None else np.where(usable, weight, 0.0)
