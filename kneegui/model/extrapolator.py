"""Subject extrapolator: a per-subject linear autoregressive forecast of the knee angle.

Over the next tens of milliseconds the knee moves almost ballistically, so constant-velocity
extrapolation is hard to beat there and a network trained on other people only ties with it. A
ridge regression from the last :data:`LAGS` angle changes to the future change, fitted per horizon
on the subject's own calibration windows, captures the subject's acceleration pattern (on the
held-back calibration cycles of the UCI gait recordings: about 9 % lower 1-step error than
constant velocity; see docs/model.md).

Fine-tuning stacks it with the network (+ memory) prediction per horizon up to
:data:`MAX_STEPS`: ``(1 - w_h) * model + w_h * extrapolator``, ``w_h`` by least squares on the
held-back calibration cycle, with the extrapolator fitted on the cycles before it; the stored
extrapolator is then refitted on every calibration cycle. It is small (``LAGS x H`` floats)
and lives in the model card (JSON).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: Angle changes in the regression (samples at the model rate); chosen on held-back calibration
#: cycles only (docs/analysis/extrapolator_lags.py: 10-30 lags within 2 % of each other, 5 lags
#: clearly worse).
LAGS = 20
#: Ridge penalty per window (relative to the number of windows), in degrees^2.
RIDGE = 1e-3
#: A horizon needs at least this many windows per lag to be fitted (else it is left out).
WINDOWS_PER_LAG = 3
#: Horizons beyond this (100 ms at 100 Hz) are left to the network and memory: a linear
#: extrapolation's error grows quickly with the horizon, and one held-back cycle is too little
#: to weigh a poor predictor reliably.
MAX_STEPS = 10


@dataclass
class Extrapolator:
    """Coefficients ``coef[lag, h]``; ``fitted[h]`` says whether horizon ``h`` could be fitted."""

    coef: np.ndarray  # [lags, H]
    fitted: np.ndarray  # [H] bool

    @property
    def lags(self) -> int:
        return int(self.coef.shape[0])

    @property
    def horizons(self) -> int:
        return int(self.coef.shape[1])

    @classmethod
    def fit(cls, angle: np.ndarray, ends: np.ndarray, horizons: int,
            lags: int = LAGS) -> Extrapolator | None:
        """Fit on the windows ending at ``ends`` (histories and futures inside ``angle``); None
        when not even the first horizon has enough windows."""
        a = np.asarray(angle, np.float64)
        ends = np.asarray(ends, np.int64)
        ends = ends[(ends >= lags) & (ends + 1 < len(a))]
        coef = np.zeros((lags, horizons))
        fitted = np.zeros(horizons, bool)
        x_all = _lag_matrix(a, ends, lags)
        for h in range(1, min(horizons, MAX_STEPS) + 1):
            rows = ends + h < len(a)
            n = int(rows.sum())
            if n < WINDOWS_PER_LAG * lags:
                break  # later horizons have even fewer windows
            x = x_all[rows]
            y = a[ends[rows] + h] - a[ends[rows]]
            coef[:, h - 1] = np.linalg.solve(x.T @ x + RIDGE * n * np.eye(lags), x.T @ y)
            fitted[h - 1] = True
        if not fitted[0]:
            return None
        return cls(coef, fitted)

    def predict(self, angle: np.ndarray, ends: np.ndarray) -> np.ndarray:
        """Future angles ``[n, H]`` (degrees; unfitted horizons repeat the last angle)."""
        a = np.asarray(angle, np.float64)
        ends = np.asarray(ends, np.int64)
        return a[ends][:, None] + _lag_matrix(a, ends, self.lags) @ self.coef

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


def _lag_matrix(a: np.ndarray, ends: np.ndarray, lags: int) -> np.ndarray:
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
