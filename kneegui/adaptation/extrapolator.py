"""Fitting a subject's extrapolator (:class:`kneegui.model.extrapolator.Extrapolator`) on the
calibration angle: a ridge regression from the last :data:`LAGS` angle changes to the future
change, per horizon up to :data:`MAX_STEPS` (on the held-back calibration cycles of the UCI gait
recordings: about 9 % lower 1-step error than constant velocity; see docs/model.md)."""

from __future__ import annotations

import numpy as np

from kneegui.model.extrapolator import Extrapolator, lag_matrix

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


def fit_extrapolator(angle: np.ndarray, ends: np.ndarray, horizons: int,
                     lags: int = LAGS) -> Extrapolator | None:
    """Fit on the windows ending at ``ends`` (histories and futures inside ``angle``); None
    when not even the first horizon has enough windows."""
    a = np.asarray(angle, np.float64)
    ends = np.asarray(ends, np.int64)
    ends = ends[(ends >= lags) & (ends + 1 < len(a))]
    coef = np.zeros((lags, horizons))
    fitted = np.zeros(horizons, bool)
    x_all = lag_matrix(a, ends, lags)
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
    return Extrapolator(coef, fitted)


def fit_extrapolators(angle: np.ndarray, pad: int, val_ends: np.ndarray, horizons: int):
    """(extrapolator of all calibration data, held-back forecasts of one fitted on the data
    before the held-back part, horizons both could fit), or None when the calibration is too
    short. ``angle`` is padded by ``pad`` samples (the extrapolators are fitted without it)."""
    calib_angle = angle[pad:]
    val_start = int(val_ends.min()) - pad
    held_out = fit_extrapolator(calib_angle[: val_start + 1], np.arange(val_start + 1), horizons)
    full = fit_extrapolator(calib_angle, np.arange(len(calib_angle)), horizons)
    if held_out is None or full is None:
        return None
    return full, held_out.predict(angle, val_ends), held_out.fitted & full.fitted
