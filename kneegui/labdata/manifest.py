"""A dataset: a folder of recordings, or a manifest file that lists them (``*.toml`` or ``*.csv``).

Folder: every UCI text file (named like ``3Amar.txt``), KneeGUI session (``.h5``) and XDF file
(``.xdf``) below it; subject, group and activity come from the files (UCI names, the session's
``subject_id``), unknown fields stay empty.

TOML manifest (paths relative to the manifest; see ``docs/datasets.md``)::

    name = "Knee lab walking study"
    [channels]                    # channel label -> model input (a muscle, or "angle")
    "EMG 1" = "RF"
    "Knee R" = "angle"
    [streams]                     # which stream does which job: name, source_id or LSL type
    emg = "Trigno"
    angle = "Goniometer"
    [[recording]]
    file = "S01/walk.xdf"
    subject = "S01"
    group = "patient"
    activity = "walk"
    start = 12.0                  # optional: seconds from the recording's start
    end = 95.0
    angle_sign = -1               # optional: the goniometer counts extension positive
    [recording.channels]          # optional: this file's own labels
    "EMG 9" = "RF"

CSV manifest: a header row with ``file`` and any of ``subject``, ``group``, ``activity``,
``start``, ``end``, ``angle_sign``, ``channels`` (``"EMG 1=RF; EMG 2=BF"``), ``emg_stream``,
``angle_stream``, ``kinematics_stream``, ``force_stream``; one row per recording.
"""

from __future__ import annotations

import csv
import math
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kneegui.labdata.sources import RECORDING_SUFFIXES, StreamChoice
from kneegui.model.layout import ANGLE_INPUT, LayoutError, parse_channel_map

MANIFEST_SUFFIXES = (".toml", ".csv")
_ENTRY_KEYS = {"file", "subject", "group", "activity", "start", "end", "channels",
               "streams", "angle_sign"}
_CSV_KEYS = {"file", "subject", "group", "activity", "start", "end", "channels", "angle_sign",
             "emg_stream", "angle_stream", "kinematics_stream", "force_stream"}
_TOP_KEYS = {"name", "description", "channels", "streams", "recording", "inputs"}
_STREAM_KEYS = {"emg", "angle", "kinematics", "force"}


class DatasetError(ValueError):
    """A dataset folder or manifest cannot be used; the message says what to fix."""


@dataclass(frozen=True)
class DatasetEntry:
    """One recording of a dataset and what the manifest says about it."""

    path: Path
    subject: str | None = None
    group: str | None = None
    activity: str | None = None
    start_s: float | None = None
    end_s: float | None = None
    channel_map: dict[str, str] = field(default_factory=dict)
    streams: StreamChoice = field(default_factory=StreamChoice)
    angle_sign: float = 1.0


@dataclass(frozen=True)
class DatasetSpec:
    """A folder or a manifest: the recordings, the dataset-wide channel map, and the EMG inputs
    the manifest names (``inputs``; the muscles of its channel map, in order)."""

    source: Path
    kind: str  # "folder" | "manifest"
    name: str
    entries: tuple[DatasetEntry, ...]
    channel_map: dict[str, str] = field(default_factory=dict)
    inputs: tuple[str, ...] = ()
    ignored: tuple[str, ...] = ()  # files in a folder that are not recordings
    description: str = ""


def open_dataset(path: str | Path) -> DatasetSpec:
    """The dataset at ``path`` (a folder, or a ``.toml`` / ``.csv`` manifest)."""
    path = Path(path)
    if path.is_dir():
        return _folder(path)
    if not path.exists():
        raise DatasetError(f"dataset not found: {path} (give a folder of recordings or a "
                           "manifest .toml / .csv)")
    suffix = path.suffix.lower()
    if suffix == ".toml":
        return _toml(path)
    if suffix == ".csv":
        return _csv(path)
    raise DatasetError(f"{path.name} is not a dataset: give a folder of recordings (.txt UCI "
                       "files, .h5 sessions, .xdf files) or a manifest (.toml or .csv)")


def _folder(root: Path) -> DatasetSpec:
    """UCI text files first, in the UCI reader's order (group N first, subject number, exercise:
    training sees them in the order it always did), then sessions and XDF files by path."""
    from kneegui.datasets.uci import FILE_NAME_RE, find_uci_files

    uci = find_uci_files(root)
    taken = set(uci)
    entries, ignored = [DatasetEntry(p) for p in uci], []
    for path in sorted(p for p in root.rglob("*") if p.is_file() and p not in taken):
        suffix = path.suffix.lower()
        if suffix not in RECORDING_SUFFIXES:
            continue
        if suffix == ".txt" and not FILE_NAME_RE.match(path.name):
            ignored.append(str(path.relative_to(root)))
            continue
        entries.append(DatasetEntry(path))
    if not entries:
        raise DatasetError(
            f"no recordings under {root}: KneeGUI reads UCI text files named like 3Amar.txt, "
            "KneeGUI sessions (.h5) and LabRecorder files (.xdf); for other names or layouts "
            "write a manifest (docs/datasets.md)")
    return DatasetSpec(root, "folder", root.name, tuple(entries), ignored=tuple(ignored))


def _channel_map(value: Any, where: str) -> dict[str, str]:
    if value is None:
        return {}
    if isinstance(value, str):
        try:
            return parse_channel_map(value)
        except LayoutError as exc:
            raise DatasetError(f"{where}: {exc}") from exc
    if not isinstance(value, dict) or not all(isinstance(k, str) and isinstance(v, str)
                                              and v.strip() for k, v in value.items()):
        raise DatasetError(f"{where}: channels must map channel labels to input names "
                           "(\"EMG 1\" = \"RF\")")
    return {k.strip(): v.strip() for k, v in value.items()}


