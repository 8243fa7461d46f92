"""Alignment onto the model time base: the one rule the live hub and the offline dataset code share.

Every stream (a role's samples, or the EMG features stamped on the EMG clock) is linearly
interpolated by timestamp onto the grid ``t_k = k / model_rate``. A grid point gets NaN where
the stream has no sample on both sides of it, or where those two samples are further apart than
the stream's hole limit (:func:`hole_limit`: ``max(max_hole, 2 sample periods)``). A grid point
that coincides with a sample takes that sample's value exactly.

:class:`kneegui.acquisition.Hub` applies this to the samples that arrived so far (live);
:func:`align` applies it to whole recordings (sessions, XDF files, text files), so a recording
aligned offline gives the rows the hub would have given while it was recorded.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

#: Default longest gap (seconds) a stream's samples may have around a grid point.
MAX_HOLE_S = 0.1
#: Default seconds a stream may stay silent before the hub's grid moves on without it; also the
#: hole limit of streams without a nominal rate.
MAX_WAIT_S = 0.5


def grid_index_at_or_before(t: float, rate: float) -> int:
    """The last grid index ``k`` with ``k / rate <= t`` (exactly, in float64: ``floor(t * rate)``
    alone can round up past a sample that lies a hair before a grid point, and that grid point
    would then be interpolated outside the data)."""
    k = math.floor(t * rate)
    while k / rate > t:
        k -= 1
    return k


def grid_index_at_or_after(t: float, rate: float) -> int:
    """The first grid index ``k`` with ``k / rate >= t`` (exactly, see above)."""
    k = math.ceil(t * rate)
    while k / rate < t:
        k += 1
    return k


def hole_limit(rate: float, max_hole: float = MAX_HOLE_S, fallback: float = MAX_HOLE_S) -> float:
    """Longest span between two samples a grid point may be interpolated across: at least two
    of the stream's sample periods (``fallback`` for streams without a nominal rate)."""
    return max(max_hole, 2.0 / rate) if rate > 0 else fallback


def interpolate_at(t: np.ndarray, v: np.ndarray, grid: np.ndarray, max_hole: float) -> np.ndarray:
    """Values ``[len(grid), ch]`` (float64) of samples ``v [n, ch]`` stamped ``t [n]``
    (increasing) at ``grid``: linear interpolation; NaN outside the data or across a span
    longer than ``max_hole`` seconds; exact sample values where a grid point hits a stamp."""
    grid = np.asarray(grid, np.float64)
    out = np.full((grid.shape[0], v.shape[1] if v.ndim == 2 else 1), np.nan)
    if t.size == 0:
        return out
    v = v.reshape(t.size, -1)
    hi = np.searchsorted(t, grid, side="left")
    exact = (hi < t.size) & (t[np.minimum(hi, t.size - 1)] == grid)
    inside = (hi > 0) & (hi < t.size)
    lo = np.maximum(hi - 1, 0)
    hic = np.minimum(hi, t.size - 1)
    span = t[hic] - t[lo]
    ok = inside & (span <= max_hole) & (span > 0)
    w = np.zeros(grid.shape[0])
    w[ok] = (grid[ok] - t[lo[ok]]) / span[ok]
    interp = v[lo] * (1.0 - w[:, None]) + v[hic] * w[:, None]
    out[ok] = interp[ok]
    out[exact] = v[hic[exact]]
    return out


@dataclass(frozen=True)
class TimedSamples:
    """One stream's samples on its own time base: ``t [n]`` seconds (increasing), ``v [n, ch]``
    and the rate that sets its hole limit (the nominal rate; 0 = irregular)."""

    t: np.ndarray
    v: np.ndarray
    rate: float


def align(streams: Sequence[TimedSamples], model_rate: float, max_hole: float = MAX_HOLE_S,
          max_wait: float = MAX_WAIT_S) -> tuple[np.ndarray, list[np.ndarray]]:
    """Whole recordings onto the model grid: ``(t [m], [values [m, ch] per stream])``.

    The grid runs from the first grid point at or after the latest first sample to the last
    grid point at or before the earliest last sample (every stream has data around every row,
    as the hub's grid only moves once every stream reached a point); holes give NaN rows.
    ``max_hole`` / ``max_wait`` are the hub's parameters of the same names (their defaults).
    """
    if not streams or any(s.t.size == 0 for s in streams):
        return np.zeros(0), [np.zeros((0, s.v.shape[1] if s.v.ndim == 2 else 1))
                             for s in streams]
    first = grid_index_at_or_after(max(float(s.t[0]) for s in streams), model_rate)
    last = grid_index_at_or_before(min(float(s.t[-1]) for s in streams), model_rate)
    grid = np.arange(first, max(first, last + 1)) / model_rate
    return grid, [interpolate_at(np.asarray(s.t, np.float64), np.asarray(s.v, np.float64), grid,
                                 hole_limit(s.rate, max_hole, max_wait)) for s in streams]
