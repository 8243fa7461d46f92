"""Garbage holding Qt objects is destroyed on the GUI thread, never in a worker thread
(shiboken destroying a QObject in a worker deadlocked the suite: worker waits for the GIL
while holding Qt's mutex, the GUI thread holds the GIL and waits for that mutex)."""

from __future__ import annotations

import gc
import threading

from PySide6 import QtWidgets

from kneegui.gui.app import make_app
from kneegui.gui.gc_guard import collect_if_due, collect_on_gui_thread


class _Tracked(QtWidgets.QWidget):
    deleted_in: list[str] = []

    def __del__(self) -> None:
        _Tracked.deleted_in.append(threading.current_thread().name)


def _cyclic_widget() -> None:
    w = _Tracked()
    w.me = w  # only the cyclic collector can free it


def test_worker_allocations_never_collect_qt_garbage(qtbot):
    make_app()
    assert not collect_on_gui_thread()  # make_app installed it already: once per app
    assert not gc.isenabled()
    _Tracked.deleted_in.clear()
    _cyclic_widget()

    kept: list = []

    def allocate() -> None:  # far past the gen-0 threshold (automatic gc would run here)
        kept.append([[] for _ in range(50_000)])

    worker = threading.Thread(target=allocate, name="worker")
    worker.start()
    worker.join()
    assert _Tracked.deleted_in == []  # the worker did not collect
    qtbot.waitUntil(lambda: _Tracked.deleted_in == ["MainThread"], timeout=3000)
    kept.clear()


def test_collect_if_due_follows_the_thresholds():
    make_app()
    gc.collect()
    assert collect_if_due() == 0  # counters were just reset: nothing due
    kept = [[] for _ in range(gc.get_threshold()[0] + 10)]
    assert gc.get_count()[0] > gc.get_threshold()[0]
    collect_if_due()
    assert gc.get_count()[0] < gc.get_threshold()[0]
    del kept
