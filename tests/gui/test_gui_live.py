"""The main window against real loopback LSL streams: discovery + roles, advancing plots,
predictions with measured latency, recording with predictions and markers, live filter
changes from the settings dialog, a sender outage and its recovery, and a real screenshot.

One window and one sender serve the whole module (connecting costs seconds): the fixture
discovers the streams, connects and loads the shipped model, so every test also runs alone
or in any order, and each checks its own effect.
"""

from __future__ import annotations

import uuid

import numpy as np
import pytest
from gui_loopback import LoopbackSender, wait_until
from PySide6 import QtCore, QtGui

from kneegui.gui.app import make_app
from kneegui.gui.main_window import MainWindow
from kneegui.live.remote import RemoteSession

# One window serves the module: a test's model, outlet or dialog stays for the next ones. The
# leak check therefore runs once, after the module's window is closed (tests/conftest.py).
pytestmark = pytest.mark.allow_leaks("one window, sender and model serve the whole module")


def _discover_and_connect(win: MainWindow, sender: LoopbackSender) -> None:
    panel = win.streams_panel

    def ours_listed():
        return set(sender.source_ids) <= {i.source_id for i in panel.streams()}

    for _ in range(5):  # other engineers' streams come and go; retry discovery
        panel.refresh(timeout=1.5)
        assert wait_until(lambda: not panel.discovering, 15.0), "discovery never finished"
        if ours_listed():
            break
    assert ours_listed(), [i.source_id for i in panel.streams()]
    for info in panel.streams():  # keep only this module's streams
        if info.source_id not in sender.source_ids:
            panel.set_role(info.source_id, None)
    # Other EMG / angle streams on the machine make the panel ask which one is meant: our
    # streams, by source_id (never "the only EMG stream").
    panel.set_role(sender.source_ids[0], "EMG")
    panel.set_role(sender.source_ids[1], "KNEE_ANGLE")
    while panel.pending_question() is not None:  # e.g. two foreign force streams: neither
        panel.answer_question(None)
    panel.connect_button.click()
    assert win.session.connected, win.banners.messages()


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    """(window, sender, tmp dir): streams discovered through the Streams panel, connected, the
    shipped model predicting."""
    from kneegui.gui.demo_runner import default_model_path

    make_app()
    tmp = tmp_path_factory.mktemp("gui_live")
    sender = LoopbackSender(emg_channels=6).start()  # 4 model channels + 2 others
    settings = QtCore.QSettings(str(tmp / "gui.ini"), QtCore.QSettings.IniFormat)
    # A prediction outlet name of its own: its source_id is stable per host and name.
    win = MainWindow(session=RemoteSession(outlet_name=f"KneeGUI test {uuid.uuid4().hex[:8]}"),
                     settings=settings)
    win.recording_panel.out_dir.setText(str(tmp / "sessions"))
    win.resize(1600, 950)
    win.show()
    value: list = []
    try:
        _discover_and_connect(win, sender)
        assert win.load_model(str(default_model_path())), win.banners.messages()
        value += [win, sender, tmp]
        yield value
    finally:
        win.close()
        win.deleteLater()
        sender.stop()
        # pytest keeps the fixture value until after teardown: empty it, so that the window's
        # Python objects (and the plot menus they own) go now (leak check, tests/conftest.py)
        value.clear()
        del win


def test_streams_are_discovered_and_assigned(live, qtbot):
    win, sender, _ = live
    panel = win.streams_panel
    roles = {a.info.source_id: a.role for a in panel.assignments()}
    assert roles == {sender.source_ids[0]: "EMG", sender.source_ids[1]: "KNEE_ANGLE"}
    assert panel.emg_picks() == (0, 1, 2, 3)
    assert win.session.connected, win.banners.messages()
    assert not panel.connect_button.isEnabled()
    qtbot.waitUntil(lambda: panel.status_table.rowCount() == 2
                    and panel.status_state(0) == "● live" and panel.status_state(1) == "● live",
                    timeout=10_000)


def test_plots_advance(live, qtbot):
    win, _, _ = live
    plot = win.emg_plot
    qtbot.waitUntil(lambda: plot.last_newest_t is not None, timeout=5_000)
    first = plot.last_newest_t
    frames = plot.frames_drawn
    qtbot.wait(1000)
    assert plot.last_newest_t > first + 0.5
    assert plot.frames_drawn >= frames + 8  # 40 Hz timer; >= 8 fps even on a loaded machine
    x, y = plot.curve_data(0)
    assert x.size > 100 and np.ptp(y) > 0
    assert [plot.badge_text(i).split("</b>")[0] for i in range(4)] == [
        "<b>RF", "<b>BF", "<b>VM", "<b>ST"]
    qtbot.waitUntil(lambda: "no quality data" not in plot.badge_text(0), timeout=3_000)
    win.mode_combo.setCurrentIndex(0)  # raw: every channel of the amplifier
    qtbot.waitUntil(lambda: plot.channel_count == 6, timeout=2_000)
    assert "E6" in plot.badge_text(5)
    win.mode_combo.setCurrentIndex(1)  # filtered: the 4 model channels
    qtbot.waitUntil(lambda: plot.channel_count == 4, timeout=2_000)
    kx, ky = win.knee_view._measured.getData()
    assert kx is not None and kx.size > 50 and ky.max() - ky.min() > 20  # the gait curve


