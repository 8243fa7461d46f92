"""The predictor: the only code that turns input windows into future knee angles in degrees.

One :class:`Predictor` per loaded model runs the whole shipped stack, offline (batched, for
evaluation, fine-tuning and calibration) and live (one window, for the prediction worker):

1. inputs → subject normalisation → global standardisation → :class:`KneeNet` on each window of
   :attr:`Predictor.rows_needed` rows (:mod:`kneegui.model.window`);
2. network output → degrees (a residual network adds its output to the last measured angle;
   a pretrained angle model mixes in constant-velocity extrapolation per horizon,
   ``card.velocity_mix``);
3. a subject model blends in its calibration memory (``card.memory``: nearest-neighbour
   forecasts from the subject's calibration cycles, a share per horizon);
4. and stacks its extrapolator on top (``card.extrapolator``: the subject's autoregressive
   forecast, a share per horizon up to 100 ms).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from kneegui.model.config import uses_angle, uses_emg
from kneegui.model.features import SubjectNorm, gather_windows, raw_inputs
from kneegui.model.io import LoadedModel
from kneegui.model.mixing import mix
from kneegui.model.window import prediction_ends

_STREAMS = ("emg_env", "angle", "kinematics", "force")


@dataclass(frozen=True)
class ModelInputs:
    """Model-rate input rows (oldest first, the same rows the hub's ``AlignedFrame`` holds):
    EMG envelopes ``[m, ch]``, knee angle ``[m]`` degrees, extra kinematics / force ``[m, k]``."""

    emg_env: np.ndarray | None = None
    angle: np.ndarray | None = None
    kinematics: np.ndarray | None = None
    force: np.ndarray | None = None

    @classmethod
    def of(cls, source: Any) -> ModelInputs:
        """The inputs of anything with these four attributes (an ``AlignedFrame``, a series)."""
        if isinstance(source, ModelInputs):
            return source
        return cls(**{name: getattr(source, name, None) for name in _STREAMS})

    def __len__(self) -> int:
        for name in _STREAMS:
            arr = getattr(self, name)
            if arr is not None and len(arr):
                return len(arr)
        return 0

    def tail(self, n: int) -> ModelInputs | None:
        """The newest ``n`` rows, or None when there are fewer."""
        if len(self) < n:
            return None
        return ModelInputs(**{name: None if getattr(self, name) is None
                              else getattr(self, name)[-n:] for name in _STREAMS})


@dataclass(frozen=True)
class Stages:
    """Each stage's forecast ``[n, H]`` in degrees for the same windows (None: not in the
    model): the network (with its constant-velocity mix), the memory, the extrapolator."""

    network: np.ndarray
    memory: np.ndarray | None = None
    extrapolator: np.ndarray | None = None


class Predictor:
    """Future knee angles ``[H]`` (horizons 1..H model steps) from input windows.

    ``norm`` replaces the card's subject scales (evaluation: a pretrained network with the
    calibration data's scales); ``calibration_parts=False`` leaves out a subject model's memory
    and extrapolator (the network alone). ``threads`` sets torch's intra-op threads for the
    process. Not thread-safe across threads that change these settings; predicting from
    several threads at once is safe (torch releases the interpreter lock).
    """

    def __init__(self, model: LoadedModel, *, norm: SubjectNorm | None = None,
                 calibration_parts: bool = True, threads: int | None = None,
                 batch_size: int = 1024) -> None:
        import torch

        if threads is not None:
            torch.set_num_threads(int(threads))
        self._torch = torch
        self.model = model
        self.card = model.card
        self.norm = norm or self.card.subject_norm
        self.batch_size = int(batch_size)
        card = self.card
        self._memory = model.memory if calibration_parts else None
        self._extrapolator = card.extrapolator if calibration_parts else None
        self._input_mean = np.asarray(card.norm.input_mean, np.float32)
        self._input_std = np.asarray(card.norm.input_std, np.float32)
        self._target_mean = np.asarray(card.norm.target_mean, np.float32)
        self._target_std = np.asarray(card.norm.target_std, np.float32)
        model.net.eval()
        self._forward = one_call_forward(model.net, card.window)

    @property
    def input_set(self) -> str:
        return self.card.input_set

    @property
    def horizons(self) -> int:
        return self.card.horizons

    @property
    def rows_needed(self) -> int:
        """Input rows one prediction needs (the window rule, :mod:`kneegui.model.window`)."""
        return self.card.rows_needed

    # -- offline: many windows -------------------------------------------------------------
    def network_inputs(self, inputs: Any) -> np.ndarray:
        """Fully normalised network inputs ``[m, C]`` (float32) of a whole series."""
        i = ModelInputs.of(inputs)
        x = raw_inputs(self.input_set, self.norm, i.emg_env, i.angle, i.kinematics, i.force)
        return ((x - self._input_mean) / self._input_std).astype(np.float32, copy=False)

    def predict(self, inputs: Any, ends: np.ndarray | None = None) -> np.ndarray:
        """Trajectories ``[len(ends), H]`` in degrees for the windows ending at row ``ends``
        (default: every row that ends a full window)."""
        return self.combine(self.stages(inputs, ends))

    def stages(self, inputs: Any, ends: np.ndarray | None = None) -> Stages:
        """Every stage's forecast for the windows ending at ``ends`` (see :meth:`predict`)."""
        i = ModelInputs.of(inputs)
        ends = self._checked_ends(i, ends)
        network = self._network(self.network_inputs(i), i.angle, ends)
        memory = None
        if self._memory is not None:
            memory = self._memory.predict(i.emg_env, i.angle, ends)
        extrapolator = None
        if self._extrapolator is not None:
            extrapolator = self._extrapolator.extrapolator.predict(i.angle, ends)
        return Stages(network, memory, extrapolator)

    def combine(self, stages: Stages, *, memory: bool = True,
                extrapolator: bool = True) -> np.ndarray:
        """The prediction from ``stages``: the network, the memory blended in at the card's
        share, then the extrapolator stacked on top (each stage only if the model has it and it
        is asked for)."""
        out = np.array(stages.network, dtype=np.float64, copy=True)
        if memory and stages.memory is not None and self.card.memory is not None:
            out = mix(out, stages.memory, self.card.memory.share)
        if extrapolator and stages.extrapolator is not None and self.card.extrapolator:
            out = mix(out, stages.extrapolator, self.card.extrapolator.share)
        return out

    def warm_up(self) -> None:
        """One prediction on a neutral window, so that torch's lazy set-up (first call: tens
        to hundreds of ms) happens before the first live sample, not on it."""
        n, card = self.rows_needed, self.card
        n_emg = sum(1 for c in card.channels if c.startswith("emg_"))
        rows = ModelInputs(
            emg_env=np.tile(np.asarray(self.norm.emg_scale[:n_emg] or [1.0], np.float32),
                            (n, 1)) if uses_emg(self.input_set) else None,
            angle=np.full(n, self.norm.angle_mean, np.float32) if uses_angle(self.input_set)
            else None)
        if self.input_set == "emg+kin+force":
            return  # its extra streams' widths are only known live
        self.predict_latest(rows)

    # -- live: the newest window -----------------------------------------------------------
    def predict_latest(self, inputs: Any) -> np.ndarray | None:
        """The trajectory ``[H]`` from the newest :attr:`rows_needed` rows of ``inputs``; None
        when there are fewer rows, or a stream the model uses is not finite in them (a gap):
        a window that cannot be filled gives no prediction."""
        tail = ModelInputs.of(inputs).tail(self.rows_needed)
        if tail is None or not self._finite(tail):
            return None
        return self.predict(tail, np.array([self.rows_needed - 1]))[0]

    # -- internals -------------------------------------------------------------------------
    def used_streams(self, inputs: Any) -> list[np.ndarray]:
        """The input arrays this model uses; ValueError naming the first one missing."""
        i = ModelInputs.of(inputs)
        need = []
        if uses_emg(self.input_set):
            need.append(("emg_env", "EMG envelopes: assign an EMG stream"))
        if uses_angle(self.input_set):
            need.append(("angle", "the knee angle: assign a knee-angle stream or pick an "
                                  "EMG-only model"))
        if self.input_set == "emg+kin+force":
            need += [("kinematics", "a kinematics stream"), ("force", "a force stream")]
        out = []
        for name, what in need:
            arr = getattr(i, name)
            if arr is None:
                raise ValueError(f"model input set {self.input_set!r} needs {what}")
            out.append(np.asarray(arr))
        return out

    def _finite(self, i: ModelInputs) -> bool:
        return all(np.isfinite(a).all() for a in self.used_streams(i))

    def _checked_ends(self, inputs: ModelInputs, ends: np.ndarray | None) -> np.ndarray:
        n = len(inputs)
        if ends is None:
            return prediction_ends(n, self.rows_needed)
        ends = np.asarray(ends, np.int64).reshape(-1)
        if len(ends) and (ends.min() < self.rows_needed - 1 or ends.max() >= n):
            raise ValueError(
                f"window ends must lie in [{self.rows_needed - 1}, {n - 1}] (a prediction needs "
                f"{self.rows_needed} rows); got {int(ends.min())}..{int(ends.max())}")
        return ends

    def _network(self, x: np.ndarray, angle: np.ndarray | None, ends: np.ndarray) -> np.ndarray:
        """Network output for the windows ending at ``ends``, in degrees (stages 1-2)."""
        torch = self._torch
        card = self.card
        outs = []
        with torch.inference_mode(), torch.jit.optimized_execution(False):
            for s in range(0, len(ends), self.batch_size):
                xb = torch.from_numpy(gather_windows(x, ends[s : s + self.batch_size],
                                                     card.window))
                outs.append(self._forward(xb).numpy())
        out = np.concatenate(outs) if outs else np.zeros((0, card.horizons), np.float32)
        y = out * self._target_std + self._target_mean
        if not card.config.residual:
            return self.norm.angle_mean + y * self.norm.angle_std
        a = np.asarray(angle, np.float64)
        last = a[ends].reshape(-1, 1)
        pred = last + y * self.norm.angle_std
        if card.velocity_mix is not None:
            step = (a[ends] - a[np.maximum(ends - 1, 0)]).reshape(-1, 1)
            cv = last + step * np.arange(1, pred.shape[1] + 1)[None, :]
            pred = mix(cv, pred, card.velocity_mix.network_share)
        return pred


