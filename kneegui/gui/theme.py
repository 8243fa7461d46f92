"""Colours and fonts shared by the widgets (readable on a light background at 1080p)."""

from __future__ import annotations

#: Distinct, colour-blind-friendly line colours for EMG channels (Okabe-Ito + extras).
CHANNEL_COLORS: tuple[str, ...] = (
    "#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000", "#8C564B",
)

MEASURED_COLOR = "#222222"
PREDICTION_COLOR = "#D55E00"
OVERLAY_COLOR = "#0072B2"
NOW_LINE_COLOR = "#888888"

STATUS_COLORS: dict[str, str] = {
    "ok": "#1a9641", "warn": "#e08a00", "bad": "#d7191c", "none": "#777",
}

_OK = {"ok", "good"}
_BAD = {"flat", "clipping", "clipped", "saturated", "bad", "dead", "outage", "disconnected"}


def status_color_key(status: str) -> str:
    """Map a quality or stream status word to ``ok`` / ``warn`` / ``bad``."""
    s = status.lower()
    if s in _OK:
        return "ok"
    if s in _BAD:
        return "bad"
    return "warn"


def cache_static_items(scene) -> None:
    """Render axes and text of a pyqtgraph scene from a pixmap cache.

    They change rarely but would be repainted with every frame of the curves; with the cache
    they are redrawn only when they call ``update()`` (new range or text). Halves the paint
    time of the stacked EMG plot in software rendering.
    """
    import pyqtgraph as pg
    from PySide6 import QtWidgets

    for item in scene.items():
        if isinstance(item, pg.AxisItem | pg.LabelItem | pg.TextItem):
            item.setCacheMode(QtWidgets.QGraphicsItem.DeviceCoordinateCache)
