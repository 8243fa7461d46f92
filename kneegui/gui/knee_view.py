"""Knee view: the measured knee angle up to "now", the latest predicted future trajectory
drawn ahead of it (with the last few predictions fading behind it), and the trace of what was
predicted H steps ago laid over what then happened. A label column on the left (as wide as
the EMG rows' one, so both time axes line up) holds the running MAE / NMAE readout."""

from __future__ import annotations

import time

import numpy as np
import pyqtgraph as pg
from PySide6 import QtCore, QtGui

from kneegui.gui.badge_label import BadgeLabel
from kneegui.gui.theme import (
    AXIS_WIDTH_PX,
    FUTURE_S,
    LABEL_COLUMN_PX,
    MEASURED_COLOR,
    NOW_LINE_COLOR,
    OVERLAY_COLOR,
    PREDICTION_COLOR,
    SteadyRange,
    cache_static_items,
)
from kneegui.live.metrics import (
    HorizonError,
    RollingStats,
    horizon_error,
    predicted_at_target,
)

#: Earlier predictions drawn fainter behind the latest one.
FAN_SIZE = 4
#: Steps between fan members (at 100 Hz: every 50 ms).
FAN_SPACING = 5
#: Measured-angle points drawn at most (denser streams are subsampled for display).
MAX_MEASURED_POINTS = 2400
#: Seconds over which the running error is computed.
ERROR_WINDOW_S = 10.0
#: The error readout is recomputed every this many frames (~7 Hz at 40 fps: readable).
ERROR_EVERY_FRAMES = 6
#: The y range (degrees of flexion) shown before data: a gait cycle fits; the range grows in
#: 10 degree steps when the data leave it and never jumps back while streaming.
DEFAULT_Y_RANGE = (-10.0, 90.0)


