"""The window rule: how many aligned input rows one prediction needs, and why.

A network looks at ``window`` model steps. Input sets with the knee angle also feed its velocity,
and the velocity of the window's first row is that row's angle minus the row before it, so they
need ``window + 1`` rows. The calibration memory's keys (``history`` rows) and the subject
extrapolator's lags (``lags + 1`` rows) never reach further back; a card that says otherwise is
refused when it loads (:mod:`kneegui.model.card`). Live, a window that cannot be filled gives no
prediction (never a padded one); offline, the first end a series can predict is
``rows_needed - 1``.
"""

from __future__ import annotations

import numpy as np

from kneegui.model.config import uses_angle


def rows_needed(input_set: str, window: int) -> int:
    """Aligned rows (oldest first, newest = "now") that one prediction of ``input_set`` needs."""
    return int(window) + (1 if uses_angle(input_set) else 0)


def prediction_ends(n_rows: int, needed: int, horizons: int = 0) -> np.ndarray:
    """Every row index of an ``n_rows`` series that ends a full window (and, with ``horizons``,
    has that many rows after it: where an offline prediction can be scored)."""
    first, last = needed - 1, n_rows - 1 - horizons
    if last < first:
        return np.zeros(0, np.int64)
    return np.arange(first, last + 1, dtype=np.int64)
