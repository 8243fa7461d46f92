"""`kneegui demo`: the simulated lab + the main window connected to it, the shipped
EMG + angle model predicting and publishing.

Headless it tells the product's story (:mod:`kneegui.gui.demo_story`): the shipped model on a
subject it never saw, the calibration wizard on the first gait cycles, the adapted model taking
over, and the live error before and after on walking the calibration did not see; it records
the session, saves screenshots (main window before / after, the wizard's results) and prints a
summary. ``duration_s`` instead runs a plain timed demo (no calibration). With a display it is
the normal app, with the wizard opened for the simulated subject."""

from __future__ import annotations

import json
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PySide6 import QtCore, QtWidgets

from kneegui.gui.app import make_app
from kneegui.gui.main_window import MainWindow
from kneegui.gui.streams_panel import Assignment
from kneegui.live.metrics import horizon_error, predicted_at_target

#: Input set of the model the demo uses by default.
DEMO_INPUT_SET = "emg+angle"


class DemoError(RuntimeError):
    """The demo could not start; the message says what to do."""


def default_model_path() -> Path:
    """The shipped emg+angle model in ``models/`` (weights file)."""
    from kneegui.model import shipped_model_path
    from kneegui.model.io import model_paths

    weights, card = model_paths(shipped_model_path(DEMO_INPUT_SET))
    if not (weights.is_file() and card.is_file()):
        raise DemoError(
            f"no shipped {DEMO_INPUT_SET} model at {weights}; train one with "
            "`kneegui train` or pass --model PATH"
        )
    return weights


def find_lab_streams(lab, timeout: float = 10.0) -> list:
    """Resolve the simulated lab's own streams by their source_id (never 'first EMG')."""
    from kneegui.acquisition.discovery import resolve_source_id

    infos = []
    deadline = time.monotonic() + timeout
    for source_id in lab.source_ids:
        left = max(0.5, deadline - time.monotonic())
        found = resolve_source_id(source_id, timeout=left)
        if not found:
            raise DemoError(
                f"the simulated lab's stream {source_id} did not appear on LSL within "
                f"{timeout:g} s; check LSLAPICFG ({_lsl_cfg()})"
            )
        infos.append(found[0])
    return infos


def _lsl_cfg() -> str:
    import os

    return os.environ.get("LSLAPICFG", "unset")


def lab_assignments(infos: list) -> list[Assignment]:
    """EMG -> EMG role (model channels RF, BF, VM, ST), angle -> knee angle."""
    from kneegui.gui.streams_panel import default_emg_picks, guess_role

    out = []
    for info in infos:
        role = guess_role(info)
        if role is None:
            continue
        picks = tuple(default_emg_picks(info.channel_labels)) if role == "EMG" else None
        out.append(Assignment(info, role, picks))
    return out


