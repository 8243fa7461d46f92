"""Python garbage collection only on the GUI thread while a Qt application runs.

CPython runs a collection in whichever thread happens to allocate. When that is a worker thread
(inference, hub, fine-tuning) and the garbage holds Qt objects (a closed dialog, an old window's
menus), shiboken destroys them there: the worker takes Qt's object mutex and waits for the GIL
while the GUI thread holds the GIL and waits for that mutex. A real deadlock, seen in the test
suite (the inference thread collecting an old main window's QMenu). So automatic collection is
switched off and the GUI thread collects on a timer with the usual generation thresholds (the
fix pyqtgraph ships as ``pyqtgraph.util.garbage_collector``).

On its first tick (the event loop is running: start-up is over) everything alive is moved to
the permanent generation (``gc.freeze``): modules, torch and Qt start-up objects are never
garbage, and without them a full collection on the GUI thread takes milliseconds, not the
60-110 ms measured with them.
"""

from __future__ import annotations

import gc

from PySide6 import QtCore

_TIMER: QtCore.QTimer | None = None
_FROZEN = False


def collect_on_gui_thread(interval_ms: int = 250) -> bool:
    """Install the GUI-thread collector once per QApplication; True if installed now.

    Call from the GUI thread after the QApplication exists."""
    global _TIMER
    app = QtCore.QCoreApplication.instance()
    if app is None:
        raise RuntimeError("create the QApplication before installing the GUI-thread collector")
    if _TIMER is not None and _TIMER.parent() is app:
        return False
    timer = QtCore.QTimer(app)
    timer.setInterval(int(interval_ms))
    timer.timeout.connect(collect_if_due)
    gc.disable()
    timer.start()
    _TIMER = timer
    return True


def collect_if_due() -> int:
    """Collect the generations whose allocation counters passed their thresholds (the first
    call collects everything and freezes what survives)."""
    global _FROZEN
    if not _FROZEN:
        _FROZEN = True
        found = gc.collect()
        gc.freeze()
        return found
    t0, t1, t2 = gc.get_threshold()
    c0, c1, c2 = gc.get_count()
    if c0 <= t0:
        return 0
    generation = 2 if (c1 > t1 and c2 > t2) else 1 if c1 > t1 else 0
    return gc.collect(generation)