def one_call_forward(net: Any, window: int) -> Any:
    """``net``'s forward pass as one TorchScript graph (traced in eval mode, sharing ``net``'s
    parameters): a prediction is one call that releases the interpreter lock once instead of
    once per operation (~30). Where other Python threads are busy (readers, hub, the window's
    requests) each of those hand-overs waits up to a switch interval: predicting with one
    CPU-bound Python thread beside it took 22-23 ms (median) eager and 3.2-3.4 ms traced, with
    two 69 and 8.1-8.3 ms (``benchmarks/predict_beside_python.py``, two runs). Outputs are
    bit-identical to the module's for every batch size (``tests/model/test_predictor.py``).
    Called with ``torch.jit.optimized_execution(False)``: the plain graph interpreter, no
    profiling runs and re-specialisation per new batch size (30 ms on a first call)."""
    import warnings

    import torch

    example = torch.zeros(1, window, net.config.n_inputs)
    with warnings.catch_warnings(), torch.inference_mode():
        warnings.simplefilter("ignore", torch.jit.TracerWarning)  # LSTM's hidden-size check
        # torch 2.13 marks TorchScript deprecated (torch is pinned exactly; its successors,
        # torch.export and torch.compile, run a graph op by op or need a compiler at run time)
        warnings.simplefilter("ignore", DeprecationWarning)
        return torch.jit.trace(net, example, check_trace=False)