@dataclass
class DemoSummary:
    """What the headless demo prints (and writes as summary.json)."""

    duration_s: float
    streams: list[dict] = field(default_factory=list)
    predictions: int = 0
    published: int = 0
    inference_ms: dict = field(default_factory=dict)
    end_to_end_ms: dict = field(default_factory=dict)
    nmae: dict = field(default_factory=dict)
    mae_deg: dict = field(default_factory=dict)
    gui_frame_ms: dict = field(default_factory=dict)
    note: str = ""
    session: str | None = None
    session_check: dict = field(default_factory=dict)
    screenshot: str | None = None
    model: str = ""
    subject: str = ""
    model_state: str = ""
    calibration: dict = field(default_factory=dict)
    calibrated_model: str = ""
    live_error: dict = field(default_factory=dict)
    screenshots: dict = field(default_factory=dict)

    def text(self) -> str:
        who = f" (simulated subject {self.subject})" if self.subject else ""
        lines = [
            f"KneeGUI demo: {self.duration_s:.0f} s with the simulated lab{who}, "
            f"model {self.model}"
        ]
        if self.model_state:
            lines.append(f"  model state at start: {self.model_state}")
        for s in self.streams:
            lines.append(
                f"  stream {s['name']!r} ({s['role']}): {s['mean_rate']:.1f} Hz mean "
                f"(nominal {s['nominal_rate']:g}, last seconds {s['effective_rate']:.0f}), "
                f"{s['received']} samples, gaps {s['gaps']}, "
                f"outages {s['outages']}, clock offset {s['clock_offset_ms']:.2f} ms"
            )
        lines.append(
            f"  predictions: {self.predictions} (published on LSL by the last model: "
            f"{self.published})"
        )
        lines.append(
            f"  inference latency: median {self.inference_ms.get('median', float('nan')):.2f} ms, "
            f"p99 {self.inference_ms.get('p99', float('nan')):.2f} ms"
        )
        lines.append(
            "  end-to-end latency (sample time -> prediction): median "
            f"{self.end_to_end_ms.get('median', float('nan')):.1f} ms, "
            f"p99 {self.end_to_end_ms.get('p99', float('nan')):.1f} ms"
        )
        for h in ("1", "50"):
            if h in self.nmae:
                lines.append(
                    f"  NMAE at {h} step(s) ({int(h) * 10} ms) vs measured, whole run: "
                    f"{100 * self.nmae[h]:.1f} %  (MAE {self.mae_deg[h]:.2f}°)"
                )
        lines += self._calibration_lines()
        lines.append(
            f"  GUI frame interval: median {self.gui_frame_ms.get('median', float('nan')):.1f} ms,"
            f" p99 {self.gui_frame_ms.get('p99', float('nan')):.1f} ms"
        )
        if self.note:
            lines.append(f"  note: {self.note}")
        if self.session:
            chk = self.session_check
            lines.append(f"  session: {self.session}  {chk}")
        if self.screenshot:
            lines.append(f"  screenshot: {self.screenshot}")
        for key, path in self.screenshots.items():
            lines.append(f"  screenshot ({key}): {path}")
        return "\n".join(lines)

    def _calibration_lines(self) -> list[str]:
        c = self.calibration
        if not c:
            return []
        b, a = c["holdout_nmae_before"], c["holdout_nmae_after"]
        lines = [
            f"  calibration of {c['subject']}: {c['train_cycles']} gait cycles + 1 held back, "
            f"captured at clip {c['captured_clip_s'][0]:.1f}–{c['captured_clip_s'][1]:.1f} s, "
            f"fine-tuned in {c['finetune_s']:.1f} s; held-back cycle NMAE 10 ms "
            f"{100 * b['nmae_1']:.2f} -> {100 * a['nmae_1']:.2f} %, 500 ms "
            f"{100 * b['nmae_last']:.1f} -> {100 * a['nmae_last']:.1f} %",
        ]
        if c.get("activated"):
            lines.append(f"  accepted and activated: {self.calibrated_model}")
        else:
            lines.append("  not activated: the adapted model was not better on the held-back "
                         "cycle, the shipped model kept predicting")
        e = self.live_error
        if e.get("before") and e.get("after"):
            spans = ", ".join(f"{x:.1f}–{y:.1f}" for x, y in e["clip_spans_s"])
            lines.append(
                f"  live error on walking the calibration did not see (the same "
                f"{e['seconds_compared']:.1f} s of the clip before and after: {spans} s):"
            )
            for h in sorted(e["before"], key=int):
                if h in e["after"]:
                    eb, ea = e["before"][h], e["after"][h]
                    lines.append(
                        f"    {int(h):>3} ms ahead: NMAE {100 * eb['nmae']:5.2f} % -> "
                        f"{100 * ea['nmae']:5.2f} %   (MAE {eb['mae_deg']:.2f}° -> "
                        f"{ea['mae_deg']:.2f}°)"
                    )
        elif c.get("activated"):
            lines.append("  live error before/after: no unseen walking in common to compare")
        return lines


def _stats_ms(values: np.ndarray) -> dict:
    if values.size == 0:
        return {}
    return {
        "median": float(1000 * np.median(values)),
        "p99": float(1000 * np.percentile(values, 99)),
        "n": int(values.size),
    }


def summarise(window: MainWindow, duration_s: float) -> DemoSummary:
    """Collect the run's figures from the live session (call before disconnecting)."""
    session = window.session
    summary = DemoSummary(duration_s=duration_s, model=session.model_id)
    for s in session.state.streams:
        st = s.reader.status()
        _, ts = s.reader.latest(duration_s + 5.0)
        mean_rate = (len(ts) - 1) / (ts[-1] - ts[0]) if len(ts) > 1 and ts[-1] > ts[0] else 0.0
        summary.streams.append({
            "mean_rate": mean_rate,
            "name": s.info.name, "role": s.role.lower(), "source_id": s.info.source_id,
            "nominal_rate": s.info.nominal_srate, "effective_rate": st.effective_rate,
            "received": st.received, "gaps": st.gaps, "outages": st.outages,
            "clock_offset_ms": 1000 * st.clock_offset,
        })
    worker = session.worker
    if worker is not None:
        summary.predictions = worker.predictions
        summary.inference_ms = _stats_ms(worker.inference_latency.values())
        summary.end_to_end_ms = _stats_ms(worker.end_to_end_latency.values())
        pred_t, preds = session.prediction_snapshot(1e9)
        angle, ts = session.angle_snapshot(1e9)
        for h in (1, 50):
            if preds.shape[0] == 0 or preds.shape[1] < h:
                continue
            tgt_t, tgt_y = predicted_at_target(pred_t, preds, h, 1.0 / worker.model_rate)
            err = horizon_error(tgt_t, tgt_y, ts, angle)
            if err is not None:
                summary.nmae[str(h)] = err.nmae
                summary.mae_deg[str(h)] = err.mae
    if session.outlet is not None:
        summary.published = session.outlet.pushed
    summary.gui_frame_ms = _stats_ms(window.frame_intervals.values())
    return summary


