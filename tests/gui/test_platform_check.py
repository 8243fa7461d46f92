"""Qt aborts the process (exit 134) when its X11 platform plugin cannot load; KneeGUI checks
first and says what is missing and what to install."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from kneegui.gui.platform_check import (
    X11_PACKAGES,
    debian_package,
    display_reachable,
    missing_libraries,
    qt_platform_problem,
    requested_platform,
    xcb_plugin_path,
)

#: Qt's X11 platform exists on Linux only (CI runs Linux: these tests run there).
linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="X11 on Linux")


def test_debian_package_names_follow_the_library_policy():
    assert debian_package("libxcb-icccm.so.4") == "libxcb-icccm4"
    assert debian_package("libxcb-cursor.so.0") == "libxcb-cursor0"
    assert debian_package("libxkbcommon-x11.so.0") == "libxkbcommon-x11-0"
    assert debian_package("libGL.so.1") == "libgl1"
    assert X11_PACKAGES == ("libxcb-cursor0", "libxcb-icccm4", "libxcb-keysyms1")


def test_requested_platform_follows_qt_rules():
    assert requested_platform({"QT_QPA_PLATFORM": "offscreen"}) == "offscreen"
    assert requested_platform({"QT_QPA_PLATFORM": "xcb;wayland"}) == "xcb"
    if sys.platform.startswith("linux"):
        assert requested_platform({"DISPLAY": ":0"}) == "xcb"
        assert requested_platform({"WAYLAND_DISPLAY": "w", "XDG_SESSION_TYPE": "wayland"}) \
            == "wayland"
    assert qt_platform_problem({"QT_QPA_PLATFORM": "offscreen"}) is None


def _free_display() -> str:
    n = 4711
    while Path(f"/tmp/.X11-unix/X{n}").exists():
        n += 1
    return f":{n}"


@linux_only
def test_a_missing_x11_library_is_named_with_its_package(tmp_path):
    """A real ELF that needs a library this machine does not have: the xcb plugin with one
    dependency renamed (same length), next to the real Qt libraries."""
    plugin = xcb_plugin_path()
    if plugin is None or shutil.which("ldd") is None:
        # Environment only: PySide6's Linux wheels ship the xcb plugin and Debian/Ubuntu have
        # ldd, so it runs in CI; a platform without them has no X11 check to test.
        pytest.skip("no Qt xcb plugin or no ldd here")
    blob = plugin.read_bytes()
    assert b"libxcb-cursor.so.0\0" in blob
    fake = tmp_path / "plugins" / "platforms" / "libqxcb.so"
    fake.parent.mkdir(parents=True)
    fake.write_bytes(blob.replace(b"libxcb-cursor.so.0\0", b"libxcb-nosuch.so.0\0"))
    (tmp_path / "lib").symlink_to(plugin.parents[2] / "lib")  # RUNPATH $ORIGIN/../../lib
    assert "libxcb-nosuch.so.0" in missing_libraries(fake)
    message = qt_platform_problem({"QT_QPA_PLATFORM": "xcb", "DISPLAY": ":0"}, plugin=fake)
    assert "libxcb-nosuch.so.0" in message
    assert "sudo apt-get install" in message and "libxcb-nosuch0" in message
    assert "libxcb-cursor0 libxcb-icccm4 libxcb-keysyms1" in message
    assert "QT_QPA_PLATFORM=offscreen" in message


@linux_only
def test_no_reachable_display_is_a_message_not_an_abort(tmp_path):
    display = _free_display()
    assert not display_reachable(display)
    env = {**os.environ, "QT_QPA_PLATFORM": "xcb", "DISPLAY": display, "HOME": str(tmp_path),
           "XDG_CONFIG_HOME": str(tmp_path / "config")}
    env.pop("WAYLAND_DISPLAY", None)
    proc = subprocess.run([sys.executable, "-m", "kneegui", "gui"], capture_output=True,
                          text=True, env=env, timeout=60)
    assert proc.returncode == 1, (proc.returncode, proc.stderr[-1500:])
    assert "kneegui gui: cannot open the window" in proc.stderr
    assert "Traceback" not in proc.stderr and "Aborted" not in proc.stderr
    plugin = xcb_plugin_path()
    if plugin is not None and not missing_libraries(plugin):
        assert f"DISPLAY={display}" in proc.stderr
    else:  # a machine without the X11 libraries: those are named first
        assert "apt-get install" in proc.stderr


def test_the_deb_depends_on_the_x11_libraries_of_the_window():
    """Without them the bundled Qt aborts under a real X server (issue 19, item 11)."""
    control = (Path(__file__).resolve().parents[2] / "installers" / "debian" / "control.in")
    depends = next(line for line in control.read_text().splitlines()
                   if line.startswith("Depends:"))
    packages = {p.strip().split(" ")[0] for p in depends.split(":", 1)[1].split(",")}
    assert set(X11_PACKAGES) <= packages
    assert {"libxkbcommon-x11-0", "libxcb-image0", "libxcb-render-util0"} <= packages
