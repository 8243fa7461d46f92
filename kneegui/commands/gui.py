"""`kneegui gui`: open the main window (streams are discovered from the network)."""

from __future__ import annotations

import sys


def register(subparsers) -> None:
    p = subparsers.add_parser("gui", help="open the main window (live LSL streams)")
    p.set_defaults(run=run)


def run(args) -> int:
    from PySide6 import QtCore

    from kneegui.gui.app import make_app
    from kneegui.gui.main_window import MainWindow

    app = make_app(sys.argv[:1])
    window = MainWindow()
    window.show()
    window.streams_panel.refresh()
    QtCore.QTimer.singleShot(0, window.autoload_model)  # after the window is on screen
    return int(app.exec())
