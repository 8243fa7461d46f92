"""Pretraining a :class:`KneeNet` on model-rate series (seeded, early stopping, cancellable)."""

from __future__ import annotations

import copy
import hashlib
import threading
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime

import numpy as np

from kneegui.adaptation.blend import least_squares_weight
from kneegui.adaptation.metrics import future_matrix
from kneegui.model.card import ModelCard, Normalisation, VelocityMix
from kneegui.model.config import (
    EMG_CHANNELS,
    MODEL_RATE,
    KneeNetConfig,
    channel_names,
    check_input_set,
    uses_angle,
    uses_emg,
)
from kneegui.model.features import (
    SubjectNorm,
    gather_windows,
    raw_inputs,
    raw_targets,
    subject_norm,
    window_ends,
)
from kneegui.model.io import LoadedModel
from kneegui.model.predictor import ModelInputs, Predictor
from kneegui.research.baselines import constant_velocity


def pooled_subject_norm(norms: list[SubjectNorm]) -> SubjectNorm:
    """Median of several subjects' scales: the default for a model used without calibration."""
    return SubjectNorm(
        emg_scale=[float(v) for v in np.median([n.emg_scale for n in norms], axis=0)],
        angle_mean=float(np.median([n.angle_mean for n in norms])),
        angle_std=float(np.median([n.angle_std for n in norms])),
    )


@dataclass
class Series:
    """One recording at the model rate: EMG envelopes ``[m, k]`` of ``muscles`` (in that
    order; the UCI layout by default), angle ``[m]`` (degrees)."""

    name: str
    subject: str
    group: str
    exercise: str
    emg_env: np.ndarray | None
    angle: np.ndarray
    kinematics: np.ndarray | None = None
    force: np.ndarray | None = None
    flags: frozenset[str] = frozenset()
    norm: SubjectNorm | None = None
    td: np.ndarray | None = None  # EMG time-domain features per tick (ridge baseline only)
    muscles: tuple[str, ...] = EMG_CHANNELS

    def __len__(self) -> int:
        return len(self.angle)

    def subject_norm(self) -> SubjectNorm:
        """The stored norm, or one computed from the whole series (training recordings)."""
        return self.norm or subject_norm(self.emg_env, self.angle)


#: A recording whose knee angle spans less than this (degrees) holds no movement to learn.
MIN_ANGLE_RANGE_DEG = 1.0


@dataclass
class TrainSettings:
    """Pretraining hyper-parameters (defaults are the shipped recipe, see docs/model.md)."""

    input_set: str = "emg+angle"
    window: int = 100
    epochs: int = 30
    patience: int = 5
    lr: float = 2e-3
    weight_decay: float = 1e-4
    batch_size: int = 256
    windows_per_epoch: int = 8000
    val_fraction: float = 0.15
    val_windows: int = 8000  # at most this many validation windows per epoch
    emg_gain_jitter: float = 0.15
    seed: int = 0
    threads: int = 1
    net: dict = field(default_factory=dict)  # KneeNetConfig overrides

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class TrainResult:
    model: LoadedModel
    history: list[dict]
    cancelled: bool = False


class _WindowSet:
    """Windows of many series for one split, with inputs/targets gathered per batch."""

    def __init__(self, xs: list[np.ndarray], ys: list[np.ndarray], ends: list[np.ndarray]):
        self.xs, self.ys = xs, ys
        self.index = np.concatenate(
            [np.stack([np.full(len(e), k), e], axis=1) for k, e in enumerate(ends) if len(e)]
            or [np.zeros((0, 2), np.int64)]
        ).astype(np.int64)
        self.row = [np.cumsum(np.r_[0, [len(e) for e in ends]])[k] for k in range(len(ends))]
        self.ends = ends

    def __len__(self) -> int:
        return len(self.index)

    def batch(self, rows: np.ndarray, window: int) -> tuple[np.ndarray, np.ndarray]:
        xb, yb = [], []
        pairs = self.index[rows]
        for k in np.unique(pairs[:, 0]):
            sel = pairs[pairs[:, 0] == k, 1]
            xb.append(gather_windows(self.xs[k], sel, window))
            pos = np.searchsorted(self.ends[k], sel)
            yb.append(self.ys[k][pos])
        return np.concatenate(xb), np.concatenate(yb)


