"""The calibration protocol: a Qt-free state machine shared by the wizard and the headless CLI.

    subject -> sensor check -> baseline (optional rest / MVC) -> walking capture
            -> fine-tune (worker thread) -> validation -> accept | reject

Drive it by calling its methods from one thread (the GUI thread or the CLI loop): feed aligned
model-rate frames with :meth:`feed`, report stream loss with :meth:`stream_lost`, call
:meth:`tick` now and then for time-outs. Progress arrives as :class:`ProtocolEvent` through the
``on_event`` callback. Fine-tune progress events come from the worker thread: a GUI must
marshal them to its own thread (e.g. a Qt signal). :meth:`cancel` works at every stage and from
any thread. Nothing is saved unless :meth:`accept` is called.
"""

from __future__ import annotations

import contextlib
import functools
import os
import re
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from kneegui.calibration.capture import CalibrationCapture, CycleDetectorFactory, WalkingCapture
from kneegui.calibration.events import EventKind, ProtocolEvent, Stage
from kneegui.calibration.tuning import CalibrationOutcome, FinetuneFn, TuningCancelled

_SUBJECT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


class ProtocolError(RuntimeError):
    """An operation not allowed in the current stage, or blocked by a check (message says why)."""


@dataclass(frozen=True)
class SubjectInfo:
    """Who is calibrated. ``subject_id`` becomes part of file names, so it is restricted."""

    subject_id: str
    group: str = ""
    notes: str = ""

    def __post_init__(self) -> None:
        if not _SUBJECT_ID.match(self.subject_id or ""):
            raise ValueError(
                f"subject id {self.subject_id!r} is not valid: use 1-64 letters, digits, "
                "'_', '-' or '.', starting with a letter or digit (e.g. S01)"
            )


@dataclass
class CalibrationConfig:
    """Protocol settings (defaults follow the issue: 5 cycles, hint after 20 s without a cycle)."""

    train_cycles: int = 5  # cycles used for fine-tuning; one more is held back for validation
    no_cycle_hint_s: float = 20.0
    capture_timeout_s: float | None = 180.0  # active (unpaused) capture time before "no gait"
    auto_finetune: bool = True  # start fine-tuning as soon as the capture is complete
    finetune_threads: int | None = None  # torch threads for fine-tuning (None: model default)


@dataclass(frozen=True)
class ChannelCheck:
    """Sensor-check verdict for one EMG channel: ``status`` is ``ok`` | ``warn`` | ``bad``."""

    label: str
    status: str
    reason: str = ""


@dataclass
class _Baseline:
    kind: str
    chunks: list[np.ndarray] = field(default_factory=list)


