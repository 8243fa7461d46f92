"""Peak (min/max) decimation for drawing long signals at screen resolution.

Each bin of ``factor`` samples becomes two points (its minimum and its maximum), so spikes
and clipping stay visible however far the view is zoomed out. Bins are anchored to the
absolute sample index, so a scrolling plot does not shimmer from frame to frame.
"""

from __future__ import annotations

import math

import numpy as np


def decimation_factor(n_samples: int, max_points: int) -> int:
    """Samples per bin so that ``n_samples`` fit in about ``max_points`` drawn points."""
    if max_points < 2:
        raise ValueError("max_points must be at least 2")
    return max(1, math.ceil(2 * n_samples / max_points))


def peak_decimate(
    data: np.ndarray, ts: np.ndarray, factor: int, first_index: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Min/max-decimate ``data [n, ch]`` with timestamps ``ts [n]``.

    ``first_index`` is the absolute index of ``data[0]`` in the stream; bins start at
    multiples of ``factor`` in that index. Returns ``(t [2m], y [2m, ch])`` with the minimum
    and maximum of each bin in time order (min first), or the input unchanged when
    ``factor <= 1``. A trailing partial bin is kept as its own (shorter) bin.
    """
    data = np.asarray(data)
    if data.ndim == 1:
        data = data[:, None]
    n = data.shape[0]
    if factor <= 1 or n == 0:
        return np.asarray(ts, dtype=np.float64), data
    skip = (-first_index) % factor
    if skip >= n:
        return np.asarray(ts, dtype=np.float64), data
    body = data[skip:]
    body_t = ts[skip:]
    m_full = body.shape[0] // factor
    parts_y: list[np.ndarray] = []
    parts_t: list[np.ndarray] = []
    if m_full:
        blocks = body[: m_full * factor].reshape(m_full, factor, -1)
        bt = body_t[: m_full * factor].reshape(m_full, factor)
        y = np.empty((2 * m_full, data.shape[1]), dtype=data.dtype)
        y[0::2] = blocks.min(axis=1)
        y[1::2] = blocks.max(axis=1)
        t = np.empty(2 * m_full, dtype=np.float64)
        t[0::2] = bt[:, 0]
        t[1::2] = bt[:, -1]
        parts_y.append(y)
        parts_t.append(t)
    rest = body[m_full * factor :]
    if rest.shape[0]:
        rest_t = body_t[m_full * factor :]
        parts_y.append(np.stack([rest.min(axis=0), rest.max(axis=0)]))
        parts_t.append(np.array([rest_t[0], rest_t[-1]], dtype=np.float64))
    return np.concatenate(parts_t), np.concatenate(parts_y)
