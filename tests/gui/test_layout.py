"""Screenshot tests of the main window's layout, at 1920x1080 and 1366x768, on the simulated
lab (real LSL loopback, the real 4Amar clip, the shipped model predicting):

* the EMG rows and the knee plot share the time axis: the same x pixel for -window, "now" and
  the end of the forecast, in the geometry and in the rendered image;
* no column of the stream tables is clipped (no horizontal scrolling, no elided text);
* every drawn item of the knee plot has a legend entry, the "now" lines are labelled, every EMG
  row names its channel, and the rows share one y scale with its unit.

Offscreen here; ``test_layout_xvfb.py`` runs this module again under ``xvfb-run`` with Qt's X11
platform. ``KNEEGUI_LAYOUT_PNG_DIR`` keeps the screenshots; ``KNEEGUI_EXPECT_QT_PLATFORM``
makes the module check which Qt platform it really ran on.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import numpy as np
import pytest
from gui_loopback import wait_until
from PySide6 import QtCore, QtGui, QtWidgets

SIZES = [(1920, 1080), (1366, 768)]


@pytest.fixture
def window(_shared_window, request):
    """The module's window (held in a list, so that it can go when the module is done)."""
    yield _shared_window[0]
    # pytest keeps a test's arguments until after its teardown, which for the module's last
    # test includes the module fixture's: drop ours, so that the window can go then
    request.node.funcargs.pop("window", None)


@pytest.fixture(scope="module")
def _shared_window(tmp_path_factory):
    from kneegui.acquisition import SimulatedLab
    from kneegui.calibration import SubjectModelStore
    from kneegui.gui.app import make_app
    from kneegui.gui.demo_runner import default_model_path, find_lab_streams, lab_assignments
    from kneegui.gui.main_window import MainWindow
    from kneegui.paths import models_dir

    app = make_app()
    expected = os.environ.get("KNEEGUI_EXPECT_QT_PLATFORM")
    if expected:
        assert app.platformName() == expected, (app.platformName(), expected)
    tmp = tmp_path_factory.mktemp("layout")
    # The demo's stream names (the long ones the issue saw truncated), unique source ids.
    lab = SimulatedLab(source_id_prefix=f"layout-{uuid.uuid4().hex[:8]}",
                       name_prefix="KneeGUI-Demo").start()
    settings = QtCore.QSettings(str(tmp / "gui.ini"), QtCore.QSettings.IniFormat)
    store = SubjectModelStore(root=tmp / "subject_models", shipped_dir=models_dir())
    win = MainWindow(settings=settings, model_store=store)
    held: list = []
    try:
        infos = find_lab_streams(lab)
        win.streams_panel.set_streams(infos)
        assert win.connect_streams(lab_assignments(infos)), win.banners.messages()
        assert win.load_model(str(default_model_path())), win.banners.messages()
        win.show()
        # a full window of data (plus the model's input window) before anything is judged
        # (counted where the window reads it: the EMG reader's buffer, filled since connecting)
        full = (win.display.window_s + 1.5) * lab.rate
        emg = win.session.stream("EMG").reader.buffer
        assert wait_until(lambda: emg.total_written > full and win.session.worker is not None
                           and win.session.worker.predictions > 150, 60.0)
        held.append(win)
        yield held
    finally:
        win.close()
        win.deleteLater()
        lab.stop()
        # pytest keeps a fixture's value until after teardown: empty it, so that the window's
        # Python objects (and the plot menus they own) go now (leak check, tests/conftest.py)
        held.clear()
        win = None  # the last reference of this frame


def _sized(win, size) -> None:
    win.resize(*size)
    frames = win.knee_view.frames_drawn
    assert wait_until(lambda: win.knee_view.frames_drawn > frames + 20, 10.0)
    win.update_status()  # tables filled and fitted now, not at the next 2 Hz tick
    QtWidgets.QApplication.processEvents()
    assert (win.width(), win.height()) == size, "the window does not fit this screen size"


