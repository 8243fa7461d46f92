"""A fixed-size rich-text label for pyqtgraph layouts whose text changes often.

``pg.LabelItem.setText`` recomputes its minimum size and invalidates the whole graphics layout;
in a 16-row EMG stack that re-lays out every row and re-renders every cached axis whenever a
quality badge changes (measured: 15-22 ms extra paint, twice a second). This item has a
constant size hint, so a new text only repaints the label itself.
"""

from __future__ import annotations

import pyqtgraph as pg
from PySide6 import QtCore, QtWidgets


class BadgeLabel(pg.GraphicsWidget):
    """Left-aligned HTML text in a box of fixed width and minimum height."""

    def __init__(self, width: float, min_height: float, font_size: str = "10pt") -> None:
        super().__init__()
        self.text = ""
        self._font_size = font_size
        self._item = QtWidgets.QGraphicsTextItem(self)
        self._item.document().setDocumentMargin(0)
        # Own copy of the size: sizeHint() cannot ask minimumSize(), which calls sizeHint().
        self._size = QtCore.QSizeF(width, min_height)
        self.setFixedWidth(width)
        self.setMinimumHeight(min_height)
        self.setSizePolicy(QtWidgets.QSizePolicy.Fixed, QtWidgets.QSizePolicy.Expanding)
        self.setFlag(QtWidgets.QGraphicsItem.ItemClipsChildrenToShape, True)
        # Rendered from a pixmap: the curves' repaints do not redraw the text.
        self.setCacheMode(QtWidgets.QGraphicsItem.DeviceCoordinateCache)

    def setText(self, html: str) -> None:  # noqa: N802 - same name as pg.LabelItem.setText
        """Show ``html`` (no layout change: the size does not follow the text)."""
        if html == self.text:
            return
        self.text = html
        self._item.setHtml(f"<span style='font-size:{self._font_size}'>{html}</span>")
        self._place()

    def resizeEvent(self, ev) -> None:  # noqa: N802 - Qt override
        self._place()

    def _place(self) -> None:
        """Vertically centred in the row (top-aligned when the text is taller)."""
        spare = self.size().height() - self._item.boundingRect().height()
        self._item.setPos(2, max(0.0, spare / 2))

    def sizeHint(self, which, constraint=None) -> QtCore.QSizeF:  # noqa: N802 - Qt override
        if which == QtCore.Qt.SizeHint.MaximumSize:
            return QtCore.QSizeF(self._size.width(), 1e6)  # as tall as its row
        return QtCore.QSizeF(self._size)
