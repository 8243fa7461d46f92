"""How a subject model's parts are weighed per horizon: the calibration memory's share (the
product's rule, :data:`DEFAULT_BLEND`) and least-squares shares fitted on held-back windows
(the extrapolator's stack; a pretrained angle network's constant-velocity mix)."""

from __future__ import annotations

import numpy as np

from kneegui.model.memory import memory_group

#: The calibration memory's share of a subject model per memory group
#: (:func:`kneegui.model.memory.memory_group`): (share, ramp), the share reached linearly at
#: ``ramp`` steps and kept beyond (:func:`memory_share_profile`). The best blend on all UCI gait
#: recordings at the shipped budget among those the evaluation's per-subject choice tries
#: (``kneegui.research.selection``; docs/model.md).
DEFAULT_BLEND = {"emg": (1.0, 1), "emg+angle": (0.5, 50), "angle": (0.5, 50)}


def default_blend(input_set: str) -> tuple[float, int]:
    """(share, ramp) of the memory in a subject model of ``input_set``."""
    return DEFAULT_BLEND[memory_group(input_set)]


def memory_share_profile(share: float, ramp: int, horizons: int) -> np.ndarray:
    """Memory share per horizon: ``share * min(1, h / ramp)`` for h = 1..horizons."""
    if ramp < 1:
        raise ValueError(f"memory ramp must be at least 1 horizon, got {ramp}")
    steps = np.arange(1, horizons + 1, dtype=np.float64)
    return share * np.minimum(1.0, steps / ramp)


def least_squares_weight(base: np.ndarray, other: np.ndarray, true: np.ndarray,
                         usable: np.ndarray | None = None) -> np.ndarray:
    """Per-horizon weight in [0, 1] of ``other`` in :func:`kneegui.model.mixing.mix`
    minimising the squared error against ``true`` (0 where ``usable`` is False)."""
    base = np.asarray(base, np.float64)
    d = np.asarray(other, np.float64) - base
    num = (d * (np.asarray(true, np.float64) - base)).sum(axis=0)
    den = np.maximum((d * d).sum(axis=0), 1e-12)
    weight = np.clip(num / den, 0.0, 1.0)
    return weight if usable is None else np.where(usable, weight, 0.0)