def test_prediction_curve_updates_with_measured_latency(live, qtbot):
    win, _, _ = live
    from kneegui.gui.demo_runner import default_model_path

    assert win.load_model(str(default_model_path())), win.banners.messages()
    worker = win.session.worker
    assert worker is not None and worker.running
    qtbot.waitUntil(lambda: worker.predictions > 20, timeout=10_000)
    qtbot.waitUntil(lambda: win.knee_view.last_prediction_t is not None, timeout=3_000)
    t1 = win.knee_view.last_prediction_t
    qtbot.wait(300)
    assert win.knee_view.last_prediction_t > t1  # the curve moves with new predictions
    x, y = win.knee_view.prediction_curve()
    assert x.size == 50 and np.all(np.isfinite(y))
    assert x[0] > -0.3 and x[-1] > 0.3  # drawn ahead of "now"
    inf = worker.inference_latency
    e2e = worker.end_to_end_latency
    assert inf.count > 20 and 0 < inf.median() < 0.1
    assert e2e.count > 20 and 0 < e2e.median() < 0.5
    qtbot.waitUntil(lambda: "—" not in win.status_inference.text(), timeout=2_000)
    assert win.status_inference.text().startswith("inference ")
    assert "end-to-end" in win.status_e2e.text() and "—" not in win.status_e2e.text()
    qtbot.waitUntil(lambda: win.knee_view.last_error is not None, timeout=8_000)


def test_a_subject_model_with_calibration_memory_predicts_live(live, qtbot, tmp_path, uci_dir):
    """A calibrated EMG-only subject model (network + EMG-keyed memory) loads in the window and
    its worker predicts on the live streams with the memory taking part."""
    from kneegui.adaptation.finetune import CalibrationData, FinetuneSettings, finetune
    from kneegui.gui.demo_runner import default_model_path
    from kneegui.model import load_model, shipped_model_path
    from kneegui.model.io import save_model
    from kneegui.research.data import load_series
    from kneegui.research.splits import gait_cycles

    win, _, _ = live
    gait = max(load_series(uci_dir, exercises=("mar",)), key=len)
    cycles = gait_cycles(gait.angle, 100.0)[:3]
    end = cycles[-1][1]
    calib = CalibrationData(gait.emg_env[:end], gait.angle[:end], cycles, subject="S-live")
    tuned = finetune(load_model(shipped_model_path("emg")), calib,
                     settings=FinetuneSettings(max_epochs=2)).model
    assert tuned.memory is not None
    stem = tmp_path / "S-live_emg"
    save_model(stem, tuned)
    try:
        assert win.load_model(str(stem) + ".safetensors"), win.banners.messages()
        assert win.session.loaded.memory is not None
        worker = win.session.worker
        qtbot.waitUntil(lambda: worker.predictions > 20, timeout=10_000)
        assert worker.errors == 0, worker.last_error
        _, preds = win.session.prediction_snapshot(1.0)
        assert preds.shape[1] == 50 and np.isfinite(preds).all()
    finally:
        assert win.load_model(str(default_model_path())), win.banners.messages()


def test_calibrate_action_opens_the_wizard_on_the_live_hub(live, qtbot, tmp_path, monkeypatch):
    win, _, _ = live
    monkeypatch.setenv("KNEEGUI_SUBJECT_MODELS_DIR", str(tmp_path / "subject_models"))
    assert win.calibrate_action.isVisible() or win.calibrate_action.isEnabled()
    wizard = win.open_calibration()
    assert wizard is not None and wizard.isVisible()
    assert wizard.hub is win.session.hub and wizard.active_model is win.session.loaded
    wizard.reject()
    assert not wizard.isVisible()
    assert win.session.worker.running  # the live prediction keeps going


def test_publish_predictions_as_lsl_outlet(live, qtbot):
    import pylsl

    win, _, _ = live
    win.model_panel.publish.setChecked(True)
    outlet = win.session.outlet
    assert outlet is not None and win.publish_action.isChecked()
    found = pylsl.resolve_byprop("source_id", outlet.source_id, minimum=1, timeout=5)
    assert found and found[0].type() == "KneeAnglePrediction"
    inlet = pylsl.StreamInlet(found[0])
    info = inlet.info(timeout=5)
    ch = info.desc().child("channels").child("channel")
    assert ch.child_value("label") == "h10ms"
    inlet.open_stream(timeout=5)
    chunk, ts = [], []
    for _ in range(40):
        c, t = inlet.pull_chunk(timeout=0.2)
        chunk += c
        ts += t
        if len(chunk) > 5:
            break
    assert len(chunk) > 5 and len(chunk[0]) == 51  # 50 horizons + newest_input_ms
    assert all(row[-1] >= 0 for row in chunk)


