"""Few-cycle subject adaptation: the API the calibration wizard calls in a worker thread.

Recipe (chosen by the evaluation, see docs/model.md): the subject's normalisation is taken from
the calibration data; then each candidate layer set (``head`` = output MLP + linear skip, ``all``)
is trained with AdamW and early-stopped on the held-back last calibration cycle, and the state
with the lowest held-back loss wins, including the un-tuned start ("none"). Fine-tuning therefore
never makes the held-back cycle worse than the pretrained network with subject normalisation.

Then a calibration memory (:mod:`kneegui.model.analog`) is built: nearest-neighbour forecasts
from the subject's own calibration cycles, blended with the network at a share per horizon
(:data:`kneegui.model.subject_parts.DEFAULT_BLEND`; ``FinetuneSettings.memory_fit`` fits one per
horizon on the held-back cycle instead). The memory needs enough calibration before the
held-back cycle to be built (its held-back forecasts come from that part); the stored one holds
every calibration cycle.

Last, for input sets with the knee angle, a subject extrapolator (:mod:`kneegui.model.extrapolator`,
linear autoregression on the subject's calibration angle) is stacked on top, per horizon, with a
least-squares weight on the held-back cycle (extrapolator fitted on the cycles before it).
"""

from __future__ import annotations

import copy
import dataclasses
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

import numpy as np

from kneegui.model.analog import fit_blend_weight
from kneegui.model.config import uses_angle
from kneegui.model.features import SubjectNorm, raw_targets, subject_norm, window_ends
from kneegui.model.io import LoadedModel, ModelCard
from kneegui.model.metrics import future_matrix, horizon_metrics
from kneegui.model.predict import model_inputs, predict_windows
from kneegui.model.subject_parts import (
    CalibrationParts,
    blend_label,
    build_memory,
    calibration_parts,
    fit_extrapolators,
    memory_blend,
    memory_weight_profile,
)


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
    memory: bool = True  # build a calibration memory (kneegui.model.analog)
    memory_params: dict | None = None  # AnalogParams fields; None: DEFAULT_PARAMS of the group
    #: Memory share (reached at ``memory_ramp`` steps); None: the input set's default
    #: (:data:`kneegui.model.subject_parts.DEFAULT_BLEND`).
    memory_weight: float | None = None
    memory_ramp: int = 1
    #: Fit the memory share per horizon on the held-back cycle instead (an earlier rule).
    memory_fit: bool = False
    #: Further (memory weight, ramp) pairs to build subject models for, sharing the network and
    #: memory (``FinetuneResult.alternatives``; the evaluation chooses among them per fold).
    alternatives: tuple[tuple[float, int], ...] = ()
    extrapolator: bool = True  # stack a subject extrapolator (angle input sets only)


