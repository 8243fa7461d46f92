"""Colours and fonts shared by the widgets (readable on a light background at 1080p)."""

from __future__ import annotations

#: Distinct, colour-blind-friendly line colours for EMG channels (Okabe-Ito + extras).
CHANNEL_COLORS: tuple[str, ...] = (
    "#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000", "#8C564B",
)

#: Plot geometry shared by the EMG rows and the knee view, so that their time axes (and the
#: x position of "now") coincide: a label column, a left axis, then the plot; the x range runs
#: from -window to +FUTURE_S seconds (the knee view draws the forecast there).
LABEL_COLUMN_PX = 150
AXIS_WIDTH_PX = 52
FUTURE_S = 0.55

MEASURED_COLOR = "#222222"
PREDICTION_COLOR = "#D55E00"
OVERLAY_COLOR = "#0072B2"
NOW_LINE_COLOR = "#888888"
#: Colours of the model-state strip: pretrained (not calibrated), calibrated to this subject,
#: calibrated to another subject, no model.
MODEL_STATE_STYLES: dict[str, str] = {
    "pretrained": "background:#fff3cd; border:1px solid #e08a00; color:#4d3300;",
    "calibrated": "background:#e2f3e5; border:1px solid #1a9641; color:#0b3d18;",
    "other-subject": "background:#fde2e1; border:1px solid #d7191c; color:#5a0000;",
    "none": "background:#eeeeee; border:1px solid #999999; color:#333333;",
}

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
        if isinstance(item, pg.AxisItem | pg.LabelItem | pg.TextItem | pg.LegendItem):
            item.setCacheMode(QtWidgets.QGraphicsItem.DeviceCoordinateCache)


class SteadyRange:
    """A y range that changes rarely: it snaps outward to "nice" steps, grows at once when
    the data leave it, and shrinks only after the data have used less than half of it for
    ``shrink_after`` consecutive updates. Every range change re-renders an axis, so a range
    that follows the data each frame costs more than drawing the data."""

    def __init__(
        self, shrink_after: int = 45, min_span: float = 1e-6, step: float | None = None
    ) -> None:
        self.shrink_after = shrink_after
        self.min_span = min_span
        self.step = step  # fixed snapping step (e.g. 10 degrees); default: from the span
        self.range: tuple[float, float] | None = None
        self._small = 0

    def _snap(self, lo: float, hi: float) -> tuple[float, float]:
        import math

        span = max(hi - lo, 1e-12)
        step = self.step or 10 ** math.floor(math.log10(span)) / 5
        return math.floor(lo / step) * step, math.ceil(hi / step) * step

    def update(self, lo: float, hi: float) -> tuple[float, float] | None:
        """Feed the data extent; returns the new range when it changed, else None."""
        if hi - lo < self.min_span:
            mid = (hi + lo) / 2
            lo, hi = mid - self.min_span / 2, mid + self.min_span / 2
        cur = self.range
        if cur is None or lo < cur[0] or hi > cur[1]:
            self._small = 0
            self.range = self._snap(lo - 0.05 * (hi - lo), hi + 0.05 * (hi - lo))
            return self.range
        if (hi - lo) < 0.5 * (cur[1] - cur[0]):
            self._small += 1
            if self._small >= self.shrink_after:
                self._small = 0
                self.range = self._snap(lo - 0.05 * (hi - lo), hi + 0.05 * (hi - lo))
                return self.range
        else:
            self._small = 0
        return None
