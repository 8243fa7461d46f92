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
    unlabelled = [f"c{i}" for i in range(16)]
    assert default_emg_picks(unlabelled) == []  # never "the first four"
    assert default_emg_picks(unlabelled, channel_map={"c5": "RF", "c6": "BF", "c7": "VM",
                                                      "c8": "ST"}) == [5, 6, 7, 8]
    assert default_emg_picks(["A", "B"], inputs=("A",)) == [0]  # the model's own layout
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


def _info(name, typ, n, sid):
    from kneegui.acquisition.discovery import StreamInfoView

    labels = ("RF", "BF", "VM", "ST", "E5")[:n] if typ == "EMG" else ("knee",)
    return StreamInfoView(name, typ, n, 1000.0, "float32", sid, "host", sid, labels,
                          ("mV",) * n)


def test_streams_panel_asks_which_emg_and_keeps_roles_exclusive(qtbot):
    from kneegui.gui.streams_panel import StreamsPanel

    panel = StreamsPanel(lambda t: [])
    qtbot.addWidget(panel)
    panel.show()
    emitted = []
    panel.connect_requested.connect(emitted.append)
    panel.set_streams([_info("amp", "EMG", 5, "a"), _info("amp2", "EMG", 5, "b"),
                       _info("gonio", "Angle", 1, "c")])
    # two streams look like EMG: none is guessed, the panel asks which one
    assert [panel.role_of_row(r) for r in range(3)] == [None, None, "KNEE_ANGLE"]
    assert panel.question.isVisible() and panel.pending_question() == ("EMG", ["amp", "amp2"])
    assert "look like EMG" in panel.problem() and "look like EMG" in panel.hint.text()
    panel.connect_button.click()
    assert emitted == [] and "look like EMG" in panel.hint.text()
    buttons = [panel._question_buttons.itemAt(i).widget() for i in
               range(panel._question_buttons.count())]
    assert [b.text() for b in buttons] == ["amp", "amp2", "None of them"]
    buttons[1].click()  # "amp2 is the EMG"
    assert [panel.role_of_row(r) for r in range(3)] == [None, "EMG", "KNEE_ANGLE"]
    assert not panel.question.isVisible() and panel.problem() is None
    # roles are exclusive: giving amp the EMG role takes it from amp2 (and says so)
    panel.set_role("a", "EMG")
    assert [panel.role_of_row(r) for r in range(3)] == ["EMG", None, "KNEE_ANGLE"]
    assert "“amp2” set to —" in panel.hint.text()
    assert panel.problem() is None and panel.emg_picks() == (0, 1, 2, 3)
    panel.channel_list.item(4).setCheckState(QtCore.Qt.Checked)
    assert "exactly 4" in panel.problem()
    panel.connect_button.click()
    assert emitted == [] and "exactly 4" in panel.hint.text()
    panel.channel_list.item(0).setCheckState(QtCore.Qt.Unchecked)
    assert "RF" in panel.problem()  # no channel feeds RF now: the panel says what to map
    panel.channel_map_edit.setText("E5=RF")
    panel.connect_button.click()
    assert [a.role for a in emitted[0]] == ["EMG", "KNEE_ANGLE"]
    assert emitted[0][0].channels == (1, 2, 3, 4) and emitted[0][0].channel_map == {"E5": "RF"}
    # once connected the hint says so; no stale "found" / "only one" lines
    panel.set_connected(True, emitted[0])
    assert panel.hint.text().startswith("Connected to 2 stream(s) (EMG, Knee angle)")
    panel.set_connected(False)
    assert "Connected" not in panel.hint.text()


def test_manual_roles_answer_the_question_and_none_of_them_works(qtbot):
    from kneegui.gui.streams_panel import StreamsPanel

    panel = StreamsPanel(lambda t: [])
    qtbot.addWidget(panel)
    panel.set_streams([_info("amp", "EMG", 4, "a"), _info("amp2", "EMG", 4, "b"),
                       _info("kneeA", "Angle", 1, "c"), _info("kneeB", "Angle", 1, "d")])
    assert panel.pending_question() == ("EMG", ["amp", "amp2"])
    panel.set_role("a", "EMG")  # answered in the table instead
    assert panel.pending_question() == ("KNEE_ANGLE", ["kneeA", "kneeB"])
    panel.answer_question(None)  # none of the knee streams
    assert panel.pending_question() is None
    assert [panel.role_of_row(r) for r in range(4)] == ["EMG", None, None, None]
    assert panel.problem() is None