@dataclass
class FinetuneResult:
    """Outcome: ``model`` is the subject model (the input model is never modified).

    ``before``/``after``: NMAE/MAE on the held-back part of the calibration data for the
    pretrained net (with the subject's normalisation) and the adapted one; empty if cancelled.
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
    #: Subject models for ``FinetuneSettings.alternatives``, by
    #: :func:`kneegui.model.subject_parts.blend_label`.
    alternatives: dict[str, LoadedModel] = field(default_factory=dict)

    def summary(self) -> dict:
        return {f.name: copy.deepcopy(getattr(self, f.name)) for f in dataclasses.fields(self)
                if f.name not in ("model", "alternatives")}


class FinetuneError(ValueError):
    """Calibration data unusable for fine-tuning (message says what to capture)."""


def _padded(arr: np.ndarray | None, pad: int) -> np.ndarray | None:
    if arr is None:
        return None
    a = np.asarray(arr)
    return np.concatenate([np.repeat(a[:1], pad, axis=0), a])


def _split(calib: CalibrationData, window: int, horizons: int):
    """(padded arrays, train ends, val ends) with targets inside the calibration span."""
    if len(calib.cycles) == 0:
        raise FinetuneError("no gait cycles in the calibration data; walk a few steps and retry")
    pad = window - 1
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
    return pad, train, val


def _val_metrics(pred: np.ndarray, true: np.ndarray, rng: float) -> dict:
    m = horizon_metrics(pred, true, rng)
    return {
        "nmae_10ms": m["nmae"][0], "nmae_50ms": m["nmae"][4], "nmae_500ms": m["nmae"][-1],
        "nmae_mean": float(np.mean(m["nmae"])), "mae_deg_mean": float(np.mean(m["mae_deg"])),
    }


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
    the best state found so far.
    """
    import torch

    settings = settings or FinetuneSettings()
    t0 = time.perf_counter()
    card = loaded.card
    W, H = card.window, card.horizons
    norm: SubjectNorm = subject_norm(calib.emg_env, calib.angle)
    pad, train_ends, val_ends = _split(calib, W, H)
    angle = _padded(calib.angle, pad)
    x = model_inputs(card, _padded(calib.emg_env, pad), angle, _padded(calib.kinematics, pad),
                     _padded(calib.force, pad), norm=norm)
    residual = bool(card.config.get("residual", False))
    t_mean = np.asarray(card.norm["target_mean"], np.float32)
    t_std = np.asarray(card.norm["target_std"], np.float32)

    def targets(ends: np.ndarray) -> torch.Tensor:
        y = (raw_targets(angle, ends, H, norm, residual) - t_mean) / t_std
        return torch.from_numpy(y.astype(np.float32))

    from kneegui.model.features import gather_windows

    xt, yt = torch.from_numpy(gather_windows(x, train_ends, W)), targets(train_ends)
    xv, yv = torch.from_numpy(gather_windows(x, val_ends, W)), targets(val_ends)
    true_v = future_matrix(angle, val_ends, H)
    v_range = float(np.ptp(angle[val_ends.min() : val_ends.max() + H + 1]))

    prev_threads = torch.get_num_threads()
    torch.set_num_threads(max(1, settings.threads))
    gen = torch.Generator().manual_seed(settings.seed)
    loss_fn = torch.nn.MSELoss()
    base = copy.deepcopy(loaded.net)
    base.eval()

    def evaluate(net) -> float:
        net.eval()
        with torch.inference_mode():
            return float(loss_fn(net(xv), yv))

    start_loss = evaluate(base)
    best_loss, best_state, best_recipe = start_loss, copy.deepcopy(base.state_dict()), "none"
    history: list[dict] = [{"epoch": 0, "recipe": "none", "train_loss": float("nan"),
                            "val_loss": start_loss}]
    cancelled = False
    epoch_counter = 0
    try:
        for recipe in settings.recipes:
            net = copy.deepcopy(base)
            params = net.parameter_groups()[recipe]
            trainable = {id(p) for p in params}
            for p in net.parameters():
                p.requires_grad_(id(p) in trainable)
            opt = torch.optim.AdamW(params, lr=settings.lr[recipe],
                                    weight_decay=settings.weight_decay)
            r_best, r_epoch = start_loss, 0
            for epoch in range(1, settings.max_epochs + 1):
                net.train()
                net.dropout.eval() if hasattr(net, "dropout") else None
                order = torch.randperm(len(xt), generator=gen)
                total, nb = 0.0, 0
                for s in range(0, len(order), settings.batch_size):
                    if cancel is not None and cancel.is_set():
                        cancelled = True
                        break
                    idx = order[s : s + settings.batch_size]
                    loss = loss_fn(net(xt[idx]), yt[idx])
                    opt.zero_grad()
                    loss.backward()
                    opt.step()
                    total, nb = total + float(loss.detach()), nb + 1
                if cancelled:
                    break
                vl = evaluate(net)
                epoch_counter += 1
                history.append({"epoch": epoch_counter, "recipe": recipe,
                                "train_loss": total / max(nb, 1), "val_loss": vl})
                if progress is not None:
                    progress(epoch_counter, total / max(nb, 1), vl)
                if vl < r_best:
                    r_best, r_epoch = vl, epoch
                    if vl < best_loss:
                        best_loss, best_recipe = vl, recipe
                        best_state = copy.deepcopy(net.state_dict())
                elif epoch - r_epoch >= settings.patience:
                    break
            if cancelled:
                break
    finally:
        torch.set_num_threads(prev_threads)

    tuned = copy.deepcopy(base)
    tuned.load_state_dict(best_state)
    for p in tuned.parameters():
        p.requires_grad_(True)
    tuned.eval()
    new_card = ModelCard(**{**card.to_dict()})
    new_card.norm = {**card.norm, "subject": norm.to_dict()}
    new_card.analog = {}  # a memory is built below from this calibration (never inherited)
    new_card.extrapolator = {}  # likewise
    new_card.base_model = loaded.model_id
    new_card.subject = calib.subject
    new_card.created = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    before: dict = {}
    after: dict = {}
    network_only: dict = {}
    parts = CalibrationParts(None, None, {}, {}, None)
    alt_parts: dict[str, CalibrationParts] = {}
    if not cancelled:  # skip the metrics on cancel: return at once
        before_pred = predict_windows(LoadedModel(base, new_card), x, angle, val_ends, norm)
        after_pred = predict_windows(LoadedModel(tuned, new_card), x, angle, val_ends, norm)
        before = _val_metrics(before_pred, true_v, v_range)
        network_only = _val_metrics(after_pred, true_v, v_range)
        memory = analog_val = None
        if settings.memory:
            try:
                built = build_memory(card, settings.memory_params, _padded(calib.emg_env, pad),
                                     angle, pad, val_ends)
            except ValueError as exc:
                raise FinetuneError(str(exc)) from exc
            if built is not None:
                memory, analog_val = built
        extrapolators = (fit_extrapolators(angle, pad, val_ends, H)
                         if settings.extrapolator and uses_angle(card.input_set) else None)

        def calibrated(weight: np.ndarray | None) -> CalibrationParts:
            return calibration_parts(memory, analog_val, weight, extrapolators, after_pred,
                                     true_v)

        if settings.memory_fit:
            weight = None if memory is None else fit_blend_weight(after_pred, analog_val, true_v)
        else:
            blend = memory_blend(card.input_set, settings.memory_weight, settings.memory_ramp)
            weight = memory_weight_profile(*blend, H)
        parts = calibrated(weight)
        after = _val_metrics(parts.val_pred, true_v, v_range)
        alt_parts = {blend_label(w, ramp): calibrated(memory_weight_profile(w, ramp, H))
                     for w, ramp in settings.alternatives}
    new_card.analog, new_card.extrapolator = parts.analog, parts.extrapolator_card
    new_card.metrics = {"held_back_before": before, "held_back_after": after,
                        "held_back_after_network_only": network_only,
                        "finetune_recipe": best_recipe, "calibration_cycles": len(calib.cycles)}
    new_card.name = f"{card.name}-{calib.subject}" if calib.subject else f"{card.name}-subject"
    alternatives: dict[str, LoadedModel] = {}
    for label, alt in alt_parts.items():
        alt_card = ModelCard(**new_card.to_dict())
        alt_card.analog, alt_card.extrapolator = alt.analog, alt.extrapolator_card
        alt_card.metrics = {**new_card.metrics,
                            "held_back_after": _val_metrics(alt.val_pred, true_v, v_range)}
        alternatives[label] = LoadedModel(net=tuned, card=alt_card, memory=alt.memory,
                                          extrapolator=alt.extrapolator)
    return FinetuneResult(
        model=LoadedModel(net=tuned, card=new_card, memory=parts.memory,
                          extrapolator=parts.extrapolator),
        before=before, after=after, alternatives=alternatives,
        history=history, cancelled=cancelled, recipe=best_recipe,
        seconds=time.perf_counter() - t0, n_train_windows=len(train_ends),
        n_val_windows=len(val_ends),
    )
