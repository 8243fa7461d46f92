"""Per-horizon mixing of two forecasts: the constant-velocity mix of pretrained angle networks,
the calibration memory and the subject extrapolator all use this one function."""

from __future__ import annotations

import numpy as np


def mix(base: np.ndarray, other: np.ndarray, weight) -> np.ndarray:
    """``(1 - w_h) * base + w_h * other`` for predictions ``[n, H]`` and weights ``[H]``."""
    w = np.asarray(weight, np.float64)[None, :]
    return (1.0 - w) * np.asarray(base, np.float64) + w * np.asarray(other, np.float64)