class KneeView(pg.GraphicsLayoutWidget):
    """Measured vs predicted knee angle; x in seconds relative to now, future to the right."""

    def __init__(self, parent=None, window_s: float = 5.0) -> None:
        super().__init__(parent)
        self.setBackground("w")
        self.window_s = float(window_s)
        self.horizon = 50
        self.step_s = 0.01
        self.future_s = FUTURE_S
        self.last_error: HorizonError | None = None
        self.frames_drawn = 0
        self.last_prediction_t: float | None = None
        self.paint_times = RollingStats(4000)  # seconds per paint
        # Same geometry as an EMG row: margins, label column, fixed-width left axis.
        self.ci.layout.setHorizontalSpacing(0)
        self.ci.setContentsMargins(2, 2, 2, 2)
        self.readout = BadgeLabel(LABEL_COLUMN_PX, min_height=40, font_size="10pt")
        self.addItem(self.readout, row=0, col=0)
        self.plot_item = item = self.addPlot(row=0, col=1)
        item.setMenuEnabled(False)
        item.hideButtons()
        item.setMouseEnabled(x=False, y=False)
        item.setLabel("left", "knee flexion (°)")
        item.setLabel("bottom", "time relative to now", units="s")
        item.getViewBox().enableAutoRange(x=False, y=False)
        item.getAxis("left").setWidth(AXIS_WIDTH_PX)
        item.getAxis("left").enableAutoSIPrefix(False)
        self.legend = item.addLegend(offset=(10, 2), labelTextSize="9pt", colCount=3)
        self.legend.setBrush(pg.mkBrush(255, 255, 255, 210))
        self._now_line = pg.InfiniteLine(
            0, angle=90, pen=pg.mkPen(NOW_LINE_COLOR, width=1, style=QtCore.Qt.DashLine),
            label="now", labelOpts={"position": 0.06, "color": NOW_LINE_COLOR,
                                    "anchors": [(0, 1), (0, 1)]},
        )
        item.addItem(self._now_line, ignoreBounds=True)
        # PlotCurveItems (cheap setData); the history is kept a little beyond the window.
        self._measured = self._curve(pg.mkPen(MEASURED_COLOR, width=2), "measured")
        self._overlay = self._curve(
            pg.mkPen(OVERLAY_COLOR, width=2, style=QtCore.Qt.DashLine), "predicted H ago"
        )
        self._h_marker = pg.ScatterPlotItem(
            size=11, brush=pg.mkBrush(OVERLAY_COLOR), pen=pg.mkPen("w", width=1.5)
        )
        item.addItem(self._h_marker)
        self.legend.addItem(self._h_marker, "predicted H ago for now")
        self._fan: list[pg.PlotCurveItem] = []
        for k in range(FAN_SIZE):
            color = QtGui.QColor(PREDICTION_COLOR)
            color.setAlpha(int(40 + 50 * k))
            # one legend entry stands for the whole fan (its most visible member)
            name = "earlier predictions" if k == FAN_SIZE - 1 else None
            self._fan.append(self._curve(pg.mkPen(color, width=1.5), name))
        self._prediction = self._curve(pg.mkPen(PREDICTION_COLOR, width=3), "prediction")
        self._steady = SteadyRange(min_span=10.0, step=10.0, shrink_after=10**9)
        self._yrange: tuple[float, float] | None = None
        self._readout_html = ""
        self._apply_xrange()
        self.reset_range()
        self.set_horizon(self.horizon)
        cache_static_items(self.scene())

    def getPlotItem(self) -> pg.PlotItem:  # noqa: N802 - pyqtgraph's name
        return self.plot_item

    def _curve(self, pen, name: str | None = None) -> pg.PlotCurveItem:
        curve = pg.PlotCurveItem(pen=pen, name=name)
        self.plot_item.addItem(curve)
        return curve

    def legend_groups(self) -> dict[str, list]:
        """Legend text -> the drawn items it stands for (the fan shares one entry)."""
        groups: dict[str, list] = {}
        for sample, label in self.legend.items:
            members = self._fan if sample.item is self._fan[-1] else [sample.item]
            groups[label.text] = members
        return groups

    def data_items(self) -> list:
        """Every curve / scatter drawn in the plot."""
        return [self._measured, self._overlay, self._h_marker, *self._fan, self._prediction]

    def reset_range(self) -> None:
        """Back to the default y range (new streams or model)."""
        self._steady = SteadyRange(min_span=10.0, step=10.0, shrink_after=10**9)
        self._steady.range = DEFAULT_Y_RANGE
        self._yrange = DEFAULT_Y_RANGE
        self.plot_item.setYRange(*DEFAULT_Y_RANGE, padding=0)

    def paintEvent(self, ev) -> None:  # noqa: N802 - Qt override, timed
        t0 = time.perf_counter()
        super().paintEvent(ev)
        self.paint_times.add(time.perf_counter() - t0)

    # -- settings ------------------------------------------------------------------------
    def set_window(self, seconds: float) -> None:
        self.window_s = float(seconds)
        self._apply_xrange()

    def set_horizon(self, steps: int, step_s: float | None = None) -> None:
        if step_s is not None:
            self.step_s = float(step_s)
        self.horizon = int(steps)
        names = {self._overlay: f"predicted {self.horizon_ms:.0f} ms ago",
                 self._h_marker: f"now, as predicted {self.horizon_ms:.0f} ms ago",
                 self._prediction: f"prediction, next {self.horizons_ms_max:.0f} ms"}
        for item, text in names.items():
            label = self.legend.getLabel(item)
            if label is not None and label.text != text:
                label.setText(text, size="9pt")
        self.set_error_text(self.last_error)

    @property
    def horizon_ms(self) -> float:
        return self.horizon * self.step_s * 1000.0

    @property
    def horizons_ms_max(self) -> float:
        """How far ahead the drawn prediction reaches (the model's last horizon)."""
        return self.n_horizons * self.step_s * 1000.0

    n_horizons = 50

    def _apply_xrange(self) -> None:
        self.plot_item.setXRange(-self.window_s, self.future_s, padding=0)

    # -- data ----------------------------------------------------------------------------
    def update_data(
        self,
        now: float,
        meas_t: np.ndarray,
        measured: np.ndarray,
        pred_t: np.ndarray,
        preds: np.ndarray,
    ) -> None:
        """Redraw: measured angle ``[n]`` at ``meas_t``; predictions ``preds [m, H]`` made at
        ``pred_t [m]`` (oldest first). ``now`` maps to x = 0."""
        self.frames_drawn += 1
        if measured.size > MAX_MEASURED_POINTS:  # e.g. a 1 kHz goniometer: a smooth signal,
            step = -(-measured.size // MAX_MEASURED_POINTS)  # so plain striding draws it right
            idx = np.arange(measured.size - 1, -1, -step)[::-1]  # keeps the newest sample
            self._measured.setData(meas_t[idx] - now, measured[idx])
        else:
            self._measured.setData(meas_t - now, measured)
        ys = [measured] if measured.size else []
        if preds.shape[0]:
            if preds.shape[1] != self.n_horizons:
                self.n_horizons = int(preds.shape[1])
                self.set_horizon(self.horizon)
            steps = np.arange(1, preds.shape[1] + 1) * self.step_s
            latest_t = float(pred_t[-1])
            self.last_prediction_t = latest_t
            self._prediction.setData(latest_t - now + steps, preds[-1])
            ys.append(preds[-1])
            for k, curve in enumerate(self._fan):
                idx = preds.shape[0] - 1 - (FAN_SIZE - k) * FAN_SPACING
                if idx >= 0:
                    curve.setData(float(pred_t[idx]) - now + steps, preds[idx])
                else:
                    curve.setData(np.empty(0), np.empty(0))
            h = min(self.horizon, preds.shape[1])
            tgt_t, tgt_y = predicted_at_target(pred_t, preds, h, self.step_s)
            shown = tgt_t <= now
            self._overlay.setData(tgt_t[shown] - now, tgt_y[shown])
            if shown.any():
                last = np.flatnonzero(shown)[-1]
                self._h_marker.setData([tgt_t[last] - now], [tgt_y[last]])
            if self.frames_drawn % ERROR_EVERY_FRAMES == 0 or self.last_error is None:
                recent = tgt_t >= now - ERROR_WINDOW_S
                self.last_error = horizon_error(tgt_t[recent], tgt_y[recent], meas_t, measured)
        else:
            for curve in (self._prediction, self._overlay, *self._fan):
                curve.setData(np.empty(0), np.empty(0))
            self._h_marker.setData([], [])
            self.last_error = None
        self.set_error_text(self.last_error)
        self._follow_yrange(ys)

    def prediction_curve(self) -> tuple[np.ndarray, np.ndarray]:
        x, y = self._prediction.getData()
        return (np.empty(0), np.empty(0)) if x is None else (x, y)

    def overlay_curve(self) -> tuple[np.ndarray, np.ndarray]:
        x, y = self._overlay.getData()
        return (np.empty(0), np.empty(0)) if x is None else (x, y)

    def set_error_text(self, err: HorizonError | None) -> None:
        """The label column: what is compared and the running error (degrees and %)."""
        head = f"<b>Knee angle</b><br>error {self.horizon_ms:.0f} ms ahead<br>(H = {self.horizon})"
        if err is None:
            body = "<span style='color:#777'>waiting for predictions</span>"
        else:
            body = (
                f"MAE <b>{err.mae:.1f}°</b><br>NMAE <b>{100 * err.nmae:.1f} %</b><br>"
                f"<span style='color:#777'>last {ERROR_WINDOW_S:.0f} s</span>"
            )
        html = f"{head}<br>{body}"
        if html != self._readout_html:
            self._readout_html = html
            self.readout.setText(html)

    def readout_text(self) -> str:
        return self._readout_html

    @property
    def y_range(self) -> tuple[float, float] | None:
        return self._yrange

    def _follow_yrange(self, ys: list[np.ndarray]) -> None:
        """Grow (never shrink) the y range to the measured angle; predictions widen it only
        up to half its span more (a wild prediction must not squash the measured curve)."""
        ys = [y[np.isfinite(y)] for y in ys]
        ys = [y for y in ys if y.size]
        if not ys:
            return
        base = ys[0]
        lo, hi = float(base.min()), float(base.max())
        span = max(hi - lo, 10.0)
        for y in ys[1:]:
            lo = max(min(lo, float(y.min())), lo - 0.5 * span)
            hi = min(max(hi, float(y.max())), hi + 0.5 * span)
        new = self._steady.update(lo, hi + 0.15 * span)  # headroom for the legend
        if new is not None:
            cur = self._yrange or new
            new = (min(cur[0], new[0]), max(cur[1], new[1]))
            self._steady.range = new
            if new != self._yrange:
                self._yrange = new
                self.plot_item.setYRange(*new, padding=0)