def test_long_stream_names_widen_the_dock_instead_of_clipping(qtbot, tmp_path):
    from kneegui.gui.main_window import MainWindow

    settings = QtCore.QSettings(str(tmp_path / "k.ini"), QtCore.QSettings.IniFormat)
    win = MainWindow(settings=settings, discover_fn=lambda t: [], model_store=_no_models(tmp_path))
    qtbot.addWidget(win)
    win.resize(1366, 768)
    win.show()
    long = "BrainAmpSeries-Dev_1-ExG-Subject-Walking-Trial"
    win.streams_panel.set_streams([_info(long, "EMG", 4, "brainamp-series-dev1-exg-0001"),
                                   _info("Knee", "Angle", 1, "k")])
    table = win.streams_panel.table
    qtbot.waitUntil(lambda: table.viewport().width() >= sum(
        table.columnWidth(c) for c in range(table.columnCount())), timeout=3000)
    assert table.horizontalScrollBar().maximum() == 0
    assert all(table.columnWidth(c) >= table.sizeHintForColumn(c)
               for c in range(table.columnCount()))
    assert long in table.item(0, 1).text()
    assert (win.width(), win.height()) == (1366, 768)
    win.close()


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


@pytest.mark.parametrize("n_channels", [4, 16])
def test_emg_rows_and_knee_plot_share_x_positions_also_in_compact_mode(qtbot, n_channels):
    """16 raw channels drop the left axes (compact labels): the rows must still start where
    the knee plot starts, and "now" must sit at the same x."""
    from PySide6 import QtWidgets

    split = QtWidgets.QSplitter(QtCore.Qt.Vertical)
    emg, knee = EmgStackPlot(window_s=10.0), KneeView(window_s=10.0)
    split.addWidget(emg)
    split.addWidget(knee)
    qtbot.addWidget(split)
    emg.set_channels([f"ch{i}" for i in range(n_channels)], "mV")
    split.resize(1400, 1000)
    split.show()
    qtbot.waitExposed(split)
    QtCore.QCoreApplication.processEvents()

    def xs(widget, view_box):
        return [widget.mapTo(split, widget.mapFromScene(
            view_box.mapViewToScene(QtCore.QPointF(v, 0)))).x() for v in (-10.0, 0.0, 0.55)]

    knee_x = xs(knee, knee.getPlotItem().getViewBox())
    assert knee_x[2] - knee_x[0] > 800
    for plot in emg.plot_items():
        assert np.allclose(xs(emg, plot.getViewBox()), knee_x, atol=1.0)


def test_emg_rows_share_one_steady_symmetric_scale_with_unit(qtbot):
    plot = EmgStackPlot(window_s=5.0)
    qtbot.addWidget(plot)
    plot.set_channels(["RF", "BF", "VM", "ST"], "mV")
    ts = 10.0 + np.arange(5000) / 1000.0
    amp = np.array([0.8, 0.05, 0.3, 0.1])  # BF much smaller than RF
    data = (np.sin(40 * ts)[:, None] * amp).astype(np.float32)
    plot.update_data(data, ts, now=ts[-1])
    ranges = {tuple(p.getViewBox().viewRange()[1]) for p in plot.plot_items()}
    assert len(ranges) == 1  # one scale: amplitudes compare across muscles
    lo, hi = plot.y_range
    assert lo == -hi and 0.8 <= hi <= 1.2
    assert all(p.getAxis("left").labelText == "mV" for p in plot.plot_items())
    plot.update_data(data * 0.9, ts, now=ts[-1])  # quieter: the scale stays (no jumping)
    assert plot.y_range == (lo, hi)

    class Quality:
        status, rms, reason = "ok", 0.11, ""

    plot.set_quality([Quality()] * 4)
    assert "RMS 0.11 mV" in plot.badge_text(0)


def test_knee_range_starts_at_a_gait_range_and_never_jumps_back(qtbot):
    from kneegui.gui.knee_view import DEFAULT_Y_RANGE

    view = KneeView(window_s=5.0)
    qtbot.addWidget(view)
    t = np.arange(0, 10, 0.01)
    empty = np.empty((0, 50))
    assert view.y_range == DEFAULT_Y_RANGE
    for amplitude in (5.0, 60.0, 20.0, 2.0):  # standing, walking, slow, standing again
        view.update_data(10.0, t, amplitude * (1 + np.sin(t)) / 2, np.empty(0), empty)
        assert view.y_range == DEFAULT_Y_RANGE
    view.update_data(10.0, t, 120 * (1 + np.sin(t)) / 2, np.empty(0), empty)  # deep squat
    grown = view.y_range
    assert grown[1] >= 120 and grown[0] == DEFAULT_Y_RANGE[0]
    view.update_data(10.0, t, 30 * (1 + np.sin(t)) / 2, np.empty(0), empty)
    assert view.y_range == grown  # no jumping back while streaming
    view.reset_range()
    assert view.y_range == DEFAULT_Y_RANGE


