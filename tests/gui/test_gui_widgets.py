"""Widget-level tests of the main window parts (real Qt widgets, offscreen)."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6 import QtCore

from kneegui.gui.about import ABOUT_HTML
from kneegui.gui.banners import BannerArea
from kneegui.gui.decimate import decimation_factor, peak_decimate
from kneegui.gui.emg_plot import EmgStackPlot
from kneegui.gui.knee_view import KneeView
from kneegui.gui.settings_dialog import DisplaySettings, SettingsDialog
from kneegui.gui.streams_panel import default_emg_picks
from kneegui.live.metrics import RollingStats, horizon_error
from kneegui.live.outlet import horizon_labels


def test_peak_decimation_keeps_every_extreme_and_is_anchored():
    rng = np.random.default_rng(1)
    data = rng.standard_normal((10_000, 3)).astype(np.float32)
    data[4321, 1] = 50.0  # a single-sample spike must survive
    ts = np.arange(10_000) / 2000.0
    factor = decimation_factor(10_000, 1000)
    assert factor == 20
    t, y = peak_decimate(data, ts, factor, first_index=0)
    assert y.shape == (1000, 3)
    assert y[:, 1].max() == 50.0
    assert np.allclose(y.max(axis=0), data.max(axis=0))
    assert np.allclose(y.min(axis=0), data.min(axis=0))
    assert np.all(np.diff(t) >= 0)
    # Scrolling by 7 samples: bins stay on multiples of the factor in absolute index.
    t2, y2 = peak_decimate(data[7:], ts[7:], factor, first_index=7)
    assert t2[0] == ts[20]  # 13 head samples skipped to reach the next bin start
    assert np.array_equal(y2[: y.shape[0] - 2], y[2:])


def test_emg_plot_draws_decimated_channels_and_quality(qtbot):
    plot = EmgStackPlot(window_s=5.0, max_points=800)
    qtbot.addWidget(plot)
    plot.set_channels(["RF", "BF", "VM", "ST"], "mV")
    fs = 2000.0
    ts = 100.0 + np.arange(int(5 * fs)) / fs
    data = np.sin(ts[:, None] * np.array([1.0, 2.0, 3.0, 4.0])).astype(np.float32)
    plot.update_data(data, ts, now=ts[-1], first_index=0)
    x, y = plot.curve_data(2)
    assert 0 < x.size <= 800
    assert x[-1] == pytest.approx(0.0) and x[0] == pytest.approx(-5.0, abs=0.01)
    assert y.max() == pytest.approx(data[:, 2].max())

    class Quality:
        def __init__(self, status, rms):
            self.status, self.rms = status, rms

    plot.set_quality([Quality("ok", 0.1), Quality("flat", 0.0), Quality("ok", 0.2), None])
    assert "flat" in plot.badge_text(1) and "#d7191c" in plot.badge_text(1)
    assert "no quality data" in plot.badge_text(3)
    with pytest.raises(ValueError, match="set_channels"):
        plot.update_data(data[:, :2], ts, now=ts[-1])


def test_knee_view_draws_prediction_ahead_of_now_and_scores_horizon(qtbot):
    view = KneeView(window_s=5.0)
    qtbot.addWidget(view)
    view.set_horizon(20, 0.01)
    now = 50.0
    meas_t = np.arange(now - 10, now, 0.01)
    measured = 30 + 20 * np.sin(2 * np.pi * meas_t)
    pred_t = meas_t.copy()
    steps = np.arange(1, 51) * 0.01
    preds = 30 + 20 * np.sin(2 * np.pi * (pred_t[:, None] + steps)) + 1.5  # 1.5° bias
    view.update_data(now, meas_t, measured, pred_t, preds)
    x, y = view.prediction_curve()
    assert x.size == 50 and x[0] > -0.02 and x[-1] == pytest.approx(0.5, abs=0.02)
    ox, _ = view.overlay_curve()
    assert ox.size > 0 and ox.max() <= 0.0
    assert view.last_error is not None
    assert view.last_error.mae == pytest.approx(1.5, abs=0.05)
    assert view.last_error.nmae == pytest.approx(1.5 / 40.0, rel=0.05)


def test_horizon_error_needs_overlap_and_rolling_stats():
    assert horizon_error(np.array([5.0, 6.0]), np.array([1.0, 2.0]),
                         np.array([0.0, 1.0]), np.array([0.0, 1.0])) is None
    stats = RollingStats(100)
    assert stats.median() is None
    for v in range(200):
        stats.add(v)
    assert stats.median() == pytest.approx(149.5)
    assert stats.count == 200


def test_banners_replace_by_key_and_dismiss(qtbot):
    area = BannerArea()
    qtbot.addWidget(area)
    area.show_message("first", "warning", key="k")
    area.show_message("second", "warning", key="k")
    assert area.messages() == {"k": "second"}
    area.show_message("gone soon", "info", key="t", timeout_s=0.1)
    qtbot.waitUntil(lambda: "t" not in area.messages(), timeout=2000)
    area.dismiss("k")
    assert area.messages() == {}
    with pytest.raises(ValueError):
        area.show_message("x", "fatal")


def test_settings_dialog_validates_and_emits(qtbot):
    dlg = SettingsDialog(DisplaySettings(), nyquist_hz=500.0)
    qtbot.addWidget(dlg)
    got = []
    dlg.applied.connect(got.append)
    dlg.high.setValue(600.0)
    assert not dlg.apply() and "Nyquist" in dlg.error.text()
    dlg.high.setValue(300.0)
    dlg.mains.setCurrentIndex(1)
    assert dlg.apply()
    assert got[-1].filter["high"] == 300.0 and got[-1].filter["mains"] == 60.0


def test_about_box_attributes_the_data():
    assert "EMG dataset in Lower Limb" in ABOUT_HTML
    assert "10.24432/C5ZW3P" in ABOUT_HTML and "CC BY 4.0" in ABOUT_HTML
    assert "Sanchez" in ABOUT_HTML and "2014" in ABOUT_HTML


def test_channel_picks_and_outlet_labels():
    assert default_emg_picks(["ST", "x", "VM", "BF", "RF"]) == [4, 3, 2, 0]
    assert default_emg_picks([f"c{i}" for i in range(16)]) == [0, 1, 2, 3]
    labels = horizon_labels(50, 100.0)
    assert labels[0] == "h10ms" and labels[-1] == "h500ms" and len(labels) == 50


def _no_models(tmp_path):
    from kneegui.calibration import SubjectModelStore

    return SubjectModelStore(root=tmp_path / "no-subject-models", shipped_dir=tmp_path / "none")


def test_settings_persist_between_windows(qtbot, tmp_path):
    from kneegui.gui.main_window import MainWindow

    ini = str(tmp_path / "kneegui.ini")
    settings = QtCore.QSettings(ini, QtCore.QSettings.IniFormat)
    win = MainWindow(settings=settings, discover_fn=lambda t: [], model_store=_no_models(tmp_path))
    qtbot.addWidget(win)
    win.window_spin.setValue(12)
    win.horizon_spin.setValue(17)
    win.mode_combo.setCurrentIndex(2)
    win.recording_panel.subject.setText("S42")
    win.close()
    again = MainWindow(settings=QtCore.QSettings(ini, QtCore.QSettings.IniFormat),
                       discover_fn=lambda t: [], model_store=_no_models(tmp_path))
    qtbot.addWidget(again)
    assert again.window_spin.value() == 12
    assert again.horizon_spin.value() == 17
    assert again.mode == "envelope"
    assert again.recording_panel.subject.text() == "S42"
    assert again.knee_view.horizon == 17
    again.close()


def test_steady_range_grows_at_once_and_shrinks_late():
    from kneegui.gui.theme import SteadyRange

    r = SteadyRange(shrink_after=3, step=10.0)
    assert r.update(3.0, 57.0) == (0.0, 60.0)
    assert r.update(5.0, 50.0) is None  # inside: unchanged (no axis re-render)
    assert r.update(-12.0, 50.0) == (-20.0, 60.0)  # leaves the range: grows now
    assert [r.update(0.0, 20.0) for _ in range(3)][-1] == (-10.0, 30.0)  # shrinks after 3


def test_calibration_needs_live_streams_and_a_model(qtbot, tmp_path):
    from kneegui.gui.main_window import MainWindow

    settings = QtCore.QSettings(str(tmp_path / "k.ini"), QtCore.QSettings.IniFormat)
    win = MainWindow(settings=settings, discover_fn=lambda t: [], model_store=_no_models(tmp_path))
    qtbot.addWidget(win)
    assert win.open_calibration() is None
    assert "connect" in win.banners.messages()["calibrate"]
    win.show_about()
    assert "10.24432/C5ZW3P" in win._about.text()
    win.close()


def test_streams_panel_refuses_ambiguous_roles_and_wrong_channel_picks(qtbot):
    from kneegui.acquisition.discovery import StreamInfoView
    from kneegui.gui.streams_panel import StreamsPanel

    def info(name, typ, n, sid):
        labels = ("RF", "BF", "VM", "ST", "E5")[:n] if typ == "EMG" else ("knee",)
        return StreamInfoView(name, typ, n, 1000.0, "float32", sid, "host", sid, labels,
                              ("mV",) * n)

    panel = StreamsPanel(lambda t: [])
    qtbot.addWidget(panel)
    emitted = []
    panel.connect_requested.connect(emitted.append)
    panel.set_streams([info("amp", "EMG", 5, "a"), info("amp2", "EMG", 5, "b"),
                       info("gonio", "Angle", 1, "c")])
    assert "Only one stream" in panel.problem()
    panel.set_role("b", None)
    assert panel.problem() is None and panel.emg_picks() == (0, 1, 2, 3)
    panel.channel_list.item(4).setCheckState(QtCore.Qt.Checked)
    assert "exactly 4" in panel.problem()
    panel.connect_button.click()
    assert emitted == [] and "exactly 4" in panel.hint.text()
    panel.channel_list.item(0).setCheckState(QtCore.Qt.Unchecked)
    panel.connect_button.click()
    assert [a.role for a in emitted[0]] == ["EMG", "KNEE_ANGLE"]
    assert emitted[0][0].channels == (1, 2, 3, 4)


def test_knee_view_thins_a_dense_goniometer_but_keeps_the_newest_sample(qtbot):
    view = KneeView(window_s=5.0)
    qtbot.addWidget(view)
    meas_t = np.arange(0, 11, 0.001)  # 1 kHz angle stream
    measured = 30 + 20 * np.sin(2 * np.pi * meas_t)
    view.update_data(float(meas_t[-1]), meas_t, measured, np.empty(0), np.empty((0, 50)))
    x, y = view._measured.getData()
    assert 1000 < x.size <= 2400
    assert x[-1] == 0.0 and y[-1] == measured[-1]
    assert np.all(np.diff(x) > 0)
    assert view.last_error is None and view.prediction_curve()[0].size == 0


@pytest.mark.parametrize("n_channels", [4, 16])
def test_quality_badges_change_without_relayout_and_are_not_clipped(qtbot, n_channels):
    """A badge update (twice a second) must not re-lay out the rows: that re-rendered every
    row of the 16-channel stack (15-22 ms frames). The text must still fit its row."""

    class Quality:
        def __init__(self, status, rms, reason=""):
            self.status, self.rms, self.reason = status, rms, reason

    plot = EmgStackPlot(window_s=5.0)
    qtbot.addWidget(plot)
    plot.set_channels([f"ch{i}" for i in range(n_channels)], "mV")
    plot.resize(1500, 900)
    plot.show()
    qtbot.waitExposed(plot)
    QtCore.QCoreApplication.processEvents()
    rows = [p.geometry() for p in plot._plots]
    plot.set_quality([Quality("ok", 0.1)] * n_channels)
    QtCore.QCoreApplication.processEvents()
    plot.set_quality([Quality("mains noise", 123.456, "50 Hz line noise, 40 % of power")]
                     * n_channels)
    QtCore.QCoreApplication.processEvents()
    assert [p.geometry() for p in plot._plots] == rows
    assert "1.2e+02" in plot.badge_text(n_channels - 1)
    for label, row in zip(plot._labels, rows, strict=True):
        # Same height as its plot row, and the first text line fits inside it.
        assert label.geometry().height() == pytest.approx(row.height(), abs=1)
        assert label._item.boundingRect().height() > 0
        assert label._item.pos().y() >= 0
        first_line = label._item.document().firstBlock().layout().lineAt(0).height()
        assert label._item.pos().y() + first_line <= label.geometry().height() + 0.5


def test_card_summary_shows_the_calibration_memory_and_extrapolator():
    from kneegui.gui.model_panel import card_summary

    card = {"name": "kneenet_emg-S07", "input_set": "emg", "subject": "S07",
            "metrics": {"calibration_cycles": 3}, "analog": {"weight": [0.4] + [0.1] * 48 + [0.8]}}
    text = card_summary(card)
    assert "calibration memory: 3 cycles, share 40 % at 1 step, 80 % at 50 steps" in text
    assert "calibration memory" not in card_summary({"name": "base", "input_set": "emg"})
    card["extrapolator"] = {"weight": [0.6, 0.5, 0.4, 0.3, 0.2, 0.1, 0.0] + [0.0] * 43}
    assert ("subject extrapolator: share 60 % at 1 step, 20 % at 5 steps, none beyond 6 steps"
            in card_summary(card))
    card["extrapolator"] = {"weight": [0.0] * 50}
    assert "subject extrapolator: not used" in card_summary(card)


def test_model_selector_lists_the_store_with_unreadable_models_explained(qtbot, tmp_path):
    """The selector shows what SubjectModelStore lists: shipped models first, subject models,
    and a damaged card as an entry that says why it cannot be used (not silently dropped)."""
    import shutil

    from kneegui.calibration import SubjectModelStore
    from kneegui.gui.main_window import MainWindow
    from kneegui.gui.model_panel import card_summary, model_choices
    from kneegui.paths import models_dir

    subject_dir = tmp_path / "subject-models"
    subject_dir.mkdir()
    for suffix in (".safetensors", ".json"):
        shutil.copy(models_dir() / f"kneenet_emg{suffix}", subject_dir / f"S01_emg{suffix}")
        shutil.copy(models_dir() / f"kneenet_emg{suffix}", subject_dir / f"broken{suffix}")
    (subject_dir / "broken.json").write_text("{not json")
    store = SubjectModelStore(root=subject_dir, shipped_dir=models_dir())
    choices = model_choices(store)
    shipped = sorted(p.stem for p in models_dir().glob("kneenet_*.json"))
    assert [c[1].stem for c in choices[: len(shipped)]] == shipped
    assert {c[1].stem for c in choices[len(shipped):]} == {"S01_emg", "broken"}
    broken = next(c for c in choices if c[1].stem == "broken")
    assert broken[0].startswith("⚠") and "cannot be used" in card_summary(broken[2])
    settings = QtCore.QSettings(str(tmp_path / "k.ini"), QtCore.QSettings.IniFormat)
    win = MainWindow(settings=settings, discover_fn=lambda t: [], model_store=store)
    qtbot.addWidget(win)
    assert win.model_panel.combo.count() == len(choices)
    win.close()
