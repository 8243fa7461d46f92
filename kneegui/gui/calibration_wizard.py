"""The guided subject-calibration wizard (QWizard) over :mod:`kneegui.calibration`.

Use from the main window::

    wizard = CalibrationWizard(hub, model_store, active_model, session_writer=None, parent=self)
    wizard.modelAccepted.connect(lambda path: ...)   # load + activate the saved subject model
    wizard.open()                                    # non-modal; the app keeps running

* ``hub``: the running ``kneegui.acquisition.Hub`` (EMG + knee angle assigned);
* ``model_store``: a ``kneegui.calibration.SubjectModelStore`` (where the subject model goes);
* ``active_model``: the ``kneegui.model.LoadedModel`` to adapt (the model now predicting);
* ``session_writer``: the running ``kneegui.recording.SessionWriter`` or None; if given, the
  captured data and results are written under ``/calibration`` of the session file.

Signals: ``modelAccepted(str)`` - the saved model stem, emitted only when the operator accepts
*and* activates it (by default only if it beat the previous model on the held-back cycle);
``modelSaved(str, bool)`` - stem and whether it was activated (also for a kept-but-inactive
model). Cancel works on every page; the previous model is never touched unless accepted.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QSizePolicy,
    QSpinBox,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWizard,
    QWizardPage,
)

from kneegui.calibration import (
    CalibrationConfig,
    CalibrationProtocol,
    EventKind,
    ProtocolError,
    ProtocolEvent,
    Stage,
    SubjectInfo,
)
from kneegui.calibration.feeder import CapturePump, HubFrameSource
from kneegui.calibration.sensors import HubSensorCheck
from kneegui.calibration.session import write_calibration
from kneegui.gui.gc_guard import collect_on_gui_thread
from kneegui.gui.theme import STATUS_COLORS

PAGE_SUBJECT, PAGE_SENSORS, PAGE_BASELINE, PAGE_WALK, PAGE_TUNE, PAGE_RESULT = range(6)
REFRESH_MS = 33  # ~30 Hz
#: The before/after plot of the results page is at least this tall (pixels): readable.
RESULT_PLOT_MIN_HEIGHT = 260


def _light(status: str) -> str:
    color = STATUS_COLORS.get(status, STATUS_COLORS["none"])
    return f"<span style='color:{color}; font-size:18pt'>&#9679;</span>"


class SubjectPage(QWizardPage):
    def __init__(self, wizard: CalibrationWizard) -> None:
        super().__init__()
        self.w = wizard
        self.setTitle("Subject")
        self.setSubTitle("Who is calibrated? The id becomes part of the model's file name.")
        grid = QGridLayout(self)
        self.subject_id = QLineEdit()
        self.subject_id.setPlaceholderText("e.g. S01")
        self.group = QComboBox()
        self.group.addItems(["", "N (normal)", "A (knee abnormality)", "other"])
        self.notes = QPlainTextEdit()
        self.notes.setMaximumHeight(120)
        self.error = QLabel()
        self.error.setStyleSheet(f"color:{STATUS_COLORS['bad']}")
        grid.addWidget(QLabel("Subject id"), 0, 0)
        grid.addWidget(self.subject_id, 0, 1)
        grid.addWidget(QLabel("Group"), 1, 0)
        grid.addWidget(self.group, 1, 1)
        grid.addWidget(QLabel("Notes"), 2, 0)
        grid.addWidget(self.notes, 2, 1)
        grid.addWidget(self.error, 3, 0, 1, 2)
        grid.setRowStretch(4, 1)
        self.subject_id.textChanged.connect(self.completeChanged)

    def isComplete(self) -> bool:  # noqa: N802
        return bool(self.subject_id.text().strip())

    def validatePage(self) -> bool:  # noqa: N802
        try:
            group = self.group.currentText().split(" ")[0]
            info = SubjectInfo(self.subject_id.text().strip(), group, self.notes.toPlainText())
            self.w.protocol.start(info)
        except (ValueError, ProtocolError) as exc:
            self.error.setText(str(exc))
            return False
        return True


class SensorPage(QWizardPage):
    def __init__(self, wizard: CalibrationWizard) -> None:
        super().__init__()
        self.w = wizard
        self.setTitle("Sensor check")
        self.setSubTitle("Live quality of every EMG channel. A flat or saturated channel blocks "
                         "the calibration unless you override.")
        lay = QVBoxLayout(self)
        self.grid = QGridLayout()
        lay.addLayout(self.grid)
        self.lights: list[tuple[QLabel, QLabel]] = []
        self.summary = QLabel("Waiting for EMG…")
        self.override = QCheckBox("Override: continue with the bad channel(s)")
        self.override.toggled.connect(self.completeChanged)
        lay.addWidget(self.summary)
        lay.addWidget(self.override)
        lay.addStretch(1)
        self.blocking = True

    def show_checks(self, checks) -> None:
        while len(self.lights) < len(checks):
            light, text = QLabel(), QLabel()
            row = len(self.lights)
            self.grid.addWidget(light, row, 0)
            self.grid.addWidget(text, row, 1)
            self.lights.append((light, text))
        for (light, text), c in zip(self.lights, checks, strict=False):
            light.setText(_light(c.status))
            text.setText(f"{c.label}: {c.status}" + (f" - {c.reason}" if c.reason else ""))
        blocking = [c for c in checks if c.status == "bad"]
        was = self.blocking
        self.blocking = bool(blocking) or not checks
        self.summary.setText("Fix the red channel(s) or override." if blocking
                             else "All channels usable." if checks else "Waiting for EMG…")
        if was != self.blocking:
            self.completeChanged.emit()

    def isComplete(self) -> bool:  # noqa: N802
        return not self.blocking or self.override.isChecked()

    def validatePage(self) -> bool:  # noqa: N802
        try:
            self.w.protocol.confirm_sensors(override=self.override.isChecked())
        except ProtocolError as exc:
            self.summary.setText(str(exc))
            return False
        return True


class BaselinePage(QWizardPage):
    def __init__(self, wizard: CalibrationWizard) -> None:
        super().__init__()
        self.w = wizard
        self.setTitle("Optional: rest and MVC")
        self.setSubTitle("Record a rest baseline and/or a maximum voluntary contraction, or just "
                         "continue. Values are stored with the subject model.")
        lay = QVBoxLayout(self)
        self.seconds = QSpinBox()
        self.seconds.setRange(1, 30)
        self.seconds.setValue(5)
        self.seconds.setSuffix(" s")
        row = QHBoxLayout()
        self.rest_btn = QPushButton("Record rest")
        self.mvc_btn = QPushButton("Record MVC")
        row.addWidget(QLabel("Duration"))
        row.addWidget(self.seconds)
        row.addWidget(self.rest_btn)
        row.addWidget(self.mvc_btn)
        lay.addLayout(row)
        self.status = QLabel("Skip by pressing Next.")
        lay.addWidget(self.status)
        lay.addStretch(1)
        self.rest_btn.clicked.connect(lambda: self._record("rest"))
        self.mvc_btn.clicked.connect(lambda: self._record("mvc"))
        self._until = 0.0

    def _record(self, kind: str) -> None:
        self.w.protocol.begin_baseline(kind)
        self._until = time.monotonic() + self.seconds.value()
        self.status.setText(f"Recording {kind}…" + (" relax completely." if kind == "rest"
                                                    else " contract as hard as possible."))
        self.rest_btn.setEnabled(False)
        self.mvc_btn.setEnabled(False)
        QTimer.singleShot(int(self.seconds.value() * 1000), lambda: self._finish(kind))

    def _finish(self, kind: str) -> None:
        try:
            values = self.w.protocol.end_baseline()
            self.status.setText(f"{kind}: " + ", ".join(f"{v:.4g}" for v in values))
        except ProtocolError as exc:
            self.status.setText(str(exc))
        self.rest_btn.setEnabled(True)
        self.mvc_btn.setEnabled(True)

    def validatePage(self) -> bool:  # noqa: N802
        self.w.protocol.start_capture()
        return True


class WalkPage(QWizardPage):
    def __init__(self, wizard: CalibrationWizard) -> None:
        super().__init__()
        self.w = wizard
        self.setTitle("Walking")
        lay = QVBoxLayout(self)
        self.cue = QLabel("Walk at a comfortable, steady pace.")
        self.cue.setStyleSheet("font-size:16pt; font-weight:bold")
        self.counter = QLabel()
        self.counter.setStyleSheet("font-size:14pt")
        self.target = QSpinBox()
        self.target.setRange(1, 50)
        self.target.setValue(wizard.protocol.config.train_cycles)
        self.target.setPrefix("target: ")
        self.target.setSuffix(" cycles for adaptation (+1 held back)")
        self.target.valueChanged.connect(self._set_target)
        self.hint = QLabel()
        self.hint.setWordWrap(True)
        self.hint.setStyleSheet(f"color:{STATUS_COLORS['warn']}")
        self.plot = pg.PlotWidget(background="w")
        self.plot.setLabel("left", "knee flexion (°)")
        self.plot.setLabel("bottom", "time relative to now", units="s")
        self.curve = self.plot.plot(pen=pg.mkPen("#222", width=2))
        self.retry = QPushButton("Retry capture")
        self.retry.hide()
        self.retry.clicked.connect(self._retry)
        lay.addWidget(self.cue)
        row = QHBoxLayout()
        row.addWidget(self.counter, 1)
        row.addWidget(self.target)
        lay.addLayout(row)
        lay.addWidget(self.plot, 1)
        lay.addWidget(self.hint)
        lay.addWidget(self.retry)
        self.done = False

    def initializePage(self) -> None:  # noqa: N802
        self.update_counter()

    def update_counter(self) -> None:
        p = self.w.protocol
        cap = p.capture
        train = 0 if cap is None else len(cap.train)
        held = 0 if cap is None or cap.holdout is None else 1
        self.counter.setText(
            f"Gait cycles: {train} / {p.config.train_cycles} for adaptation, "
            f"{held} / 1 held back for validation   ({p.capture_seconds:.0f} s)"
        )

    def _set_target(self, value: int) -> None:
        try:
            self.w.protocol.set_train_cycles(value)
        except ProtocolError as exc:
            self.show_hint(str(exc), "warn")
            self.target.blockSignals(True)
            self.target.setValue(self.w.protocol.config.train_cycles)
            self.target.blockSignals(False)
        self.update_counter()

    def refresh(self, t: np.ndarray, angle: np.ndarray) -> None:
        if len(t):
            self.curve.setData(t - t[-1], angle)
        self.update_counter()
        cap = self.w.protocol.capture
        self.target.setEnabled(cap is None or cap.holdout is None)

    def show_hint(self, text: str, color: str = "warn") -> None:
        self.hint.setStyleSheet(f"color:{STATUS_COLORS[color]}")
        self.hint.setText(text)

    def no_gait(self, text: str) -> None:
        self.show_hint(text, "bad")
        self.retry.show()

    def _retry(self) -> None:
        self.retry.hide()
        self.hint.setText("")
        self.w.protocol.retry_capture()

    def isComplete(self) -> bool:  # noqa: N802
        return self.done


class TunePage(QWizardPage):
    def __init__(self, wizard: CalibrationWizard) -> None:
        super().__init__()
        self.w = wizard
        self.setTitle("Adapting the model")
        self.setSubTitle("Runs in the background; the live signals keep updating. Cancel any time.")
        lay = QVBoxLayout(self)
        self.bar = QProgressBar()
        self.bar.setRange(0, 0)
        self.status = QLabel("Starting…")
        self.loss = pg.PlotWidget(background="w")
        self.loss.setLabel("left", "loss (MSE, normalised)")
        self.loss.setLabel("bottom", "epoch")
        self.loss.addLegend()
        self.train_curve = self.loss.plot(pen=pg.mkPen("#0072B2", width=2), name="training")
        self.val_curve = self.loss.plot(pen=pg.mkPen("#D55E00", width=2), name="validation")
        self.live = pg.PlotWidget(background="w")
        self.live.setLabel("left", "knee flexion, live (°)")
        self.live_curve = self.live.plot(pen=pg.mkPen("#222", width=1))
        self.cancel_btn = QPushButton("Cancel fine-tuning")
        self.cancel_btn.clicked.connect(wizard.reject)
        lay.addWidget(self.bar)
        lay.addWidget(self.status)
        lay.addWidget(self.loss, 2)
        lay.addWidget(self.live, 1)
        lay.addWidget(self.cancel_btn)
        self.epochs: list[float] = []
        self.train_loss: list[float] = []
        self.val_loss: list[float] = []
        self.done = False

    def progress(self, data: dict) -> None:
        self.epochs.append(data["epoch"])
        self.train_loss.append(data["train_loss"])
        self.val_loss.append(data["val_loss"])
        self.train_curve.setData(self.epochs, self.train_loss)
        self.val_curve.setData(self.epochs, self.val_loss)
        self.status.setText(f"epoch {data['epoch']}: training {data['train_loss']:.4f}, "
                            f"validation {data['val_loss']:.4f}")

    def refresh(self, t: np.ndarray, angle: np.ndarray) -> None:
        if len(t):
            self.live_curve.setData(t - t[-1], angle)

    def isComplete(self) -> bool:  # noqa: N802
        return self.done


class ResultPage(QWizardPage):
    def __init__(self, wizard: CalibrationWizard) -> None:
        super().__init__()
        self.w = wizard
        self.setTitle("Results on the held-back cycle")
        self.setSubTitle("This cycle was not used for adaptation. Accept saves the subject model; "
                         "Reject keeps the previous model.")
        lay = QVBoxLayout(self)
        self.verdict = QLabel()
        self.verdict.setWordWrap(True)
        self.table = QTableWidget(5, 3)
        self.table.setHorizontalHeaderLabels(["before", "after", "change"])
        # As tall as its four rows, no more: the plot below gets the rest of the page.
        self.table.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.table.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.table.setSizeAdjustPolicy(QTableWidget.SizeAdjustPolicy.AdjustToContents)
        self.table.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Fixed)
        self.table.setSelectionMode(QTableWidget.SelectionMode.NoSelection)
        self.table.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.plot = pg.PlotWidget(background="w")
        self.plot.setMinimumHeight(RESULT_PLOT_MIN_HEIGHT)
        self.plot.setLabel("left", "knee flexion (°)")
        self.plot.setLabel("bottom", "time in the held-back cycle", units="s")
        self.plot.addLegend(offset=(10, 5))
        self.activate = QCheckBox("Activate the adapted model")
        lay.addWidget(self.verdict)
        lay.addWidget(self.table)
        lay.addWidget(self.plot, 1)
        lay.addWidget(self.activate)
        self.setFinalPage(True)
        self.setButtonText(QWizard.WizardButton.FinishButton, "Accept")

    def initializePage(self) -> None:  # noqa: N802
        outcome = self.w.protocol.outcome
        if outcome is None:
            self.verdict.setText(self.w.protocol.error or "No result.")
            return
        h = len(outcome.after.nmae)
        step_ms = 1000.0 / float(getattr(self.w.active_model.card, "model_rate", 100))
        first, last = f"{step_ms:.0f} ms", f"{h * step_ms:.0f} ms"
        b, a = outcome.before, outcome.after
        rows = [
            (f"mean NMAE {first}–{last} (decides)", b.mean_nmae * 100, a.mean_nmae * 100, "%"),
            (f"NMAE {first} ahead", b.nmae_1 * 100, a.nmae_1 * 100, "%"),
            (f"NMAE {last} ahead", b.nmae_last * 100, a.nmae_last * 100, "%"),
            (f"MAE {first} ahead", b.mae_1, a.mae_1, "°"),
            (f"MAE {last} ahead", b.mae_last, a.mae_last, "°"),
        ]
        self.table.setRowCount(len(rows))
        self.table.setVerticalHeaderLabels([r[0] for r in rows])
        for i, (_, b, a, unit) in enumerate(rows):
            for j, text in enumerate((f"{b:.2f}{unit}", f"{a:.2f}{unit}", f"{a - b:+.2f}{unit}")):
                self.table.setItem(i, j, QTableWidgetItem(text))
        self.table.resizeColumnsToContents()
        self.table.setFixedHeight(
            self.table.horizontalHeader().height()
            + sum(self.table.rowHeight(r) for r in range(self.table.rowCount()))
            + 2 * self.table.frameWidth()
        )
        color = "ok" if outcome.improved else "bad"
        self.verdict.setStyleSheet(f"color:{STATUS_COLORS[color]}; font-weight:bold")
        self.verdict.setText(outcome.summary())
        self.activate.setChecked(self.w.protocol.recommend_activation)
        tr = outcome.trace
        if tr is not None and len(tr.t):
            t = tr.t - tr.t[0]
            ms = tr.horizon * 1000.0 / float(getattr(self.w.active_model.card, "model_rate", 100))
            self.plot.plot(t, tr.measured, pen=pg.mkPen("#222", width=2), name="measured")
            self.plot.plot(t, tr.before, pen=pg.mkPen("#777", width=2, style=Qt.PenStyle.DashLine),
                           name=f"before: predicted {ms:.0f} ms ahead")
            self.plot.plot(t, tr.after, pen=pg.mkPen("#D55E00", width=2),
                           name=f"after: predicted {ms:.0f} ms ahead")


class CalibrationWizard(QWizard):
    """Subject, sensors, optional rest/MVC, walking, fine-tune, results (see module doc)."""

    modelAccepted = Signal(str)  # noqa: N815 - Qt signal naming
    modelSaved = Signal(str, bool)  # noqa: N815
    _protocol_event = Signal(object)

    def __init__(
        self,
        hub: Any,
        model_store: Any,
        active_model: Any,
        session_writer: Any = None,
        parent: Any = None,
        config: CalibrationConfig | None = None,
    ) -> None:
        super().__init__(parent)
        collect_on_gui_thread()  # the fine-tune thread must never destroy Qt objects
        self.setWindowTitle("Calibrate a subject")
        self.setWizardStyle(QWizard.WizardStyle.ClassicStyle)
        self.resize(960, 700)
        self.setOption(QWizard.WizardOption.NoBackButtonOnStartPage, True)
        self.setOption(QWizard.WizardOption.NoBackButtonOnLastPage, True)
        self.hub = hub
        self.store = model_store
        self.active_model = active_model
        self.session_writer = session_writer
        self.saved_path: str | None = None
        self.frame_times: list[float] = []  # GUI refresh timestamps (for the benchmark)
        self._protocol_event.connect(self._on_event, Qt.ConnectionType.QueuedConnection)
        self.protocol = CalibrationProtocol(
            active_model, config=config or CalibrationConfig(), on_event=self._protocol_event.emit
        )
        self.protocol.warm_up()  # torch's lazy init now, not while plots animate
        self.pump = CapturePump(HubFrameSource(hub), self.protocol)
        self.sensors = HubSensorCheck(hub)
        self.subject_page = SubjectPage(self)
        self.sensor_page = SensorPage(self)
        self.baseline_page = BaselinePage(self)
        self.walk_page = WalkPage(self)
        self.tune_page = TunePage(self)
        self.result_page = ResultPage(self)
        for pid, page in enumerate((self.subject_page, self.sensor_page, self.baseline_page,
                                    self.walk_page, self.tune_page, self.result_page)):
            self.setPage(pid, page)
        self.setButtonText(QWizard.WizardButton.CustomButton1, "Reject")
        self.setButtonLayout([
            QWizard.WizardButton.Stretch, QWizard.WizardButton.CustomButton1,
            QWizard.WizardButton.NextButton, QWizard.WizardButton.FinishButton,
            QWizard.WizardButton.CancelButton,
        ])
        self.customButtonClicked.connect(self._on_reject_clicked)
        self.currentIdChanged.connect(self._on_page)
        self._on_page(PAGE_SUBJECT)
        self.timer = QTimer(self)
        self.timer.setInterval(REFRESH_MS)
        self.timer.timeout.connect(self._refresh)
        self.timer.start()

    # -- periodic refresh (GUI thread) ------------------------------------------------------
    def _refresh(self) -> None:
        self.frame_times.append(time.perf_counter())
        page = self.currentId()
        try:
            if page == PAGE_SENSORS and self.protocol.stage == Stage.SENSOR_CHECK:
                checks = self.sensors.poll()
                if checks:
                    self.protocol.update_quality(checks)
                    self.sensor_page.show_checks(checks)
            else:
                self.pump.poll()
        except Exception as exc:  # noqa: BLE001 - show, never crash the app from a timer
            self.walk_page.show_hint(f"error: {exc}", "bad")
            return
        t, angle, _ = self.pump.recent()
        if page == PAGE_WALK:
            self.walk_page.refresh(t, angle)
        elif page == PAGE_TUNE:
            self.tune_page.refresh(t, angle)

    # -- protocol events (always delivered on the GUI thread) -----------------------------------
    def _on_event(self, ev: ProtocolEvent) -> None:
        kind = ev.kind
        if kind == EventKind.CYCLE:
            self.walk_page.show_hint(ev.message, "ok")
        elif kind in (EventKind.NO_GAIT_HINT, EventKind.PAUSED):
            self.walk_page.show_hint(ev.message, "warn")
        elif kind == EventKind.RESUMED:
            self.walk_page.show_hint(ev.message, "ok")
        elif kind == EventKind.NO_GAIT:
            self.walk_page.no_gait(ev.message)
        elif kind == EventKind.FINETUNE_PROGRESS:
            self.tune_page.progress(ev.data)
        elif kind == EventKind.ERROR:
            self.tune_page.status.setText(ev.message)
            self.tune_page.bar.setRange(0, 1)
        elif kind == EventKind.STAGE:
            self._on_stage(ev.data["stage"])

    def _on_stage(self, stage: Stage) -> None:
        if stage == Stage.FINETUNE and self.currentId() == PAGE_WALK:
            self.walk_page.done = True
            self.walk_page.completeChanged.emit()
            self.next()
        elif stage == Stage.VALIDATION and self.currentId() == PAGE_TUNE:
            self.tune_page.done = True
            self.tune_page.bar.setRange(0, 1)
            self.tune_page.bar.setValue(1)
            self.tune_page.completeChanged.emit()
            self.next()

    def _on_page(self, page_id: int) -> None:
        self.button(QWizard.WizardButton.CustomButton1).setVisible(page_id == PAGE_RESULT)

    # -- decisions ------------------------------------------------------------------------------
    def accept(self) -> None:
        """Accept: save the subject model (activate it if the box is ticked), record, close."""
        if self.protocol.stage == Stage.VALIDATION:
            activate = self.result_page.activate.isChecked()
            try:
                path = self.protocol.accept(self.store, activate=activate)
            except Exception as exc:  # noqa: BLE001 - keep the wizard open, say what failed
                self.result_page.verdict.setText(f"Saving failed: {exc}")
                return
            self.saved_path = path
            self._record()
            self.modelSaved.emit(path, activate)
            if activate:
                self.modelAccepted.emit(path)
        self.timer.stop()
        super().accept()

    def _on_reject_clicked(self, which: int) -> None:
        if self.protocol.stage == Stage.VALIDATION:
            self.protocol.reject()
            self._record()
        self.timer.stop()
        super().reject()

    def reject(self) -> None:
        """Cancel at any page: stop a running fine-tune (<= 1 s), nothing is saved."""
        self.protocol.cancel()
        self.protocol.wait(1.0)
        self._record()
        self.timer.stop()
        super().reject()

    def _record(self) -> None:
        if self.session_writer is not None:
            try:
                write_calibration(self.session_writer, self.protocol)
            except Exception as exc:  # noqa: BLE001 - recording trouble must not lose the model
                self.result_page.verdict.setText(f"Could not write /calibration: {exc}")