def check_session(path: Path) -> dict:
    """Re-open the recorded file and count what it holds (proves the session is valid)."""
    from kneegui.recording import open_session

    with open_session(path) as session:
        preds = session.predictions
        return {
            "complete": bool(session.complete),
            "streams": {name: int(st.length) for name, st in session.streams.items()},
            "events": int(len(session.events)),
            "markers": [lab for _, lab, origin in session.events.as_list()
                        if origin == "operator"],
            "predictions": 0 if preds is None else int(len(preds.timestamps)),
        }


def in_sample_note(lab, loaded) -> str:
    """Whether the replayed subject was in the model's training data (figures in-sample)."""
    rec = lab.recording
    name = f"{rec.subject}{rec.exercise}"
    training = (loaded.card.training or {}) if loaded else {}
    if name in training.get("recordings", []) or rec.subject in training.get("subjects", []):
        return (f"the demo clip ({name}) is in this model's training data, so the NMAE above "
                "is in-sample; see `kneegui evaluate` for new-subject figures")
    return (f"the simulated subject ({rec.subject}, clip {name}) is not in the shipped model's "
            "training data: the figures are out-of-sample")


class DemoRun(QtCore.QObject):
    """Drives a timed headless demo from the Qt event loop."""

    def __init__(self, window: MainWindow, lab, duration_s: float, out_dir: Path) -> None:
        super().__init__()
        self.window = window
        self.lab = lab
        self.duration_s = duration_s
        self.out_dir = out_dir
        self.summary: DemoSummary | None = None
        self.error: str | None = None

    def start(self) -> None:
        panel = self.window.recording_panel
        panel.subject.setText("demo")
        panel.notes.setPlainText("kneegui demo: simulated lab replaying a UCI gait clip")
        panel.out_dir.setText(str(self.out_dir))
        path = self.window.start_recording(
            panel.out_dir.text(), panel.subject.text(), panel.notes.toPlainText()
        )
        if path is None:
            self.error = "; ".join(self.window.banners.messages().values()) or "recording failed"
            QtWidgets.QApplication.instance().quit()
            return
        QtCore.QTimer.singleShot(1000, lambda: self.window.add_marker("demo start"))
        QtCore.QTimer.singleShot(int(500 * self.duration_s),
                                 lambda: self.window.add_marker("demo halfway"))
        QtCore.QTimer.singleShot(int(1000 * self.duration_s), self.finish)

    def finish(self) -> None:
        try:
            self.window.add_marker("demo end")
            summary = summarise(self.window, self.duration_s)
            summary.note = in_sample_note(self.lab, self.window.session.loaded)
            png = self.out_dir / "demo.png"
            self.window.refresh()
            if not self.window.grab().save(str(png)):
                raise DemoError(f"could not write the screenshot {png}")
            summary.screenshot = str(png)
            path = self.window.stop_recording()
            if path is not None:
                summary.session = str(path)
                summary.session_check = check_session(path)
            self.summary = summary
        except Exception as exc:  # noqa: BLE001 - reported as the demo's error
            self.error = f"{type(exc).__name__}: {exc}"
        QtWidgets.QApplication.instance().quit()


def demo_subject(lab) -> str:
    """The simulated subject's id for the wizard and the recording (e.g. "UCI-4A")."""
    return f"UCI-{lab.recording.subject}"


def demo_store(out_dir: Path):
    """Subject models of the demo go to its output folder, never into the user's store."""
    from kneegui.calibration import SubjectModelStore

    return SubjectModelStore(root=Path(out_dir) / "subject_models")


