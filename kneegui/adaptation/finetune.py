"""Few-cycle subject adaptation: the API the calibration wizard calls in a worker thread.

Recipe (chosen by the evaluation, see docs/model.md): the subject's normalisation is taken from
the calibration data; then each candidate layer set (``head`` = output MLP + linear skip, ``all``)
is trained and early-stopped on the held-back last calibration cycle, and the state with the
lowest held-back loss wins, including the un-tuned start ("none")
(:func:`kneegui.adaptation.loop.tune_network`). Then a calibration memory is built from the
calibration cycles (:mod:`kneegui.adaptation.memory`) and blended in at the product's share
(:data:`kneegui.adaptation.blend.DEFAULT_BLEND`), and for input sets with the knee angle a
subject extrapolator (:mod:`kneegui.adaptation.extrapolator`) is stacked on top with
least-squares shares on the held-back cycle (:func:`kneegui.adaptation.subject_model.assemble`).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from kneegui.adaptation.blend import default_blend, memory_share_profile
from kneegui.adaptation.extrapolator import fit_extrapolators
from kneegui.adaptation.loop import tune_network
from kneegui.adaptation.memory import build_memory, memory_params_for
from kneegui.adaptation.metrics import future_matrix, held_back_metrics
from kneegui.adaptation.subject_model import SubjectParts, assemble, subject_card
from kneegui.model.config import uses_angle
from kneegui.model.features import gather_windows, raw_targets, subject_norm, window_ends
from kneegui.model.io import LoadedModel
from kneegui.model.predictor import ModelInputs, Predictor


@dataclass
class CalibrationData:
    """Calibration capture at the model rate.

    ``cycles`` are ``(start, end)`` sample indices (end exclusive) of the gait cycles into these
    arrays, in time order; the last one is held back for early stopping (with a single cycle, its
    last 40 % is held back).
    """

    emg_env: np.ndarray | None
    angle: np.ndarray
    cycles: Sequence[tuple[int, int]]
    kinematics: np.ndarray | None = None
    force: np.ndarray | None = None
    subject: str | None = None


@dataclass
class FinetuneSettings:
    recipes: tuple[str, ...] = ("head", "all")
    lr: dict[str, float] = field(default_factory=lambda: {"head": 3e-3, "last": 1e-3, "all": 5e-4})
    max_epochs: int = 40
    patience: int = 6
    batch_size: int = 32
    weight_decay: float = 1e-4
    seed: int = 0
    threads: int = 1
    memory: bool = True  # build a calibration memory
    #: AnalogParams fields of the memory; None: the product's default for the input set
    #: (:data:`kneegui.adaptation.memory.DEFAULT_PARAMS`).
    memory_params: dict | None = None
    extrapolator: bool = True  # stack a subject extrapolator (angle input sets only)


@dataclass
class FinetuneResult:
    """Outcome: ``model`` is the subject model (the input model is never modified).

    ``before``/``after``: NMAE/MAE on the held-back part of the calibration data for the
    pretrained net (with the subject's normalisation) and the subject model; empty if cancelled.
    ``parts`` is what fine-tuning learnt before the parts were weighed (None if cancelled), for
    :func:`kneegui.adaptation.subject_model.assemble` with other shares.
    """

    model: LoadedModel
    before: dict
    after: dict
    history: list[dict]
    cancelled: bool
    recipe: str
    seconds: float
    n_train_windows: int = 0
    n_val_windows: int = 0
    parts: SubjectParts | None = None

    def summary(self) -> dict:
        return {"before": dict(self.before), "after": dict(self.after),
                "history": list(self.history), "cancelled": self.cancelled,
                "recipe": self.recipe, "seconds": self.seconds,
                "n_train_windows": self.n_train_windows, "n_val_windows": self.n_val_windows}


class FinetuneError(ValueError):
    """Calibration data unusable for fine-tuning (message says what to capture)."""


@dataclass(frozen=True)
class _Windows:
    """Calibration arrays padded at the front by ``pad`` rows, and the window ends used for
    training and for the held-back validation (indices into the padded arrays)."""

    inputs: ModelInputs
    pad: int
    train_ends: np.ndarray
    val_ends: np.ndarray


def _padded(arr: np.ndarray | None, pad: int) -> np.ndarray | None:
    if arr is None:
        return None
    a = np.asarray(arr)
    return np.concatenate([np.repeat(a[:1], pad, axis=0), a])


def calibration_windows(calib: CalibrationData, needed: int, horizons: int) -> _Windows:
    """Training and held-back window ends, with targets inside the calibration span. The
    arrays are padded at the front with copies of the first row so that the first calibration
    sample ends a full window of ``needed`` rows (:mod:`kneegui.model.window`)."""
    if len(calib.cycles) == 0:
        raise FinetuneError("no gait cycles in the calibration data; walk a few steps and retry")
    pad = needed - 1
    end = int(calib.cycles[-1][1])
    n = len(calib.angle)
    if end > n:
        raise FinetuneError(f"gait cycle ends at {end} but only {n} samples were captured")
    if len(calib.cycles) >= 2:
        val_start = int(calib.cycles[-1][0])
    else:  # one cycle: hold back its end, enough for >= 10 full-horizon targets
        s, e = calib.cycles[0]
        val_start = max(int(s), int(e) - horizons - max(10, int(0.2 * (e - s))))
    train = window_ends(n + pad, 1, horizons, lo=pad, hi=val_start + pad)
    val = window_ends(n + pad, 1, horizons, lo=val_start + pad, hi=n - 1 + pad)
    if len(train) < 4 or len(val) < 2:
        raise FinetuneError(
            f"calibration too short ({n} samples, {len(calib.cycles)} cycles) for "
            f"{horizons}-step targets; capture more gait cycles"
        )
    inputs = ModelInputs(_padded(calib.emg_env, pad), _padded(calib.angle, pad),
                         _padded(calib.kinematics, pad), _padded(calib.force, pad))
    return _Windows(inputs, pad, train, val)


def finetune(
    loaded: LoadedModel,
    calib: CalibrationData,
    *,
    progress: Callable[[int, float, float], None] | None = None,
    cancel: threading.Event | None = None,
    settings: FinetuneSettings | None = None,
) -> FinetuneResult:
    """Adapt ``loaded`` to a subject from a few calibration gait cycles (see module docstring).

    ``progress(epoch, train_loss, val_loss)`` is called after every epoch (epochs count on across
    recipes); setting ``cancel`` stops within one mini-batch and returns ``cancelled=True`` with
    the best network found so far (no memory, no extrapolator).
    """
    import torch

    settings = settings or FinetuneSettings()
    t0 = time.perf_counter()
    card = loaded.card
    W, H = card.window, card.horizons
    norm = subject_norm(calib.emg_env, calib.angle)
    win = calibration_windows(calib, card.rows_needed, H)
    before_predictor = Predictor(loaded, norm=norm, calibration_parts=False)
    x = before_predictor.network_inputs(win.inputs)
    angle = win.inputs.angle
    t_mean = np.asarray(card.norm.target_mean, np.float32)
    t_std = np.asarray(card.norm.target_std, np.float32)

    def tensors(ends: np.ndarray) -> tuple:
        y = (raw_targets(angle, ends, H, norm, card.config.residual) - t_mean) / t_std
        return (torch.from_numpy(gather_windows(x, ends, W)),
                torch.from_numpy(y.astype(np.float32)))

    prev_threads = torch.get_num_threads()
    torch.set_num_threads(max(1, settings.threads))
    try:
        tuned = tune_network(loaded.net, tensors(win.train_ends), tensors(win.val_ends), settings,
                             progress, cancel)
    finally:
        torch.set_num_threads(prev_threads)
    facts = {"finetune_recipe": tuned.recipe, "calibration_cycles": len(calib.cycles)}
    done = {"history": tuned.history, "recipe": tuned.recipe,
            "n_train_windows": len(win.train_ends), "n_val_windows": len(win.val_ends)}
    if tuned.cancelled:  # no metrics, no parts: return at once
        empty = {"held_back_before": {}, "held_back_after": {},
                 "held_back_after_network_only": {}, **facts}
        card_c = subject_card(loaded, norm, calib.subject, None, None, empty)
        return FinetuneResult(model=LoadedModel(net=tuned.net, card=card_c), before={}, after={},
                              cancelled=True, seconds=time.perf_counter() - t0, **done)
    parts = _subject_parts(loaded, tuned.net, norm, calib, win, settings, before_predictor,
                           facts)
    share = None
    if parts.memory is not None:
        share = memory_share_profile(*default_blend(card.input_set), H)
    model, _ = assemble(parts, share)
    return FinetuneResult(model=model, before=parts.metrics["held_back_before"],
                          after=model.card.metrics["held_back_after"], cancelled=False,
                          seconds=time.perf_counter() - t0, parts=parts, **done)


def _subject_parts(loaded: LoadedModel, net, norm, calib: CalibrationData, win: _Windows,
                   settings: FinetuneSettings, before_predictor: Predictor,
                   facts: dict) -> SubjectParts:
    """Held-back forecasts of the tuned network, and the memory and extrapolator built from
    the calibration data (each with its held-back forecasts)."""
    card, H = loaded.card, loaded.card.horizons
    angle, val_ends = win.inputs.angle, win.val_ends
    true_val = future_matrix(angle, val_ends, H)
    val_range = float(np.ptp(angle[val_ends.min() : val_ends.max() + H + 1]))
    tuned = Predictor(LoadedModel(net, card, memory=loaded.memory), norm=norm,
                      calibration_parts=False)
    network_val = tuned.predict(win.inputs, val_ends)
    before = held_back_metrics(before_predictor.predict(win.inputs, val_ends), true_val,
                               val_range)
    memory = memory_val = None
    if settings.memory:
        try:
            params = memory_params_for(card, settings.memory_params)
        except ValueError as exc:
            raise FinetuneError(str(exc)) from exc
        built = build_memory(params, win.inputs.emg_env, angle, win.pad, val_ends, H)
        if built is not None:
            memory, memory_val = built
    extrapolator = extrapolator_val = usable = None
    if settings.extrapolator and uses_angle(card.input_set):
        fitted = fit_extrapolators(angle, win.pad, val_ends, H)
        if fitted is not None:
            extrapolator, extrapolator_val, usable = fitted
    metrics = {"held_back_before": before,
               "held_back_after_network_only": held_back_metrics(network_val, true_val,
                                                                 val_range), **facts}
    return SubjectParts(
        base=loaded, net=net, norm=norm, subject=calib.subject, memory=memory,
        memory_val=memory_val, extrapolator=extrapolator, extrapolator_val=extrapolator_val,
        extrapolator_usable=usable, network_val=network_val, true_val=true_val,
        val_range=val_range, metrics=metrics,
    )
