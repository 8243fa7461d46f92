"""Can Qt open a window here? Checked before the QApplication exists: when its platform plugin
cannot load (missing X11 libraries, no reachable display) Qt prints a cryptic line and aborts
the whole process (exit 134). This module says instead what is missing and what to install.

Only the X11 platform (``xcb``, the Linux default) is checked; ``offscreen`` / ``minimal``
need nothing, and other platforms (Wayland, macOS, Windows) are left to Qt.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
from pathlib import Path

#: The X11 libraries the Qt xcb plugin needs that minimal Debian/Ubuntu installs often lack.
X11_PACKAGES = ("libxcb-cursor0", "libxcb-icccm4", "libxcb-keysyms1")
_NOT_FOUND = re.compile(r"^\s*(\S+)\s*=>\s*not found", re.MULTILINE)


class QtPlatformError(RuntimeError):
    """Qt cannot open a window on this machine; the message says why and what to do."""


def requested_platform(env: dict[str, str] | None = None) -> str | None:
    """The platform plugin Qt will try first, or None when it is not decided here."""
    env = os.environ if env is None else env
    explicit = env.get("QT_QPA_PLATFORM", "").strip()
    if explicit:
        return explicit.split(";")[0].split(":")[0].strip() or None
    if not sys.platform.startswith("linux"):
        return None
    if env.get("WAYLAND_DISPLAY") and env.get("XDG_SESSION_TYPE") == "wayland":
        return "wayland"
    return "xcb"


def xcb_plugin_path() -> Path | None:
    """The Qt xcb platform plugin (``libqxcb.so``) of the installed PySide6, if present."""
    try:
        from PySide6 import QtCore

        plugins = Path(QtCore.QLibraryInfo.path(QtCore.QLibraryInfo.LibraryPath.PluginsPath))
    except Exception:  # noqa: BLE001 - no Qt at all is reported by the import elsewhere
        return None
    path = plugins / "platforms" / "libqxcb.so"
    return path if path.is_file() else None


def missing_libraries(binary: Path) -> list[str]:
    """Shared libraries ``binary`` needs that the dynamic loader cannot find (via ``ldd``;
    empty when ``ldd`` is not available)."""
    ldd = shutil.which("ldd")
    if ldd is None:
        return []
    try:
        out = subprocess.run([ldd, str(binary)], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return []
    return sorted(set(_NOT_FOUND.findall(out.stdout)))


def debian_package(soname: str) -> str:
    """Debian/Ubuntu package that usually ships ``soname`` (library packaging policy:
    ``libxcb-icccm.so.4`` -> ``libxcb-icccm4``, ``libxkbcommon-x11.so.0`` ->
    ``libxkbcommon-x11-0``)."""
    m = re.match(r"^(.+?)\.so\.(\d+)", soname)
    if not m:
        return soname
    base, version = m.group(1).lower(), m.group(2)
    return f"{base}-{version}" if base[-1].isdigit() else f"{base}{version}"


def display_reachable(display: str, timeout: float = 1.0) -> bool:
    """Whether an X server answers at ``display`` (``:0``, ``unix:0``, ``host:0.0``)."""
    m = re.match(r"^(?P<host>[^:]*):(?P<num>\d+)(\.\d+)?$", display.strip())
    if not m:
        return True  # a form we do not know (e.g. a launchd path): let Qt try
    host, num = m.group("host"), int(m.group("num"))
    if host in ("", "unix"):
        for address in (f"/tmp/.X11-unix/X{num}", f"\0/tmp/.X11-unix/X{num}"):
            try:
                with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
                    s.settimeout(timeout)
                    s.connect(address)
                    return True
            except OSError:
                continue
        if host == "unix":
            return False
        host = "localhost"
    try:
        with socket.create_connection((host, 6000 + num), timeout=timeout):
            return True
    except OSError:
        return False


def qt_platform_problem(env: dict[str, str] | None = None,
                        plugin: Path | None = None) -> str | None:
    """Why Qt's window platform would fail to start here (a message for the operator), or None.

    ``plugin`` overrides the xcb plugin whose libraries are checked (for tests)."""
    env = os.environ if env is None else env
    if requested_platform(env) != "xcb":
        return None
    plugin = plugin or xcb_plugin_path()
    missing = missing_libraries(plugin) if plugin is not None else []
    if missing:
        packages = sorted({debian_package(m) for m in missing})
        return (
            "cannot open the window: Qt's X11 platform plugin needs system libraries that are "
            f"not installed: {', '.join(missing)}.\n"
            f"  Debian/Ubuntu: sudo apt-get install {' '.join(packages)}\n"
            f"  (the window's usual set: sudo apt-get install {' '.join(X11_PACKAGES)})\n"
            "  Without a desktop, run headless instead: QT_QPA_PLATFORM=offscreen, e.g. "
            "`kneegui demo` on a machine with no DISPLAY."
        )
    display = env.get("DISPLAY", "")
    if not display:
        return (
            "cannot open the window: no X11 display (DISPLAY is not set). Start KneeGUI from a "
            "desktop session, or run headless with QT_QPA_PLATFORM=offscreen "
            "(`kneegui demo` does this by itself when there is no display)."
        )
    if not display_reachable(display):
        return (
            f"cannot open the window: no X server answers on DISPLAY={display}. Check that the "
            "desktop session (or xvfb-run) is running and DISPLAY is right, or run headless "
            "with QT_QPA_PLATFORM=offscreen."
        )
    return None


def ensure_qt_platform() -> None:
    """Raise :class:`QtPlatformError` when Qt could not open its window platform (call
    before creating the QApplication; a no-op once one exists)."""
    from PySide6 import QtWidgets

    if QtWidgets.QApplication.instance() is not None:
        return
    problem = qt_platform_problem()
    if problem:
        raise QtPlatformError(problem)
