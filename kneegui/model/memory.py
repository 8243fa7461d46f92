"""Calibration memory: analog (nearest-neighbour) forecasting from the subject's own gait cycles.

Gait repeats, and after calibration the few captured cycles are the best example of how *this*
subject's knee moves after a given pattern. The memory stores, for every calibration time step,
a key (the recent input pattern) and what the knee did next; a prediction is the mean future of
the ``neighbours`` closest keys. Three kinds of key:

* ``angle`` (input sets with the knee angle): the last ``history`` angle samples relative to the
  newest one, plus the newest angle itself; the future is stored relative to the newest angle;
* ``emg`` (EMG only): the log EMG envelopes over the last ``history`` samples (every ``stride``-th),
  standardised with the calibration data; the future is the absolute angle;
* ``angle+emg`` (input sets with both): the ``angle`` key followed by the ``emg`` key times
  ``emg_weight`` (degrees per standard deviation); the future is stored like ``angle``'s. Muscle
  activity leads the motion, so it can tell apart two moments with the same recent knee path.

This module is what runs when a subject model predicts; the memory is built from calibration
data by :func:`kneegui.adaptation.memory.fit_memory`.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass

import numpy as np

from kneegui.model.config import uses_angle, uses_emg

KINDS = ("angle", "emg", "angle+emg")


@dataclass(frozen=True)
class AnalogParams:
    """Key length and number of neighbours of a memory."""

    kind: str  # "angle", "emg" or "angle+emg"
    history: int  # samples of the past in a key
    stride: int = 1  # every stride-th sample of the history (EMG part; angle kind: all of it)
    neighbours: int = 5
    emg_weight: float = 1.0  # angle+emg: scale of the EMG part (degrees per std)

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"memory kind {self.kind!r} is not one of {', '.join(KINDS)}")
        for name in ("history", "stride", "neighbours"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"memory {name} must be a whole number >= 1, got {value!r}")
        if not np.isfinite(self.emg_weight) or self.emg_weight <= 0:
            raise ValueError(f"memory emg_weight must be > 0, got {self.emg_weight!r}")

    @property
    def angle_key(self) -> bool:
        """Keys with an angle part (their futures are stored relative to the newest angle)."""
        return self.kind in ("angle", "angle+emg")

    @property
    def emg_key(self) -> bool:
        return self.kind in ("emg", "angle+emg")

    def key_size(self, emg_channels: int) -> int:
        """Length of one key."""
        size = self.history + 1 if self.angle_key else 0
        if self.emg_key:
            size += len(range(0, self.history, self.stride)) * emg_channels
        return size

    def to_dict(self) -> dict:
        return asdict(self)


def memory_group(input_set: str) -> str:
    """Memory group of an input set: "emg+angle" (both signals), "angle" or "emg"."""
    if uses_angle(input_set):
        return "emg+angle" if uses_emg(input_set) else "angle"
    return "emg"


#: Key kinds a memory of each group may use.
GROUP_KINDS = {"angle": ("angle",), "emg+angle": ("angle", "angle+emg"), "emg": ("emg",)}


class AnalogMemory:
    """Keys ``[m, d]`` and futures ``[m, H]`` of calibration windows (see module docstring).

    ``center`` is ``[2, ch]`` (log-envelope mean, envelope floor) and ``scale`` ``[ch]`` for
    EMG keys; ``[2, 1]`` zeros and ``[1]`` ones otherwise.
    """

    def __init__(self, params: AnalogParams, keys: np.ndarray, futures: np.ndarray,
                 center: np.ndarray, scale: np.ndarray) -> None:
        keys, futures = np.asarray(keys), np.asarray(futures)
        center, scale = np.asarray(center), np.asarray(scale)
        if keys.ndim != 2 or futures.ndim != 2 or len(keys) != len(futures) or len(keys) < 1:
            raise ValueError("a memory needs keys [m, d] and as many futures [m, H] (m >= 1)")
        if center.ndim != 2 or center.shape[0] != 2 or scale.shape != center.shape[1:]:
            raise ValueError(f"memory center {center.shape} / scale {scale.shape} do not match")
        channels = center.shape[1]
        if keys.shape[1] != params.key_size(channels):
            raise ValueError(f"memory keys have {keys.shape[1]} values, its parameters make "
                             f"{params.key_size(channels)}")
        for name, arr in (("keys", keys), ("futures", futures), ("center", center),
                          ("scale", scale)):
            if not np.isfinite(arr).all():
                raise ValueError(f"memory {name} are not all finite")
        if params.emg_key and (scale <= 0).any():
            raise ValueError("memory EMG scales must be > 0")
        self.params = params
        self.keys = np.ascontiguousarray(keys, np.float32)
        self.futures = np.ascontiguousarray(futures, np.float32)
        self.center = np.asarray(center, np.float32)
        self.scale = np.asarray(scale, np.float32)
        self._key_sq = (self.keys.astype(np.float64) ** 2).sum(axis=1)

    @property
    def horizons(self) -> int:
        return int(self.futures.shape[1])

    @property
    def first_end(self) -> int:
        """The first window end with a full key history."""
        return self.params.history - 1

    def key(self, emg_env: np.ndarray | None, angle: np.ndarray | None,
            ends: np.ndarray) -> np.ndarray:
        """Keys ``[n, d]`` of the windows ending at ``ends`` (``ends >= history - 1``)."""
        return memory_keys(self.params, self.center, self.scale, emg_env, angle, ends)

    def predict(self, emg_env: np.ndarray | None, angle: np.ndarray | None,
                ends: np.ndarray) -> np.ndarray:
        """Future angles ``[n, H]`` in degrees for the windows ending at ``ends``."""
        ends = np.asarray(ends, np.int64)
        q = self.key(emg_env, angle, ends)
        # Squared distances via |q|^2 - 2 q.k + |k|^2 (memory sizes are a few thousand keys).
        d = (q * q).sum(axis=1)[:, None] - 2.0 * (q @ self.keys.T.astype(np.float64))
        d += self._key_sq[None, :]
        k = min(self.params.neighbours, len(self.keys))
        nearest = np.argpartition(d, k - 1, axis=1)[:, :k]
        pred = self.futures[nearest].astype(np.float64).mean(axis=1)
        if self.params.angle_key:
            pred = pred + np.asarray(angle, np.float64)[ends][:, None]
        return pred

    # -- storage -------------------------------------------------------------------------
    def tensors(self) -> dict[str, np.ndarray]:
        """Arrays to store next to the network's weights (prefix ``analog.``)."""
        return {"analog.keys": self.keys, "analog.futures": self.futures,
                "analog.center": self.center, "analog.scale": self.scale}

    @classmethod
    def from_tensors(cls, params: AnalogParams, tensors: dict[str, np.ndarray]) -> AnalogMemory:
        return cls(params, tensors["analog.keys"], tensors["analog.futures"],
                   tensors["analog.center"], tensors["analog.scale"])

    def digest(self) -> str:
        h = hashlib.sha256()
        for name, arr in sorted(self.tensors().items()):
            h.update(name.encode())
            h.update(str(arr.shape).encode())
            h.update(np.ascontiguousarray(arr).tobytes())
        return h.hexdigest()


