"""A subject model's calibration parts, built by fine-tuning from the calibration data: the
calibration memory (:mod:`kneegui.model.analog`) blended with the network at a share per
horizon, and for input sets with the angle the subject extrapolator
(:mod:`kneegui.model.extrapolator`) stacked on top."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from kneegui.model.analog import (
    DEFAULT_PARAMS,
    AnalogMemory,
    AnalogParams,
    allowed_kinds,
    memory_group,
)
from kneegui.model.extrapolator import Extrapolator
from kneegui.model.io import ModelCard
from kneegui.model.mixing import least_squares_weight, mix

#: Calibration memory blend of a subject model per memory group
#: (:func:`kneegui.model.analog.memory_group`): (share, ramp), the share reached linearly at
#: ``ramp`` steps and kept beyond (:func:`memory_weight_profile`). What the evaluation's
#: per-subject choice (:func:`kneegui.model.selection.choose_blends`) finds best on all UCI gait
#: recordings at the shipped budget (docs/model.md).
DEFAULT_BLEND = {"emg": (1.0, 1), "emg+angle": (0.5, 50), "angle": (0.5, 50)}


def build_memory(card: ModelCard, memory_params: dict | None, emg: np.ndarray | None,
                 angle: np.ndarray, pad: int, val_ends: np.ndarray):
    """(memory of all calibration cycles, its held-back forecasts from a memory of the data
    before the held-back part), or None when the calibration is too short for a memory.
    ``emg``/``angle`` are padded by ``pad`` samples; ``memory_params``: AnalogParams fields
    (None: DEFAULT_PARAMS of the input set's group)."""
    params = (AnalogParams(**memory_params) if memory_params
              else DEFAULT_PARAMS[memory_group(card.input_set)])
    if params.kind not in allowed_kinds(card.input_set):
        raise ValueError(f"memory params are for {params.kind!r} keys, a {card.input_set!r} "
                         f"model takes {sorted(allowed_kinds(card.input_set))}")
    # Keys never reach further back than the network's window (the live engine keeps that much).
    params = dataclasses.replace(params, history=min(params.history, card.window))
    H = card.horizons
    val_start = int(val_ends.min())
    first = pad + params.history - 1
    held_out = AnalogMemory.fit(
        params, None if emg is None else emg[: val_start + 1], angle[: val_start + 1],
        np.arange(first, val_start + 1), H,
    )
    full = AnalogMemory.fit(params, emg, angle, np.arange(first, len(angle)), H)
    if held_out is None or full is None:
        return None
    return full, held_out.predict(emg, angle, val_ends)


@dataclass
class CalibrationParts:
    """A subject model's calibration parts for one memory weight, and its held-back forecast."""

    memory: AnalogMemory | None
    extrapolator: Extrapolator | None
    analog: dict  # card.analog
    extrapolator_card: dict  # card.extrapolator
    val_pred: np.ndarray | None


def calibration_parts(memory: AnalogMemory | None, analog_val: np.ndarray | None,
                      weight: np.ndarray | None, extrapolators: tuple | None,
                      net_val: np.ndarray, true_val: np.ndarray) -> CalibrationParts:
    """Memory blended in at ``weight`` (if there is a memory), then the extrapolator stacked on
    top with a least-squares weight per horizon on the held-back windows; ``extrapolators`` is
    what :func:`fit_extrapolators` returned (None: no extrapolator)."""
    pred, analog = net_val, {}
    if memory is not None and weight is not None:
        pred, analog = mix(net_val, analog_val, weight), {"weight": np.asarray(weight).tolist()}
    else:
        memory = None
    extrapolator, ex_card = None, {}
    if extrapolators is not None:
        extrapolator, extrap_val, usable = extrapolators
        stack_weight = least_squares_weight(pred, extrap_val, true_val, usable)
        pred = mix(pred, extrap_val, stack_weight)
        ex_card = {**extrapolator.to_dict(), "weight": stack_weight.tolist()}
    return CalibrationParts(memory, extrapolator, analog, ex_card, pred)


def blend_label(weight: float, ramp: int) -> str:
    """Name of a memory blend, e.g. "w0.75-r5" (weight 0.75 reached at 5 steps)."""
    return f"w{weight:g}-r{ramp}"


def memory_blend(input_set: str, weight: float | None, ramp: int) -> tuple[float, int]:
    """(share, ramp) of the memory for ``input_set``: ``(weight, ramp)``, or DEFAULT_BLEND of
    its group when ``weight`` is None."""
    if weight is None:
        return DEFAULT_BLEND[memory_group(input_set)]
    return float(weight), int(ramp)


def memory_weight_profile(weight: float, ramp: int, horizons: int) -> np.ndarray:
    """Memory share per horizon: ``weight * min(1, h / ramp)`` for h = 1..horizons."""
    if ramp < 1:
        raise ValueError(f"memory ramp must be at least 1 horizon, got {ramp}")
    steps = np.arange(1, horizons + 1, dtype=np.float64)
    return weight * np.minimum(1.0, steps / ramp)


def fit_extrapolators(angle: np.ndarray, pad: int, val_ends: np.ndarray, horizons: int):
    """(extrapolator of all calibration data, held-back forecasts of one fitted on the data
    before the held-back part, horizons both could fit), or None when the calibration is too
    short. ``angle`` is padded by ``pad`` samples (the extrapolators are fitted without it)."""
    calib_angle = angle[pad:]
    val_start = int(val_ends.min()) - pad
    held_out = Extrapolator.fit(calib_angle[: val_start + 1], np.arange(val_start + 1), horizons)
    full = Extrapolator.fit(calib_angle, np.arange(len(calib_angle)), horizons)
    if held_out is None or full is None:
        return None
    return full, held_out.predict(angle, val_ends), held_out.fitted & full.fitted
