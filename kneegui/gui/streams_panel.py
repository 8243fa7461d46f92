"""Streams panel: discovered LSL streams, role assignment, model channel picks,
connect / disconnect, and per-stream live status with an outage indicator.

Roles are exclusive (giving a stream the EMG role takes it from the stream that had it), and
when several streams look like the same role the panel asks which one is meant instead of
guessing. Both tables keep every column readable in the dock (no truncated names)."""

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


def default_emg_picks(labels: Sequence[str], inputs: Sequence[str] = _DEFAULT_EMG_LABELS,
                      channel_map: dict[str, str] | None = None) -> list[int]:
    """Indices of the channels that feed the model's EMG ``inputs`` (in input order): the
    channels whose labels (or ``channel_map`` entries) name them; none when they do not all
    match (never "the first four": the operator maps them)."""
    from kneegui.model.layout import LayoutError, match_channels

    try:
        return match_channels(list(inputs), list(labels), channel_map=channel_map or None)
    except LayoutError:
        return []


@dataclass(frozen=True)
class Assignment:
    """One stream the operator wants connected, with its role and (for EMG) model channels."""

    info: object  # kneegui.acquisition.StreamInfoView
    role: str  # Role member name
    channels: tuple[int, ...] | None = None
    channel_map: dict[str, str] | None = None  # EMG: stream channel label -> model input


class _Relay(QtCore.QObject):
    """Carries results from a plain thread back to the GUI thread."""

    done = QtCore.Signal(object, object)  # (list of infos | None, error message | None)


def role_label(role: str | None) -> str:
    """The operator's word for a Role member name ("KNEE_ANGLE" -> "Knee angle")."""
    return dict((r, lab) for lab, r in ROLE_CHOICES).get(role, str(role))


def _fit_columns(table: QtWidgets.QTableWidget) -> None:
    """Every column as wide as its widest cell or header, two-line cells get two-line rows, and
    the table asks for the width that shows all columns (the dock cannot squeeze it)."""
    table.resizeColumnsToContents()
    table.resizeRowsToContents()
    needed = sum(table.columnWidth(c) for c in range(table.columnCount()))
    needed += 2 * table.frameWidth() + table.verticalScrollBar().sizeHint().width()
    table.setMinimumWidth(needed)


