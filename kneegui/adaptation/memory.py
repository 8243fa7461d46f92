"""Building a subject's calibration memory (:class:`kneegui.model.memory.AnalogMemory`) from
the calibration cycles: keys and futures of every calibration window."""

from __future__ import annotations

import dataclasses

import numpy as np

from kneegui.adaptation.metrics import future_matrix
from kneegui.model.card import ModelCard
from kneegui.model.memory import (
    GROUP_KINDS,
    AnalogMemory,
    AnalogParams,
    memory_group,
    memory_keys,
)

#: Envelopes are floored at this fraction of their calibration median before the log (filter
#: undershoot makes envelopes slightly negative; near-zero values would dominate the keys).
FLOOR_FRACTION = 0.05
#: Fewer calibration windows than this: no memory (it would only add noise).
MIN_KEYS = 20

#: The memory a subject model gets, per memory group (:func:`memory_group`): what
#: ``kneegui.research.selection.select_memory_params`` picks from its candidates on all UCI gait
#: recordings (window 100, 50 horizons, K = 3; docs/model.md).
DEFAULT_PARAMS = {
    "angle": AnalogParams("angle", history=50, stride=1, neighbours=5),
    "emg+angle": AnalogParams("angle+emg", history=30, stride=5, neighbours=5, emg_weight=5.0),
    "emg": AnalogParams("emg", history=100, stride=5, neighbours=10),
}


def fit_memory(params: AnalogParams, emg_env: np.ndarray | None, angle: np.ndarray,
               ends: np.ndarray, horizons: int) -> AnalogMemory | None:
    """Memory of the windows ending at ``ends`` (their futures must lie in ``angle``); None
    when fewer than :data:`MIN_KEYS` windows are usable."""
    ends = np.asarray(ends, np.int64)
    ends = ends[(ends >= params.history - 1) & (ends + horizons < len(angle))]
    if len(ends) < MIN_KEYS:
        return None
    if params.emg_key:
        if emg_env is None:
            raise ValueError("an EMG memory needs EMG envelopes")
        env = np.asarray(emg_env, np.float64)[: int(ends.max()) + 1]
        floor = FLOOR_FRACTION * np.maximum(np.median(env, axis=0), 1e-12)
        logs = np.log(np.maximum(env, 0.0) + floor)
        center = np.stack([logs.mean(axis=0), floor])  # row 1: the floor
        scale = logs.std(axis=0) + 1e-3
    else:
        center, scale = np.zeros((2, 1)), np.ones(1)
    center, scale = center.astype(np.float32), scale.astype(np.float32)  # as stored
    keys = memory_keys(params, center, scale, emg_env, angle, ends)
    future = future_matrix(angle, ends, horizons)
    if params.angle_key:
        future = future - np.asarray(angle, np.float64)[ends][:, None]
    return AnalogMemory(params, keys, future, center, scale)


def memory_params_for(card: ModelCard, memory_params: dict | AnalogParams | None) -> AnalogParams:
    """The memory a subject model of ``card`` gets: ``memory_params`` or the group's
    :data:`DEFAULT_PARAMS`, its keys cut to the network's window (the live path keeps no more)."""
    if memory_params is None:
        params = DEFAULT_PARAMS[memory_group(card.input_set)]
    elif isinstance(memory_params, AnalogParams):
        params = memory_params
    else:
        params = AnalogParams(**memory_params)
    allowed = GROUP_KINDS[memory_group(card.input_set)]
    if params.kind not in allowed:
        raise ValueError(f"memory params are for {params.kind!r} keys, a {card.input_set!r} "
                         f"model takes {list(allowed)}")
    return dataclasses.replace(params, history=min(params.history, card.window))


def build_memory(params: AnalogParams, emg: np.ndarray | None, angle: np.ndarray, pad: int,
                 val_ends: np.ndarray, horizons: int):
    """(memory of all calibration cycles, its held-back forecasts from a memory of the data
    before the held-back part), or None when the calibration is too short for a memory.
    ``emg``/``angle`` are padded by ``pad`` samples."""
    val_start = int(val_ends.min())
    first = pad + params.history - 1
    held_out = fit_memory(
        params, None if emg is None else emg[: val_start + 1], angle[: val_start + 1],
        np.arange(first, val_start + 1), horizons,
    )
    full = fit_memory(params, emg, angle, np.arange(first, len(angle)), horizons)
    if held_out is None or full is None:
        return None
    return full, held_out.predict(emg, angle, val_ends)