class CalibrationProtocol:
    """State machine of one calibration run (one subject, one base model).

    ``base_model`` is a ``kneegui.model.LoadedModel`` (anything with ``.card``; its
    ``card.window`` sets the purge gap before the held-back cycle). ``finetune_fn`` adapts it
    (default :func:`kneegui.calibration.tuning.finetune_and_validate`). ``detector_factory``
    builds the streaming gait-cycle detector (default: ``kneegui.dsp.GaitCycleCounter``).
    """

    def __init__(
        self,
        base_model: Any,
        *,
        config: CalibrationConfig | None = None,
        on_event: Callable[[ProtocolEvent], None] | None = None,
        finetune_fn: FinetuneFn | None = None,
        detector_factory: CycleDetectorFactory | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.base_model = base_model
        self.config = config or CalibrationConfig()
        self._on_event = on_event
        self._finetune_fn = finetune_fn
        self._detector_factory = detector_factory
        self._clock = clock
        self._lock = threading.RLock()
        self.stage = Stage.SUBJECT
        self.subject: SubjectInfo | None = None
        self.checks: list[ChannelCheck] = []
        self.sensor_override = False
        self.baseline: dict[str, list[float]] = {}
        self._baseline: _Baseline | None = None
        self.capture: WalkingCapture | None = None
        self.calibration: CalibrationCapture | None = None
        self.outcome: CalibrationOutcome | None = None
        self.error: str | None = None
        self.saved_path: str | None = None
        self.saved_model: Any = None  # the subject model as saved (with its calibration record)
        self.paused = False
        self._pause_started = 0.0
        self._active_s = 0.0
        self._active_at_frame = 0.0  # walking time when the last frame was fed
        self._last_tick: float | None = None
        self._quiet_s = 0.0
        self._hint_sent = False
        self._cancel = threading.Event()
        self._worker: threading.Thread | None = None

    # -- events --------------------------------------------------------------------------------
    def _emit(self, kind: EventKind, message: str, **data: Any) -> None:
        if self._on_event is not None:
            self._on_event(ProtocolEvent(kind, self.stage, message, data))

    def _enter(self, stage: Stage, message: str) -> None:
        previous, self.stage = self.stage, stage
        self._emit(EventKind.STAGE, message, stage=stage, previous=previous)

    def _require(self, *stages: Stage) -> None:
        if self.stage not in stages:
            allowed = " or ".join(s.value for s in stages)
            raise ProtocolError(f"not possible in stage '{self.stage.value}' (needs {allowed})")

    # -- subject and sensors ------------------------------------------------------------------
    def start(self, subject: SubjectInfo) -> None:
        """Set the subject and go to the sensor check."""
        with self._lock:
            self._require(Stage.SUBJECT)
            self.subject = subject
            self._enter(Stage.SENSOR_CHECK, f"Subject {subject.subject_id}: check the sensors.")

    def update_quality(self, checks: list[ChannelCheck]) -> bool:
        """Report the live per-channel quality; returns True when a channel blocks the check."""
        with self._lock:
            self._require(Stage.SENSOR_CHECK)
            self.checks = list(checks)
            blocking = self.blocking_channels()
            msg = (
                "Fix " + ", ".join(f"{c.label} ({c.reason})" for c in blocking)
                if blocking
                else "All channels usable."
            )
            self._emit(
                EventKind.QUALITY,
                msg,
                statuses=[c.status for c in checks],
                reasons=[c.reason for c in checks],
                blocking=bool(blocking),
            )
            return bool(blocking)

    def blocking_channels(self) -> list[ChannelCheck]:
        return [c for c in self.checks if c.status == "bad"]

    def confirm_sensors(self, override: bool = False) -> None:
        """Leave the sensor check. A bad (flat/saturated) channel blocks unless ``override``."""
        with self._lock:
            self._require(Stage.SENSOR_CHECK)
            blocking = self.blocking_channels()
            if blocking and not override:
                names = ", ".join(f"{c.label}: {c.reason}" for c in blocking)
                raise ProtocolError(
                    f"sensor check failed ({names}); fix the electrode(s) or override the check"
                )
            self.sensor_override = bool(blocking)
            self._enter(Stage.BASELINE, "Optional: record rest and/or MVC, or skip.")

    # -- optional baseline ------------------------------------------------------------------
    def begin_baseline(self, kind: str) -> None:
        """Start collecting a ``rest`` (noise floor) or ``mvc`` (maximum contraction) baseline."""
        with self._lock:
            self._require(Stage.BASELINE)
            if kind not in ("rest", "mvc"):
                raise ValueError("baseline kind must be 'rest' or 'mvc'")
            self._baseline = _Baseline(kind)

    def end_baseline(self) -> list[float]:
        """Finish the baseline; returns its per-channel value (rest: mean, MVC: max envelope)."""
        with self._lock:
            self._require(Stage.BASELINE)
            if self._baseline is None or not self._baseline.chunks:
                raise ProtocolError("no EMG frames arrived during the baseline; check the streams")
            env = np.concatenate(self._baseline.chunks)
            kind = self._baseline.kind
            values = env.mean(axis=0) if kind == "rest" else env.max(axis=0)
            self.baseline[kind] = [float(v) for v in values]
            self._baseline = None
            self._emit(EventKind.BASELINE, f"{kind} baseline recorded.", baseline=kind,
                       values=self.baseline[kind])
            return self.baseline[kind]

    # -- walking capture ----------------------------------------------------------------------
    def start_capture(self) -> None:
        """Begin the walking capture (skips the baseline if none was recorded)."""
        with self._lock:
            self._require(Stage.BASELINE)
            self._baseline = None
            window = int(getattr(self.base_model.card, "window", 0) or 0)
            self.capture = WalkingCapture(
                self.config.train_cycles,
                float(getattr(self.base_model.card, "model_rate", 100.0)),
                self._detector_factory or _default_detector_factory(),
                purge_samples=window,
                tail_samples=int(getattr(self.base_model.card, "horizons", 0) or 0),
            )
            self._active_s = self._active_at_frame = 0.0
            self._quiet_s = 0.0
            self._last_tick = self._clock()
            self._hint_sent = False
            self.paused = False
            self._enter(
                Stage.CAPTURE,
                f"Walk now: {self.config.train_cycles} gait cycles plus one for validation.",
            )

    def set_train_cycles(self, cycles: int) -> None:
        """Change the number of adaptation cycles (before the capture, or during it as long as
        no held-back cycle was taken and ``cycles`` is not below the cycles already counted)."""
        with self._lock:
            if cycles < 1:
                raise ValueError("at least one gait cycle is needed for adaptation")
            if self.stage == Stage.CAPTURE and self.capture is not None:
                try:
                    self.capture.retarget(cycles)
                except ValueError as exc:
                    raise ProtocolError(str(exc)) from exc
            elif self.stage.terminal or self.stage in (Stage.FINETUNE, Stage.VALIDATION):
                raise ProtocolError("the capture is over; the cycle target cannot change now")
            self.config.train_cycles = cycles

    @property
    def capture_target(self) -> int:
        """Cycles needed: the training cycles plus the held-back one."""
        return self.config.train_cycles + 1

    def feed(self, t: np.ndarray, emg_env: np.ndarray, angle: np.ndarray | None) -> None:
        """Aligned frames from the hub. Used during the baseline and the capture; else ignored.

        Rows with NaN (the hub's mark for a role whose stream is out) count as stream loss:
        the capture pauses there and resumes with the next complete rows.
        """
        with self._lock:
            t = np.asarray(t, dtype=np.float64).reshape(-1)
            if len(t) == 0 or self.stage not in (Stage.BASELINE, Stage.CAPTURE):
                return
            emg_env = np.asarray(emg_env, dtype=np.float32).reshape(len(t), -1)
            if angle is None:
                if self.stage == Stage.CAPTURE:
                    self.stream_lost("no knee-angle stream in the aligned frames")
                    return
                angle = np.zeros(len(t), np.float32)
            angle = np.asarray(angle, dtype=np.float32).reshape(-1)
            ok = np.isfinite(angle) & np.isfinite(emg_env).all(axis=1)
            if ok.all():
                self._feed_rows(t, emg_env, angle)
                return
            edges = np.flatnonzero(np.diff(ok.astype(np.int8))) + 1
            for run in np.split(np.arange(len(t)), edges):
                if ok[run[0]]:
                    self._feed_rows(t[run], emg_env[run], angle[run])
                elif self.stage == Stage.CAPTURE:
                    self.stream_lost("a stream stopped delivering (no data at the model tick)")

    def _feed_rows(self, t: np.ndarray, emg_env: np.ndarray, angle: np.ndarray) -> None:
        if self.stage == Stage.BASELINE:
            if self._baseline is not None:
                self._baseline.chunks.append(emg_env)
            return
        if self.stage != Stage.CAPTURE or self.capture is None:
            return
        if self.paused:
            self._resume()
        self._advance_clock()
        self._active_at_frame = self._active_s
        new = self.capture.append(t, emg_env, angle)
        for ref in new:
            self._quiet_s = 0.0
            self._hint_sent = False
            dur = ref.length / self.capture.model_rate
            self._emit(
                EventKind.CYCLE,
                f"Gait cycle {self.capture.cycle_count} ({dur:.2f} s).",
                count=self.capture.cycle_count,
                train=len(self.capture.train),
                holdout=int(self.capture.holdout is not None),
                target=self.capture_target,
                duration_s=dur,
            )
        if self.capture.complete:
            self._finish_capture()

    def stream_lost(self, reason: str = "stream lost") -> None:
        """A required stream stopped during capture: pause (capture resumes with new frames).

        The walking time goes back to what it was at the last complete frame: the wait until
        the loss was noticed brought no data.
        """
        with self._lock:
            if self.stage != Stage.CAPTURE or self.paused or self.capture is None:
                return
            self._advance_clock()
            self._active_s = self._active_at_frame
            self.paused = True
            self._pause_started = self._clock()
            self.capture.break_segment()
            self._emit(EventKind.PAUSED, f"Capture paused: {reason}. Waiting for the stream.",
                       reason=reason)

    def _resume(self) -> None:
        paused_s = self._clock() - self._pause_started
        self.paused = False
        self._last_tick = self._clock()
        self._emit(EventKind.RESUMED, f"Stream back after {paused_s:.1f} s; capture resumed.",
                   paused_s=paused_s)

    def _advance_clock(self) -> None:
        now = self._clock()
        if self._last_tick is not None and not self.paused:
            dt = max(0.0, now - self._last_tick)
            self._active_s += dt
            self._quiet_s += dt
        self._last_tick = now

    def tick(self) -> None:
        """Check capture time-outs (call a few times per second)."""
        with self._lock:
            if self.stage != Stage.CAPTURE or self.paused:
                return
            self._advance_clock()
            if not self._hint_sent and self._quiet_s >= self.config.no_cycle_hint_s:
                self._hint_sent = True
                self._emit(
                    EventKind.NO_GAIT_HINT,
                    f"No gait cycle detected for {self._quiet_s:.0f} s: ask the subject to walk "
                    "at a steady pace and check the knee-angle sensor.",
                    seconds=self._quiet_s,
                )
            timeout = self.config.capture_timeout_s
            if timeout is not None and self._active_s >= timeout:
                self.finish_capture()

    @property
    def capture_seconds(self) -> float:
        """Active (unpaused) capture time so far."""
        return self._active_s

    def finish_capture(self) -> None:
        """End the capture now; without enough cycles this is 'no gait' and nothing is saved."""
        with self._lock:
            self._require(Stage.CAPTURE)
            if self.capture is not None and self.capture.complete:
                self._finish_capture()
                return
            got = 0 if self.capture is None else self.capture.cycle_count
            self.error = "no_gait"
            self._emit(
                EventKind.NO_GAIT,
                f"Not enough gait detected ({got} of {self.capture_target} cycles): nothing was "
                "saved. Check the knee-angle stream and let the subject walk steadily, then retry.",
                cycles=got,
                target=self.capture_target,
            )
            self._enter(Stage.FAILED, "Calibration ended: no gait detected.")

    def retry_capture(self) -> None:
        """After 'no gait', start a fresh walking capture (same subject, same checks)."""
        with self._lock:
            if not (self.stage == Stage.FAILED and self.error == "no_gait"):
                raise ProtocolError("a capture can only be retried after 'no gait detected'")
            self.error = None
            self.stage = Stage.BASELINE
            self.start_capture()

    def _finish_capture(self) -> None:
        assert self.capture is not None
        self.calibration = self.capture.result(self.baseline)
        self._emit(
            EventKind.CAPTURE_DONE,
            "Capture complete.",
            train_cycles=len(self.calibration.train_cycles),
            holdout_cycles=1,
        )
        if self.config.auto_finetune:
            self.start_finetune()

    # -- fine-tuning ----------------------------------------------------------------------------
    def start_finetune(self) -> None:
        """Start fine-tuning + validation in a worker thread."""
        with self._lock:
            self._require(Stage.CAPTURE)
            if self.calibration is None:
                raise ProtocolError("the walking capture is not complete yet")
            self._cancel.clear()
            self._enter(Stage.FINETUNE, "Adapting the model to the subject…")
            self._worker = threading.Thread(
                target=self._run_finetune, name="kneegui-finetune", daemon=True
            )
            self._worker.start()

    def _run_finetune(self) -> None:
        _lower_thread_priority()  # the GUI / acquisition threads stay responsive
        calib = self.calibration
        assert calib is not None and self.subject is not None
        fn = self._finetune_fn or _default_finetune_fn(
            self.subject.subject_id, self.config.finetune_threads
        )

        def progress(epoch: int, train_loss: float, val_loss: float) -> None:
            if not self._cancel.is_set():
                self._emit(
                    EventKind.FINETUNE_PROGRESS,
                    f"epoch {epoch}: train {train_loss:.4f}, validation {val_loss:.4f}",
                    epoch=epoch,
                    train_loss=float(train_loss),
                    val_loss=float(val_loss),
                )

        try:
            outcome = fn(self.base_model, calib, progress, self._cancel)
        except TuningCancelled:
            outcome = None
        except Exception as exc:  # noqa: BLE001 - a worker failure must become a visible event
            with self._lock:
                if self.stage == Stage.FINETUNE:
                    self.error = f"{type(exc).__name__}: {exc}"
                    self._emit(EventKind.ERROR, f"Fine-tuning failed: {exc}", error=self.error)
                    self._enter(Stage.FAILED, "Calibration failed; the previous model is kept.")
            return
        with self._lock:
            if self.stage != Stage.FINETUNE:
                return  # cancelled meanwhile: discard the result
            if outcome is None or self._cancel.is_set():
                self._cancelled()
                return
            self.outcome = outcome
            self._enter(Stage.VALIDATION, outcome.summary())
            self._emit(EventKind.VALIDATED, outcome.summary(), result=outcome)

    def warm_up(self) -> threading.Thread:
        """Pay torch's one-time initialisation now, in a background thread (see tuning)."""
        from kneegui.calibration.tuning import warm_up

        def run() -> None:
            _lower_thread_priority()
            with contextlib.suppress(Exception):  # only an optimisation; fine-tune reports errors
                warm_up(self.base_model)

        thread = threading.Thread(target=run, name="kneegui-finetune-warmup", daemon=True)
        thread.start()
        return thread

    def wait(self, timeout: float | None = None) -> bool:
        """Wait for the fine-tune worker; returns True when it is not running (any more)."""
        worker = self._worker
        if worker is None:
            return True
        worker.join(timeout)
        return not worker.is_alive()

    @property
    def worker_alive(self) -> bool:
        return self._worker is not None and self._worker.is_alive()

    # -- decision -----------------------------------------------------------------------------
    @property
    def recommend_activation(self) -> bool:
        """Activate by default only when the adapted model is better on the held-back cycle."""
        return bool(self.outcome is not None and self.outcome.improved)

    def accept(self, store: Any, activate: bool | None = None) -> str:
        """Save the subject model (weights + card) in ``store``; activate it if better (default).

        Returns the saved model path. ``activate=True`` forces activation of a worse model.
        """
        with self._lock:
            self._require(Stage.VALIDATION)
            assert self.outcome is not None and self.subject is not None
            assert self.calibration is not None
            do_activate = self.recommend_activation if activate is None else bool(activate)
            from kneegui.adaptation.subject_model import with_calibration_record
            from kneegui.calibration.tuning import calibration_record

            model = with_calibration_record(
                self.outcome.tuned_model,
                calibration_record(self.subject, self.calibration, self.outcome),
                self.outcome.metrics_dict())
            path = store.save_subject_model(model, self.subject.subject_id,
                                            activate=do_activate)
            self.saved_model = model
            self.saved_path = str(path)
            state = "and activated" if do_activate else "(not activated: previous model kept)"
            self._emit(EventKind.SAVED, f"Subject model saved {state}: {path}",
                       path=str(path), activated=do_activate)
            self._enter(Stage.ACCEPTED, "Calibration accepted.")
            return str(path)

    def reject(self) -> None:
        """Discard the adapted model; the previous model stays active."""
        with self._lock:
            self._require(Stage.VALIDATION)
            self._enter(Stage.REJECTED, "Adapted model rejected; the previous model is kept.")

    def cancel(self) -> None:
        """Cancel at any stage (thread-safe). A running fine-tune stops at its next check."""
        self._cancel.set()
        with self._lock:
            if self.stage.terminal:
                return
            self._cancelled()

    def _cancelled(self) -> None:
        self._emit(EventKind.CANCELLED, "Calibration cancelled; nothing was saved.")
        self._enter(Stage.CANCELLED, "Calibration cancelled; the previous model is kept.")


def _lower_thread_priority(niceness: int = 10) -> None:
    """Nice the calling thread (Linux: per thread; torch's worker threads inherit it)."""
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError):
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), niceness)


def _default_detector_factory() -> CycleDetectorFactory:
    from kneegui.calibration.detectors import dsp_cycle_detector

    return dsp_cycle_detector


def _default_finetune_fn(subject: str, threads: int | None) -> FinetuneFn:
    from kneegui.calibration.tuning import finetune_and_validate

    settings = None
    if threads is not None:
        from kneegui.adaptation.finetune import FinetuneSettings

        settings = FinetuneSettings(threads=threads)
    return functools.partial(finetune_and_validate, subject=subject, settings=settings)
