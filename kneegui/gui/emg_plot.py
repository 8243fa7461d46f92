"""Stacked EMG channel plot: one row per channel, fixed scrolling time window, peak
decimation, per-channel quality badge, one y scale shared by every row (with its unit).
The time axis matches the knee view's (same label column, axis width and x range up to
``FUTURE_S`` after "now"), so muscle bursts line up with knee motion. No grids (they triple
the draw cost)."""

from __future__ import annotations

import time
from collections.abc import Sequence

import numpy as np
import pyqtgraph as pg
from PySide6 import QtCore

from kneegui.gui.badge_label import BadgeLabel
from kneegui.gui.decimate import decimation_factor, peak_decimate
from kneegui.gui.theme import (
    AXIS_WIDTH_PX,
    CHANNEL_COLORS,
    FUTURE_S,
    LABEL_COLUMN_PX,
    NOW_LINE_COLOR,
    STATUS_COLORS,
    SteadyRange,
    cache_static_items,
    status_color_key,
)
from kneegui.live.metrics import RollingStats

#: Frames (at 40 fps) the shared y range waits before shrinking to quieter data.
SHRINK_AFTER_FRAMES = 120
#: More channels than this are drawn compact (no left axes, one-line labels).
COMPACT_ABOVE = 8


class EmgStackPlot(pg.GraphicsLayoutWidget):
    """Channels stacked top to bottom, x axis in seconds relative to "now" (x = 0)."""

    def __init__(self, parent=None, window_s: float = 5.0, max_points: int = 1600) -> None:
        super().__init__(parent)
        self.setBackground("w")
        self.window_s = float(window_s)
        self.future_s = FUTURE_S
        self.max_points = int(max_points)
        self._plots: list[pg.PlotItem] = []
        self._curves: list[pg.PlotCurveItem] = []
        self._labels: list[BadgeLabel] = []
        self._channel_names: list[str] = []
        self._unit = ""
        self._yrange = SteadyRange(shrink_after=SHRINK_AFTER_FRAMES)
        self._now_lines: list[pg.InfiniteLine] = []
        self.frames_drawn = 0
        self.last_points = 0
        self.last_newest_t: float | None = None
        self.paint_times = RollingStats(4000)  # seconds per paint, for the status and benchmark
        self.set_channels(["ch1", "ch2", "ch3", "ch4"], "")

    def paintEvent(self, ev) -> None:  # noqa: N802 - Qt override, timed
        t0 = time.perf_counter()
        super().paintEvent(ev)
        self.paint_times.add(time.perf_counter() - t0)

    # -- layout --------------------------------------------------------------------------
    def set_channels(self, names: Sequence[str], unit: str = "") -> None:
        """(Re)build one row per channel; ``unit`` labels the shared y axis (e.g. mV)."""
        self.ci.clear()
        self._plots, self._curves, self._labels, self._now_lines = [], [], [], []
        self._channel_names = list(names)
        self._unit = unit
        self._yrange = SteadyRange(shrink_after=SHRINK_AFTER_FRAMES)
        n = len(names)
        # Many channels (a 16-channel amplifier in raw mode): one-line labels that carry the
        # y range, no left axes, tight rows, so that every row fits on a 1080p screen.
        self.compact = n > COMPACT_ABOVE
        self._last_quality: dict[int, object | None] = {}
        self.ci.layout.setHorizontalSpacing(0)
        self.ci.layout.setVerticalSpacing(2 if self.compact else 10)
        self.ci.setContentsMargins(2, 2, 2, 2)
        for i in range(n):
            # Same left edge as the knee view: label column + axis (compact: a wider label).
            label = BadgeLabel(LABEL_COLUMN_PX + (AXIS_WIDTH_PX if self.compact else 0),
                               min_height=8 if self.compact else 40,
                               font_size="9pt" if self.compact else "10pt")
            self.addItem(label, row=i, col=0)
            plot = self.addPlot(row=i, col=1)
            plot.setMenuEnabled(False)
            plot.hideButtons()
            plot.setMouseEnabled(x=False, y=False)
            plot.getViewBox().enableAutoRange(False)
            if self.compact:
                plot.hideAxis("left")
                plot.setMinimumHeight(8)
            else:
                axis = plot.getAxis("left")
                axis.setWidth(AXIS_WIDTH_PX)
                axis.enableAutoSIPrefix(False)  # "mV" is the unit: never "mV (x0.001)"
                if unit:
                    axis.setLabel(unit)
            plot.showAxis("bottom", False)
            # No setXLink: linked views map through pixel geometry and drift while the
            # layout is still sizing; every row gets the same explicit range instead.
            plot.setXRange(-self.window_s, self.future_s, padding=0)
            now = pg.InfiniteLine(
                0, angle=90, pen=pg.mkPen(NOW_LINE_COLOR, width=1, style=QtCore.Qt.DashLine),
                label="now" if i == 0 else None,
                labelOpts={"position": 0.9, "color": NOW_LINE_COLOR,
                           "anchors": [(0, 0.5), (0, 0.5)]},
            )
            plot.addItem(now, ignoreBounds=True)
            self._now_lines.append(now)
            color = CHANNEL_COLORS[i % len(CHANNEL_COLORS)]
            # PlotCurveItem, not PlotDataItem: the data come decimated to screen resolution,
            # and its setData costs a fraction (16 rows x 40 fps).
            curve = pg.PlotCurveItem(pen=pg.mkPen(color, width=1), skipFiniteCheck=True)
            plot.addItem(curve)
            self._plots.append(plot)
            self._curves.append(curve)
            self._labels.append(label)
            self._set_label(i, None)
        if self._plots:
            # The time axis gets its own row so that the last channel is as tall as the others;
            # inset like the plots' view boxes (left axis, plot margins) so its ticks sit
            # exactly under the data (an axis maps the view range onto its own width).
            axis = pg.AxisItem("bottom")
            axis.linkToView(self._plots[-1].getViewBox())
            axis.setLabel("time relative to now", units="s")
            holder = self.ci.addLayout(row=n, col=1)
            holder.setContentsMargins(1 + (0 if self.compact else AXIS_WIDTH_PX), 0, 1, 0)
            holder.addItem(axis, row=0, col=0)
            self.time_axis = axis
            self.ci.layout.setRowStretchFactor(n, 0)
        cache_static_items(self.scene())
        # Activating the new layout shrinks the top-level layout item to its size hint;
        # give it back the view's size now (else it stays small until the next resize).
        self.ci.layout.activate()
        self.ci.setGeometry(self.range)

    @property
    def channel_count(self) -> int:
        return len(self._curves)

    def set_window(self, seconds: float) -> None:
        self.window_s = float(seconds)
        for plot in self._plots:
            plot.setXRange(-self.window_s, self.future_s, padding=0)

    def reset_ranges(self) -> None:
        """Forget the y range (after switching raw / filtered / envelope)."""
        self._yrange = SteadyRange(shrink_after=SHRINK_AFTER_FRAMES)

    @property
    def y_range(self) -> tuple[float, float] | None:
        """The y range every row shows (in the stream's unit), None before data."""
        return self._yrange.range

    @property
    def unit(self) -> str:
        return self._unit

    def plot_items(self) -> list[pg.PlotItem]:
        """The rows' plot items (top to bottom)."""
        return list(self._plots)
    def curve_data(self, channel: int) -> tuple[np.ndarray, np.ndarray]:
        """The (x, y) currently drawn for ``channel``."""
        x, y = self._curves[channel].getData()
        return (np.empty(0), np.empty(0)) if x is None else (x, y)

    # -- data ----------------------------------------------------------------------------
    def update_data(
        self, data: np.ndarray, ts: np.ndarray, now: float, first_index: int = 0
    ) -> None:
        """Draw ``data [n, ch]`` stamped ``ts [n]``; ``now`` maps to x = 0.

        ``first_index`` is the absolute sample index of ``data[0]`` (keeps decimation
        bins steady while scrolling).
        """
        if data.ndim == 1:
            data = data[:, None]
        if data.shape[1] != len(self._curves):
            raise ValueError(
                f"got {data.shape[1]} channels, plot has {len(self._curves)}; call set_channels"
            )
        self.frames_drawn += 1
        if data.shape[0] == 0:
            for c in self._curves:
                c.setData(np.empty(0), np.empty(0))
            self.last_points = 0
            return
        factor = decimation_factor(data.shape[0], self.max_points)
        t, y = peak_decimate(data, ts, factor, first_index)
        x = t - now
        self.last_points = int(x.size)
        self.last_newest_t = float(ts[-1])
        for i, curve in enumerate(self._curves):
            curve.setData(x, np.ascontiguousarray(y[:, i]))
        self._follow_range(y)

    def _follow_range(self, y: np.ndarray) -> None:
        """One steady y range for every row, so amplitudes compare across muscles (an axis
        re-render per frame would cost more than the curves). Zero-centred data get a
        symmetric range."""
        lo, hi = float(y.min()), float(y.max())
        if not (np.isfinite(lo) and np.isfinite(hi)):
            finite = y[np.isfinite(y)]
            if finite.size == 0:
                return
            lo, hi = float(finite.min()), float(finite.max())
        if lo < 0 < hi:
            lo, hi = -max(-lo, hi), max(-lo, hi)
        new = self._yrange.update(lo, hi)
        if new is not None:  # (a symmetric extent snaps to a symmetric range)
            for i, plot in enumerate(self._plots):
                plot.setYRange(*new, padding=0)
                if self.compact:  # the label shows the range instead of an axis
                    self._set_label(i, self._last_quality.get(i))

    # -- quality badges ------------------------------------------------------------------
    def set_quality(self, qualities: Sequence[object] | None) -> None:
        """Show per-channel quality: objects with ``status`` and ``rms`` attributes
        (``kneegui.dsp.ChannelQuality``), or None to clear."""
        for i in range(len(self._labels)):
            q = qualities[i] if qualities is not None and i < len(qualities) else None
            self._set_label(i, q)

    def badge_text(self, channel: int) -> str:
        return self._labels[channel].text

    def _set_label(self, i: int, quality: object | None) -> None:
        self._last_quality[i] = quality
        html = self._compact_html(i, quality) if self.compact else self._label_html(i, quality)
        self._labels[i].setText(html)  # repaints only when the text changed

    def _compact_html(self, i: int, quality: object | None) -> str:
        """One line: name, quality dot + RMS, y range (no axis in compact mode)."""
        name = self._channel_names[i]
        html = f"<b>{name}</b>"
        if quality is not None:
            status = str(getattr(quality, "status", "?"))
            color = STATUS_COLORS[status_color_key(status)]
            rms = getattr(quality, "rms", None)
            html += f" <span style='color:{color}'>&#9679;</span>"
            if rms is not None:
                html += f" RMS {rms:.2g}"
        rng = self._yrange.range
        if rng is not None:
            html += f" <span style='color:#666'>[{rng[0]:.2g}, {rng[1]:.2g}]</span>"
        return html + (f" {self._unit}" if self._unit else "")

    def _label_html(self, i: int, quality: object | None) -> str:
        name = self._channel_names[i]
        if quality is None:
            html = f"<b>{name}</b><br><span style='color:#777'>no quality data</span>"
        else:
            status = str(getattr(quality, "status", "?"))
            rms = getattr(quality, "rms", None)
            reason = str(getattr(quality, "reason", "") or "")
            color = STATUS_COLORS[status_color_key(status)]
            rms_text = "" if rms is None else f"<br>RMS {rms:.2g} {self._unit}".rstrip()
            if len(reason) > 26:
                reason = reason[:25] + "…"
            html = (
                f"<b>{name}</b><br><span style='color:{color}'>&#9679; {status}</span>"
                f"<span style='color:#333'>{rms_text}</span>"
            )
            if reason:
                html += f"<br><span style='color:{color}; font-size:9pt'>{reason}</span>"
        return html