class StreamsPanel(QtWidgets.QWidget):
    """Discovery table + status table. ``discover_fn(timeout)`` runs off the GUI thread."""

    connect_requested = QtCore.Signal(list)  # list[Assignment]
    disconnect_requested = QtCore.Signal()
    discovery_failed = QtCore.Signal(str)

    INFO_COLUMNS = ("Role", "Stream / source ID", "Type", "Ch", "Rate")
    ROLE_COLUMN = 0
    STATUS_COLUMNS = ("Stream / role", "Rate", "Gaps / outages", "Clock offset ± jitter",
                      "State")
    #: Header texts (two lines where a column would otherwise be wider than its values).
    _STATUS_HEADERS = ("Stream / role", "Rate", "Gaps /\noutages", "Clock offset\n± jitter",
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
        self.table.setWordWrap(False)
        self.table.setTextElideMode(QtCore.Qt.ElideNone)
        self.table.horizontalHeader().setMinimumSectionSize(16)

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
        self.model_inputs: tuple[str, ...] = _DEFAULT_EMG_LABELS
        self.channel_list.setToolTip("EMG channels that feed the model's inputs")
        self.channel_map_edit = QtWidgets.QLineEdit()
        self.channel_map_edit.setToolTip(
            "When the channel labels do not name the model's muscles: which channel is which, "
            "e.g. EMG 1=RF, EMG 2=BF, EMG 3=VM, EMG 4=ST")
        self.channel_map_edit.editingFinished.connect(self._fill_channel_list)

        self.status_table = QtWidgets.QTableWidget(0, len(self.STATUS_COLUMNS))
        self.status_table.setHorizontalHeaderLabels(list(self._STATUS_HEADERS))
        self.status_table.verticalHeader().hide()
        self.status_table.setEditTriggers(QtWidgets.QAbstractItemView.NoEditTriggers)
        self.status_table.setWordWrap(False)
        self.status_table.setTextElideMode(QtCore.Qt.ElideNone)
        self.status_table.horizontalHeader().setMinimumSectionSize(16)
        self._status_layout: tuple = ()

        self.hint = QtWidgets.QLabel("Press Refresh to look for streams.")
        self.hint.setWordWrap(True)
        self.hint.setStyleSheet("color:#555;")
        # "Which stream is the EMG?": shown when several streams look like one role.
        self.question = QtWidgets.QFrame()
        self.question.setStyleSheet(
            "QFrame#question {background:#fff3cd; border:1px solid #e08a00; border-radius:4px;}"
        )
        self.question.setObjectName("question")
        q_lay = QtWidgets.QVBoxLayout(self.question)
        q_lay.setContentsMargins(6, 4, 6, 4)
        self.question_label = QtWidgets.QLabel()
        self.question_label.setWordWrap(True)
        self.question_label.setStyleSheet("border:none; background:transparent;")
        q_lay.addWidget(self.question_label)
        self._question_buttons = QtWidgets.QHBoxLayout()
        q_lay.addLayout(self._question_buttons)
        self.question.hide()
        self._questions: list[tuple[str, list[int]]] = []  # (role, candidate rows)

        buttons = QtWidgets.QHBoxLayout()
        for b in (self.refresh_button, self.connect_button, self.disconnect_button):
            buttons.addWidget(b)
        lay = QtWidgets.QVBoxLayout(self)
        lay.setContentsMargins(4, 4, 4, 4)
        lay.addLayout(buttons)
        lay.addWidget(self.hint)
        lay.addWidget(self.question)
        self.table.setMinimumHeight(90)
        self.status_table.setMinimumHeight(110)
        lay.addWidget(self.table, 1)
        self.channel_label = QtWidgets.QLabel()
        lay.addWidget(self.channel_label)
        lay.addWidget(self.channel_list)
        lay.addWidget(self.channel_map_edit)
        self.set_model_inputs(_DEFAULT_EMG_LABELS)
        lay.addWidget(QtWidgets.QLabel("Connected streams:"))
        lay.addWidget(self.status_table, 1)
        _fit_columns(self.table)  # the headers are readable before any stream is listed
        _fit_columns(self.status_table)

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
        """Fill the table. Roles are pre-selected by :func:`guess_role` when one stream fits a
        role; when several do, none gets it and the panel asks which one is meant."""
        self._infos = list(infos)
        self.table.setRowCount(len(self._infos))
        guesses = [guess_role(info) for info in self._infos]
        candidates: dict[str, list[int]] = {}
        for row, role in enumerate(guesses):
            if role is not None:
                candidates.setdefault(role, []).append(row)
        self._questions = [(role, rows) for role, rows in candidates.items() if len(rows) > 1]
        for row, info in enumerate(self._infos):
            tip = info.describe() + (f" on host {info.hostname}" if info.hostname else "")
            cells = (
                f"{info.name}\n{info.source_id or '(no source ID)'}", info.type,
                str(info.channel_count),
                f"{info.nominal_srate:g} Hz" if info.nominal_srate else "irregular",
            )
            for col, text in enumerate(cells, start=1):
                item = QtWidgets.QTableWidgetItem(str(text))
                item.setToolTip(tip)
                self.table.setItem(row, col, item)
            combo = QtWidgets.QComboBox()
            combo.setSizeAdjustPolicy(QtWidgets.QComboBox.AdjustToContents)
            for label, role in ROLE_CHOICES:
                combo.addItem(label, role)
            guessed = guesses[row] if len(candidates.get(guesses[row], ())) == 1 else None
            combo.setCurrentIndex([r for _, r in ROLE_CHOICES].index(guessed))
            combo.currentIndexChanged.connect(lambda _i, c=combo: self._role_changed(c))
            self.table.setCellWidget(row, self.ROLE_COLUMN, combo)
        _fit_columns(self.table)
        # No taller than its rows: on a 768-pixel screen the status table below stays in view.
        rows = sum(self.table.rowHeight(r) for r in range(self.table.rowCount()))
        self.table.setMaximumHeight(max(
            self.table.minimumHeight(),
            self.table.horizontalHeader().height() + rows + 2 * self.table.frameWidth() + 4,
        ))
        self._ask_next_question()
        self._fill_channel_list()
        if not self._infos:
            self.hint.setText("No streams found. Is the sender running? Refresh to retry.")
        else:
            self._show_readiness(f"{len(self._infos)} stream(s) found.")

    def streams(self) -> list:
        return list(self._infos)

    def role_of_row(self, row: int) -> str | None:
        return self.table.cellWidget(row, self.ROLE_COLUMN).currentData()

    def set_role(self, source_id: str, role: str | None) -> None:
        """Give the stream ``source_id`` a role (another stream holding it is set to —)."""
        for row, info in enumerate(self._infos):
            if info.source_id == source_id:
                combo = self.table.cellWidget(row, self.ROLE_COLUMN)
                combo.setCurrentIndex([r for _, r in ROLE_CHOICES].index(role))

    def _row_of_combo(self, combo) -> int:
        return next(r for r in range(self.table.rowCount())
                    if self.table.cellWidget(r, self.ROLE_COLUMN) is combo)

    def _set_row_role(self, row: int, role: str | None) -> None:
        combo = self.table.cellWidget(row, self.ROLE_COLUMN)
        combo.blockSignals(True)
        combo.setCurrentIndex([r for _, r in ROLE_CHOICES].index(role))
        combo.blockSignals(False)

    def _role_changed(self, combo) -> None:
        """Roles are exclusive: the stream that held this role loses it (and is named)."""
        row = self._row_of_combo(combo)
        role = combo.currentData()
        released = []
        if role is not None:
            for other in range(len(self._infos)):
                if other != row and self.role_of_row(other) == role:
                    self._set_row_role(other, None)
                    released.append(self._infos[other].name)
        # the operator decided this role: a pending "which one?" question for it is answered
        self._questions = [(r, rows) for r, rows in self._questions if r != role]
        self._ask_next_question()
        self._fill_channel_list()
        note = ""
        if released:
            names = ", ".join(f"“{n}”" for n in released)
            note = f"{names} set to —: only one stream can be {role_label(role)}."
        self._show_readiness(note)

    # -- "which stream is the EMG?" ------------------------------------------------------
    def pending_question(self) -> tuple[str, list[str]] | None:
        """(role, candidate stream names) the panel is asking about, or None."""
        if not self._questions:
            return None
        role, rows = self._questions[0]
        return role, [self._infos[r].name for r in rows]

    def answer_question(self, source_id: str | None) -> None:
        """Answer the open question: the stream ``source_id`` gets the role (None: neither)."""
        if not self._questions:
            return
        role, rows = self._questions.pop(0)
        for r in rows:
            self._set_row_role(r, role if self._infos[r].source_id == source_id else None)
        self._ask_next_question()
        self._fill_channel_list()
        self._show_readiness("")

    def _ask_next_question(self) -> None:
        while self._question_buttons.count():
            item = self._question_buttons.takeAt(0)
            if item.widget() is not None:
                item.widget().deleteLater()
        if not self._questions:
            self.question.hide()
            return
        role, rows = self._questions[0]
        label = role_label(role)
        self.question_label.setText(
            f"<b>{len(rows)} streams look like {label}.</b> Which one is the subject's "
            f"{label.lower() if role != 'EMG' else 'EMG'}?"
        )
        for r in rows:
            info = self._infos[r]
            button = QtWidgets.QPushButton(info.name)
            button.setToolTip(info.describe())
            button.clicked.connect(lambda _=False, sid=info.source_id: self.answer_question(sid))
            self._question_buttons.addWidget(button)
        neither = QtWidgets.QPushButton("None of them")
        neither.clicked.connect(lambda _=False: self.answer_question(None))
        self._question_buttons.addWidget(neither)
        self.question.show()

    def _show_readiness(self, note: str = "") -> None:
        """The hint line: what still blocks Connect, or that it can be pressed."""
        problem = self.problem()
        text = problem if problem else "Check the roles, then Connect."
        self.hint.setText(f"{note} {text}".strip())

    def _emg_info(self):
        for row, info in enumerate(self._infos):
            if self.role_of_row(row) == "EMG":
                return info
        return None

    def set_model_inputs(self, inputs: Sequence[str]) -> None:
        """The EMG inputs of the loaded model (its card's channel layout), in order."""
        self.model_inputs = tuple(inputs) or _DEFAULT_EMG_LABELS
        names = ", ".join(self.model_inputs)
        self.channel_label.setText(f"EMG channels for the model ({names}):")
        self.channel_map_edit.setPlaceholderText(
            "channel map if the labels differ, e.g. "
            + ", ".join(f"EMG {i + 1}={m}" for i, m in enumerate(self.model_inputs[:4]))
            + (", …" if len(self.model_inputs) > 4 else ""))
        self._fill_channel_list()

    def channel_map(self) -> dict[str, str]:
        """The operator's channel map (empty when none; invalid text gives an empty map and
        :meth:`problem` says why)."""
        from kneegui.model.layout import LayoutError, parse_channel_map

        try:
            return parse_channel_map(self.channel_map_edit.text())
        except LayoutError:
            return {}

    def _fill_channel_list(self) -> None:
        self.channel_list.clear()
        info = self._emg_info()
        if info is None:
            return
        labels = list(info.channel_labels) or [f"ch{i + 1}" for i in range(info.channel_count)]
        picks = default_emg_picks(labels, self.model_inputs, self.channel_map())
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
            if role == "EMG":
                out.append(Assignment(info, role, self.emg_picks(), self.channel_map() or None))
            else:
                out.append(Assignment(info, role))
        return out

    def problem(self) -> str | None:
        """What stops connecting the current choice (None when it can be connected)."""
        asked = self.pending_question()
        if asked is not None:
            role, names = asked
            return (f"{len(names)} streams look like {role_label(role)}: choose the one to use "
                    "above (or “None of them”), or set the roles in the table.")
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
        if emg is not None:
            return self._emg_problem(emg)
        return None

    def _emg_problem(self, emg: Assignment) -> str | None:
        """Whether the ticked channels (and the channel map) feed every model input."""
        from kneegui.model.layout import LayoutError, match_channels, parse_channel_map

        n = len(self.model_inputs)
        try:
            channel_map = parse_channel_map(self.channel_map_edit.text())
        except LayoutError as exc:
            return f"Channel map: {exc}."
        ticked = len(emg.channels or ())
        info = emg.info
        labels = [info.label(i) for i in range(info.channel_count)]
        try:
            match_channels(list(self.model_inputs), labels, channel_map=channel_map or None,
                           picks=list(emg.channels or ()) or None,
                           source=f"EMG stream “{info.name}”")
        except LayoutError as exc:
            return f"{exc}"
        if ticked != n:
            return f"Tick exactly {n} EMG channels for the model ({ticked} ticked)."
        return None

    def _request_connect(self) -> None:
        problem = self.problem()
        if problem:
            self.hint.setText(problem)
            return
        self.connect_requested.emit(self.assignments())

    def set_connected(self, connected: bool, assignments: Sequence[Assignment] = ()) -> None:
        """Connected (``assignments``: what was connected): lock the roles and say what is
        connected, replacing any older hint."""
        self.connect_button.setEnabled(not connected)
        self.disconnect_button.setEnabled(connected)
        self.table.setEnabled(not connected)
        self.channel_list.setEnabled(not connected)
        self.question.setEnabled(not connected)
        if connected:
            roles = ", ".join(role_label(a.role) for a in assignments)
            what = f"{len(assignments)} stream(s) ({roles})" if assignments else "the streams"
            self.hint.setText(f"Connected to {what}. Disconnect to change roles.")
        else:
            self.status_table.setRowCount(0)
            self._status_layout = ()
            if self._infos:
                self._show_readiness("")
            else:
                self.hint.setText("Press Refresh to look for streams.")

    # -- live status ---------------------------------------------------------------------
    def update_status(self, rows: Sequence[tuple[str, str, object, float | None]]) -> None:
        """``rows``: (stream name, role label, ReaderStatus, nominal rate)."""
        self.status_table.setRowCount(len(rows))
        for r, (name, role, st, nominal) in enumerate(rows):
            rate = getattr(st, "effective_rate", None)
            rate_text = "—" if rate is None else f"{rate:.1f} Hz"
            if nominal:
                rate_text += f"\nof {nominal:g} Hz"
            offset = getattr(st, "clock_offset", None)
            jitter = getattr(st, "clock_jitter", None)
            connected = bool(getattr(st, "connected", False))
            clock = "—" if offset is None else f"{1000 * offset:.2f}"
            if jitter is not None and offset is not None:
                clock += f" ± {1000 * jitter:.2f}"
            cells = (
                f"{name}\n{role}", rate_text,
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
        # Re-fit the columns only when the text widths can have changed (names, counts):
        # twice a second a full resize would cost more than the whole status update.
        layout = tuple(
            len(self.status_table.item(r, c).text())
            for r in range(len(rows)) for c in range(len(self.STATUS_COLUMNS))
        )
        if layout != self._status_layout:
            self._status_layout = layout
            _fit_columns(self.status_table)

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
