"""Model panel: pick a pretrained or subject model (with its card), see the input set, load
it, and toggle publishing predictions as an LSL outlet."""

from __future__ import annotations

import json
from pathlib import Path

from PySide6 import QtCore, QtWidgets

from kneegui.gui.model_state import model_state
from kneegui.model.extrapolator import extrapolator_text
from kneegui.model.io import model_paths
from kneegui.model.memory import share_text


def model_choices(store) -> list[tuple[str, Path, dict]]:
    """``(display label, weights path, card dict)`` of every model in a
    ``kneegui.calibration.SubjectModelStore`` (shipped first, then subject models, newest
    first); a model whose card cannot be read is listed with its error. The store's active
    model is marked "(active)"."""
    try:
        active = store.active_path()
    except Exception:  # noqa: BLE001 - an unreadable active.json means: none
        active = None
    out = []
    for e in store.list():
        weights = model_paths(e.path)[0]
        if e.error:
            out.append((f"⚠ {e.path.name} (unreadable)", weights,
                        {"name": e.path.name, "input_set": "?", "error": e.error}))
        else:
            mark = " (active)" if active is not None and _same(e.path, active) else ""
            out.append((e.label + mark, weights, e.card))
    return out


def _same(a: Path, b: Path) -> bool:
    try:
        return Path(a).resolve() == Path(b).resolve()
    except OSError:
        return False


def card_summary(card: dict) -> str:
    """A few lines an operator can read: what the model uses and how good it was."""
    if card.get("error"):
        return f"<b>{card.get('name', '?')}</b>: cannot be used: {card['error']}"
    lines = [
        f"<b>{card.get('name', '?')}</b> · input set <b>{card.get('input_set', '?')}</b>",
        f"<i>{model_state(card).headline}</i>",
        f"rate {card.get('model_rate', '?')} Hz · window {card.get('window', '?')} steps · "
        f"horizons 1…{card.get('horizons', '?')}",
    ]
    if card.get("channels"):
        lines.append("inputs: " + ", ".join(map(str, card["channels"])))
    if card.get("subject"):
        lines.append(f"subject {card['subject']} · base {card.get('base_model') or '?'}")
    analog = card.get("analog") or {}
    weight = analog.get("weight") or []
    if weight:
        cycles = (card.get("metrics") or {}).get("calibration_cycles", "?")
        lines.append(f"calibration memory: {cycles} cycles, {share_text(weight)}")
    extrapolator = card.get("extrapolator") or {}
    if extrapolator.get("weight"):
        lines.append(f"subject extrapolator: {extrapolator_text(extrapolator['weight'])}")
    metrics = card.get("metrics") or {}
    shown = [
        f"{k} {v:.3g}" for k, v in metrics.items() if isinstance(v, int | float)
    ][:4]
    if shown:
        lines.append("metrics: " + ", ".join(shown))
    if card.get("created"):
        lines.append(f"created {card['created']}")
    return "<br>".join(lines)


class ModelPanel(QtWidgets.QWidget):
    """Emits ``load_requested(path)`` and ``publish_toggled(bool)``."""

    load_requested = QtCore.Signal(str)
    publish_toggled = QtCore.Signal(bool)

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self._entries: list[tuple[str, Path, dict]] = []
        self.combo = QtWidgets.QComboBox()
        self.combo.currentIndexChanged.connect(self._show_card)
        self.combo.setSizeAdjustPolicy(QtWidgets.QComboBox.AdjustToMinimumContentsLengthWithIcon)
        browse = QtWidgets.QToolButton()
        browse.setText("…")
        browse.setToolTip("Load a model file (.safetensors with its .json card)")
        browse.clicked.connect(self._browse)
        self.card = QtWidgets.QLabel("No model found.")
        self.card.setWordWrap(True)
        self.card.setTextFormat(QtCore.Qt.RichText)
        self.load_button = QtWidgets.QPushButton("Use this model")
        self.load_button.clicked.connect(self._load_selected)
        self.state = QtWidgets.QLabel("No model loaded: no predictions.")
        self.state.setWordWrap(True)
        self.publish = QtWidgets.QCheckBox("Publish predictions to LSL (KneeAnglePrediction)")
        self.publish.setToolTip(
            "An LSL outlet with one channel per horizon (h10ms … h500ms) for an exoskeleton "
            "controller or LabRecorder (Ctrl+P)"
        )
        self.publish.toggled.connect(self.publish_toggled)
        row = QtWidgets.QHBoxLayout()
        row.addWidget(self.combo, 1)
        row.addWidget(browse)
        lay = QtWidgets.QVBoxLayout(self)
        lay.setContentsMargins(4, 4, 4, 4)
        lay.addLayout(row)
        lay.addWidget(self.card)
        lay.addWidget(self.load_button)
        lay.addWidget(self.state)
        lay.addWidget(self.publish)
        lay.addStretch(1)

    def set_models(self, entries: list[tuple[str, Path, dict]], select: str | None = None) -> None:
        self._entries = list(entries)
        self.combo.blockSignals(True)
        self.combo.clear()
        for label, path, _ in self._entries:
            self.combo.addItem(label, str(path))
        self.combo.blockSignals(False)
        idx = self.combo.findData(select) if select else -1
        self.combo.setCurrentIndex(idx if idx >= 0 else (0 if self._entries else -1))
        self._show_card()

    def entries(self) -> list[tuple[str, Path, dict]]:
        """(label, weights path, card) of every listed model."""
        return list(self._entries)

    def selected_path(self) -> str | None:
        return self.combo.currentData()

    def select_path(self, path: str) -> bool:
        idx = self.combo.findData(str(path))
        if idx >= 0:
            self.combo.setCurrentIndex(idx)
        return idx >= 0

    def _show_card(self) -> None:
        i = self.combo.currentIndex()
        if 0 <= i < len(self._entries):
            self.card.setText(card_summary(self._entries[i][2]))
        else:
            self.card.setText("No model found in the models folder. Use … to pick one.")

    def add_model(self, label: str, path: Path, card: dict) -> None:
        """List (and select) a model that is not in the store's folders."""
        self._entries.append((label, Path(path), card))
        self.combo.addItem(label, str(path))
        self.combo.setCurrentIndex(self.combo.count() - 1)

    def _browse(self) -> None:
        path, _ = QtWidgets.QFileDialog.getOpenFileName(
            self, "Model weights", "", "KneeGUI model (*.safetensors)"
        )
        if path:
            card_path = Path(path).with_suffix(".json")
            try:
                card = json.loads(card_path.read_text())
            except (OSError, ValueError):
                card = {"name": Path(path).stem, "input_set": "?"}
            self._entries.append((Path(path).stem, Path(path), card))
            self.combo.addItem(Path(path).stem, path)
            self.combo.setCurrentIndex(self.combo.count() - 1)
            self._load_selected()

    def _load_selected(self) -> None:
        path = self.selected_path()
        if path:
            self.load_requested.emit(path)

    def set_state(self, text: str) -> None:
        self.state.setText(text)
