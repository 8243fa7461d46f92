"""The operator's main window: streams, live EMG, measured vs predicted knee angle, model,
recording, banners and a status bar. Reads snapshots on a timer; never blocks."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
from PySide6 import QtCore, QtGui, QtWidgets

from kneegui.gui.about import show_about
from kneegui.gui.banners import BannerArea
from kneegui.gui.emg_plot import EmgStackPlot
from kneegui.gui.gc_guard import collect_on_gui_thread
from kneegui.gui.knee_view import KneeView
from kneegui.gui.model_panel import ModelPanel, model_choices
from kneegui.gui.model_state import ModelState, model_state
from kneegui.gui.recording_panel import QUICK_MARKERS, RecordingPanel
from kneegui.gui.settings_dialog import DisplaySettings, SettingsDialog
from kneegui.gui.streams_panel import StreamsPanel
from kneegui.gui.theme import MODEL_STATE_STYLES
from kneegui.gui.window_actions import build_menus, build_status_bar, build_toolbar
from kneegui.live.metrics import RollingStats
from kneegui.live.session import DISPLAY_MODES, LiveSession


def default_session() -> LiveSession:
    """The window's session: the sample path in a predictor process of its own
    (:class:`kneegui.live.remote.RemoteSession`), or in this process with
    ``KNEEGUI_IN_PROCESS=1`` (debugging, measurements)."""
    import os

    if os.environ.get("KNEEGUI_IN_PROCESS") == "1":
        return LiveSession()
    from kneegui.live.remote import RemoteSession

    return RemoteSession()


#: Seconds between updates of the status bar, quality badges and banners (2 Hz).
STATUS_PERIOD_S = 0.5
#: Below this window height (e.g. a 1366x768 laptop) the Model and Recording panels share one
#: tabbed dock, so that the stream tables stay in view (unless the user arranged the docks).
TAB_DOCKS_BELOW_PX = 900


def _fmt_ms(value: float | None) -> str:
    return "—" if value is None else f"{1000 * value:.1f}"


def outage_text(name: str, recording: bool) -> str:
    """The banner shown while a connected stream sends nothing."""
    tail = ("the outage is marked in the recording" if recording
            else "nothing is being recorded")
    return (f"Stream “{name}” stopped sending (sender outage). Waiting for it to come back; "
            f"{tail}.")


def _discover(timeout: float) -> list:
    from kneegui.acquisition import discover

    return discover(timeout=timeout)


class VerticalScroll(QtWidgets.QScrollArea):
    """A dock's content that scrolls vertically when the screen is short, but is never
    narrower than its content (a table column must not hide behind a scrollbar)."""

    def __init__(self, widget: QtWidgets.QWidget) -> None:
        super().__init__()
        self.setWidget(widget)
        self.setWidgetResizable(True)
        self.setFrameShape(QtWidgets.QFrame.NoFrame)
        self.setHorizontalScrollBarPolicy(QtCore.Qt.ScrollBarAlwaysOff)
        widget.installEventFilter(self)

    def eventFilter(self, obj, event) -> bool:  # noqa: N802 - Qt override
        if event.type() == QtCore.QEvent.LayoutRequest:
            self.updateGeometry()  # e.g. a table asked for more width: the dock follows
        return super().eventFilter(obj, event)

    def minimumSizeHint(self) -> QtCore.QSize:  # noqa: N802 - Qt override
        inner = self.widget().minimumSizeHint()
        return QtCore.QSize(inner.width() + self.verticalScrollBar().sizeHint().width(), 80)

    def sizeHint(self) -> QtCore.QSize:  # noqa: N802 - Qt override
        inner = self.widget().sizeHint()
        return QtCore.QSize(inner.width() + self.verticalScrollBar().sizeHint().width(),
                            inner.height())


class MainWindow(QtWidgets.QMainWindow):
    """KneeGUI main window. ``settings`` (QSettings) lets tests keep the user's config clean."""

    def __init__(
        self,
        session: LiveSession | None = None,
        settings: QtCore.QSettings | None = None,
        discover_fn=_discover,
        model_store=None,
    ) -> None:
        super().__init__()
        collect_on_gui_thread()  # the live pipeline's threads must never destroy Qt objects
        self.setWindowTitle("KneeGUI — live knee-angle prediction")
        self.session = session if session is not None else default_session()
        self.qsettings = settings or QtCore.QSettings("KneeGUI", "KneeGUI")
        self.display = DisplaySettings()
        self.mode = "filtered"
        self.frame_intervals = RollingStats(4000)
        self.refresh_times = RollingStats(4000)  # seconds of work per timer tick
        self._last_frame: float | None = None
        self._last_status = 0.0
        self._outages: set[str] = set()
        self._shown_errors: set[str] = set()
        self._settings_dialog: SettingsDialog | None = None
        self._about = None
        # kneegui.calibration.SubjectModelStore: shipped + subject models for the selector
        self._model_store = model_store
        self.event_log: list = []
        self._emg_layout: tuple | None = None

        # -- central: banners + plots ----------------------------------------------------
        self.banners = BannerArea()
        self.emg_plot = EmgStackPlot(window_s=self.display.window_s)
        self.knee_view = KneeView(window_s=self.display.window_s)
        # The model state sits right above the predictions it qualifies.
        self.model_strip = QtWidgets.QLabel()
        self.model_strip.setObjectName("model_strip")
        self.model_strip.setWordWrap(True)
        self.model_strip.setSizePolicy(QtWidgets.QSizePolicy.Ignored,
                                       QtWidgets.QSizePolicy.Minimum)
        self.model_strip.setTextFormat(QtCore.Qt.RichText)
        self.model_state = ModelState("none", "", "")
        knee_box = QtWidgets.QWidget()
        knee_lay = QtWidgets.QVBoxLayout(knee_box)
        knee_lay.setContentsMargins(0, 0, 0, 0)
        knee_lay.setSpacing(2)
        knee_lay.addWidget(self.model_strip)
        knee_lay.addWidget(self.knee_view, 1)
        self.plot_splitter = QtWidgets.QSplitter(QtCore.Qt.Vertical)
        self.plot_splitter.addWidget(self.emg_plot)
        self.plot_splitter.addWidget(knee_box)
        self.plot_splitter.setStretchFactor(0, 3)
        self.plot_splitter.setStretchFactor(1, 2)
        central = QtWidgets.QWidget()
        lay = QtWidgets.QVBoxLayout(central)
        lay.setContentsMargins(4, 4, 4, 0)
        lay.addWidget(self.banners)
        lay.addWidget(self.plot_splitter, 1)
        self.setCentralWidget(central)

        # -- docks -----------------------------------------------------------------------
        self.streams_panel = StreamsPanel(discover_fn)
        self.model_panel = ModelPanel()
        self.recording_panel = RecordingPanel()
        self.docks = {}
        for key, title, widget in (
            ("streams", "Streams", self.streams_panel),
            ("model", "Model", self.model_panel),
            ("recording", "Recording", self.recording_panel),
        ):
            dock = QtWidgets.QDockWidget(title, self)
            dock.setObjectName(f"dock_{key}")
            dock.setWidget(VerticalScroll(widget))  # fits 1366x768: the panels scroll
            dock.setFeatures(
                QtWidgets.QDockWidget.DockWidgetMovable | QtWidgets.QDockWidget.DockWidgetFloatable
            )
            self.addDockWidget(QtCore.Qt.LeftDockWidgetArea, dock)
            self.docks[key] = dock
        self.resizeDocks([self.docks["streams"]], [520], QtCore.Qt.Horizontal)
        self._auto_docks = True  # False once a saved dock layout is restored
        self._docks_tabbed = False

        build_toolbar(self)
        build_menus(self)
        build_status_bar(self)
        self._connect_signals()
        self._restore_settings()
        self.reload_models()
        self.update_model_state()

        self.timer = QtCore.QTimer(self)
        self.timer.setTimerType(QtCore.Qt.PreciseTimer)
        self.timer.timeout.connect(self.refresh)
        self.timer.start(int(1000 / self.display.refresh_hz))

    def _connect_signals(self) -> None:
        self.mode_combo.currentIndexChanged.connect(self._mode_changed)
        self.window_spin.valueChanged.connect(self._window_changed)
        self.horizon_spin.valueChanged.connect(self._horizon_changed)
        self.publish_action.toggled.connect(self.model_panel.publish.setChecked)
        self.streams_panel.connect_requested.connect(self.connect_streams)
        self.recording_panel.subject.textChanged.connect(lambda _t: self.update_model_state())
        self.streams_panel.disconnect_requested.connect(self.disconnect_streams)
        self.streams_panel.discovery_failed.connect(
            lambda msg: self.banners.show_message(msg, "error", key="discovery")
        )
        # the operator's choice becomes the store's active model (as `kneegui calibrate` does)
        self.model_panel.load_requested.connect(lambda path: self.load_model(path, activate=True))
        self.model_panel.publish_toggled.connect(self.set_publishing)
        self.recording_panel.record_requested.connect(self.start_recording)
        self.recording_panel.stop_requested.connect(self.stop_recording)
        self.recording_panel.marker_requested.connect(self.add_marker)

    # ---------------------------------------------------------------- settings persistence
    def _restore_settings(self) -> None:
        s = self.qsettings
        geometry = s.value("window/geometry")
        if geometry is not None:
            self.restoreGeometry(geometry)
        else:
            self.resize(1600, 950)
        state = s.value("window/state")
        if state is not None and self.restoreState(state):
            self._auto_docks = False  # the user's own arrangement
        sizes = s.value("window/splitter")
        if sizes is not None:
            self.plot_splitter.restoreState(sizes)
        self.display.window_s = float(s.value("display/window_s", self.display.window_s))
        self.display.refresh_hz = int(s.value("display/refresh_hz", self.display.refresh_hz))
        for key in self.display.filter:
            stored = s.value(f"filter/{key}")
            if stored is None:
                continue
            if key == "mains":
                self.display.filter[key] = None if stored in ("none", "") else float(stored)
            elif key in ("order", "harmonics"):
                self.display.filter[key] = int(stored)
            else:
                self.display.filter[key] = float(stored)
        self.mode = str(s.value("display/mode", self.mode))
        self.mode_combo.setCurrentIndex(max(0, DISPLAY_MODES.index(self.mode)
                                            if self.mode in DISPLAY_MODES else 1))
        self.window_spin.setValue(self.display.window_s)
        self.horizon_spin.setValue(int(s.value("display/horizon", 50)))
        self._horizon_changed(self.horizon_spin.value())
        rp = self.recording_panel
        rp.subject.setText(str(s.value("recording/subject", "")))
        rp.out_dir.setText(str(s.value("recording/out_dir", rp.out_dir.text())))
        self._apply_filter(self.display.filter, quiet=True)

    def save_settings(self) -> None:
        s = self.qsettings
        s.setValue("window/geometry", self.saveGeometry())
        s.setValue("window/state", self.saveState())
        s.setValue("window/splitter", self.plot_splitter.saveState())
        s.setValue("display/window_s", self.display.window_s)
        s.setValue("display/refresh_hz", self.display.refresh_hz)
        s.setValue("display/mode", self.mode)
        s.setValue("display/horizon", self.horizon_spin.value())
        for key, value in self.display.filter.items():
            s.setValue(f"filter/{key}", "none" if value is None else value)
        s.setValue("recording/subject", self.recording_panel.subject.text())
        s.setValue("recording/out_dir", self.recording_panel.out_dir.text())
        if self.session.state.model_path is not None:
            s.setValue("model/path", str(self.session.state.model_path))
        s.setValue("model/publish", self.model_panel.publish.isChecked())
        s.sync()

    def resizeEvent(self, event: QtGui.QResizeEvent) -> None:  # noqa: N802 - Qt override
        super().resizeEvent(event)
        self._arrange_docks()

    def _arrange_docks(self) -> None:
        """Short windows: Model and Recording as tabs of one dock (Recording in front; the
        model state stays visible above the knee plot and in the status bar)."""
        tab = self.height() < TAB_DOCKS_BELOW_PX
        if not self._auto_docks or tab == self._docks_tabbed:
            return
        model, rec = self.docks["model"], self.docks["recording"]
        if tab:
            self.tabifyDockWidget(model, rec)
            rec.raise_()
            streams = self.docks["streams"]
            want = streams.widget().widget().sizeHint().height() + 30
            self.resizeDocks([streams, rec], [want, max(200, self.height() - want)],
                             QtCore.Qt.Vertical)
        else:
            self.removeDockWidget(rec)
            self.addDockWidget(QtCore.Qt.LeftDockWidgetArea, rec)
            rec.show()
        self._docks_tabbed = tab

    def closeEvent(self, event: QtGui.QCloseEvent) -> None:  # noqa: N802 - Qt override
        self.timer.stop()
        self.save_settings()
        self.session.close()
        super().closeEvent(event)

    # ---------------------------------------------------------------- display controls
    def _mode_changed(self, index: int) -> None:
        self.mode = self.mode_combo.itemData(index)
        self.emg_plot.reset_ranges()

    def _window_changed(self, seconds: float) -> None:
        self.display.window_s = float(seconds)
        self.emg_plot.set_window(seconds)
        self.knee_view.set_window(seconds)

    def _horizon_changed(self, steps: int) -> None:
        step_s = 1.0 / self.session.model_rate
        self.knee_view.set_horizon(steps, step_s)
        self.horizon_ms.setText(f" = {steps * step_s * 1000:.0f} ms ahead ")

    def open_settings(self) -> SettingsDialog:
        """Open the (non-modal) filter/display settings dialog."""
        emg = self.session.stream("EMG")
        nyquist = emg.info.nominal_srate / 2 if emg and emg.info.nominal_srate else None
        dlg = SettingsDialog(self.display, nyquist, self)
        dlg.applied.connect(self.apply_display_settings)
        dlg.setModal(False)
        dlg.show()
        self._settings_dialog = dlg
        return dlg

    def apply_display_settings(self, new: DisplaySettings) -> None:
        self.display.refresh_hz = new.refresh_hz
        self.timer.setInterval(int(1000 / new.refresh_hz))
        self.window_spin.setValue(new.window_s)
        self._apply_filter(new.filter)

    def _apply_filter(self, values: dict, quiet: bool = False) -> None:
        try:
            self.session.set_filter(values)
        except Exception as exc:  # noqa: BLE001 - invalid values are reported, not fatal
            self.banners.show_message(
                f"Filter settings not applied: {exc}. Open Settings (Ctrl+,) and correct them.",
                "error", key="filter",
            )
            return
        self.display.filter = dict(values)
        self.emg_plot.reset_ranges()
        if not quiet:
            f = values
            mains = "off" if f["mains"] is None else f"{f['mains']:g} Hz"
            self.banners.show_message(
                f"Filter applied: {f['low']:g}–{f['high']:g} Hz band-pass, mains notch {mains}, "
                f"envelope {f['envelope_cutoff']:g} Hz.", "info", key="filter", timeout_s=4,
            )

    # ---------------------------------------------------------------- streams
    def connect_streams(self, assignments: list) -> bool:
        try:
            self.session.connect(assignments)
        except Exception as exc:  # noqa: BLE001 - role/format problems come with a message
            self.banners.show_message(f"Could not connect: {exc}", "error", key="connect")
            self.streams_panel.set_connected(False)
            return False
        self.banners.dismiss("connect")
        self.streams_panel.set_connected(True, assignments)
        self._emg_layout = None  # rebuilt on the next frame for the current mode
        self.knee_view.reset_range()
        self._outages.clear()
        self.update_model_state()
        return True

    def disconnect_streams(self) -> None:
        if self.session.writer is not None:
            self.stop_recording()
        self.session.disconnect()
        self.streams_panel.set_connected(False)
        for key in [k for k in self.banners.messages() if k.startswith("outage:")]:
            self.banners.dismiss(key)
        self.update_model_state()

    # ---------------------------------------------------------------- model
    def model_store(self):
        """The store given at construction, else the default one (folders read now)."""
        from kneegui.calibration.store import SubjectModelStore

        return self._model_store if self._model_store is not None else SubjectModelStore()

    def reload_models(self) -> None:
        current = self.session.state.model_path
        select = str(current) if current else self.qsettings.value("model/path")
        self.model_panel.set_models(model_choices(self.model_store()), select=select)

    def _active_store_model(self) -> str | None:
        """The store's active model (e.g. activated by `kneegui calibrate`) as weights path."""
        try:
            stem = self.model_store().active_path()
        except Exception:  # noqa: BLE001 - an unreadable store just has no active model
            return None
        return None if stem is None else str(stem.with_name(stem.name + ".safetensors"))

    def autoload_model(self) -> bool:
        """Load the store's active model (set by `kneegui calibrate`, the calibration wizard or
        "Use this model"), else the model used last time, else the shipped emg+angle model."""
        candidates = [self._active_store_model(), self.qsettings.value("model/path")]
        candidates += [str(p) for _, p, card in self.model_panel.entries()
                       if card.get("input_set") == "emg+angle" and not card.get("subject")]
        return any(path and Path(path).exists() and self.load_model(path) for path in candidates)

    def load_model(self, path: str, activate: bool = False) -> bool:
        """Predict with the model at ``path`` (weights, card or stem); ``activate`` also makes
        it the store's active model (the operator chose it)."""
        p = Path(path)
        if p.suffix == ".json":
            p = p.with_suffix(".safetensors")
        elif p.suffix != ".safetensors":  # a stem, as the calibration wizard gives it
            p = p.with_name(p.name + ".safetensors")
        path = str(p)
        try:
            self.session.load_model(path)
        except Exception as exc:  # noqa: BLE001 - ModelLoadError & co carry the advice
            self.banners.show_message(f"Model not loaded: {exc}", "error", key="model")
            return False
        self.banners.dismiss("model")
        if self.session.loaded is not None:  # the EMG channels the streams panel maps
            self.streams_panel.set_model_inputs(self.session.loaded.card.emg_inputs)
        if activate:
            try:
                self.model_store().set_active(p.with_suffix(""))
            except OSError as exc:
                self.banners.show_message(
                    f"Model in use, but not remembered as the active one: {exc}", "warning",
                    key="model", timeout_s=8,
                )
        self.reload_models()
        if not self.model_panel.select_path(path):  # a file from elsewhere: list it too
            self.model_panel.add_model(p.stem, p, self.session.model_card() or {})
        self.knee_view.reset_range()
        self.update_model_state()
        return True

    def update_model_state(self) -> None:
        """Model state everywhere a prediction is shown: the strip above the knee plot, the
        Model panel and the status bar."""
        st = self.session.state
        state = model_state(self.session.model_card(), self.recording_panel.subject.text())
        self.model_state = state
        self.model_strip.setStyleSheet(
            f"QLabel#model_strip {{{MODEL_STATE_STYLES[state.kind]} border-radius:3px; "
            "padding:2px 6px; font-size:10.5pt;}"
        )
        self.model_strip.setText(f"<b>Model: {state.headline}</b> · {state.detail}")
        self.model_strip.setToolTip(state.text())
        self.status_model.setText(f"model: {state.headline}")
        self.status_model.setStyleSheet(
            "" if state.kind == "calibrated" else "color:#a05a00; font-weight:bold;"
        )
        if self.session.loaded is None:
            self.model_panel.set_state("No model loaded: no predictions.")
            return
        running = (
            f"predicting at {self.session.worker.model_rate:g} Hz in a worker thread"
            if self.session.worker is not None else "loaded; connect streams to predict"
        )
        color = "#1a9641" if state.kind == "calibrated" else "#a05a00"
        self.model_panel.set_state(
            f"<b>{st.model_name}</b> ({st.input_set}) {running}.<br>"
            f"<span style='color:{color}'><b>{state.headline}</b></span>"
        )

    def set_publishing(self, on: bool) -> None:
        try:
            self.session.set_publishing(on)
        except Exception as exc:  # noqa: BLE001
            self.banners.show_message(f"LSL prediction outlet failed: {exc}", "error",
                                      key="outlet")
            on = False
        for w in (self.publish_action, self.model_panel.publish):
            w.blockSignals(True)
            w.setChecked(on)
            w.blockSignals(False)
        if on and self.session.outlet is not None:
            self.banners.show_message(
                f"Publishing predictions as LSL stream “{self.session.outlet.name}” "
                f"(type KneeAnglePrediction).", "info", key="outlet", timeout_s=5,
            )

    def open_calibration(self):
        """Open the subject calibration wizard on the live hub and the active model."""
        if self.session.hub is None or self.session.loaded is None:
            self.banners.show_message(
                "Calibration needs live EMG + knee-angle streams and a loaded model: connect "
                "them and load a model first.", "warning", key="calibrate", timeout_s=8,
            )
            return None
        from kneegui.gui.calibration_wizard import CalibrationWizard

        wizard = CalibrationWizard(
            self.session.hub, self.model_store(), self.session.loaded,
            session_writer=self.session.writer, parent=self,
        )
        wizard.modelAccepted.connect(self._calibrated_model_accepted)
        wizard.open()
        self._wizard = wizard
        return wizard

    def _calibrated_model_accepted(self, stem: str) -> None:
        self.reload_models()
        self.load_model(stem)

    # ---------------------------------------------------------------- recording
    def start_recording(self, out_dir: str, subject: str, notes: str) -> Path | None:
        if not out_dir:
            self.banners.show_message("Choose an output folder first.", "error", key="record")
            return None
        try:
            path = self.session.start_recording(out_dir, subject, notes)
        except Exception as exc:  # noqa: BLE001 - shown, nothing is lost
            self.banners.show_message(f"Recording not started: {exc}", "error", key="record")
            return None
        self.banners.dismiss("record")
        self.recording_panel.set_recording(True, str(path))
        self.record_action.setText("■ Stop")
        return path

    def stop_recording(self) -> Path | None:
        path = self.session.stop_recording()
        self.recording_panel.set_recording(False, str(path) if path else None)
        self.record_action.setText("● Record")
        if path is not None:
            self.banners.show_message(f"Session saved: {path}", "info", key="record",
                                      timeout_s=8)
        return path

    def add_marker(self, label: str) -> None:
        if self.session.add_marker(label):
            self.statusBar().showMessage(f"Marker “{label}” added", 2000)
        else:
            self.banners.show_message("Markers go into a recording: press Record first.",
                                      "warning", key="marker", timeout_s=4)

    # ---------------------------------------------------------------- help
    def show_about(self) -> None:
        self._about = show_about(self)

    def show_shortcuts(self) -> None:
        lines = [
            "Ctrl+R  record / stop", "Ctrl+M  marker (label from the Recording panel)",
            *[f"{k}  marker “{v}”" for k, v in QUICK_MARKERS],
            "F5  refresh streams", "Ctrl+E  raw / filtered / envelope",
            "Ctrl+,  filter and display settings", "Ctrl+P  publish predictions to LSL",
            "Ctrl+K  calibrate subject", "Ctrl+Q  quit",
        ]
        box = QtWidgets.QMessageBox(self)
        box.setWindowTitle("Keyboard shortcuts")
        box.setText("\n".join(lines))
        box.setModal(False)
        box.show()
        self._about = box

    # ---------------------------------------------------------------- refresh loop
    def refresh(self) -> None:
        """Timer tick: draw the newest snapshots; every 0.5 s also update the status."""
        t0 = time.perf_counter()
        if self._last_frame is not None:
            self.frame_intervals.add(t0 - self._last_frame)
        self._last_frame = t0
        if self.session.connected:
            import pylsl

            now = pylsl.local_clock()
            self._draw_emg(now)
            self._draw_knee(now)
        if t0 - self._last_status >= STATUS_PERIOD_S:
            self._last_status = t0
            self.update_status()
        self.refresh_times.add(time.perf_counter() - t0)

    def _draw_emg(self, now: float) -> None:
        data, ts, first = self.session.emg_snapshot(self.mode, self.display.window_s)
        if data.size == 0:
            return
        labels, unit = self.session.emg_labels(self.mode)
        if len(labels) != data.shape[1]:
            labels = [f"ch{i + 1}" for i in range(data.shape[1])]
        layout = (tuple(labels), unit)
        if layout != self._emg_layout:  # new stream or raw (all) <-> model channels
            self.emg_plot.set_channels(labels, unit)
            self._emg_layout = layout
        self.emg_plot.update_data(data, ts, now, first)

    def _draw_knee(self, now: float) -> None:
        window = self.display.window_s
        angle, ts = self.session.angle_snapshot(max(window, 10.0) + 1.0)
        pred_t, preds = self.session.prediction_snapshot(max(window, 10.0) + 1.0)
        self.knee_view.update_data(now, ts, angle, pred_t, np.asarray(preds, dtype=np.float64))

    def update_status(self) -> None:
        session = self.session
        problem = getattr(session, "process_problem", None)
        message = problem() if problem is not None else None
        if message:
            self.banners.show_message(message, "error", key="predictor")
        elif "predictor" in self.banners.messages():
            self.banners.dismiss("predictor")
        rows = session.reader_rows() if session.connected else []
        if session.connected:
            self.streams_panel.update_status(rows)
            self.emg_plot.set_quality(session.emg_quality(self.mode))
            self._handle_events(rows)
        parts = []
        for _, role, st, _ in rows:
            ok = bool(getattr(st, "connected", False))
            rate = getattr(st, "effective_rate", None)
            parts.append(f"{role}: {'OUTAGE' if not ok else f'{rate:.0f} Hz' if rate else '…'}")
        self.status_streams.setText(" · ".join(parts) if parts else "no streams")
        bad = any(not getattr(st, "connected", False) for _, _, st, _ in rows)
        self.status_streams.setStyleSheet("color:#d7191c; font-weight:bold;" if bad else "")
        worker = session.worker
        if worker is not None:
            inf, e2e = worker.inference_latency, worker.end_to_end_latency
            self.status_inference.setText(
                f"inference {_fmt_ms(inf.median())} / {_fmt_ms(inf.percentile(99))} ms"
            )
            self.status_e2e.setText(
                f"end-to-end {_fmt_ms(e2e.median())} / {_fmt_ms(e2e.percentile(99))} ms"
            )
            if worker.last_error and worker.last_error not in self._shown_errors:
                self._shown_errors.add(worker.last_error)
                self.banners.show_message(worker.last_error, "error", key="inference")
        else:
            self.status_inference.setText("inference —")
            self.status_e2e.setText("end-to-end —")
        rec = session.recording_status()
        if rec is not None:
            self.recording_panel.set_progress(rec.seconds_recorded, rec.file_bytes)
            self.status_record.setText(f"● REC {rec.seconds_recorded:.0f} s")
            self.status_record.setStyleSheet("color:#d7191c; font-weight:bold;")
            if not rec.ok:
                self.banners.show_message(
                    f"Recording stopped: {rec.error}. The file keeps everything written up to "
                    f"then: {rec.path}", "error", key="record",
                )
                self.stop_recording()
        else:
            self.status_record.setText("")
        intervals = self.frame_intervals.values()[-60:]
        if intervals.size:
            self.status_fps.setText(f"{1.0 / max(np.median(intervals), 1e-3):.0f} fps")

    def _handle_events(self, rows) -> None:
        """Outage banners from the reader status; errors from the acquisition events."""
        for s, (name, _, st, _) in zip(self.session.state.streams, rows, strict=False):
            key = f"outage:{s.info.source_id}"
            if not getattr(st, "connected", False):
                if key not in self._outages:
                    self._outages.add(key)
                    self.banners.show_message(
                        outage_text(name, self.session.writer is not None), "warning", key=key,
                    )
            elif key in self._outages:
                self._outages.discard(key)
                self.banners.show_message(f"Stream “{name}” is back.", "info", key=key,
                                          timeout_s=5)
        # The recorder logs every reader event itself (its own subscription): one gap rule.
        for event in self.session.drain_events():
            self.event_log.append(event)
            if event.kind == "error":
                self.banners.show_message(
                    f"Stream “{event.stream}”: {event.message}", "error",
                    key=f"error:{event.source_id}",
                )
        del self.event_log[:-500]
