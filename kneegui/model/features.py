"""Network inputs and targets from model-rate arrays (EMG envelopes, knee angle, extra streams).

Two normalisation stages, both stored in the model card:

* subject stage (:class:`SubjectNorm`): EMG envelopes divided by a per-channel percentile and
  the angle standardised with the subject's mean/std, computed from that subject's calibration
  data only (for pretraining: from each training recording);
* global stage (``input_mean``/``input_std``, ``target_mean``/``target_std``): fitted on the
  pretraining windows.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from kneegui.model.config import EMG_CHANNELS, uses_angle, uses_emg

#: Percentile of each EMG envelope used as the subject's amplitude scale.
EMG_SCALE_PERCENTILE = 95.0
_EPS = 1e-6


@dataclass
class SubjectNorm:
    """Per-subject scales: EMG envelope percentile per channel, angle mean and std (degrees)."""

    emg_scale: list[float]
    angle_mean: float
    angle_std: float

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> SubjectNorm:
        return cls(
            emg_scale=[float(v) for v in data["emg_scale"]],
            angle_mean=float(data["angle_mean"]),
            angle_std=float(data["angle_std"]),
        )


def subject_norm(emg_env: np.ndarray | None, angle: np.ndarray | None) -> SubjectNorm:
    """Subject scales from calibration (or training) data; missing streams get neutral scales."""
    if emg_env is not None and len(emg_env):
        scale = np.percentile(np.asarray(emg_env, np.float64), EMG_SCALE_PERCENTILE, axis=0)
        emg_scale = [float(max(s, _EPS)) for s in scale]
    else:
        emg_scale = [1.0] * len(EMG_CHANNELS)
    if angle is not None and len(angle):
        a = np.asarray(angle, np.float64)
        mean, std = float(a.mean()), float(max(a.std(), 1.0))
    else:
        mean, std = 0.0, 1.0
    return SubjectNorm(emg_scale=emg_scale, angle_mean=mean, angle_std=std)


def raw_inputs(
    input_set: str,
    norm: SubjectNorm,
    emg_env: np.ndarray | None,
    angle: np.ndarray | None,
    kinematics: np.ndarray | None = None,
    force: np.ndarray | None = None,
) -> np.ndarray:
    """Subject-normalised input channels ``[m, C]`` (float32) in :func:`channel_names` order."""
    parts: list[np.ndarray] = []
    if uses_emg(input_set):
        if emg_env is None:
            raise ValueError(f"input set {input_set!r} needs EMG envelopes, got none")
        env = np.asarray(emg_env, np.float32)
        if env.ndim != 2 or env.shape[1] != len(norm.emg_scale):
            raise ValueError(f"EMG envelopes must be [n, {len(norm.emg_scale)}] (one column per "
                             f"EMG input of the model), got {env.shape}")
        parts.append(env / np.asarray(norm.emg_scale, np.float32))
    if uses_angle(input_set):
        if angle is None:
            raise ValueError(f"input set {input_set!r} needs the knee angle, got none")
        a = (np.asarray(angle, np.float32) - norm.angle_mean) / norm.angle_std
        velocity = np.diff(a, prepend=a[:1])
        parts += [a[:, None], velocity[:, None]]
    if input_set == "emg+kin+force":
        for extra, name in ((kinematics, "kinematics"), (force, "force")):
            if extra is None:
                raise ValueError(f"input set 'emg+kin+force' needs a {name} stream, got none")
            parts.append(np.asarray(extra, np.float32).reshape(len(extra), -1))
    lengths = {len(p) for p in parts}
    if len(lengths) != 1:
        raise ValueError(f"input streams differ in length: {sorted(lengths)}")
    return np.concatenate(parts, axis=1).astype(np.float32, copy=False)


def raw_targets(
    angle: np.ndarray, ends: np.ndarray, horizons: int, norm: SubjectNorm, residual: bool
) -> np.ndarray:
    """Future angles ``[n, horizons]`` in subject units, relative to the last angle if residual."""
    a = (np.asarray(angle, np.float32) - norm.angle_mean) / norm.angle_std
    future = a[ends[:, None] + np.arange(1, horizons + 1)[None, :]]
    return future - a[ends][:, None] if residual else future


def window_ends(
    n: int, window: int, horizons: int, lo: int = 0, hi: int | None = None, stride: int = 1
) -> np.ndarray:
    """Indices i of windows ``[i-window+1, i]`` that have ``horizons`` future samples.

    Only ends with ``lo <= i`` and ``i + horizons <= hi`` (``hi`` = last usable index, default
    ``n - 1``) are returned.
    """
    hi = n - 1 if hi is None else min(hi, n - 1)
    first = max(lo, window - 1)
    last = hi - horizons
    if last < first:
        return np.zeros(0, dtype=np.int64)
    return np.arange(first, last + 1, stride, dtype=np.int64)


def gather_windows(x: np.ndarray, ends: np.ndarray, window: int) -> np.ndarray:
    """Stack windows ``x[i-window+1 : i+1]`` for each end ``i`` -> ``[n, window, C]``."""
    offsets = np.arange(-window + 1, 1)
    return x[ends[:, None] + offsets[None, :]]
