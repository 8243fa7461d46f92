"""Filter and display settings, applied live (Apply / OK) without stopping the streams."""

from __future__ import annotations

from dataclasses import dataclass, field

from PySide6 import QtCore, QtWidgets

MAINS_CHOICES = (("50 Hz", 50.0), ("60 Hz", 60.0), ("off", None))


@dataclass
class DisplaySettings:
    """What the operator sees: filter parameters (``kneegui.dsp.FilterSettings`` fields),
    time window and refresh rate."""

    filter: dict = field(
        default_factory=lambda: {
            "low": 20.0, "high": 450.0, "order": 4, "mains": 50.0, "harmonics": 3,
            "envelope_cutoff": 6.0,
        }
    )
    window_s: float = 5.0
    #: 40 Hz, not 30: a 25 ms tick leaves room for timer jitter and the twice-a-second status
    #: update, so frames stay under 33 ms apart (>= 30 fps) at p99 (benchmarks/gui_load.py).
    refresh_hz: int = 40


class SettingsDialog(QtWidgets.QDialog):
    """Edits a :class:`DisplaySettings`; emits ``applied`` with a copy on Apply / OK."""

    applied = QtCore.Signal(object)

    def __init__(self, settings: DisplaySettings, nyquist_hz: float | None = None, parent=None):
        super().__init__(parent)
        self.setWindowTitle("Filter and display settings")
        self.setMinimumWidth(400)
        self.nyquist_hz = nyquist_hz
        f = settings.filter
        form = QtWidgets.QFormLayout()
        self.low = self._spin(1.0, 1000.0, f["low"], " Hz")
        self.high = self._spin(5.0, 5000.0, f["high"], " Hz")
        self.order = QtWidgets.QSpinBox()
        self.order.setRange(1, 8)
        self.order.setValue(int(f["order"]))
        self.mains = QtWidgets.QComboBox()
        for text, value in MAINS_CHOICES:
            self.mains.addItem(text, value)
        self.mains.setCurrentIndex([v for _, v in MAINS_CHOICES].index(f["mains"]))
        self.harmonics = QtWidgets.QSpinBox()
        self.harmonics.setRange(1, 6)
        self.harmonics.setValue(int(f["harmonics"]))
        self.envelope = self._spin(0.5, 50.0, f["envelope_cutoff"], " Hz")
        self.window = self._spin(2.0, 20.0, settings.window_s, " s")
        self.refresh = QtWidgets.QSpinBox()
        self.refresh.setRange(10, 60)
        self.refresh.setSuffix(" Hz")
        self.refresh.setValue(int(settings.refresh_hz))
        form.addRow("Band-pass low edge", self.low)
        form.addRow("Band-pass high edge", self.high)
        form.addRow("Band-pass order", self.order)
        form.addRow("Mains notch", self.mains)
        form.addRow("Notch harmonics", self.harmonics)
        form.addRow("Envelope cut-off", self.envelope)
        form.addRow("Time window", self.window)
        form.addRow("Display refresh", self.refresh)
        note = QtWidgets.QLabel(
            "These filters shape the displayed and recorded EMG. The model's own EMG features "
            "keep the settings it was trained with (see its card)."
        )
        note.setWordWrap(True)
        note.setStyleSheet("color:#555;")
        self.error = QtWidgets.QLabel()
        self.error.setStyleSheet("color:#d7191c;")
        self.error.setWordWrap(True)
        buttons = QtWidgets.QDialogButtonBox(
            QtWidgets.QDialogButtonBox.Ok
            | QtWidgets.QDialogButtonBox.Apply
            | QtWidgets.QDialogButtonBox.Cancel
        )
        buttons.accepted.connect(self._ok)
        buttons.rejected.connect(self.reject)
        buttons.button(QtWidgets.QDialogButtonBox.Apply).clicked.connect(self.apply)
        self.buttons = buttons
        lay = QtWidgets.QVBoxLayout(self)
        lay.addLayout(form)
        lay.addWidget(note)
        lay.addWidget(self.error)
        lay.addWidget(buttons)

    @staticmethod
    def _spin(lo: float, hi: float, value: float, suffix: str) -> QtWidgets.QDoubleSpinBox:
        s = QtWidgets.QDoubleSpinBox()
        s.setRange(lo, hi)
        s.setDecimals(1)
        s.setSuffix(suffix)
        s.setValue(float(value))
        return s

    def settings(self) -> DisplaySettings:
        return DisplaySettings(
            filter={
                "low": self.low.value(),
                "high": self.high.value(),
                "order": self.order.value(),
                "mains": self.mains.currentData(),
                "harmonics": self.harmonics.value(),
                "envelope_cutoff": self.envelope.value(),
            },
            window_s=self.window.value(),
            refresh_hz=self.refresh.value(),
        )

    def validate(self) -> str | None:
        """A message saying what to change, or None when the settings are usable."""
        if self.low.value() >= self.high.value():
            return "The band-pass low edge must be below the high edge."
        if self.nyquist_hz is not None and self.high.value() >= self.nyquist_hz:
            return (
                f"The high edge must be below the EMG Nyquist frequency ({self.nyquist_hz:g} Hz); "
                "lower it."
            )
        return None

    def apply(self) -> bool:
        problem = self.validate()
        self.error.setText(problem or "")
        if problem:
            return False
        self.applied.emit(self.settings())
        return True

    def _ok(self) -> None:
        if self.apply():
            self.accept()
