"""The layout screenshot tests once more on a real X server (Xvfb) with Qt's X11 platform
(xcb): fonts, DPI and the platform plugin are those of a desktop, not of ``offscreen``.

Skipped on a developer machine without ``xvfb-run``; ``.ci/run`` sets
``KNEEGUI_REQUIRE_XVFB=1`` (after installing xvfb and the X11 libraries) so that there it
fails instead of skipping.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

HERE = Path(__file__).resolve().parent


def test_layout_tests_pass_under_xvfb_with_the_x11_platform(tmp_path):
    xvfb_run = shutil.which("xvfb-run")
    if xvfb_run is None:
        if os.environ.get("KNEEGUI_REQUIRE_XVFB") == "1":
            pytest.fail("xvfb-run is required here (KNEEGUI_REQUIRE_XVFB=1): "
                        "apt-get install xvfb libxcb-cursor0 libxcb-icccm4 libxcb-keysyms1")
        # A developer machine without Xvfb; CI (.ci/run) installs it and sets
        # KNEEGUI_REQUIRE_XVFB=1, which turns this skip into the failure above.
        pytest.skip("xvfb-run not installed (apt-get install xvfb)")
    shots = tmp_path / "png"
    env = {**os.environ, "QT_QPA_PLATFORM": "xcb", "KNEEGUI_EXPECT_QT_PLATFORM": "xcb",
           "KNEEGUI_LAYOUT_PNG_DIR": str(shots)}
    env.pop("DISPLAY", None)
    env.pop("WAYLAND_DISPLAY", None)
    proc = subprocess.run(
        [xvfb_run, "-a", "-s", "-screen 0 2048x1280x24", sys.executable, "-m", "pytest", "-q",
         "-p", "no:cacheprovider", "-p", "no:randomly", str(HERE / "test_layout.py")],
        capture_output=True, text=True, env=env, timeout=600, cwd=HERE.parents[1],
    )
    tail = (proc.stdout + proc.stderr)[-4000:]
    assert proc.returncode == 0, tail
    assert "6 passed" in proc.stdout, tail
    from PySide6 import QtGui

    for size in ("1920x1080", "1366x768"):
        img = QtGui.QImage(str(shots / f"layout_{size}.png"))
        assert f"{img.width()}x{img.height()}" == size, size
        img = img.convertToFormat(QtGui.QImage.Format_RGB888)
        arr = np.frombuffer(img.constBits(), np.uint8, img.sizeInBytes()).reshape(
            img.height(), img.bytesPerLine())[:, : img.width() * 3]
        assert arr.std() > 20  # a real render, not a blank window
