"""Knee view: the measured knee angle up to "now", the latest predicted future trajectory
drawn ahead of it (a fan of the last few predictions), and the trace of what was predicted
H steps ago laid over what then happened, with a running MAE / NMAE readout."""

from __future__ import annotations

import time

import numpy as np
import pyqtgraph as pg
from PySide6 import QtCore, QtGui

from kneegui.gui.theme import (
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


class KneeView(pg.PlotWidget):
    """Measured vs predicted knee angle; x in seconds relative to now, future to the right."""

    def __init__(self, parent=None, window_s: float = 5.0) -> None:
        super().__init__(parent, background="w")
        self.window_s = float(window_s)
        self.horizon = 50
        self.step_s = 0.01
        self.future_s = 0.55
        self.last_error: HorizonError | None = None
        self.frames_drawn = 0
        self.last_prediction_t: float | None = None
        self.paint_times = RollingStats(4000)  # seconds per paint
        item = self.getPlotItem()
        item.setMenuEnabled(False)
        item.hideButtons()
        item.setMouseEnabled(x=False, y=False)
        item.setLabel("left", "knee flexion", units="°")
        item.setLabel("bottom", "time relative to now", units="s")
        item.getViewBox().enableAutoRange(x=False, y=False)
        item.getAxis("left").setWidth(60)
        self.legend = item.addLegend(offset=(10, 2), labelTextSize="10pt", colCount=3)
        self.legend.setBrush(pg.mkBrush(255, 255, 255, 200))
        self._now_line = pg.InfiniteLine(0, angle=90, pen=pg.mkPen(NOW_LINE_COLOR, width=1,
                                                                    style=QtCore.Qt.DashLine))
        item.addItem(self._now_line, ignoreBounds=True)
        # PlotCurveItems (cheap setData); the history is kept a little beyond the window.
        self._measured = self._curve(pg.mkPen(MEASURED_COLOR, width=2), "measured")
        self._overlay = self._curve(
            pg.mkPen(OVERLAY_COLOR, width=2, style=QtCore.Qt.DashLine), "predicted H ago"
        )
        self._fan: list[pg.PlotCurveItem] = []
        for k in range(FAN_SIZE):
            alpha = int(40 + 50 * k)
            color = QtGui.QColor(PREDICTION_COLOR)
            color.setAlpha(alpha)
            self._fan.append(self._curve(pg.mkPen(color, width=1.5)))
        self._prediction = self._curve(
            pg.mkPen(PREDICTION_COLOR, width=3), "prediction (next 1…50 steps)"
        )
        self._h_marker = pg.ScatterPlotItem(
            size=11, brush=pg.mkBrush(OVERLAY_COLOR), pen=pg.mkPen("w", width=1.5)
        )
        item.addItem(self._h_marker)
        self._readout = pg.TextItem(anchor=(1, 0), color="#111")
        self._readout.setZValue(10)
        item.addItem(self._readout, ignoreBounds=True)
        self._yrange: tuple[float, float] | None = None
        self._steady = SteadyRange(min_span=10.0, step=10.0)
        self._readout_html = ""
        self._apply_xrange()
        self.set_error_text(None)
        cache_static_items(self.scene())

    def _curve(self, pen, name: str | None = None) -> pg.PlotCurveItem:
        curve = pg.PlotCurveItem(pen=pen, name=name)
        self.getPlotItem().addItem(curve)
        return curve

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
        label = self.legend.getLabel(self._overlay)
        if label is not None:
            label.setText(f"predicted {self.horizon_ms:.0f} ms ago", size="10pt")
        self.set_error_text(self.last_error)

    @property
    def horizon_ms(self) -> float:
        return self.horizon * self.step_s * 1000.0

    def _apply_xrange(self) -> None:
        self.getPlotItem().setXRange(-self.window_s, self.future_s, padding=0)

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
        head = f"H = {self.horizon} steps ({self.horizon_ms:.0f} ms)"
        if err is None:
            body = "error: waiting for predictions and measured angle"
        else:
            body = (
                f"MAE {err.mae:.2f}°   NMAE {100 * err.nmae:.1f} %   "
                f"(last {ERROR_WINDOW_S:.0f} s)"
            )
        html = (
            f"<div style='font-size:12pt; background-color:rgba(255,255,255,200)'>"
            f"<b>{head}</b><br>{body}</div>"
        )
        if html != self._readout_html:
            self._readout_html = html
            self._readout.setHtml(html)
        self._place_readout()

    def _place_readout(self) -> None:
        if self._yrange is not None:
            self._readout.setPos(self.future_s, self._yrange[1])

    def _follow_yrange(self, ys: list[np.ndarray]) -> None:
        """Fit the measured angle; predictions widen the view only up to half its span more
        (a wild prediction must not squash the measured curve). Changes rarely (SteadyRange)."""
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
        span = max(hi - lo, 10.0)
        new = self._steady.update(lo - 0.05 * span, hi + 0.3 * span)  # headroom: readout
        if new is not None:
            self._yrange = new
            self.getPlotItem().setYRange(*new, padding=0)
            self._place_readout()
