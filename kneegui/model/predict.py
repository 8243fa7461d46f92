"""Batch prediction on model-rate arrays: shared by evaluation, fine-tuning and tests."""

from __future__ import annotations

import numpy as np

from kneegui.model.features import SubjectNorm, gather_windows, raw_inputs
from kneegui.model.io import LoadedModel, ModelCard


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
    card: ModelCard, out: np.ndarray, last_angle: np.ndarray | float | None, norm: SubjectNorm
) -> np.ndarray:
    """Map normalised network outputs ``[n, H]`` to future angles in degrees."""
    t_mean = np.asarray(card.norm["target_mean"], np.float32)
    t_std = np.asarray(card.norm["target_std"], np.float32)
    y = out * t_std + t_mean
    if card.config.get("residual", False):
        base = np.asarray(last_angle, np.float64).reshape(-1, 1)
        return base + y * norm.angle_std
    return norm.angle_mean + y * norm.angle_std


def predict_windows(
    loaded: LoadedModel,
    x: np.ndarray,
    angle: np.ndarray | None,
    ends: np.ndarray,
    norm: SubjectNorm | None = None,
    batch_size: int = 1024,
) -> np.ndarray:
    """Predictions in degrees ``[len(ends), H]`` for windows ending at ``ends`` of inputs ``x``."""
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
    last = None if angle is None else np.asarray(angle, np.float64)[ends]
    return to_degrees(card, out, last, norm)
