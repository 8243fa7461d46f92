"""The window with its predictor process: if that process dies, the window says so plainly (no
frozen plots, no traceback) and connecting again starts a new one."""

from __future__ import annotations

import os
import signal
import uuid

from gui_loopback import LoopbackSender
from PySide6 import QtCore

from kneegui.acquisition import resolve_source_id
from kneegui.gui.app import make_app
from kneegui.gui.demo_runner import default_model_path, lab_assignments
from kneegui.gui.main_window import MainWindow
from kneegui.live.remote import RemoteSession


def test_a_dead_predictor_process_is_reported_and_replaced(qtbot, tmp_path):
    make_app()
    sender = LoopbackSender().start()
    settings = QtCore.QSettings(str(tmp_path / "gui.ini"), QtCore.QSettings.IniFormat)
    session = RemoteSession(outlet_name=f"KneeGUI proc test {uuid.uuid4().hex[:8]}")
    win = MainWindow(session=session, settings=settings)
    qtbot.addWidget(win)
    try:
        infos = [resolve_source_id(s, timeout=10)[0] for s in sender.source_ids]
        assert win.connect_streams(lab_assignments(infos)), win.banners.messages()
        assert win.load_model(str(default_model_path())), win.banners.messages()
        qtbot.waitUntil(lambda: session.worker.predictions > 10, timeout=15_000)
        first = session.pid
        os.kill(first, signal.SIGKILL)
        qtbot.waitUntil(lambda: not session.process_alive, timeout=5_000)
        win.update_status()
        assert "predictor process stopped" in win.banners.messages().get("predictor", "")
        assert win.connect_streams(lab_assignments(infos)), win.banners.messages()
        assert win.load_model(str(default_model_path())), win.banners.messages()
        assert session.pid != first and session.process_alive
        qtbot.waitUntil(lambda: session.worker.predictions > 10, timeout=15_000)
        win.update_status()
        assert "predictor" not in win.banners.messages()  # gone with the problem
    finally:
        win.close()
        sender.stop()
