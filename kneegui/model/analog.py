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

Which kinds and parameters an input set may use (:data:`CANDIDATES`) is decided per input set
group (:func:`memory_group`); the evaluation picks among them on the pretraining subjects.

The fine-tuning step blends it with the network per horizon (weights chosen on the held-back
calibration cycle, see :mod:`kneegui.model.finetune`).
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass

import numpy as np

from kneegui.model.config import uses_angle, uses_emg
from kneegui.model.metrics import future_matrix
from kneegui.model.mixing import mix

#: Envelopes are floored at this fraction of their calibration median before the log (filter
#: undershoot makes envelopes slightly negative; near-zero values would dominate the keys).
FLOOR_FRACTION = 0.05
#: Fewer calibration windows than this: no memory (it would only add noise).
MIN_KEYS = 20


@dataclass(frozen=True)
class AnalogParams:
    """Key length and number of neighbours of a memory."""

    kind: str  # "angle", "emg" or "angle+emg"
    history: int  # samples of the past in a key
    stride: int = 1  # every stride-th sample of the history (EMG part; angle kind: all of it)
    neighbours: int = 5
    emg_weight: float = 1.0  # angle+emg: scale of the EMG part (degrees per std)

    @property
    def angle_key(self) -> bool:
        """Keys with an angle part (their futures are stored relative to the newest angle)."""
        return self.kind in ("angle", "angle+emg")

    @property
    def emg_key(self) -> bool:
        return self.kind in ("emg", "angle+emg")

    def to_dict(self) -> dict:
        return asdict(self)


_ANGLE = [AnalogParams("angle", h, 1, k) for h in (30, 50, 80) for k in (3, 5, 10)]
_ANGLE_EMG = [AnalogParams("angle+emg", h, 5, k, w) for h in (30, 50) for k in (5, 10)
              for w in (2.0, 5.0, 10.0)]
#: Candidates per input-set group, tried by :func:`kneegui.model.selection.select_memory_params`.
CANDIDATES = {
    "angle": _ANGLE,
    "emg+angle": _ANGLE + _ANGLE_EMG,
    "emg": [AnalogParams("emg", h, 5, k) for h in (50, 100) for k in (3, 5, 10)],
}

#: Defaults for live calibration: what ``kneegui.model.selection.select_memory_params`` picks
#: from CANDIDATES on all UCI gait recordings (window 100, 50 horizons, K = 3; docs/model.md).
DEFAULT_PARAMS = {
    "angle": AnalogParams("angle", history=50, stride=1, neighbours=5),
    "emg+angle": AnalogParams("angle+emg", history=30, stride=5, neighbours=5, emg_weight=5.0),
    "emg": AnalogParams("emg", history=100, stride=5, neighbours=10),
}


def memory_group(input_set: str) -> str:
    """Candidate group of an input set: "emg+angle" (both signals), "angle" or "emg"."""
    if uses_angle(input_set):
        return "emg+angle" if uses_emg(input_set) else "angle"
    return "emg"


def allowed_kinds(input_set: str) -> set[str]:
    return {p.kind for p in CANDIDATES[memory_group(input_set)]}


