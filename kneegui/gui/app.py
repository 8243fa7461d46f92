"""QApplication set-up shared by `kneegui gui`, `kneegui demo` and the tests."""

from __future__ import annotations

import sys

import pyqtgraph as pg
from PySide6 import QtGui, QtWidgets

from kneegui import __version__


def make_app(argv: list[str] | None = None) -> QtWidgets.QApplication:
    """The (single) QApplication, created on first call, with KneeGUI's look.

    Raises :class:`kneegui.gui.platform_check.QtPlatformError` (with what to install) instead
    of letting Qt abort the process when its window platform cannot load."""
    app = QtWidgets.QApplication.instance()
    if app is None:
        from kneegui.gui.platform_check import ensure_qt_platform

        ensure_qt_platform()
        app = QtWidgets.QApplication(argv if argv is not None else sys.argv[:1])
    app.setOrganizationName("KneeGUI")
    app.setApplicationName("KneeGUI")
    app.setApplicationVersion(__version__)
    app.setStyle("Fusion")
    font = app.font()
    if font.pointSizeF() < 10:
        font.setPointSizeF(10)
        app.setFont(font)
    icon = _app_icon()
    if icon is not None:
        app.setWindowIcon(icon)
    pg.setConfigOptions(antialias=False, useOpenGL=False, background="w", foreground="k")
    from kneegui.gui.gc_guard import collect_on_gui_thread

    collect_on_gui_thread()  # worker threads must never destroy Qt objects (deadlock)
    return app


def _app_icon() -> QtGui.QIcon | None:
    from kneegui.paths import resources_dir

    for name in ("kneegui.svg", "kneegui.png", "icon.svg", "icon.png"):
        path = resources_dir() / name
        if path.exists():
            return QtGui.QIcon(str(path))
    return None


def run_main_window() -> int:
    """Open the main window on live LSL streams and run the event loop (`kneegui gui`)."""
    from PySide6 import QtCore

    from kneegui.gui.main_window import MainWindow

    app = make_app(sys.argv[:1])
    window = MainWindow()
    window.show()
    window.streams_panel.refresh()
    QtCore.QTimer.singleShot(0, window.autoload_model)  # after the window is on screen
    return int(app.exec())
