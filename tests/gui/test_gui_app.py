"""`kneegui gui` opens the main window, runs the event loop and exits cleanly when quit.

Run in a subprocess: quitting the QApplication (pyqtgraph cleans up on aboutToQuit) would
spoil the shared application of the other GUI tests.
"""

import os
import subprocess
import sys

SCRIPT = """
from PySide6 import QtCore, QtWidgets
from kneegui.gui.app import make_app, run_main_window
from kneegui.gui.main_window import MainWindow

app = make_app()
seen = []

def look_then_quit():
    seen.extend(w for w in QtWidgets.QApplication.topLevelWidgets()
                if isinstance(w, MainWindow) and w.isVisible())
    for w in seen:
        w.close()
    app.quit()

QtCore.QTimer.singleShot(1500, look_then_quit)
rc = run_main_window()
print("RESULT", rc, len(seen))
"""


def test_run_main_window_shows_the_window_and_returns_on_quit(tmp_path):
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "HOME": str(tmp_path),
           "XDG_CONFIG_HOME": str(tmp_path / "config")}
    out = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True,
                         env=env, timeout=60)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "RESULT 0 1" in out.stdout, out.stdout + out.stderr[-2000:]
    assert "Traceback" not in out.stderr, out.stderr[-2000:]
