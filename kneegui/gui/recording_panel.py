"""Recording panel: subject id, notes, output folder, record / stop, elapsed time and file
size, markers (button + hotkeys). Recording itself is done by ``kneegui.recording``."""

from __future__ import annotations

from pathlib import Path

from PySide6 import QtCore, QtWidgets

#: Quick markers on function keys (label sent to /events).
QUICK_MARKERS: tuple[tuple[str, str], ...] = (
    ("Ctrl+1", "trial start"),
    ("Ctrl+2", "trial end"),
    ("Ctrl+3", "stumble"),
    ("Ctrl+4", "note"),
)


class RecordingPanel(QtWidgets.QWidget):
    """Emits ``record_requested(dir, subject, notes)``, ``stop_requested`` and
    ``marker_requested(label)``; the main window does the work and calls the setters."""

    record_requested = QtCore.Signal(str, str, str)
    stop_requested = QtCore.Signal()
    marker_requested = QtCore.Signal(str)

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.subject = QtWidgets.QLineEdit()
        self.subject.setPlaceholderText("e.g. S07")
        self.notes = QtWidgets.QPlainTextEdit()
        self.notes.setPlaceholderText("Session notes (saved in the file)")
        self.notes.setMaximumHeight(60)
        self.out_dir = QtWidgets.QLineEdit(str(Path.home() / "kneegui_sessions"))
        browse = QtWidgets.QToolButton()
        browse.setText("…")
        browse.setToolTip("Choose the output folder")
        browse.clicked.connect(self._browse)
        self.record_button = QtWidgets.QPushButton("● Record")
        self.record_button.setCheckable(True)
        self.record_button.setToolTip("Start / stop recording (Ctrl+R)")
        self.record_button.clicked.connect(self._toggle)
        self.record_button.setStyleSheet("QPushButton:checked { background:#d7191c; color:white; }")
        self.elapsed = QtWidgets.QLabel("not recording")
        self.path_label = QtWidgets.QLabel("")
        self.path_label.setWordWrap(True)
        self.path_label.setTextInteractionFlags(QtCore.Qt.TextSelectableByMouse)
        self.marker_label = QtWidgets.QLineEdit("marker")
        self.marker_button = QtWidgets.QPushButton("Add marker")
        self.marker_button.setToolTip(
            "Write a marker to /events (Ctrl+M); quick markers: "
            + ", ".join(f"{k} = {v}" for k, v in QUICK_MARKERS)
        )
        self.marker_button.clicked.connect(
            lambda: self.marker_requested.emit(self.marker_label.text().strip() or "marker")
        )

        form = QtWidgets.QFormLayout()
        form.addRow("Subject", self.subject)
        form.addRow("Notes", self.notes)
        row = QtWidgets.QHBoxLayout()
        row.addWidget(self.out_dir, 1)
        row.addWidget(browse)
        form.addRow("Folder", row)
        marker_row = QtWidgets.QHBoxLayout()
        marker_row.addWidget(self.marker_label, 1)
        marker_row.addWidget(self.marker_button)
        lay = QtWidgets.QVBoxLayout(self)
        lay.setContentsMargins(4, 4, 4, 4)
        lay.addLayout(form)
        lay.addWidget(self.record_button)
        lay.addWidget(self.elapsed)
        lay.addLayout(marker_row)
        lay.addWidget(self.path_label)
        lay.addStretch(1)

    def _browse(self) -> None:
        path = QtWidgets.QFileDialog.getExistingDirectory(
            self, "Session folder", self.out_dir.text()
        )
        if path:
            self.out_dir.setText(path)

    def _toggle(self, checked: bool) -> None:
        # The button state follows what really happened (set_recording), not the click.
        self.record_button.setChecked(not checked)
        if checked:
            self.record_requested.emit(
                self.out_dir.text().strip(), self.subject.text().strip(),
                self.notes.toPlainText().strip(),
            )
        else:
            self.stop_requested.emit()

    def toggle(self) -> None:
        """Keyboard shortcut entry point."""
        self.record_button.click()

    def set_recording(self, recording: bool, path: str | None = None) -> None:
        self.record_button.setChecked(recording)
        self.record_button.setText("■ Stop" if recording else "● Record")
        for w in (self.subject, self.notes, self.out_dir):
            w.setEnabled(not recording)
        if recording:
            self.path_label.setText(f"Recording to {path}" if path else "")
        elif path:
            self.path_label.setText(f"Saved: {path}")
            self.elapsed.setText("not recording")

    def set_progress(self, elapsed_s: float, size_bytes: int | None) -> None:
        m, s = divmod(int(elapsed_s), 60)
        size = "" if size_bytes is None else f" · {size_bytes / 1e6:.1f} MB"
        self.elapsed.setText(f"REC {m:02d}:{s:02d}{size}")