class AnalogMemory:
    """Keys ``[m, d]`` and futures ``[m, H]`` of calibration windows (see module docstring)."""

    def __init__(self, params: AnalogParams, keys: np.ndarray, futures: np.ndarray,
                 center: np.ndarray, scale: np.ndarray) -> None:
        if len(keys) != len(futures) or len(keys) < 1:
            raise ValueError("an analog memory needs as many futures as keys (at least one)")
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

    # -- construction --------------------------------------------------------------------
    @classmethod
    def fit(cls, params: AnalogParams, emg_env: np.ndarray | None, angle: np.ndarray,
            ends: np.ndarray, horizons: int) -> AnalogMemory | None:
        """Memory of the windows ending at ``ends`` (their futures must lie in ``angle``);
        None when fewer than :data:`MIN_KEYS` windows are usable."""
        ends = np.asarray(ends, np.int64)
        ends = ends[(ends >= params.history - 1) & (ends + horizons < len(angle))]
        if len(ends) < MIN_KEYS:
            return None
        if params.emg_key:
            if emg_env is None:
                raise ValueError("an EMG analog memory needs EMG envelopes")
            env = np.asarray(emg_env, np.float64)[: int(ends.max()) + 1]
            floor = FLOOR_FRACTION * np.maximum(np.median(env, axis=0), 1e-12)
            logs = np.log(np.maximum(env, 0.0) + floor)
            center = np.stack([logs.mean(axis=0), floor])  # row 1: the floor
            scale = logs.std(axis=0) + 1e-3
        else:
            center, scale = np.zeros((2, 1)), np.ones(1)
        center, scale = center.astype(np.float32), scale.astype(np.float32)  # as stored
        keys = _keys(params, center, scale, emg_env, angle, ends)
        future = future_matrix(angle, ends, horizons)
        if params.angle_key:
            future = future - np.asarray(angle, np.float64)[ends][:, None]
        return cls(params, keys, future, center, scale)

    # -- use -----------------------------------------------------------------------------
    def key(self, emg_env: np.ndarray | None, angle: np.ndarray | None,
            ends: np.ndarray) -> np.ndarray:
        """Keys ``[n, d]`` of the windows ending at ``ends`` (``ends >= history - 1``)."""
        return _keys(self.params, self.center, self.scale, emg_env, angle, ends)

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
    def from_tensors(cls, params: dict, tensors: dict[str, np.ndarray]) -> AnalogMemory:
        return cls(AnalogParams(**params), tensors["analog.keys"], tensors["analog.futures"],
                   tensors["analog.center"], tensors["analog.scale"])

    def digest(self) -> str:
        h = hashlib.sha256()
        for name, arr in sorted(self.tensors().items()):
            h.update(name.encode())
            h.update(str(arr.shape).encode())
            h.update(np.ascontiguousarray(arr).tobytes())
        return h.hexdigest()


def _keys(params: AnalogParams, center: np.ndarray, scale: np.ndarray,
          emg_env: np.ndarray | None, angle: np.ndarray | None, ends: np.ndarray) -> np.ndarray:
    """Keys ``[n, d]`` of the windows ending at ``ends`` (see the module docstring)."""
    ends = np.asarray(ends, np.int64)
    parts = []
    if params.angle_key:
        if angle is None:
            raise ValueError(f"an {params.kind} analog memory needs the knee angle")
        a = np.asarray(angle, np.float64)
        idx = ends[:, None] - np.arange(0, params.history)[::-1][None, :]  # every sample
        now = a[ends]
        parts += [a[idx] - now[:, None], now[:, None]]
    if params.emg_key:
        if emg_env is None:
            raise ValueError(f"an {params.kind} analog memory needs EMG envelopes")
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


def fit_blend_weight(net_pred: np.ndarray, analog_pred: np.ndarray, true: np.ndarray,
                     smooth: int = 9) -> np.ndarray:
    """Per-horizon memory weight in [0, 1] minimising the absolute error on held-back windows
    (grid of 0.1), smoothed over ``smooth`` neighbouring horizons."""
    grid = np.linspace(0.0, 1.0, 11)
    errs = np.stack([np.abs(mix(net_pred, analog_pred, np.full(true.shape[1], g)) - true)
                     .mean(axis=0) for g in grid])  # [grid, H]
    w = grid[errs.argmin(axis=0)]
    if smooth > 1 and len(w) >= smooth:
        pad = smooth // 2
        padded = np.concatenate([np.repeat(w[:1], pad), w, np.repeat(w[-1:], pad)])
        w = np.convolve(padded, np.ones(smooth) / smooth, mode="valid")
    return np.clip(w, 0.0, 1.0)
