"""Few-cycle subject adaptation: the API the calibration wizard calls in a worker thread.

Recipe (chosen by the evaluation, see docs/model.md): the subject's normalisation is taken from
the calibration data; then each candidate layer set (``head`` = output MLP + linear skip, ``all``)
is trained with AdamW and early-stopped on the held-back last calibration cycle, and the state
with the lowest held-back loss wins, including the un-tuned start ("none"). Fine-tuning therefore
never makes the held-back cycle worse than the pretrained network with subject normalisation.

Then a calibration memory (:mod:`kneegui.model.analog`) is built: nearest-neighbour forecasts
from the subject's own calibration cycles, blended with the network at a fixed share per horizon
(:data:`DEFAULT_BLEND`; ``FinetuneSettings.memory_fit`` fits one per horizon on the
held-back cycle instead). The memory needs enough calibration before the held-back cycle to be
built (its held-back forecasts come from that part); the stored one holds every calibration
cycle.

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
from kneegui.model.mixing import least_squares_weight, mix
from kneegui.model.predict import model_inputs, predict_windows

#: Calibration memory blend of a subject model per memory group
#: (:func:`kneegui.model.analog.memory_group`): (share, ramp), the share reached linearly at
#: ``ramp`` steps and kept beyond (:func:`memory_weight_profile`). What the evaluation's
#: per-subject choice (:func:`kneegui.model.selection.choose_blends`) finds best on all UCI gait
#: recordings at the shipped budget (docs/model.md).
DEFAULT_BLEND = {"emg": (1.0, 1), "emg+angle": (0.5, 50), "angle": (0.5, 50)}


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
    #: Memory share (reached at ``memory_ramp`` steps); None: DEFAULT_BLEND of the input set.
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
    #: Subject models for ``FinetuneSettings.alternatives``, by :func:`blend_label`.
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
    parts = _CalibrationParts(None, None, {}, {}, None)
    alternatives: dict[str, LoadedModel] = {}
    if not cancelled:  # skip the metrics on cancel: return at once
        before_pred = predict_windows(LoadedModel(base, new_card), x, angle, val_ends, norm)
        after_pred = predict_windows(LoadedModel(tuned, new_card), x, angle, val_ends, norm)
        before = _val_metrics(before_pred, true_v, v_range)
        network_only = _val_metrics(after_pred, true_v, v_range)
        memory = analog_val = None
        if settings.memory:
            built = _build_memory(card, settings, _padded(calib.emg_env, pad), angle, pad,
                                  val_ends)
            if built is not None:
                memory, analog_val = built
        stack = settings.extrapolator and uses_angle(card.input_set)

        def calibrated(weight: np.ndarray | None) -> _CalibrationParts:
            return _calibration_parts(memory, analog_val, weight, stack, angle, pad, val_ends,
                                      after_pred, true_v)

        if settings.memory_fit:
            weight = None if memory is None else fit_blend_weight(after_pred, analog_val, true_v)
        else:
            weight = memory_weight_profile(*memory_blend(card.input_set, settings), H)
        parts = calibrated(weight)
        after = _val_metrics(parts.val_pred, true_v, v_range)
        for w, ramp in settings.alternatives:
            alt = calibrated(memory_weight_profile(w, ramp, H))
            alt_card = ModelCard(**new_card.to_dict())
            alt_card.analog, alt_card.extrapolator = alt.analog, alt.extrapolator_card
            alt_card.metrics = {"held_back_after": _val_metrics(alt.val_pred, true_v, v_range)}
            alternatives[blend_label(w, ramp)] = LoadedModel(
                net=tuned, card=alt_card, memory=alt.memory, extrapolator=alt.extrapolator)
    new_card.analog, new_card.extrapolator = parts.analog, parts.extrapolator_card
    new_card.metrics = {"held_back_before": before, "held_back_after": after,
                        "held_back_after_network_only": network_only,
                        "finetune_recipe": best_recipe, "calibration_cycles": len(calib.cycles)}
    new_card.name = f"{card.name}-{calib.subject}" if calib.subject else f"{card.name}-subject"
    for alt in alternatives.values():
        alt.card.metrics = {**new_card.metrics, **alt.card.metrics}
        alt.card.name = new_card.name
    return FinetuneResult(
        model=LoadedModel(net=tuned, card=new_card, memory=parts.memory,
                          extrapolator=parts.extrapolator),
        before=before, after=after, alternatives=alternatives,
        history=history, cancelled=cancelled, recipe=best_recipe,
        seconds=time.perf_counter() - t0, n_train_windows=len(train_ends),
        n_val_windows=len(val_ends),
    )


def _build_memory(card: ModelCard, settings: FinetuneSettings, emg: np.ndarray | None,
                  angle: np.ndarray, pad: int, val_ends: np.ndarray):
    """(memory of all calibration cycles, its held-back forecasts from a memory of the data
    before the held-back part), or None when the calibration is too short for a memory.
    ``emg``/``angle`` are padded by ``pad`` samples."""
    from kneegui.model.analog import (
        DEFAULT_PARAMS,
        AnalogMemory,
        AnalogParams,
        allowed_kinds,
        memory_group,
    )

    params = (AnalogParams(**settings.memory_params) if settings.memory_params
              else DEFAULT_PARAMS[memory_group(card.input_set)])
    if params.kind not in allowed_kinds(card.input_set):
        raise FinetuneError(f"memory params are for {params.kind!r} keys, a {card.input_set!r} "
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
class _CalibrationParts:
    """A subject model's calibration parts for one memory weight, and its held-back forecast."""

    memory: object | None  # AnalogMemory
    extrapolator: object | None  # Extrapolator
    analog: dict  # card.analog
    extrapolator_card: dict  # card.extrapolator
    val_pred: np.ndarray | None


