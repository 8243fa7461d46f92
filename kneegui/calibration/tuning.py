"""Fine-tuning on the captured cycles and the before/after validation on the held-back cycle.

NMAE follows the evaluation's definition: MAE divided by (max - min) of the measured angle over
the tested targets. The held-back cycle is never seen by fine-tuning.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from kneegui.calibration.capture import CalibrationCapture

ProgressFn = Callable[[int, float, float], None]
#: ``fn(base_model, calibration, progress, cancel) -> CalibrationOutcome``; raises
#: :class:`TuningCancelled` (or returns None) when ``cancel`` is set.
FinetuneFn = Callable[[Any, CalibrationCapture, ProgressFn, threading.Event], "CalibrationOutcome"]


class TuningCancelled(Exception):  # noqa: N818 - reads better at the raise site
    """Fine-tuning stopped because the operator cancelled."""


@dataclass(frozen=True)
class HoldoutMetrics:
    """Errors on the held-back cycle, per horizon (index 0 = 1 step ahead)."""

    nmae: list[float]
    mae: list[float]
    n_windows: int

    @property
    def nmae_1(self) -> float:
        return self.nmae[0]

    @property
    def nmae_last(self) -> float:
        return self.nmae[-1]

    @property
    def mae_1(self) -> float:
        return self.mae[0]

    @property
    def mae_last(self) -> float:
        return self.mae[-1]

    @property
    def mean_nmae(self) -> float:
        return float(np.mean(self.nmae))

    def to_dict(self) -> dict[str, Any]:
        return {
            "nmae_1": self.nmae_1,
            "nmae_last": self.nmae_last,
            "mae_1_deg": self.mae_1,
            "mae_last_deg": self.mae_last,
            "mean_nmae": self.mean_nmae,
            "nmae_per_horizon": list(self.nmae),
            "windows": self.n_windows,
        }


@dataclass
class HoldoutTrace:
    """Measured vs predicted angle over the held-back cycle at one horizon (for the plot)."""

    t: np.ndarray  # time of the predicted sample (seconds, stream clock)
    measured: np.ndarray
    before: np.ndarray
    after: np.ndarray
    horizon: int  # steps ahead


@dataclass
class CalibrationOutcome:
    """Result of fine-tune + validation. ``improved`` is judged on the mean NMAE over horizons."""

    tuned_model: Any  # kneegui.model.LoadedModel
    before: HoldoutMetrics
    after: HoldoutMetrics
    epochs: int
    history: list[dict[str, float]] = field(default_factory=list)
    trace: HoldoutTrace | None = None
    seconds: float = 0.0  # fine-tune + validation wall time

    @property
    def improved(self) -> bool:
        return self.after.mean_nmae < self.before.mean_nmae

    def summary(self) -> str:
        h = len(self.after.nmae)
        verdict = (
            "better than before" if self.improved
            else "NOT better than before: the previous model stays active unless you insist"
        )
        return (
            f"Held-back cycle NMAE 1-step {100 * self.before.nmae_1:.1f}% -> "
            f"{100 * self.after.nmae_1:.1f}%, {h}-step {100 * self.before.nmae_last:.1f}% -> "
            f"{100 * self.after.nmae_last:.1f}%; adapted model is {verdict}."
        )

    def metrics_dict(self) -> dict[str, Any]:
        return {
            "before": self.before.to_dict(),
            "after": self.after.to_dict(),
            "improved": self.improved,
            "epochs": self.epochs,
            "seconds": self.seconds,
        }


def holdout_windows(loaded: Any, calib: CalibrationCapture) -> tuple[int, np.ndarray]:
    """(segment, window ends) whose targets start inside the held-back cycle."""
    card = loaded.card
    ref = calib.holdout_cycle
    n = len(calib.segments[ref.segment].t)
    first = max(ref.start - 1, card.rows_needed - 1)  # the window rule: no padded windows
    last = min(ref.end - 2, n - 1 - card.horizons)
    ends = np.arange(first, last + 1, dtype=np.int64) if last >= first else np.zeros(0, np.int64)
    return ref.segment, ends


def holdout_predictions(loaded: Any, calib: CalibrationCapture) -> tuple[np.ndarray, np.ndarray]:
    """(predicted [n, H] degrees, measured [n, H] degrees) on the held-back cycle."""
    from kneegui.model.predictor import ModelInputs, Predictor

    seg_index, ends = holdout_windows(loaded, calib)
    if len(ends) == 0:
        raise ValueError(
            "the held-back cycle is too short to validate (needs the model's input window before "
            "it and its horizon after it); capture again"
        )
    seg = calib.segments[seg_index]
    pred = Predictor(loaded).predict(ModelInputs(emg_env=seg.emg_env, angle=seg.angle), ends)
    steps = np.arange(1, loaded.card.horizons + 1)
    measured = np.asarray(seg.angle, np.float64)[ends[:, None] + steps[None, :]]
    return pred, measured


def metrics_from(pred: np.ndarray, measured: np.ndarray) -> HoldoutMetrics:
    """Per-horizon MAE (degrees) and NMAE (the model package's definition) over some windows."""
    from kneegui.adaptation.metrics import horizon_metrics

    m = horizon_metrics(pred, measured, float(np.ptp(measured)))
    return HoldoutMetrics(nmae=[float(v) for v in m["nmae"]],
                          mae=[float(v) for v in m["mae_deg"]], n_windows=len(measured))


def validate(base: Any, tuned: Any, calib: CalibrationCapture) -> tuple[
    HoldoutMetrics, HoldoutMetrics, HoldoutTrace
]:
    """Before/after metrics of the base and tuned models on the held-back cycle."""
    pred_b, measured = holdout_predictions(base, calib)
    pred_a, measured_a = holdout_predictions(tuned, calib)
    if pred_b.shape != pred_a.shape:
        raise ValueError("base and adapted model disagree on window/horizons; cannot compare")
    seg_index, ends = holdout_windows(tuned, calib)
    h = pred_a.shape[1]
    t = calib.segments[seg_index].t[ends + h] if len(ends) else np.zeros(0)
    trace = HoldoutTrace(t=t, measured=measured_a[:, -1], before=pred_b[:, -1],
                         after=pred_a[:, -1], horizon=h)
    return metrics_from(pred_b, measured), metrics_from(pred_a, measured_a), trace


def finetune_input(calib: CalibrationCapture, horizons: int, window: int, subject: str | None):
    """The model package's ``CalibrationData``: training cycles only, never the held-back cycle.

    Segments holding training cycles are joined (an outage pause is the only place a window can
    span a join). Data after the last training cycle is kept only up to ``horizons`` samples and
    never closer than ``window`` samples to the held-back cycle.
    """
    from kneegui.adaptation.finetune import CalibrationData

    last = calib.train_cycles[-1]
    used = sorted({c.segment for c in calib.train_cycles})
    stop = last.end + horizons
    if calib.holdout_cycle.segment == last.segment:
        stop = min(stop, max(last.end, calib.holdout_cycle.start - window))
    emg, angle, cycles, offset = [], [], [], 0
    for k in used:
        seg = calib.segments[k]
        n = min(len(seg.t), stop) if k == last.segment else len(seg.t)
        emg.append(seg.emg_env[:n])
        angle.append(seg.angle[:n])
        cycles += [(offset + c.start, offset + c.end) for c in calib.train_cycles if c.segment == k]
        offset += n
    return CalibrationData(
        emg_env=np.concatenate(emg), angle=np.concatenate(angle), cycles=cycles, subject=subject
    )


def finetune_and_validate(
    base: Any,
    calib: CalibrationCapture,
    progress: ProgressFn,
    cancel: threading.Event,
    subject: str | None = None,
    settings: Any = None,
) -> CalibrationOutcome:
    """Fine-tune ``base`` on the training cycles, then compare both on the held-back cycle."""
    from kneegui.adaptation.finetune import finetune

    t0 = time.perf_counter()
    card = base.card
    data = finetune_input(calib, card.horizons, card.window, subject)
    result = finetune(base, data, progress=progress, cancel=cancel, settings=settings)
    if result.cancelled or cancel.is_set():
        raise TuningCancelled("fine-tuning cancelled")
    before, after, trace = validate(base, result.model, calib)
    return CalibrationOutcome(
        tuned_model=result.model, before=before, after=after,
        epochs=len(result.history) - 1, history=list(result.history), trace=trace,
        seconds=time.perf_counter() - t0,
    )


def calibration_record(subject: Any, calib: CalibrationCapture,
                       outcome: CalibrationOutcome) -> dict[str, Any]:
    """The calibration's provenance for the subject model's card (``training.calibration``)."""
    return {
        "subject": subject.subject_id,
        "group": subject.group,
        "notes": subject.notes,
        "data_sha256": calib.data_hash(),
        "train_cycles": len(calib.train_cycles),
        "holdout_cycles": 1,
        "samples": int(sum(len(s.t) for s in calib.segments)),
        "model_rate": calib.model_rate,
        "baseline": calib.baseline,
        "epochs": outcome.epochs,
    }


def warm_up(loaded: Any) -> None:
    """Run one tiny training step on a copy of the network.

    torch initialises its backward kernels lazily, holding the GIL for a few hundred ms on the
    first call. Calling this early (e.g. while the operator types the subject id) keeps that
    hiccup out of the live phases (walking plot, fine-tuning). The model is not changed.
    """
    import copy

    import torch

    net = copy.deepcopy(loaded.net)
    net.train()
    x = torch.zeros(2, loaded.card.window, net.config.n_inputs)
    opt = torch.optim.AdamW(net.parameters(), lr=1e-6)
    loss = net(x).pow(2).mean()
    opt.zero_grad()
    loss.backward()
    opt.step()
    copy.deepcopy(net.state_dict())
    net.eval()
    with torch.inference_mode():
        net(x)
