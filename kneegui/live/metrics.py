"""Small live statistics shown by the main window: rolling latency percentiles and the
running error of what was predicted H steps ago against what was then measured."""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass

import numpy as np


class RollingStats:
    """Thread-safe rolling window of scalar samples (e.g. latencies in seconds)."""

    def __init__(self, maxlen: int = 1000) -> None:
        self._values: deque[float] = deque(maxlen=maxlen)
        self._lock = threading.Lock()
        self.count = 0

    def add(self, value: float) -> None:
        with self._lock:
            self._values.append(float(value))
            self.count += 1

    def values(self) -> np.ndarray:
        with self._lock:
            return np.fromiter(self._values, dtype=np.float64, count=len(self._values))

    def percentile(self, q: float) -> float | None:
        """The ``q``-th percentile of the window, or None when it is empty."""
        v = self.values()
        return float(np.percentile(v, q)) if v.size else None

    def median(self) -> float | None:
        return self.percentile(50)


@dataclass(frozen=True)
class HorizonError:
    """Error of the H-step-ahead prediction over the compared samples."""

    mae: float  # degrees
    nmae: float  # MAE / (max - min) of the measured angle over the same span
    n: int


def predicted_at_target(
    pred_t: np.ndarray, pred: np.ndarray, horizon: int, step_s: float
) -> tuple[np.ndarray, np.ndarray]:
    """Times at which each prediction's ``horizon``-step value applies, and that value."""
    if pred.shape[0] == 0:
        return np.empty(0), np.empty(0)
    return pred_t + horizon * step_s, pred[:, horizon - 1].astype(np.float64)


def horizon_error(
    target_t: np.ndarray, predicted: np.ndarray, meas_t: np.ndarray, measured: np.ndarray
) -> HorizonError | None:
    """Compare predictions with the measured angle interpolated at their target times.

    Only targets inside the measured span count. None when fewer than 2 points compare or
    the measured angle does not move (NMAE undefined).
    """
    if meas_t.size < 2 or target_t.size == 0:
        return None
    inside = (target_t >= meas_t[0]) & (target_t <= meas_t[-1])
    if inside.sum() < 2:
        return None
    truth = np.interp(target_t[inside], meas_t, measured)
    err = np.abs(predicted[inside] - truth)
    span = float(truth.max() - truth.min())
    mae = float(err.mean())
    nmae = mae / span if span > 1e-6 else float("nan")
    return HorizonError(mae=mae, nmae=nmae, n=int(inside.sum()))
