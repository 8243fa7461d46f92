"""Find what a test left behind: Python threads, Qt top-level widgets, LSL outlets.

Like napari's test fixtures (which fail on leaked QThreads and widgets): a leaked reader
thread keeps an inlet open, a leaked outlet stays on the network and confuses the next test's
discovery, a leaked widget keeps timers and signal connections alive. ``tests/conftest.py``
runs :func:`snapshot` before and :func:`leaks_since` after every test and fails the test when
something is left (mark a test ``allow_leaks`` to opt out, with a reason).
"""

from __future__ import annotations

import gc
import sys
import threading
import time
import weakref
from dataclasses import dataclass, field
from typing import Any

#: Seconds a test's threads get to finish after the test (they are asked to stop by then).
THREAD_GRACE_SECONDS = 3.0
#: Long-lived helper threads that libraries start once per process on first use.
ALLOWED_THREAD_PREFIXES = ("tqdm_monitor", "pydevd", "QDBusConnection", "asyncio_")

_outlets: weakref.WeakSet = weakref.WeakSet()


def track_outlets() -> None:
    """Register every ``pylsl.StreamOutlet`` made from now on (in this process)."""
    import pylsl

    cls = pylsl.StreamOutlet
    if getattr(cls, "_kneegui_leak_tracked", False):
        return
    original = cls.__init__

    def tracked_init(self: Any, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        _outlets.add(self)

    cls.__init__ = tracked_init
    cls._kneegui_leak_tracked = True


def _top_level_widgets() -> list[Any]:
    widgets_mod = sys.modules.get("PySide6.QtWidgets")
    if widgets_mod is None:
        return []
    app = widgets_mod.QApplication.instance()
    if app is None:
        return []
    from PySide6.QtCore import QCoreApplication, QEvent

    QCoreApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)
    return [w for w in widgets_mod.QApplication.topLevelWidgets() if not _qt_internal(w)]


def _qt_internal(widget: Any) -> bool:
    """Bare QWidgets that Qt itself creates and replaces (never shown, no children, no native
    window) while a window runs: churn, not a leak. A leaked window or container made by our
    code is a subclass or holds children."""
    from PySide6.QtCore import Qt

    return (type(widget).__name__ == "QWidget" and not widget.children()
            and not widget.testAttribute(Qt.WidgetAttribute.WA_WState_Created))


def _key(widget: Any) -> int:
    """The C++ address: stable, unlike id() of the (re-created) Python wrapper."""
    import shiboken6

    return int(shiboken6.getCppPointer(widget)[0])


@dataclass
class Snapshot:
    threads: set[threading.Thread] = field(default_factory=set)
    outlets: set[int] = field(default_factory=set)
    widgets: set[int] = field(default_factory=set)


def snapshot() -> Snapshot:
    """What exists now (taken before a test)."""
    return Snapshot(set(threading.enumerate()), {id(o) for o in list(_outlets)},
                    {_key(w) for w in _top_level_widgets()})


def _new_threads(before: Snapshot) -> list[threading.Thread]:
    return [t for t in threading.enumerate()
            if t not in before.threads and t.is_alive()
            and not t.name.startswith(ALLOWED_THREAD_PREFIXES)
            and not isinstance(t, threading._DummyThread)]


def leaks_since(before: Snapshot, grace: float = THREAD_GRACE_SECONDS) -> list[str]:
    """A line per thread, outlet and top-level widget that appeared since ``before``."""
    problems: list[str] = []
    deadline = time.monotonic() + grace
    threads = _new_threads(before)
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))
    for thread in _new_threads(before):
        problems.append(f"thread {thread.name!r} ({'daemon' if thread.daemon else 'non-daemon'}) "
                        "is still running")
    outlets = [o for o in list(_outlets) if id(o) not in before.outlets]
    if outlets:
        del outlets
        gc.collect()  # outlets in reference cycles are not leaks, just not yet collected
        outlets = [o for o in list(_outlets) if id(o) not in before.outlets]
    for outlet in outlets:
        try:
            info = outlet.get_info()
            what = f"{info.name()!r} (source_id {info.source_id()!r})"
        except Exception:  # noqa: BLE001 - a half-destroyed outlet
            what = repr(outlet)
        problems.append(f"LSL outlet {what} still exists")
    widgets = [w for w in _top_level_widgets() if _key(w) not in before.widgets]
    if widgets:  # owned by Python objects in reference cycles (pyqtgraph menus): collect.
        # kneegui.gui.gc_guard freezes what is alive at its first tick (app start-up); in a
        # test that may be the test's own window: unfreeze so that it can be judged.
        del widgets
        gc.unfreeze()
        gc.collect()
        widgets = [w for w in _top_level_widgets() if _key(w) not in before.widgets]
    for widget in widgets:
        problems.append(f"Qt top-level widget {type(widget).__name__} "
                            f"{widget.objectName()!r} was not closed and deleted")
    return problems
