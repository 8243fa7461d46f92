"""Toolbar, menus (with keyboard shortcuts) and status bar of the main window.

Functions that take the window (``win``) and attach the widgets and actions to it, so that
``main_window`` keeps to the behaviour.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6 import QtGui, QtWidgets

from kneegui.gui.recording_panel import QUICK_MARKERS
from kneegui.live.session import DISPLAY_MODES

if TYPE_CHECKING:
    from kneegui.gui.main_window import MainWindow


def build_toolbar(win: MainWindow) -> None:
    """Display toolbar: EMG mode, time window, horizon, record / marker / settings (the actions
    are connected here, like the menus'; the widgets' value signals in MainWindow)."""
    tb = win.addToolBar("Display")
    tb.setObjectName("toolbar_display")
    tb.setMovable(False)
    tb.addWidget(QtWidgets.QLabel(" EMG: "))
    win.mode_combo = QtWidgets.QComboBox()
    for m in DISPLAY_MODES:
        win.mode_combo.addItem(m, m)
    win.mode_combo.setToolTip("Raw, band-passed + notched, or envelope (Ctrl+E cycles)")
    tb.addWidget(win.mode_combo)
    tb.addWidget(QtWidgets.QLabel("  Window: "))
    win.window_spin = QtWidgets.QDoubleSpinBox()
    win.window_spin.setRange(2.0, 20.0)
    win.window_spin.setSingleStep(1.0)
    win.window_spin.setDecimals(0)
    win.window_spin.setSuffix(" s")
    tb.addWidget(win.window_spin)
    tb.addWidget(QtWidgets.QLabel("  Horizon H: "))
    win.horizon_spin = QtWidgets.QSpinBox()
    win.horizon_spin.setRange(1, 50)
    win.horizon_spin.setToolTip("Which prediction horizon is laid over the measured angle")
    tb.addWidget(win.horizon_spin)
    win.horizon_ms = QtWidgets.QLabel()
    tb.addWidget(win.horizon_ms)
    tb.addSeparator()
    win.record_action = tb.addAction("● Record")
    win.record_action.setShortcut(QtGui.QKeySequence("Ctrl+R"))
    win.record_action.setToolTip("Start / stop recording (Ctrl+R)")
    win.marker_action = tb.addAction("Marker")
    win.marker_action.setShortcut(QtGui.QKeySequence("Ctrl+M"))
    win.marker_action.setToolTip("Add a marker to the recording (Ctrl+M)")
    win.settings_action = tb.addAction("Settings…")
    win.settings_action.setShortcut(QtGui.QKeySequence("Ctrl+,"))
    win.settings_action.setToolTip("Filter and display settings (Ctrl+,)")
    win.record_action.triggered.connect(win.recording_panel.toggle)
    win.marker_action.triggered.connect(
        lambda: win.add_marker(win.recording_panel.marker_label.text().strip() or "marker")
    )
    win.settings_action.triggered.connect(win.open_settings)

def build_menus(win: MainWindow) -> None:
    """File, Streams, Model, View and Help menus with their shortcuts."""
    mb = win.menuBar()
    file_menu = mb.addMenu("&File")
    file_menu.addAction(win.record_action)
    file_menu.addAction(win.marker_action)
    win.quick_marker_actions = []
    for key, label in QUICK_MARKERS:
        act = file_menu.addAction(f"Marker “{label}”")
        act.setShortcut(QtGui.QKeySequence(key))
        act.triggered.connect(lambda _=False, lab=label: win.add_marker(lab))
        win.quick_marker_actions.append(act)
    file_menu.addSeparator()
    quit_action = file_menu.addAction("Quit")
    quit_action.setShortcut(QtGui.QKeySequence.Quit)
    quit_action.triggered.connect(win.close)

    streams_menu = mb.addMenu("&Streams")
    win.refresh_action = streams_menu.addAction("Refresh stream list")
    win.refresh_action.setShortcut(QtGui.QKeySequence("F5"))
    win.refresh_action.triggered.connect(lambda: win.streams_panel.refresh())
    win.disconnect_action = streams_menu.addAction("Disconnect")
    win.disconnect_action.triggered.connect(win.disconnect_streams)

    model_menu = mb.addMenu("&Model")
    win.publish_action = model_menu.addAction("Publish predictions to LSL")
    win.publish_action.setCheckable(True)
    win.publish_action.setShortcut(QtGui.QKeySequence("Ctrl+P"))
    win.calibrate_action = model_menu.addAction("Calibrate subject…")
    win.calibrate_action.setShortcut(QtGui.QKeySequence("Ctrl+K"))
    win.calibrate_action.triggered.connect(win.open_calibration)
    reload_models = model_menu.addAction("Rescan model folders")
    reload_models.triggered.connect(win.reload_models)

    view_menu = mb.addMenu("&View")
    view_menu.addAction(win.settings_action)
    cycle = view_menu.addAction("Cycle raw / filtered / envelope")
    cycle.setShortcut(QtGui.QKeySequence("Ctrl+E"))
    cycle.triggered.connect(
        lambda: win.mode_combo.setCurrentIndex(
            (win.mode_combo.currentIndex() + 1) % win.mode_combo.count()
        )
    )
    for dock in win.docks.values():
        view_menu.addAction(dock.toggleViewAction())

    help_menu = mb.addMenu("&Help")
    shortcuts = help_menu.addAction("Keyboard shortcuts")
    shortcuts.setShortcut(QtGui.QKeySequence("F1"))
    shortcuts.triggered.connect(win.show_shortcuts)
    about = help_menu.addAction("About KneeGUI")
    about.triggered.connect(win.show_about)

def build_status_bar(win: MainWindow) -> None:
    """Permanent status labels: model state, streams, inference, end-to-end, recording, fps."""
    sb = win.statusBar()
    win.status_model = QtWidgets.QLabel("model: none")
    win.status_model.setToolTip("Which model predicts, and whether it is calibrated to the "
                                "subject (details above the knee plot and in the Model panel)")
    win.status_streams = QtWidgets.QLabel("no streams")
    win.status_inference = QtWidgets.QLabel("inference —")
    win.status_e2e = QtWidgets.QLabel("end-to-end —")
    win.status_record = QtWidgets.QLabel("")
    win.status_fps = QtWidgets.QLabel("")
    for w in (win.status_model, win.status_streams, win.status_inference, win.status_e2e,
              win.status_record, win.status_fps):
        w.setContentsMargins(6, 0, 6, 0)
        sb.addPermanentWidget(w)
    win.status_inference.setToolTip("Model inference time per prediction, median / p99")
    win.status_e2e.setToolTip(
        "Time from the newest input sample to its prediction being available, median / p99"
    )