def run_demo(
    duration_s: float | None = None,
    out_dir: Path = Path("demo_out"),
    model_path: Path | None = None,
    headless: bool = True,
    settings: QtCore.QSettings | None = None,
) -> int:
    """Run the demo; returns the process exit code. ``duration_s`` None = the story."""
    from kneegui.acquisition import SimulatedLab

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    model_path = Path(model_path) if model_path else default_model_path()
    app = make_app()
    if settings is None and headless:
        settings = QtCore.QSettings(str(out_dir / "demo_settings.ini"), QtCore.QSettings.IniFormat)
    # A per-run source_id keeps this demo apart from any other simulator on the machine.
    lab = SimulatedLab(source_id_prefix=f"kneegui-demo-{os.getpid()}", name_prefix="KneeGUI-Demo")
    lab.start()
    window = None
    try:
        infos = find_lab_streams(lab)
        window = MainWindow(settings=settings, model_store=demo_store(out_dir))
        if headless:
            window.resize(1920, 1080)
        window.streams_panel.set_streams(infos)
        if not window.connect_streams(lab_assignments(infos)):
            raise DemoError("; ".join(window.banners.messages().values()))
        if not window.load_model(str(model_path)):
            raise DemoError("; ".join(window.banners.messages().values()))
        window.set_publishing(True)
        window.show()
        if not headless:
            return _interactive(app, window, lab, out_dir)
        t0 = time.monotonic()
        if duration_s is not None:
            run = DemoRun(window, lab, duration_s, out_dir)
            QtCore.QTimer.singleShot(0, run.start)
            app.exec()
            error, summary = run.error, run.summary
        else:
            error, summary = _tell_story(app, window, lab, out_dir)
        if error or summary is None:
            print(f"kneegui demo: {error or 'no summary'}", file=sys.stderr)
            return 1
        summary.duration_s = time.monotonic() - t0
        print(summary.text())
        (out_dir / "summary.json").write_text(json.dumps(summary.__dict__, indent=2))
        return 0
    finally:
        if window is not None:
            window.close()
        lab.stop()


def _interactive(app, window: MainWindow, lab, out_dir: Path) -> int:
    """With a display: the app, plus the wizard opened for the simulated subject."""
    subject = demo_subject(lab)
    window.recording_panel.subject.setText(subject)
    window.banners.show_message(
        f"Demo: the simulated subject {subject} walks (a UCI gait recording the shipped model "
        "was not trained on). The model is pretrained, not calibrated to this subject: follow "
        "the calibration wizard (Model → Calibrate subject…, Ctrl+K) to adapt it on a few gait "
        f"cycles. Subject models of the demo are saved under {demo_store(out_dir).root}.",
        "info", key="demo",
    )

    def open_wizard() -> None:
        wizard = window.open_calibration()
        if wizard is not None:
            wizard.subject_page.subject_id.setText(subject)

    QtCore.QTimer.singleShot(1500, open_wizard)
    app.exec()
    return 0


def _tell_story(app, window: MainWindow, lab, out_dir: Path):
    """Headless story; returns (error, summary). The summary is taken before the event loop
    ends (quitting tears the live session down)."""
    from kneegui.gui.demo_story import CalibrationStory

    story = CalibrationStory(window, lab, out_dir, demo_subject(lab))
    state_at_start = window.model_state.text()
    outcome: dict = {"error": None, "summary": None}

    def done(error: str) -> None:
        try:
            if error:
                outcome["error"] = error
            else:
                outcome["summary"] = _story_summary(window, lab, story, state_at_start)
        except Exception as exc:  # noqa: BLE001 - reported as the demo's error
            outcome["error"] = f"{type(exc).__name__}: {exc}"
        app.quit()

    story.finished.connect(done)
    QtCore.QTimer.singleShot(0, story.start)
    app.exec()
    return outcome["error"], outcome["summary"]


def _story_summary(window: MainWindow, lab, story, state_at_start: str) -> DemoSummary:
    summary = summarise(window, 55.0)
    summary.nmae, summary.mae_deg = {}, {}  # the worker restarted: see live_error instead
    summary.subject = story.subject_id
    summary.model = story.base_id
    summary.model_state = state_at_start
    summary.note = in_sample_note(lab, window.session.loaded)
    summary.calibration = story.calibration
    summary.calibrated_model = story.tuned_id
    path = window.stop_recording()
    if path is not None:
        summary.session = str(path)
        summary.session_check = check_session(path)
        summary.predictions = summary.session_check["predictions"]  # both models, recorded
    card = window.session.loaded.card
    summary.live_error = story.live_errors(card.window / card.model_rate)
    summary.screenshots = dict(story.screenshots)
    return summary