def test_record_start_stop_yields_session_with_predictions_and_markers(live, qtbot):
    win, _, _ = live
    from kneegui.recording import open_session

    win.recording_panel.subject.setText("T01")
    win.recording_panel.record_button.click()
    assert win.session.writer is not None, win.banners.messages()
    path = win.session.writer.path
    assert win.recording_panel.record_button.isChecked()
    qtbot.wait(600)
    win.recording_panel.marker_label.setText("left heel strike")
    win.recording_panel.marker_button.click()
    win.quick_marker_actions[0].trigger()  # Ctrl+1: "trial start"
    win.recording_panel.marker_label.setText("toe off")
    win.marker_action.trigger()  # Ctrl+M: the label typed in the recording panel
    qtbot.wait(900)
    qtbot.waitUntil(lambda: "REC" in win.recording_panel.elapsed.text(), timeout=2_000)
    win.record_action.trigger()  # Ctrl+R stops
    assert win.session.writer is None
    assert path is not None and path.exists()
    assert str(path) in win.recording_panel.path_label.text()
    with open_session(path) as s:
        assert s.subject_id == "T01"
        lengths = {st.type: st.length for st in s.streams.values()}
        assert lengths["EMG"] > 1000 and lengths["Angle"] > 100
        labels = [lab for _, lab, origin in s.events.as_list() if origin == "operator"]
        assert {"left heel strike", "trial start", "toe off"} <= set(labels)
        assert s.predictions is not None and len(s.predictions.timestamps) > 50
        assert s.predictions.values.shape[1] == 50


def test_settings_dialog_changes_the_live_filter(live, qtbot):
    win, _, _ = live
    win.mode_combo.setCurrentIndex(1)  # filtered
    hub = win.session.hub

    def filtered_rms():
        data, _, _ = win.session.emg_snapshot("filtered", 0.5)
        return float(np.sqrt(np.mean(data.astype(np.float64) ** 2)))

    qtbot.wait(600)
    before = filtered_rms()
    dlg = win.open_settings()
    dlg.low.setValue(20.0)
    dlg.high.setValue(40.0)  # white-ish EMG: a 20 Hz band keeps ~5 % of the 20-450 Hz power
    dlg.mains.setCurrentIndex(1)
    dlg.buttons.button(dlg.buttons.StandardButton.Apply).click()
    assert hub.filter_settings.high == 40.0 and hub.filter_settings.mains == 60.0
    assert win.display.filter["high"] == 40.0
    # the last 0.5 s holds only samples filtered with the new band once the hub caught up
    qtbot.waitUntil(lambda: filtered_rms() < 0.5 * before, timeout=5_000)
    dlg.high.setValue(450.0)
    dlg.mains.setCurrentIndex(0)
    dlg.buttons.button(dlg.buttons.StandardButton.Ok).click()
    assert hub.filter_settings.high == 450.0


def test_screenshot_is_a_real_render(live, qtbot, tmp_path):
    win, _, _ = live
    qtbot.wait(300)
    png = tmp_path / "window.png"
    assert win.grab().save(str(png))
    img = QtGui.QImage(str(png)).convertToFormat(QtGui.QImage.Format_RGB888)
    assert img.width() >= 1200 and img.height() >= 700
    ptr = img.constBits()
    arr = np.frombuffer(ptr, dtype=np.uint8, count=img.sizeInBytes()).reshape(
        img.height(), img.bytesPerLine())[:, : img.width() * 3].reshape(img.height(), -1, 3)
    assert arr.std() > 20
    colours = {tuple(c) for c in arr[::7, ::7].reshape(-1, 3)}
    assert len(colours) > 50
    # The EMG plot's channel colours and the prediction colour are really on screen.
    for hex_colour in ("#0072B2", "#D55E00"):
        q = QtGui.QColor(hex_colour)
        rgb = np.array([q.red(), q.green(), q.blue()])
        assert (np.abs(arr.astype(int) - rgb).sum(axis=2) < 30).sum() > 50, hex_colour


def test_sender_outage_shows_indicator_and_recovers(live, qtbot):
    win, sender, _ = live
    panel = win.streams_panel
    sender.pause(3.0)
    qtbot.waitUntil(lambda: "OUTAGE" in panel.status_state(0), timeout=6_000)
    key = f"outage:{sender.source_ids[0]}"
    qtbot.waitUntil(lambda: "stopped sending" in win.banners.messages().get(key, ""),
                    timeout=2_000)
    assert win.session.writer is None  # not recording: the banner must not claim it is
    assert "nothing is being recorded" in win.banners.messages()[key]
    assert "OUTAGE" in win.status_streams.text()
    qtbot.waitUntil(lambda: panel.status_state(0) == "● live", timeout=10_000)
    qtbot.waitUntil(lambda: "is back" in win.banners.messages().get(key, ""), timeout=2_000)
    assert "OUTAGE" not in win.status_streams.text()
    cell = panel.status_table.item(0, panel.STATUS_COLUMNS.index("Gaps / outages")).text()
    assert int(cell.split("/")[1]) >= 1