def _x_in_window(win, widget, view_box, value: float) -> float:
    scene = view_box.mapViewToScene(QtCore.QPointF(value, 0.0))
    return widget.mapTo(win, widget.mapFromScene(scene)).x()


def _grab(win, name: str) -> np.ndarray:
    img = win.grab().toImage().convertToFormat(QtGui.QImage.Format_RGB888)
    keep = os.environ.get("KNEEGUI_LAYOUT_PNG_DIR")
    if keep:
        Path(keep).mkdir(parents=True, exist_ok=True)
        img.save(str(Path(keep) / name))
    arr = np.frombuffer(img.constBits(), np.uint8, img.sizeInBytes()).reshape(
        img.height(), img.bytesPerLine())[:, : img.width() * 3].reshape(img.height(), -1, 3)
    return arr.astype(int)


def _near(arr: np.ndarray, hex_colour: str, tol: int = 40) -> np.ndarray:
    q = QtGui.QColor(hex_colour)
    return np.abs(arr - np.array([q.red(), q.green(), q.blue()])).sum(axis=2) < tol


def _rect_in_window(win, widget) -> QtCore.QRect:
    return QtCore.QRect(widget.mapTo(win, QtCore.QPoint(0, 0)), widget.size())


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_emg_and_knee_panels_share_the_time_axis(window, size):
    from kneegui.gui.theme import CHANNEL_COLORS, NOW_LINE_COLOR, PREDICTION_COLOR

    win = window
    _sized(win, size)
    knee_vb = win.knee_view.getPlotItem().getViewBox()
    window_s, future_s = win.emg_plot.window_s, win.emg_plot.future_s
    assert win.knee_view.window_s == window_s and win.knee_view.future_s == future_s
    marks = (-window_s, 0.0, future_s)
    knee_x = [_x_in_window(win, win.knee_view, knee_vb, v) for v in marks]
    assert knee_x[2] - knee_x[0] > 400  # a real plot, not a collapsed layout
    for plot in win.emg_plot.plot_items():
        emg_x = [_x_in_window(win, win.emg_plot, plot.getViewBox(), v) for v in marks]
        assert np.allclose(emg_x, knee_x, atol=1.0), (emg_x, knee_x)
    # The EMG time axis (its own row) spans exactly the rows' view: its ticks are right.
    axis = win.emg_plot.time_axis
    axis_rect = axis.mapRectToScene(axis.boundingRect())
    view_rect = win.emg_plot.plot_items()[-1].getViewBox().sceneBoundingRect()
    assert abs(axis_rect.left() - view_rect.left()) <= 1
    assert abs(axis_rect.width() - view_rect.width()) <= 1

    # The rendered image agrees: the dashed "now" line is at the same column in both panels,
    # EMG is drawn up to now and not beyond it, the forecast runs to the right of now.
    arr = _grab(win, f"layout_{size[0]}x{size[1]}.png")
    x_now = int(round(knee_x[1]))
    for widget in (win.emg_plot, win.knee_view):
        r = _rect_in_window(win, widget)
        column = arr[r.top():r.bottom(), x_now - 1:x_now + 2]
        assert _near(column, NOW_LINE_COLOR, 20).sum() > 20, type(widget).__name__
    emg = _rect_in_window(win, win.emg_plot)
    emg_px = arr[emg.top():emg.bottom(), emg.left():emg.right()]
    coloured = np.zeros(emg_px.shape[:2], bool)
    for colour in CHANNEL_COLORS[:4]:
        coloured |= _near(emg_px, colour, 30)
    cols = np.flatnonzero(coloured.any(axis=0)) + emg.left()
    assert cols.size and cols.max() <= x_now + 2 and cols.min() < knee_x[0] + 30
    knee = _rect_in_window(win, win.knee_view)
    knee_px = arr[knee.top():knee.bottom(), knee.left():knee.right()]
    orange = np.flatnonzero(_near(knee_px, PREDICTION_COLOR, 30).any(axis=0)) + knee.left()
    assert orange.size and orange.max() > x_now + 0.6 * (knee_x[2] - x_now)


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_no_stream_table_column_is_clipped(window, size):
    win = window
    _sized(win, size)
    panel = win.streams_panel
    assert panel.status_table.rowCount() == 2 and panel.table.rowCount() == 2
    for table in (panel.table, panel.status_table):
        # on screen with all its rows (the dock does not hide them below a scroll edge)
        assert table.isVisible()
        rows = table.horizontalHeader().height() + sum(
            table.rowHeight(r) for r in range(table.rowCount())) + 2 * table.frameWidth()
        assert table.visibleRegion().boundingRect().height() >= rows
        header = table.horizontalHeader()
        assert table.textElideMode() == QtCore.Qt.ElideNone
        widths = [table.columnWidth(c) for c in range(table.columnCount())]
        for c, width in enumerate(widths):
            need = max(table.sizeHintForColumn(c), header.sectionSizeHint(c))
            assert width >= need, (table.objectName(), c, width, need)
        assert sum(widths) <= table.viewport().width(), (widths, table.viewport().width())
        assert table.horizontalScrollBar().maximum() == 0  # nothing hidden to the right
    names = [panel.status_table.item(r, 0).text() for r in range(2)]
    assert names[0].startswith("KneeGUI-Demo-EMG") and "KneeGUI-Demo-KneeAngle" in names[1]
    assert "ms" in panel.status_table.item(0, panel.STATUS_COLUMNS.index(
        "Clock offset ± jitter")).text()
    assert "stream(s) found" not in panel.hint.text() and "Connected to 2" in panel.hint.text()


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_every_drawn_item_has_a_legend_entry_and_units(window, size):
    win = window
    _sized(win, size)
    view = win.knee_view
    groups = view.legend_groups()
    covered = [item for members in groups.values() for item in members]
    drawn = []
    for item in view.data_items():
        x, _ = item.getData()
        if x is not None and len(x):
            drawn.append(item)
    assert len(drawn) == len(view.data_items())  # all of them are on screen here
    for item in drawn:
        assert any(item is c for c in covered), item
    texts = " | ".join(groups)
    horizon_ms = f"{view.horizon_ms:.0f} ms"
    assert "measured" in texts and f"predicted {horizon_ms} ago" in texts
    assert f"now, as predicted {horizon_ms} ago" in texts and "earlier predictions" in texts
    # the legend is fully inside the plot, the now line says what it is
    legend = view.legend.mapRectToScene(view.legend.boundingRect())
    assert view.getPlotItem().getViewBox().sceneBoundingRect().contains(legend)
    assert view._now_line.label.toPlainText() == "now"
    assert win.emg_plot._now_lines[0].label.toPlainText() == "now"
    assert view.getPlotItem().getAxis("left").labelText == "knee flexion (°)"
    assert "°" in view.readout_text() and "deg" not in view.readout_text()
    # EMG: every row names its channel, one shared y scale with its unit
    plot = win.emg_plot
    assert [plot.badge_text(i).split("</b>")[0] for i in range(4)] == [
        "<b>RF", "<b>BF", "<b>VM", "<b>ST"]
    ranges = {tuple(np.round(p.getViewBox().viewRange()[1], 6)) for p in plot.plot_items()}
    assert len(ranges) == 1 and plot.y_range is not None
    lo, hi = plot.y_range
    assert lo == pytest.approx(-hi)  # filtered EMG: symmetric around zero
    assert all(p.getAxis("left").labelText == "mV" for p in plot.plot_items())
    assert "RMS" in plot.badge_text(0) and "mV" in plot.badge_text(0)
    # the model state is on screen above the knee plot and in the status bar
    assert "not calibrated to this subject" in win.model_strip.text()
    assert win.model_strip.isVisible() and "pretrained" in win.status_model.text()
