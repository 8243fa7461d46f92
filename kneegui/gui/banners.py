"""Non-blocking error/warning/info banners stacked above the plots (never modal dialogs)."""

from __future__ import annotations

from PySide6 import QtCore, QtWidgets

_STYLES = {
    "error": "background:#fde2e1; border:1px solid #d7191c; color:#5a0000;",
    "warning": "background:#fff3cd; border:1px solid #e08a00; color:#4d3300;",
    "info": "background:#e3f0fb; border:1px solid #0072B2; color:#00284d;",
}


class Banner(QtWidgets.QFrame):
    """One message with a close button."""

    closed = QtCore.Signal(str)

    def __init__(self, key: str, level: str, text: str, parent=None) -> None:
        super().__init__(parent)
        self.key = key
        self.level = level
        self.setStyleSheet(f"Banner {{{_STYLES[level]} border-radius:4px;}}")
        lay = QtWidgets.QHBoxLayout(self)
        lay.setContentsMargins(8, 3, 4, 3)
        self.label = QtWidgets.QLabel(text)
        self.label.setWordWrap(True)
        self.label.setTextInteractionFlags(QtCore.Qt.TextSelectableByMouse)
        self.label.setStyleSheet("border:none; background:transparent; font-size:10.5pt;")
        lay.addWidget(self.label, 1)
        close = QtWidgets.QToolButton()
        close.setText("✕")
        close.setAutoRaise(True)
        close.setToolTip("Dismiss")
        close.clicked.connect(lambda: self.closed.emit(self.key))
        lay.addWidget(close)

    def set_text(self, text: str) -> None:
        self.label.setText(text)


class BannerArea(QtWidgets.QWidget):
    """Holds banners keyed by topic: the same key replaces its banner instead of stacking."""

    MAX_BANNERS = 4

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self._layout = QtWidgets.QVBoxLayout(self)
        self._layout.setContentsMargins(0, 0, 0, 0)
        self._layout.setSpacing(2)
        self._banners: dict[str, Banner] = {}
        self._timers: dict[str, QtCore.QTimer] = {}

    def show_message(
        self, text: str, level: str = "error", key: str | None = None, timeout_s: float = 0
    ) -> None:
        """Show (or update) a banner; ``timeout_s > 0`` hides it automatically."""
        if level not in _STYLES:
            raise ValueError(f"unknown banner level {level!r}; use error, warning or info")
        key = key or text
        banner = self._banners.get(key)
        if banner is not None and banner.level == level:
            banner.set_text(text)
        else:
            if banner is not None:
                self.dismiss(key)
            while len(self._banners) >= self.MAX_BANNERS:
                self.dismiss(next(iter(self._banners)))
            banner = Banner(key, level, text, self)
            banner.closed.connect(self.dismiss)
            self._banners[key] = banner
            self._layout.addWidget(banner)
        if key in self._timers:
            self._timers.pop(key).stop()
        if timeout_s > 0:
            timer = QtCore.QTimer(self)
            timer.setSingleShot(True)
            timer.timeout.connect(lambda k=key: self.dismiss(k))
            timer.start(int(timeout_s * 1000))
            self._timers[key] = timer

    def dismiss(self, key: str) -> None:
        banner = self._banners.pop(key, None)
        timer = self._timers.pop(key, None)
        if timer is not None:
            timer.stop()
        if banner is not None:
            banner.hide()
            banner.deleteLater()

    def messages(self) -> dict[str, str]:
        """Visible banners: key -> text (for tests and the status summary)."""
        return {k: b.label.text() for k, b in self._banners.items()}