def _inputs(channel_map: dict[str, str]) -> tuple[str, ...]:
    out: list[str] = []
    for target in channel_map.values():
        if target.casefold() != ANGLE_INPUT and target.casefold() not in map(str.casefold, out):
            out.append(target)
    return tuple(out)


def _number(value: Any, where: str) -> float | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = math.nan
    if not math.isfinite(number) or number < 0:
        raise DatasetError(f"{where}: expected seconds >= 0, got {value!r}")
    return number


def _sign(value: Any, where: str) -> float:
    if value is None or (isinstance(value, str) and not value.strip()):
        return 1.0
    try:
        sign = float(value)
    except (TypeError, ValueError):
        sign = 0.0
    if sign not in (1.0, -1.0):
        raise DatasetError(f"{where}: angle_sign must be 1 or -1, got {value!r}")
    return sign


def _text(value: Any) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def _entry(base: Path, data: dict[str, Any], where: str, streams: StreamChoice) -> DatasetEntry:
    file = _text(data.get("file"))
    if file is None:
        raise DatasetError(f"{where}: 'file' is missing (the recording's path, relative to the "
                           "manifest)")
    path = (base / file).resolve() if not Path(file).is_absolute() else Path(file)
    if not path.is_file():
        raise DatasetError(f"{where}: {file} not found (looked for {path})")
    start, end = _number(data.get("start"), f"{where}: start"), _number(data.get("end"),
                                                                       f"{where}: end")
    if start is not None and end is not None and end <= start:
        raise DatasetError(f"{where}: end ({end:g} s) must come after start ({start:g} s)")
    return DatasetEntry(
        path=path, subject=_text(data.get("subject")), group=_text(data.get("group")),
        activity=_text(data.get("activity")), start_s=start, end_s=end,
        channel_map=_channel_map(data.get("channels"), f"{where}: channels"),
        streams=streams, angle_sign=_sign(data.get("angle_sign"), where))


def _stream_choice(value: Any, where: str, base: StreamChoice | None = None) -> StreamChoice:
    base = base or StreamChoice()
    if value is None:
        return base
    if not isinstance(value, dict) or set(value) - _STREAM_KEYS:
        raise DatasetError(f"{where}: [streams] takes {', '.join(sorted(_STREAM_KEYS))} "
                           "(stream name, source_id or LSL type each)")
    return StreamChoice(**{k: _text(value.get(k)) or getattr(base, k) for k in _STREAM_KEYS})


def _toml(path: Path) -> DatasetSpec:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise DatasetError(f"{path.name} is not a readable TOML manifest ({exc})") from exc
    unknown = sorted(set(data) - _TOP_KEYS)
    if unknown:
        raise DatasetError(f"{path.name}: unknown key(s) {unknown}; a manifest has "
                           f"{', '.join(sorted(_TOP_KEYS))}")
    channel_map = _channel_map(data.get("channels"), f"{path.name} [channels]")
    streams = _stream_choice(data.get("streams"), f"{path.name}")
    rows = data.get("recording")
    if not isinstance(rows, list) or not rows:
        raise DatasetError(f"{path.name}: no [[recording]] entries (each names a file, and "
                           "optionally subject, group, activity)")
    entries = []
    for i, row in enumerate(rows):
        where = f"{path.name} recording {i + 1}"
        if not isinstance(row, dict):
            raise DatasetError(f"{where}: expected a table")
        unknown = sorted(set(row) - _ENTRY_KEYS)
        if unknown:
            raise DatasetError(f"{where}: unknown key(s) {unknown}; use "
                               f"{', '.join(sorted(_ENTRY_KEYS))}")
        entries.append(_entry(path.parent, row, where,
                              _stream_choice(row.get("streams"), where, streams)))
    inputs = data.get("inputs")
    if inputs is not None and (not isinstance(inputs, list)
                               or not all(isinstance(x, str) for x in inputs)):
        raise DatasetError(f"{path.name}: inputs must be a list of muscle names")
    return DatasetSpec(path, "manifest", str(data.get("name") or path.stem), tuple(entries),
                       channel_map, tuple(inputs) if inputs else _inputs(channel_map),
                       description=str(data.get("description") or ""))


def _csv(path: Path) -> DatasetSpec:
    try:
        with path.open(newline="", encoding="utf-8-sig") as f:
            rows = list(csv.DictReader(f))
            header = set(rows[0]) if rows else set()
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise DatasetError(f"{path.name} is not a readable CSV manifest ({exc})") from exc
    header = {h.strip() for h in header if h}
    if "file" not in header:
        raise DatasetError(f"{path.name}: a CSV manifest needs a header row with a 'file' column "
                           f"(and any of {', '.join(sorted(_CSV_KEYS - {'file'}))})")
    unknown = sorted(header - _CSV_KEYS)
    if unknown:
        raise DatasetError(f"{path.name}: unknown column(s) {unknown}; use "
                           f"{', '.join(sorted(_CSV_KEYS))}")
    entries = []
    for i, row in enumerate(rows):
        row = {k.strip(): v for k, v in row.items() if k}
        where = f"{path.name} line {i + 2}"
        streams = StreamChoice(**{k: _text(row.get(f"{k}_stream")) for k in _STREAM_KEYS})
        entries.append(_entry(path.parent, row, where, streams))
    if not entries:
        raise DatasetError(f"{path.name}: no rows below the header")
    merged: dict[str, str] = {}
    for e in entries:
        for k, v in e.channel_map.items():
            merged.setdefault(k, v)
    return DatasetSpec(path, "manifest", path.stem, tuple(entries), {}, _inputs(merged))