def _series_arrays(series: Series, input_set: str, window: int, horizons: int, residual: bool,
                   lo: int, hi: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    norm = series.subject_norm()
    x = raw_inputs(input_set, norm, series.emg_env, series.angle, series.kinematics, series.force)
    ends = window_ends(len(series), window, horizons, lo=lo, hi=hi)
    y = raw_targets(series.angle, ends, horizons, norm, residual)
    return x, y, ends


def training_muscles(series: Sequence[Series], input_set: str) -> tuple[str, ...]:
    """The EMG inputs every series shares (the model's channel layout); ValueError when the
    series disagree (a dataset must map every recording to the same inputs)."""
    if not uses_emg(input_set):
        return EMG_CHANNELS
    layouts = {tuple(s.muscles) for s in series}
    if len(layouts) != 1:
        raise ValueError(
            "the recordings carry different EMG inputs ("
            + "; ".join(", ".join(lay) for lay in sorted(layouts))
            + "); map every recording to the same muscles (dataset manifest [channels])")
    (muscles,) = layouts
    if not muscles:
        raise ValueError(f"input set {input_set!r} needs EMG, but the recordings have none")
    return muscles


def data_hash(series: Sequence[Series]) -> str:
    """SHA-256 over names and array bytes of the training series."""
    h = hashlib.sha256()
    for s in sorted(series, key=lambda s: s.name):
        h.update(s.name.encode())
        for arr in (s.emg_env, s.angle):
            if arr is not None:
                h.update(np.ascontiguousarray(arr, np.float32).tobytes())
    return h.hexdigest()


def train_model(
    series: Sequence[Series],
    settings: TrainSettings,
    *,
    name: str | None = None,
    progress: Callable[[int, float, float], None] | None = None,
    cancel: threading.Event | None = None,
    data_description: str = "",
) -> TrainResult:
    """Pretrain a network on ``series``; early-stops on the last ``val_fraction`` of each series."""
    import torch

    from kneegui.model.network import KneeNet

    input_set = check_input_set(settings.input_set)
    if not series:
        raise ValueError("no training data: pass at least one recording")
    still = [s.name for s in series if not np.isfinite(s.angle).all()
             or float(np.ptp(s.angle)) < MIN_ANGLE_RANGE_DEG]
    if still:
        raise ValueError(
            f"the knee angle does not move (range < {MIN_ANGLE_RANGE_DEG:g} deg) or is not "
            f"finite in {', '.join(still)}: nothing to learn from; leave these recordings out")
    muscles = training_muscles(series, input_set)
    torch.manual_seed(settings.seed)
    rng = np.random.default_rng(settings.seed)
    prev_threads = torch.get_num_threads()
    torch.set_num_threads(max(1, settings.threads))
    channels = channel_names(input_set, muscles=muscles)
    config = KneeNetConfig(
        n_inputs=len(channels), window=settings.window, residual=uses_angle(input_set),
        **settings.net,
    )
    H = config.horizons
    train_parts: tuple[list, list, list] = ([], [], [])
    val_parts: tuple[list, list, list] = ([], [], [])
    for s in series:
        split = int(len(s) * (1.0 - settings.val_fraction))
        for parts, lo, hi in ((train_parts, 0, split), (val_parts, split, len(s) - 1)):
            x, y, ends = _series_arrays(s, input_set, config.window, H, config.residual,
                                        lo if lo == 0 else lo + config.window - 1, hi)
            for p, v in zip(parts, (x, y, ends), strict=True):
                p.append(v)
    train = _WindowSet(*train_parts)
    val = _WindowSet(*val_parts)
    if len(train) == 0:
        raise ValueError(
            f"recordings too short for a {config.window}-step window + {H} horizons "
            f"({(config.window + H) / MODEL_RATE:g} s at {MODEL_RATE:g} Hz); use longer "
            "recordings")
    if len(val) == 0:
        raise ValueError(
            f"no validation windows: the last {settings.val_fraction:.0%} of every recording is "
            f"shorter than a {config.window}-step window + {H} horizons; add recordings or use "
            "longer ones (early stopping needs held-back data)")
    x_all = np.concatenate([x[: max(1, len(x))] for x in train_parts[0]])
    y_all = np.concatenate([y for y in train_parts[1] if len(y)])
    norm = Normalisation(
        input_mean=tuple(x_all.mean(0).tolist()),
        input_std=tuple(np.maximum(x_all.std(0), 1e-3).tolist()),
        target_mean=tuple(y_all.mean(0).tolist()),
        target_std=tuple(np.maximum(y_all.std(0), 1e-3).tolist()),
        subject=pooled_subject_norm([s.subject_norm() for s in series]),
    )
    mean_in = np.asarray(norm.input_mean, np.float32)
    std_in = np.asarray(norm.input_std, np.float32)
    mean_t = np.asarray(norm.target_mean, np.float32)
    std_t = np.asarray(norm.target_std, np.float32)
    emg_cols = [i for i, c in enumerate(channels) if c.startswith("emg_")]

    def tensors(rows: np.ndarray, augment: bool) -> tuple[torch.Tensor, torch.Tensor]:
        xb, yb = (val if not augment else train).batch(rows, config.window)
        if augment and emg_cols and settings.emg_gain_jitter > 0:
            gain = np.exp(rng.normal(0, settings.emg_gain_jitter, (len(xb), 1, len(emg_cols))))
            xb = xb.copy()
            xb[:, :, emg_cols] *= gain.astype(np.float32)
        xb = (xb - mean_in) / std_in
        yb = (yb - mean_t) / std_t
        return torch.from_numpy(xb.astype(np.float32)), torch.from_numpy(yb.astype(np.float32))

    net = KneeNet(config)
    opt = torch.optim.AdamW(net.parameters(), lr=settings.lr, weight_decay=settings.weight_decay)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(1, settings.epochs))
    loss_fn = torch.nn.MSELoss()
    val_rows = np.arange(len(val))
    if len(val) > settings.val_windows:  # a fixed random subset keeps validation cheap
        val_rows = np.sort(rng.choice(len(val), settings.val_windows, replace=False))

    def val_loss() -> float:
        if not len(val_rows):
            return float("nan")
        net.eval()
        total = 0.0
        with torch.inference_mode():
            for s in range(0, len(val_rows), 1024):
                xb, yb = tensors(val_rows[s : s + 1024], augment=False)
                total += float(loss_fn(net(xb), yb)) * len(xb)
        return total / len(val_rows)

    history: list[dict] = []
    best = (float("inf"), copy.deepcopy(net.state_dict()), 0)
    cancelled = False
    n_batches = max(1, min(settings.windows_per_epoch, len(train)) // settings.batch_size)
    try:
        for epoch in range(1, settings.epochs + 1):
            net.train()
            order = rng.permutation(len(train))[: n_batches * settings.batch_size]
            total = 0.0
            for b in range(n_batches):
                if cancel is not None and cancel.is_set():
                    cancelled = True
                    break
                rows = order[b * settings.batch_size : (b + 1) * settings.batch_size]
                xb, yb = tensors(np.sort(rows), True)
                loss = loss_fn(net(xb), yb)
                opt.zero_grad()
                loss.backward()
                opt.step()
                total += float(loss.detach())
            if cancelled:
                break
            sched.step()
            vl = val_loss()
            tl = total / n_batches
            history.append({"epoch": epoch, "train_loss": tl, "val_loss": vl})
            if progress is not None:
                progress(epoch, tl, vl)
            score = vl if np.isfinite(vl) else tl
            if score < best[0]:
                best = (score, copy.deepcopy(net.state_dict()), epoch)
            elif epoch - best[2] >= settings.patience:
                break
    finally:
        torch.set_num_threads(prev_threads)
    net.load_state_dict(best[1])
    net.eval()
    card = ModelCard(
        name=name or f"kneenet-{input_set.replace('+', '-')}",
        input_set=input_set,
        config=config,
        norm=norm,
        window=config.window,
        horizons=H,
        channels=tuple(channels),
        training={
            "description": data_description,
            "recordings": sorted(s.name for s in series),
            "subjects": sorted({s.subject for s in series}),
            "data_sha256": data_hash(series),
            "settings": settings.to_dict(),
            "best_epoch": best[2],
            "best_val_loss": best[0],
            **({"emg_inputs": list(muscles)} if uses_emg(input_set) else {}),
        },
        created=datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    )
    model = LoadedModel(net=net, card=card)
    if config.residual and len(val):
        share = _fit_velocity_mix(model, val, series)
        model = LoadedModel(net=net, card=replace(card, velocity_mix=VelocityMix(share)))
    return TrainResult(model, history, cancelled)


def _fit_velocity_mix(model: LoadedModel, val: _WindowSet,
                      series: Sequence[Series]) -> tuple[float, ...]:
    """The network's share per horizon against constant velocity, fitted by least squares on
    the validation windows (degrees)."""
    H = model.card.horizons
    preds, cvs, trues = [], [], []
    for k, s in enumerate(series):
        ends = val.ends[k]
        if not len(ends):
            continue
        preds.append(Predictor(model, norm=s.subject_norm()).predict(ModelInputs.of(s), ends))
        cvs.append(constant_velocity(s.angle, ends, H))
        trues.append(future_matrix(s.angle, ends, H))
    share = least_squares_weight(np.concatenate(cvs), np.concatenate(preds), np.concatenate(trues))
    return tuple(share.tolist())
