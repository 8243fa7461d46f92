"""Batch prediction on model-rate arrays: shared by evaluation, fine-tuning and tests."""

from __future__ import annotations

import numpy as np

from kneegui.model.baselines import last_steps
from kneegui.model.features import SubjectNorm, gather_windows, raw_inputs
from kneegui.model.io import LoadedModel, ModelCard
from kneegui.model.mixing import least_squares_weight, mix


def standardise_inputs(card: ModelCard, x_subject: np.ndarray) -> np.ndarray:
    """Apply the card's global input standardisation to subject-normalised inputs."""
    mean = np.asarray(card.norm["input_mean"], np.float32)
    std = np.asarray(card.norm["input_std"], np.float32)
    return ((x_subject - mean) / std).astype(np.float32, copy=False)


def model_inputs(
    card: ModelCard,
    emg_env: np.ndarray | None,
    angle: np.ndarray | None,
    kinematics: np.ndarray | None = None,
    force: np.ndarray | None = None,
    norm: SubjectNorm | None = None,
) -> np.ndarray:
    """Fully normalised network inputs ``[m, C]`` for a whole series (subject norm from card)."""
    norm = norm or card.subject_norm
    x = raw_inputs(card.input_set, norm, emg_env, angle, kinematics, force)
    return standardise_inputs(card, x)


def to_degrees(
    card: ModelCard,
    out: np.ndarray,
    last_angle: np.ndarray | float | None,
    norm: SubjectNorm,
    last_step: np.ndarray | float | None = None,
) -> np.ndarray:
    """Map normalised network outputs ``[n, H]`` to future angles in degrees.

    Cards with ``norm["cv_weight"]`` (angle input sets) blend the network with constant-velocity
    extrapolation per horizon: ``w_h * net_h + (1 - w_h) * (last + h * last_step)``.
    """
    t_mean = np.asarray(card.norm["target_mean"], np.float32)
    t_std = np.asarray(card.norm["target_std"], np.float32)
    y = out * t_std + t_mean
    if not card.config.get("residual", False):
        return norm.angle_mean + y * norm.angle_std
    base = np.asarray(last_angle, np.float64).reshape(-1, 1)
    pred = base + y * norm.angle_std
    weight = card.norm.get("cv_weight")
    if weight is not None and last_step is not None:
        steps = np.arange(1, pred.shape[1] + 1)[None, :]
        cv = base + np.asarray(last_step, np.float64).reshape(-1, 1) * steps
        pred = mix(cv, pred, weight)
    return pred


def fit_cv_weight(pred: np.ndarray, cv: np.ndarray, true: np.ndarray) -> list[float]:
    """Per-horizon least-squares blend weight in [0, 1] of network vs constant velocity."""
    return least_squares_weight(cv, pred, true).tolist()


def predict_windows(
    loaded: LoadedModel,
    x: np.ndarray,
    angle: np.ndarray | None,
    ends: np.ndarray,
    norm: SubjectNorm | None = None,
    batch_size: int = 1024,
    emg_env: np.ndarray | None = None,
    calibration_parts: bool = True,
) -> np.ndarray:
    """Predictions in degrees ``[len(ends), H]`` for windows ending at ``ends`` of inputs ``x``.

    A subject model's calibration parts (memory, extrapolator) are blended in unless
    ``calibration_parts`` is False (the network alone); an EMG memory needs the model-rate
    envelopes ``emg_env`` the inputs were made from.
    """
    import torch

    card = loaded.card
    norm = norm or card.subject_norm
    outs = []
    loaded.net.eval()
    with torch.inference_mode():
        for s in range(0, len(ends), batch_size):
            xb = torch.from_numpy(gather_windows(x, ends[s : s + batch_size], card.window))
            outs.append(loaded.net(xb).numpy())
    out = np.concatenate(outs) if outs else np.zeros((0, card.horizons), np.float32)
    if angle is None:
        pred = to_degrees(card, out, None, norm)
    else:
        last = np.asarray(angle, np.float64)[ends]
        pred = to_degrees(card, out, last, norm, last_steps(angle, ends))
    if calibration_parts:
        pred = with_calibration(loaded, pred, emg_env, angle, ends)
    return pred


def with_calibration(loaded: LoadedModel, net_pred: np.ndarray, emg_env: np.ndarray | None,
                     angle: np.ndarray | None, ends: np.ndarray,
                     analog: np.ndarray | None = None) -> np.ndarray:
    """The network's predictions with a subject model's calibration parts: the memory blended
    in (rows whose window is shorter than the memory's key keep the network's prediction),
    then the extrapolator stacked on top. Models without them: unchanged. ``analog``: the
    memory's forecasts for ``ends`` if already computed (:func:`memory_forecasts`)."""
    out = np.array(net_pred, dtype=np.float64, copy=True)
    ends = np.asarray(ends, np.int64)
    if loaded.memory is not None:
        ok = ends >= loaded.memory.first_end
        if analog is None:
            analog = memory_forecasts(loaded, emg_env, angle, ends)
        if ok.any():
            out[ok] = mix(out[ok], analog[ok], loaded.card.analog["weight"])
    if loaded.extrapolator is not None and angle is not None:
        out = mix(out, loaded.extrapolator.predict(angle, ends),
                  loaded.card.extrapolator["weight"])
    return out


def memory_forecasts(loaded: LoadedModel, emg_env: np.ndarray | None, angle: np.ndarray | None,
                     ends: np.ndarray) -> np.ndarray | None:
    """A subject model's memory forecasts ``[n, H]`` (NaN rows where the window is shorter
    than the memory's key), or None without a memory."""
    memory = loaded.memory
    if memory is None:
        return None
    ends = np.asarray(ends, np.int64)
    out = np.full((len(ends), memory.horizons), np.nan)
    ok = ends >= memory.first_end
    if ok.any():
        out[ok] = memory.predict(emg_env, angle, ends[ok])
    return out
