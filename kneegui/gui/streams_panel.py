"""Streams panel: discovered LSL streams, role assignment, model channel picks,
connect / disconnect, and per-stream live status with an outage indicator."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from PySide6 import QtCore, QtGui, QtWidgets

from kneegui.gui.theme import STATUS_COLORS

#: Role choices shown in the table: (label, Role member name or None).
ROLE_CHOICES: tuple[tuple[str, str | None], ...] = (
    ("—", None),
    ("EMG", "EMG"),
    ("Knee angle", "KNEE_ANGLE"),
    ("Other kinematics", "KINEMATICS"),
    ("Force", "FORCE"),
    ("Markers", "MARKERS"),
)
MODEL_EMG_CHANNELS = 4
_DEFAULT_EMG_LABELS = ("RF", "BF", "VM", "ST")


def guess_role(info) -> str | None:
    """Default role from the stream type / name (the operator can change it)."""
    if getattr(info, "problem", None):
        return None  # unusable (0 channels, undefined format...): never preselected
    typ = (info.type or "").lower()
    name = (info.name or "").lower()
    if typ == "emg":
        return "EMG"
    if typ == "kneeangleprediction":
        return None  # our own (or another KneeGUI's) prediction outlet
    if typ in ("angle", "kneeangle", "knee_angle", "goniometer") or "knee" in name:
        return "KNEE_ANGLE"
    if typ in ("force", "interactionforce"):
        return "FORCE"
    if typ in ("markers", "marker"):
        return "MARKERS"
    if typ in ("mocap", "kinematics", "imu"):
        return "KINEMATICS"
    return None


def default_emg_picks(labels: Sequence[str]) -> list[int]:
    """Indices of the channels that feed the model: RF, BF, VM, ST if labelled so, else the
    first four."""
    upper = [str(lab).upper() for lab in labels]
    if all(name in upper for name in _DEFAULT_EMG_LABELS):
        return [upper.index(name) for name in _DEFAULT_EMG_LABELS]
    return list(range(min(MODEL_EMG_CHANNELS, len(labels))))


@dataclass(frozen=True)
class Assignment:
    """One stream the operator wants connected, with its role and (for EMG) model channels."""

    info: object  # kneegui.acquisition.StreamInfoView
    role: str  # Role member name
    channels: tuple[int, ...] | None = None


class _Relay(QtCore.QObject):
    """Carries results from a plain thread back to the GUI thread."""

    done = QtCore.Signal(object, object)  # (list of infos | None, error message | None)


class StreamsPanel(QtWidgets.QWidget):
    """Discovery table + status table. ``discover_fn(timeout)`` runs off the GUI thread."""

    connect_requested = QtCore.Signal(list)  # list[Assignment]
    disconnect_requested = QtCore.Signal()
    discovery_failed = QtCore.Signal(str)

    INFO_COLUMNS = ("Role", "Name", "Type", "Ch", "Rate", "Source ID", "Host")
    ROLE_COLUMN = 0
    STATUS_COLUMNS = ("Stream", "Role", "Rate", "Gaps / outages", "Clock offset ± jitter",
                      "State")

    def __init__(self, discover_fn: Callable[[float], list], parent=None) -> None:
        super().__init__(parent)
        self._discover_fn = discover_fn
        self._infos: list = []
        self._relay = _Relay()
        self._relay.done.connect(self._on_discovered)
        self.discovering = False

        self.table = QtWidgets.QTableWidget(0, len(self.INFO_COLUMNS))
        self.table.setHorizontalHeaderLabels(self.INFO_COLUMNS)
        self.table.verticalHeader().hide()
        self.table.setSelectionBehavior(QtWidgets.QAbstractItemView.SelectRows)
        self.table.setEditTriggers(QtWidgets.QAbstractItemView.NoEditTriggers)
        self.table.horizontalHeader().setSectionResizeMode(QtWidgets.QHeaderView.ResizeToContents)
        self.table.horizontalHeader().setStretchLastSection(True)

        self.refresh_button = QtWidgets.QPushButton("Refresh")
        self.refresh_button.setToolTip("Look for LSL streams on the network (F5)")
        self.refresh_button.clicked.connect(self.refresh)
        self.connect_button = QtWidgets.QPushButton("Connect")
        self.connect_button.setToolTip("Open an inlet for every stream with a role")
        self.connect_button.clicked.connect(self._request_connect)
        self.disconnect_button = QtWidgets.QPushButton("Disconnect")
        self.disconnect_button.clicked.connect(self.disconnect_requested)
        self.disconnect_button.setEnabled(False)

        self.channel_list = QtWidgets.QListWidget()
        self.channel_list.setFlow(QtWidgets.QListView.LeftToRight)
        self.channel_list.setWrapping(True)
        self.channel_list.setMaximumHeight(56)
        self.channel_list.setToolTip(
            f"EMG channels that feed the model (pick {MODEL_EMG_CHANNELS})"
        )

        self.status_table = QtWidgets.QTableWidget(0, len(self.STATUS_COLUMNS))
        self.status_table.setHorizontalHeaderLabels(self.STATUS_COLUMNS)
        self.status_table.verticalHeader().hide()
        self.status_table.setEditTriggers(QtWidgets.QAbstractItemView.NoEditTriggers)
        hdr = self.status_table.horizontalHeader()
        hdr.setSectionResizeMode(QtWidgets.QHeaderView.ResizeToContents)
        hdr.setSectionResizeMode(0, QtWidgets.QHeaderView.Interactive)
        hdr.resizeSection(0, 120)
        hdr.setStretchLastSection(True)
        self.status_table.setTextElideMode(QtCore.Qt.ElideMiddle)

        self.hint = QtWidgets.QLabel("Press Refresh to look for streams.")
        self.hint.setStyleSheet("color:#555;")

        buttons = QtWidgets.QHBoxLayout()
        for b in (self.refresh_button, self.connect_button, self.disconnect_button):
            buttons.addWidget(b)
        lay = QtWidgets.QVBoxLayout(self)
        lay.setContentsMargins(4, 4, 4, 4)
        lay.addLayout(buttons)
        lay.addWidget(self.hint)
        self.table.setMinimumHeight(90)
        self.status_table.setMinimumHeight(110)
        lay.addWidget(self.table, 1)
        lay.addWidget(QtWidgets.QLabel("EMG channels for the model:"))
        lay.addWidget(self.channel_list)
        lay.addWidget(QtWidgets.QLabel("Connected streams:"))
        lay.addWidget(self.status_table, 1)

    # -- discovery -----------------------------------------------------------------------
    def refresh(self, timeout: float = 1.5) -> None:
        """Discover streams in a background thread; the table fills when it is done."""
        if self.discovering:
            return
        self.discovering = True
        self.refresh_button.setEnabled(False)
        self.hint.setText("Looking for streams…")

        def work() -> None:
            try:
                result = (self._discover_fn(timeout), None)
            except Exception as exc:  # noqa: BLE001 - shown to the operator
                result = (None, f"Stream discovery failed: {exc}")
            # the window may have closed while discovery ran: then nobody is left to tell
            with contextlib.suppress(RuntimeError):
                self._relay.done.emit(*result)

        threading.Thread(target=work, name="kneegui-discover", daemon=True).start()

    def _on_discovered(self, infos, error) -> None:
        self.discovering = False
        self.refresh_button.setEnabled(True)
        if error:
            self.hint.setText(error)
            self.discovery_failed.emit(error)
            return
        self.set_streams(infos)

    def set_streams(self, infos: Sequence) -> None:
        """Fill the table (roles pre-selected by :func:`guess_role`)."""
        self._infos = list(infos)
        self.table.setRowCount(len(self._infos))
        for row, info in enumerate(self._infos):
            cells = (
                info.name, info.type, str(info.channel_count),
                f"{info.nominal_srate:g} Hz" if info.nominal_srate else "irregular",
                info.source_id, info.hostname,
            )
            for col, text in enumerate(cells, start=1):
                item = QtWidgets.QTableWidgetItem(str(text))
                item.setToolTip(info.describe())
                self.table.setItem(row, col, item)
            combo = QtWidgets.QComboBox()
            for label, role in ROLE_CHOICES:
                combo.addItem(label, role)
            guessed = guess_role(info)
            combo.setCurrentIndex([r for _, r in ROLE_CHOICES].index(guessed))
            combo.currentIndexChanged.connect(self._fill_channel_list)
            self.table.setCellWidget(row, self.ROLE_COLUMN, combo)
        self.hint.setText(
            f"{len(self._infos)} stream(s) found. Check the roles, then Connect."
            if self._infos else "No streams found. Is the sender running? Refresh to retry."
        )
        self._fill_channel_list()

    def streams(self) -> list:
        return list(self._infos)

    def role_of_row(self, row: int) -> str | None:
        return self.table.cellWidget(row, self.ROLE_COLUMN).currentData()

    def set_role(self, source_id: str, role: str | None) -> None:
        for row, info in enumerate(self._infos):
            if info.source_id == source_id:
                combo = self.table.cellWidget(row, self.ROLE_COLUMN)
                combo.setCurrentIndex([r for _, r in ROLE_CHOICES].index(role))

    def _emg_info(self):
        for row, info in enumerate(self._infos):
            if self.role_of_row(row) == "EMG":
                return info
        return None

    def _fill_channel_list(self) -> None:
        self.channel_list.clear()
        info = self._emg_info()
        if info is None:
            return
        labels = list(info.channel_labels) or [f"ch{i + 1}" for i in range(info.channel_count)]
        picks = default_emg_picks(labels)
        for i, label in enumerate(labels):
            item = QtWidgets.QListWidgetItem(label)
            item.setFlags(item.flags() | QtCore.Qt.ItemIsUserCheckable)
            item.setCheckState(QtCore.Qt.Checked if i in picks else QtCore.Qt.Unchecked)
            self.channel_list.addItem(item)

    def emg_picks(self) -> tuple[int, ...]:
        return tuple(
            i for i in range(self.channel_list.count())
            if self.channel_list.item(i).checkState() == QtCore.Qt.Checked
        )

    def assignments(self) -> list[Assignment]:
        out = []
        for row, info in enumerate(self._infos):
            role = self.role_of_row(row)
            if role is None:
                continue
            out.append(Assignment(info, role, self.emg_picks() if role == "EMG" else None))
        return out

    def problem(self) -> str | None:
        """What stops connecting the current choice (None when it can be connected)."""
        assignments = self.assignments()
        if not assignments:
            return "Give at least one stream a role (EMG, knee angle…) first."
        seen: dict[str, str] = {}
        for a in assignments:
            if a.role in seen:
                label = dict((r, lab) for lab, r in ROLE_CHOICES)[a.role]
                return (f"Only one stream can be “{label}”: “{seen[a.role]}” and “{a.info.name}” "
                        "both are. Set one of them to —.")
            seen[a.role] = a.info.name
        emg = next((a for a in assignments if a.role == "EMG"), None)
        if emg is not None and len(emg.channels or ()) != MODEL_EMG_CHANNELS:
            return (f"Tick exactly {MODEL_EMG_CHANNELS} EMG channels for the model "
                    f"({len(emg.channels or ())} ticked).")
        return None

    def _request_connect(self) -> None:
        problem = self.problem()
        if problem:
            self.hint.setText(problem)
            return
        self.connect_requested.emit(self.assignments())

    def set_connected(self, connected: bool) -> None:
        self.connect_button.setEnabled(not connected)
        self.disconnect_button.setEnabled(connected)
        self.table.setEnabled(not connected)
        self.channel_list.setEnabled(not connected)
        if not connected:
            self.status_table.setRowCount(0)

    # -- live status ---------------------------------------------------------------------
    def update_status(self, rows: Sequence[tuple[str, str, object, float | None]]) -> None:
        """``rows``: (stream name, role label, ReaderStatus, nominal rate)."""
        self.status_table.setRowCount(len(rows))
        for r, (name, role, st, nominal) in enumerate(rows):
            rate = getattr(st, "effective_rate", None)
            rate_text = "—" if rate is None else f"{rate:.1f}"
            if nominal:
                rate_text += f"/{nominal:g} Hz"
            offset = getattr(st, "clock_offset", None)
            jitter = getattr(st, "clock_jitter", None)
            connected = bool(getattr(st, "connected", False))
            clock = "—" if offset is None else f"{1000 * offset:.2f}"
            if jitter is not None and offset is not None:
                clock += f" ± {1000 * jitter:.2f}"
            cells = (
                name, role, rate_text,
                f"{getattr(st, 'gaps', '—')} / {getattr(st, 'outages', '—')}",
                clock + (" ms" if offset is not None else ""),
            )
            for c, text in enumerate(cells):
                self._set_status_cell(r, c, text)
            state = "live" if connected else "OUTAGE"
            item = self._set_status_cell(r, len(cells), f"● {state}")
            color = STATUS_COLORS["ok" if connected else "bad"]
            item.setForeground(QtGui.QBrush(QtGui.QColor(color)))
            font = item.font()
            font.setBold(not connected)
            item.setFont(font)
            err = getattr(st, "last_error", None)
            item.setToolTip(str(err) if err else "")

    def _set_status_cell(self, row: int, col: int, text: str) -> QtWidgets.QTableWidgetItem:
        item = self.status_table.item(row, col)
        if item is None:
            item = QtWidgets.QTableWidgetItem(text)
            self.status_table.setItem(row, col, item)
        elif item.text() != text:
            item.setText(text)
        return item

    def status_state(self, row: int) -> str:
        item = self.status_table.item(row, len(self.STATUS_COLUMNS) - 1)
        return "" if item is None else item.text()
