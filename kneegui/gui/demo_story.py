"""The headless `kneegui demo` story: a simulated subject the shipped model never saw walks;
the shipped model predicts; the calibration wizard runs on the first gait cycles (driven here
like an operator would: subject id, sensor check, skip rest/MVC, walking, fine-tuning); its
result page is shown until the replayed clip starts over; then the adapted model is accepted
and predicts one more pass of the clip. The live errors before and after calibration are
compared on the same stretches of the clip, none of which the calibration saw (not even as the
input window of a prediction), read back from the recorded session.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PySide6 import QtCore

#: Horizons (model steps at 100 Hz) reported in the summary: 10, 50 and 500 ms.
REPORT_STEPS = (1, 5, 50)
#: A hole in a model's predictions shorter than this (s) does not split a compared stretch (the
#: worker drops steps when the machine is busy: measured holes of 0.1-0.3 s at load 15 on 2
#: cores); only predictions that exist are scored.
GAP_S = 0.5
#: Seconds the sensor check may take before the demo overrides it (as an operator would).
SENSOR_WAIT_S = 10.0
#: Seconds from opening the wizard to its result page before the demo gives up.
CALIBRATION_TIMEOUT_S = 150.0


class StoryError(RuntimeError):
    """The story could not be told (the message says where it stopped)."""


@dataclass(frozen=True)
class ClipClock:
    """Maps LSL times of a :class:`~kneegui.acquisition.SimulatedLab` stream to positions in
    the replayed clip: the first pass runs from sample 0 to ``loop_end``, every later pass from
    ``loop_start`` to ``loop_end``."""

    t_start: float
    rate: float
    loop_start: int
    loop_end: int

    @classmethod
    def of(cls, lab) -> ClipClock:
        if lab.t_start is None:
            raise StoryError("the simulated lab has not started publishing")
        return cls(float(lab.t_start), float(lab.rate), int(lab.loop_start), int(lab.loop_end))

    def locate(self, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(pass index, clip position in seconds) of times ``t``."""
        k = np.floor((np.asarray(t, np.float64) - self.t_start) * self.rate + 0.5)
        k = np.maximum(k, 0).astype(np.int64)
        length = self.loop_end - self.loop_start
        later = k >= self.loop_end
        j = np.where(later, k - self.loop_end, 0)
        loop = np.where(later, 1 + j // length, 0)
        pos = np.where(later, self.loop_start + j % length, k)
        return loop, pos / self.rate

    def current(self, now: float) -> tuple[int, float]:
        loop, pos = self.locate(np.array([now]))
        return int(loop[0]), float(pos[0])


def unseen_mask(pos: np.ndarray, seen: tuple[float, float], window_s: float,
                ahead_s: float) -> np.ndarray:
    """Predictions at clip positions ``pos`` whose input window and forecast span both lie
    outside the clip span ``seen`` (seconds) the calibration captured."""
    lo, hi = seen
    return (pos - window_s > hi) | (pos + ahead_s < lo)


def before_after_errors(
    session_path: Path, clock: ClipClock, seen: tuple[float, float], base_id: str,
    tuned_id: str, window_s: float, step_s: float = 0.01, warmup_s: float = 1.5,
) -> dict:
    """Live error of the shipped (``base_id``) and the calibrated (``tuned_id``) model on the
    same clip positions, all unseen by the calibration, from the recorded session."""
    from kneegui.live.metrics import horizon_error, predicted_at_target
    from kneegui.recording import open_session

    with open_session(session_path) as s:
        preds = s.predictions
        angle = next((st for st in s.streams.values() if st.type.lower() == "angle"), None)
        if preds is None or angle is None or not len(preds.timestamps):
            raise StoryError(f"{session_path} holds no predictions or no knee angle")
        meas_t = np.asarray(angle.timestamps, np.float64)
        measured = np.asarray(angle.data, np.float64)[:, 0]
        t = np.asarray(preds.timestamps, np.float64)
        values = np.asarray(preds.values, np.float64)
        ids = np.array([v.decode() if isinstance(v, bytes) else str(v) for v in preds.model_id])
    ahead_s = values.shape[1] * step_s
    _, pos = clock.locate(t)
    ok = unseen_mask(pos, seen, window_s, ahead_s) & (t - clock.t_start > window_s + warmup_s)
    ok &= t + ahead_s <= meas_t[-1]  # the truth of every horizon was measured
    before, after = ok & (ids == base_id), ok & (ids == tuned_id)
    # The clip stretches both models predicted on (the passes are not on one 10 ms grid, so
    # compare covered intervals, not exact positions).
    common = _intersect(_spans(pos[before], GAP_S), _spans(pos[after], GAP_S))
    before &= _inside(pos, common)
    after &= _inside(pos, common)
    out: dict = {"clip_clock": dataclasses.asdict(clock), "seen_clip_s": list(seen),
                 "seconds_compared": round(float(sum(b - a for a, b in common)), 2),
                 "predictions": {"before": int(before.sum()), "after": int(after.sum())},
                 "clip_spans_s": [[round(a, 2), round(b, 2)] for a, b in common]}
    for name, rows in (("before", before), ("after", after)):
        per_h = {}
        for h in REPORT_STEPS:
            if h > values.shape[1] or not rows.any():
                continue
            tgt_t, tgt_y = predicted_at_target(t[rows], values[rows], h, step_s)
            err = horizon_error(tgt_t, tgt_y, meas_t, measured)
            if err is not None:
                per_h[str(int(round(h * step_s * 1000)))] = {"nmae": err.nmae, "mae_deg": err.mae,
                                                             "n": err.n}
        out[name] = per_h
    return out


def _spans(positions: np.ndarray, gap: float) -> list[tuple[float, float]]:
    """Runs of clip positions (no hole longer than ``gap`` s) as (start, end) seconds."""
    if positions.size == 0:
        return []
    positions = np.sort(positions)
    breaks = np.flatnonzero(np.diff(positions) > gap)
    starts = np.r_[positions[0], positions[breaks + 1]]
    ends = np.r_[positions[breaks], positions[-1]]
    return [(float(a), float(b)) for a, b in zip(starts, ends, strict=True)]


def _intersect(a: list[tuple[float, float]], b: list[tuple[float, float]]
               ) -> list[tuple[float, float]]:
    out = []
    for a0, a1 in a:
        for b0, b1 in b:
            lo, hi = max(a0, b0), min(a1, b1)
            if hi > lo:
                out.append((lo, hi))
    return sorted(out)


def _inside(pos: np.ndarray, spans: list[tuple[float, float]]) -> np.ndarray:
    mask = np.zeros(pos.shape, bool)
    for lo, hi in spans:
        mask |= (pos >= lo) & (pos <= hi)
    return mask


class CalibrationStory(QtCore.QObject):
    """Drives the headless story from the Qt event loop (a 10 Hz tick); ``finished`` is
    emitted with an error text ("" when the story was told)."""

    finished = QtCore.Signal(str)

    def __init__(self, window, lab, out_dir: Path, subject_id: str) -> None:
        super().__init__()
        self.window = window
        self.lab = lab
        self.out_dir = Path(out_dir)
        self.subject_id = subject_id
        self.wizard = None
        self.stage = "idle"
        self.screenshots: dict[str, str] = {}
        self.base_id = ""
        self.tuned_id = ""
        self.accepted_path: str | None = None
        self.activated = False
        self.seen: tuple[float, float] | None = None
        self.result_loop = 0
        self.accept_loop = 0
        self.session_path: Path | None = None
        self.calibration: dict = {}
        self._t_stage = time.monotonic()
        self._timer = QtCore.QTimer(self)
        self._timer.setInterval(100)
        self._timer.timeout.connect(self._tick)

    # -- helpers ---------------------------------------------------------------------------
    def _now_clip(self) -> tuple[int, float]:
        import pylsl

        return ClipClock.of(self.lab).current(pylsl.local_clock())

    def _goto(self, stage: str) -> None:
        self.stage = stage
        self._t_stage = time.monotonic()

    def _shot(self, key: str, widget, name: str) -> None:
        path = self.out_dir / name
        if not widget.grab().save(str(path)):
            raise StoryError(f"could not write the screenshot {path}")
        self.screenshots[key] = str(path)

    def _fail(self, message: str) -> None:
        self._timer.stop()
        if self.wizard is not None and self.wizard.isVisible():
            self.wizard.reject()
        self.finished.emit(message or "the demo stopped")

    # -- the story -------------------------------------------------------------------------
    def start(self) -> None:
        from kneegui.gui.calibration_wizard import PAGE_SENSORS

        w = self.window
        panel = w.recording_panel
        panel.subject.setText(self.subject_id)
        panel.notes.setPlainText(
            f"kneegui demo: simulated subject {self.subject_id} (UCI gait replay), shipped model, "
            "calibration on the first gait cycles, calibrated model afterwards"
        )
        panel.out_dir.setText(str(self.out_dir))
        path = w.start_recording(panel.out_dir.text(), panel.subject.text(),
                                 panel.notes.toPlainText())
        if path is None:
            self._fail("; ".join(w.banners.messages().values()) or "recording failed")
            return
        self.session_path = Path(path)
        self.base_id = w.session.model_id
        w.add_marker("demo start: shipped model")
        self.wizard = w.open_calibration()
        if self.wizard is None:
            self._fail("; ".join(w.banners.messages().values()) or "no calibration wizard")
            return
        self.wizard.subject_page.subject_id.setText(self.subject_id)
        self.wizard.next()
        if self.wizard.currentId() != PAGE_SENSORS:
            self._fail(f"the wizard refused subject {self.subject_id!r}: "
                       f"{self.wizard.subject_page.error.text()}")
            return
        self._goto("sensors")
        self._timer.start()

    def _tick(self) -> None:
        try:
            self._step()
        except Exception as exc:  # noqa: BLE001 - becomes the demo's error message
            self._fail(f"{type(exc).__name__}: {exc}")

    def _step(self) -> None:
        from kneegui.calibration import Stage
        from kneegui.gui.calibration_wizard import PAGE_BASELINE, PAGE_RESULT

        wiz, waited = self.wizard, time.monotonic() - self._t_stage
        if self.stage == "sensors":
            page = wiz.sensor_page
            if not page.isComplete() and waited > SENSOR_WAIT_S:
                page.override.setChecked(True)  # as an operator would, after a look
            if page.isComplete():
                wiz.next()
                if wiz.currentId() != PAGE_BASELINE:
                    raise StoryError(f"sensor check not passed: {page.summary.text()}")
                wiz.next()  # skip rest / MVC: the walking capture starts now
                self.window.add_marker("calibration: walking capture")
                self._goto("calibrating")
        elif self.stage == "calibrating":
            stage = wiz.protocol.stage
            if stage in (Stage.FAILED, Stage.CANCELLED):
                raise StoryError(f"calibration ended: {wiz.protocol.error or stage.value}")
            if wiz.currentId() == PAGE_RESULT:
                self._on_result()
            elif time.monotonic() - self._t_stage > CALIBRATION_TIMEOUT_S:
                raise StoryError("the calibration did not reach its results within "
                                 f"{CALIBRATION_TIMEOUT_S:.0f} s")
        elif self.stage == "reviewing":
            loop, _ = self._now_clip()
            if loop > self.result_loop:  # the clip starts over: accept at its start
                self._accept()
        elif self.stage == "calibrated":
            loop, pos = self._now_clip()
            if loop > self.accept_loop or waited > 60.0:
                self._shot("after", self.window, "demo_after.png")
                self.window.add_marker("demo end")
                self._timer.stop()
                self.finished.emit("")

    def _on_result(self) -> None:
        self._shot("calibration", self.wizard, "demo_calibration.png")
        protocol = self.wizard.protocol
        calib = protocol.calibration
        spans = [s.t for s in calib.segments if len(s.t)]
        clock = ClipClock.of(self.lab)
        first = min(float(t[0]) for t in spans)
        last = max(float(t[-1]) for t in spans)
        loop_a, pos = clock.current(first)
        loop_b, end = clock.current(last)
        if loop_a != loop_b:  # the capture ran across the clip's restart: all of it is seen
            pos, end = clock.loop_start / clock.rate, clock.loop_end / clock.rate
        self.seen = (pos, end)
        outcome = protocol.outcome
        self.calibration = {
            "subject": self.subject_id,
            "train_cycles": len(calib.train_cycles),
            "holdout_cycles": 1,
            "captured_clip_s": [round(pos, 2), round(end, 2)],
            "finetune_s": round(float(outcome.seconds), 2),
            "epochs": int(outcome.epochs),
            "holdout_nmae_before": outcome.before.to_dict(),
            "holdout_nmae_after": outcome.after.to_dict(),
            "improved": bool(outcome.improved),
        }
        self.result_loop, _ = self._now_clip()
        self._goto("reviewing")

    def _accept(self) -> None:
        w = self.window
        self._shot("before", w, "demo_before.png")
        self.accept_loop, _ = self._now_clip()
        self.activated = self.wizard.result_page.activate.isChecked()
        self.wizard.accept()
        self.accepted_path = self.wizard.saved_path
        self.calibration["saved_model"] = self.accepted_path
        self.calibration["activated"] = self.activated
        if self.activated:
            self.tuned_id = w.session.model_id
            if self.tuned_id == self.base_id:
                raise StoryError("the adapted model was accepted but did not take over")
            w.add_marker("calibrated model takes over")
        else:
            w.add_marker("calibration not activated (not better on the held-back cycle)")
        self._goto("calibrated")

    def live_errors(self, window_s: float) -> dict:
        """Before/after errors (call after the recording was stopped)."""
        if self.session_path is None or self.seen is None or not self.tuned_id:
            return {}
        return before_after_errors(self.session_path, ClipClock.of(self.lab), self.seen,
                                   self.base_id, self.tuned_id, window_s)