def _calibration_parts(memory, analog_val, weight, stack: bool, angle: np.ndarray, pad: int,
                       val_ends: np.ndarray, net_val: np.ndarray,
                       true_val: np.ndarray) -> _CalibrationParts:
    """Memory blended in at ``weight`` (if there is a memory), then the extrapolator stacked on
    top when ``stack`` (see :func:`_build_extrapolator`)."""
    pred, analog = net_val, {}
    if memory is not None and weight is not None:
        pred, analog = mix(net_val, analog_val, weight), {"weight": np.asarray(weight).tolist()}
    else:
        memory = None
    extrapolator, ex_card = None, {}
    if stack:
        stacked = _build_extrapolator(angle, pad, val_ends, pred, true_val, len(true_val[0]))
        if stacked is not None:
            extrapolator, stack_weight, pred = stacked
            ex_card = {**extrapolator.to_dict(), "weight": stack_weight.tolist()}
    return _CalibrationParts(memory, extrapolator, analog, ex_card, pred)


def blend_label(weight: float, ramp: int) -> str:
    """Name of a memory blend, e.g. "w0.75-r5" (weight 0.75 reached at 5 steps)."""
    return f"w{weight:g}-r{ramp}"


def memory_blend(input_set: str, settings: FinetuneSettings) -> tuple[float, int]:
    """(share, ramp) of the memory for ``input_set`` under ``settings``."""
    from kneegui.model.analog import memory_group

    if settings.memory_weight is None:
        return DEFAULT_BLEND[memory_group(input_set)]
    return float(settings.memory_weight), int(settings.memory_ramp)


def memory_weight_profile(weight: float, ramp: int, horizons: int) -> np.ndarray:
    """Memory share per horizon: ``weight * min(1, h / ramp)`` for h = 1..horizons."""
    if ramp < 1:
        raise ValueError(f"memory ramp must be at least 1 horizon, got {ramp}")
    steps = np.arange(1, horizons + 1, dtype=np.float64)
    return weight * np.minimum(1.0, steps / ramp)


def _build_extrapolator(angle: np.ndarray, pad: int, val_ends: np.ndarray,
                        model_val: np.ndarray, true_val: np.ndarray, horizons: int):
    """(extrapolator of all calibration data, stack weight [H], stacked held-back predictions),
    or None when the calibration is too short. ``angle`` is padded by ``pad`` samples (the
    extrapolators are fitted without the padding); the weight is fitted with an extrapolator of
    the data before the held-back part."""
    from kneegui.model.extrapolator import Extrapolator

    calib_angle = angle[pad:]
    val_start = int(val_ends.min()) - pad
    held_out = Extrapolator.fit(calib_angle[: val_start + 1], np.arange(val_start + 1), horizons)
    full = Extrapolator.fit(calib_angle, np.arange(len(calib_angle)), horizons)
    if held_out is None or full is None:
        return None
    extrap_val = held_out.predict(angle, val_ends)
    weight = least_squares_weight(model_val, extrap_val, true_val, held_out.fitted & full.fitted)
    return full, weight, mix(model_val, extrap_val, weight)
