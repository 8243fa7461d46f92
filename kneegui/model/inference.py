"""Live inference: one 50-step trajectory per model tick from the latest aligned window."""

from __future__ import annotations

from typing import Any

import numpy as np

from kneegui.model.config import uses_angle, uses_emg
from kneegui.model.features import raw_inputs
from kneegui.model.io import LoadedModel
from kneegui.model.predict import to_degrees, with_calibration


class InferenceEngine:
    """Predicts the future knee angle (degrees, horizons 1..H) from an aligned window.

    The input buffer is preallocated; ``predict`` runs under ``torch.inference_mode`` with a
    fixed intra-op thread count. Shorter histories than the model window (start-up) are padded
    with their first sample (pass ``window + 1`` rows for results identical to the offline path:
    the extra row gives the first angle velocity). Not thread-safe: one engine per thread.
    """

    def __init__(self, loaded: LoadedModel, threads: int = 1) -> None:
        import torch

        self.loaded = loaded
        self.card = loaded.card
        self.threads = int(threads)
        torch.set_num_threads(self.threads)
        self._torch = torch
        self.net = loaded.net.eval()
        self.norm = self.card.subject_norm
        self.window = self.card.window
        self._need = self.window + 1  # +1 sample for the angle velocity at the window start
        self._mean = np.asarray(self.card.norm["input_mean"], np.float32)
        self._std = np.asarray(self.card.norm["input_std"], np.float32)
        n_in = self.net.config.n_inputs
        self._buffer = torch.zeros((1, self.window, n_in), dtype=torch.float32)
        self._view = self._buffer.numpy()[0]  # shares memory with the tensor

    @property
    def input_set(self) -> str:
        return self.card.input_set

    @property
    def horizons(self) -> int:
        return self.card.horizons

    def _tail(self, arr: np.ndarray | None) -> np.ndarray | None:
        if arr is None:
            return None
        a = np.asarray(arr)
        if len(a) == 0:
            raise ValueError("empty input window: wait for data before predicting")
        a = a[-self._need :]
        if len(a) < self._need:
            a = np.concatenate([np.repeat(a[:1], self._need - len(a), axis=0), a])
        return a

    def predict(
        self,
        frame: Any = None,
        *,
        emg_env: np.ndarray | None = None,
        angle: np.ndarray | None = None,
        kinematics: np.ndarray | None = None,
        force: np.ndarray | None = None,
    ) -> np.ndarray:
        """Trajectory ``[H]`` in degrees from an ``AlignedFrame`` (or the same arrays by name)."""
        if frame is not None:
            emg_env = getattr(frame, "emg_env", None)
            angle = getattr(frame, "angle", None)
            kinematics = getattr(frame, "kinematics", None)
            force = getattr(frame, "force", None)
        if uses_emg(self.input_set) and emg_env is None:
            raise ValueError(f"model input set {self.input_set!r} needs EMG envelopes")
        if uses_angle(self.input_set) and angle is None:
            raise ValueError(
                f"model input set {self.input_set!r} needs the knee angle: assign a knee-angle "
                "stream or pick an EMG-only model"
            )
        emg_env, angle = self._tail(emg_env), self._tail(angle)
        x = raw_inputs(self.input_set, self.norm, emg_env, angle,
                       self._tail(kinematics), self._tail(force))
        if not np.isfinite(x).all():
            raise ValueError("input window contains NaN/inf (a stream gap): skip this tick")
        np.subtract(x[1:], self._mean, out=self._view)
        np.divide(self._view, self._std, out=self._view)
        with self._torch.inference_mode():
            out = self.net(self._buffer).numpy()
        if angle is None:
            pred = to_degrees(self.card, out, None, self.norm)
        else:
            a = np.asarray(angle, np.float64)
            step = float(a[-1] - a[-2]) if len(a) > 1 else 0.0
            pred = to_degrees(self.card, out, float(a[-1]), self.norm, step)
        # A subject model's calibration parts (a no-op for pretrained models).
        pred = with_calibration(self.loaded, pred, emg_env, angle, np.array([self._need - 1]))
        return pred[0]