def _card(**over):
    card = {"name": "kneenet_emg_angle", "input_set": "emg+angle", "horizons": 50,
            "model_rate": 100.0, "metrics": {}}
    card.update(over)
    return card


def test_model_state_says_pretrained_or_calibrated_with_evidence():
    from kneegui.gui.model_state import model_state

    assert model_state(None).kind == "none"
    pre = model_state(_card())
    assert pre.kind == "pretrained"
    assert pre.headline == "pretrained — not calibrated to this subject"
    holdout = {"before": {"mean_nmae": 0.062, "nmae_last": 0.082},
               "after": {"mean_nmae": 0.030, "nmae_last": 0.053}}
    cal = model_state(_card(subject="S07", created="2026-12-04T15:34:04+00:00",
                            metrics={"calibration_holdout": holdout}), subject="S07")
    assert cal.kind == "calibrated" and cal.headline == "calibrated: S07"
    assert "S07, 2026-12-04" in cal.detail
    assert "6.2 → 3.0 % (mean 10–500 ms)" in cal.detail and "8.2 → 5.3 % at 500 ms" in cal.detail
    other = model_state(_card(subject="S07", metrics={"calibration_holdout": holdout}), "S08")
    assert other.kind == "other-subject" and "NOT to S08" in other.headline
    bare = model_state(_card(subject="S07"))
    assert bare.kind == "calibrated" and "no held-back result" in bare.detail


def _subject_store(tmp_path, subject="S01", holdout=None):
    """A store with a real subject model: the shipped emg+angle weights with a subject card."""
    import json
    import shutil

    from kneegui.calibration import SubjectModelStore
    from kneegui.paths import models_dir

    root = tmp_path / "subject-models"
    root.mkdir(exist_ok=True)
    stem = root / f"{subject}_model"
    shutil.copy(models_dir() / "kneenet_emg_angle.safetensors", stem.with_suffix(".safetensors"))
    card = json.loads((models_dir() / "kneenet_emg_angle.json").read_text())
    card.update(name=f"{subject}-kneenet_emg_angle", subject=subject,
                created="2026-12-04T10:00:00+00:00",
                metrics={"calibration_holdout": holdout or {
                    "before": {"mean_nmae": 0.06, "nmae_last": 0.08},
                    "after": {"mean_nmae": 0.03, "nmae_last": 0.05}}})
    stem.with_suffix(".json").write_text(json.dumps(card))
    return SubjectModelStore(root=root, shipped_dir=models_dir()), stem


def test_window_starts_with_the_stores_active_model_and_shows_its_state(qtbot, tmp_path):
    """`kneegui calibrate` activates a subject model: the window must use it at start."""
    from kneegui.gui.main_window import MainWindow

    store, stem = _subject_store(tmp_path)
    store.set_active(stem)
    settings = QtCore.QSettings(str(tmp_path / "k.ini"), QtCore.QSettings.IniFormat)
    win = MainWindow(settings=settings, discover_fn=lambda t: [], model_store=store)
    qtbot.addWidget(win)
    assert "no model" in win.model_strip.text()
    assert win.autoload_model()
    assert win.session.state.model_path == stem.with_suffix(".safetensors")
    assert win.model_state.kind == "calibrated"
    assert "calibrated: S01" in win.model_strip.text() and "6.0 → 3.0 %" in win.model_strip.text()
    assert "calibrated: S01" in win.status_model.text()
    assert win.model_panel.combo.currentText().endswith("(active)")
    win.recording_panel.subject.setText("S02")  # recording another subject: say so
    assert win.model_state.kind == "other-subject" and "NOT to S02" in win.model_strip.text()
    # choosing a model in the panel makes it the active one (as `kneegui calibrate` would)
    shipped = next(p for _, p, card in win.model_panel.entries() if not card.get("subject"))
    win.model_panel.select_path(str(shipped))
    win.model_panel.load_button.click()
    assert store.active_path() == shipped.with_suffix("").resolve()
    assert win.model_state.kind == "pretrained"
    assert "not calibrated to this subject" in win.model_strip.text()
    win.close()


def test_outage_banner_says_whether_anything_is_recorded():
    from kneegui.gui.main_window import outage_text

    assert "marked in the recording" in outage_text("EMG", recording=True)
    text = outage_text("EMG", recording=False)
    assert "nothing is being recorded" in text and "recorded;" not in text
    assert "gap is recorded" not in text
