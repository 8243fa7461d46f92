"""Error metrics per horizon: NMAE, NRMSE, MAE (degrees), R²."""

from __future__ import annotations

import numpy as np


def horizon_metrics(
    pred: np.ndarray, true: np.ndarray, angle_range: float
) -> dict[str, list[float]]:
    """Per-horizon metrics of predictions ``[n, H]`` against truth ``[n, H]`` (degrees).

    ``angle_range`` is max - min of the true angle over the test segment (the NMAE/NRMSE
    denominator).
    """
    err = np.asarray(pred, np.float64) - np.asarray(true, np.float64)
    rng = max(float(angle_range), 1e-9)
    mae = np.abs(err).mean(axis=0)
    rmse = np.sqrt((err**2).mean(axis=0))
    ss_tot = ((true - true.mean(axis=0)) ** 2).sum(axis=0)
    r2 = 1.0 - (err**2).sum(axis=0) / np.maximum(ss_tot, 1e-12)
    return {
        "nmae": (mae / rng).tolist(),
        "nrmse": (rmse / rng).tolist(),
        "mae_deg": mae.tolist(),
        "r2": r2.tolist(),
    }


def future_matrix(angle: np.ndarray, ends: np.ndarray, horizons: int) -> np.ndarray:
    """True future angles ``[n, horizons]`` for windows ending at ``ends``."""
    return np.asarray(angle, np.float64)[ends[:, None] + np.arange(1, horizons + 1)[None, :]]


def held_back_metrics(pred: np.ndarray, true: np.ndarray, angle_range: float) -> dict:
    """The summary a subject model's card keeps of its held-back calibration windows."""
    m = horizon_metrics(pred, true, angle_range)
    return {
        "nmae_10ms": m["nmae"][0], "nmae_50ms": m["nmae"][4], "nmae_500ms": m["nmae"][-1],
        "nmae_mean": float(np.mean(m["nmae"])), "mae_deg_mean": float(np.mean(m["mae_deg"])),
    }