def memory_keys(params: AnalogParams, center: np.ndarray, scale: np.ndarray,
                emg_env: np.ndarray | None, angle: np.ndarray | None,
                ends: np.ndarray) -> np.ndarray:
    """Keys ``[n, d]`` of the windows ending at ``ends`` (see the module docstring)."""
    ends = np.asarray(ends, np.int64)
    parts = []
    if params.angle_key:
        if angle is None:
            raise ValueError(f"an {params.kind} memory needs the knee angle")
        a = np.asarray(angle, np.float64)
        idx = ends[:, None] - np.arange(0, params.history)[::-1][None, :]  # every sample
        now = a[ends]
        parts += [a[idx] - now[:, None], now[:, None]]
    if params.emg_key:
        if emg_env is None:
            raise ValueError(f"an {params.kind} memory needs EMG envelopes")
        idx = ends[:, None] - np.arange(0, params.history, params.stride)[::-1][None, :]
        mean, floor = center[0], center[1]
        env = np.log(np.maximum(np.asarray(emg_env, np.float64)[idx], 0.0) + floor)
        z = ((env - mean) / scale).reshape(len(idx), -1)  # [n, steps * ch]
        parts.append(z * params.emg_weight if params.angle_key else z)
    return np.concatenate(parts, axis=1)


def share_text(weight) -> str:
    """The memory's share of the prediction in words, e.g. "share 40 % at 1 step, 80 % at 50
    steps" (for the model selector and `kneegui models info`)."""
    return (f"share {100 * weight[0]:.0f} % at 1 step, {100 * weight[-1]:.0f} % at "
            f"{len(weight)} steps")
