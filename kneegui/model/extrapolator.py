"""Subject extrapolator: a per-subject linear autoregressive forecast of the knee angle.

Over the next tens of milliseconds the knee moves almost ballistically, so constant-velocity
extrapolation is hard to beat there and a network trained on other people only ties with it. A
ridge regression from the last ``lags`` angle changes to the future change, fitted per horizon on
the subject's own calibration windows (:func:`kneegui.adaptation.extrapolator.fit_extrapolator`),
captures the subject's acceleration pattern. A subject model stacks it on top of the network
(+ memory) per horizon; it is small (``lags x H`` floats) and lives in the model card (JSON).
This module is the part that runs when the model predicts.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True, eq=False)
class Extrapolator:
    """Coefficients ``coef[lag, h]``; ``fitted[h]`` says whether horizon ``h`` could be fitted
    (unfitted horizons have zero coefficients: they repeat the last angle)."""

    coef: np.ndarray  # [lags, H]
    fitted: np.ndarray  # [H] bool

    @property
    def lags(self) -> int:
        return int(self.coef.shape[0])

    @property
    def horizons(self) -> int:
        return int(self.coef.shape[1])

    def predict(self, angle: np.ndarray, ends: np.ndarray) -> np.ndarray:
        """Future angles ``[n, H]`` (degrees; unfitted horizons repeat the last angle)."""
        a = np.asarray(angle, np.float64)
        ends = np.asarray(ends, np.int64)
        return a[ends][:, None] + lag_matrix(a, ends, self.lags) @ self.coef

    def to_dict(self) -> dict:
        return {"lags": self.lags, "coef": self.coef.tolist(), "fitted": self.fitted.tolist()}

    @classmethod
    def from_dict(cls, data: dict) -> Extrapolator:
        coef = np.asarray(data["coef"], np.float64)
        fitted = np.asarray(data["fitted"], bool)
        if coef.ndim != 2 or coef.shape[0] != int(data["lags"]) or fitted.shape != coef.shape[1:]:
            raise ValueError("extrapolator coefficients do not match its lags/horizons")
        if not np.isfinite(coef).all():
            raise ValueError("extrapolator coefficients are not finite")
        return cls(coef, fitted)


def lag_matrix(a: np.ndarray, ends: np.ndarray, lags: int) -> np.ndarray:
    """``[n, lags]``: angle j samples before each end minus the angle at the end (j = 1..lags);
    histories reaching before the first sample repeat it."""
    idx = np.maximum(ends[:, None] - np.arange(1, lags + 1)[None, :], 0)
    return a[idx] - a[ends][:, None]


def extrapolator_text(weight) -> str:
    """The extrapolator's share in words, e.g. "share 60 % at 1 step, 0 % from 8 steps"."""
    w = np.asarray(weight, np.float64)
    used = np.flatnonzero(w > 0)
    if not len(used):
        return "not used (the held-back cycle preferred the network)"
    return (f"share {100 * w[0]:.0f} % at 1 step, {100 * w[min(4, len(w) - 1)]:.0f} % at 5 steps, "
            f"none beyond {int(used[-1]) + 1} steps")
