"""Read a KneeGUI session file: ``open_session(path) -> Session``.

Arrays are read lazily on first access and cached; use ``Session`` as a context manager (or call
``close()``) to release the file. A file that is not a session, is damaged, or was written by a
newer major format version raises :class:`SessionFormatError` with a message saying why.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from kneegui.recording import layout
from kneegui.recording.errors import SessionFormatError


def parse_utc(text: str) -> dt.datetime | None:
    """An ISO 8601 time (``...Z`` or with an offset) as an aware UTC datetime, else None."""
    if not text:
        return None
    try:
        when = dt.datetime.fromisoformat(str(text).replace("Z", "+00:00"))
    except ValueError:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return when.astimezone(dt.UTC)


def _attr(obj: h5py.HLObject, key: str, default: Any = "") -> Any:
    value = obj.attrs.get(key, default)
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, np.ndarray) and value.dtype.kind in "OS":
        return tuple(v.decode() if isinstance(v, bytes) else str(v) for v in value)
    if isinstance(value, np.generic):
        return value.item()
    return value


def _attrs(obj: h5py.HLObject) -> dict[str, Any]:
    return {key: _attr(obj, key) for key in obj.attrs}


def _read(ds: h5py.Dataset, start: int | None = None, stop: int | None = None) -> np.ndarray:
    if h5py.check_string_dtype(ds.dtype) is not None:
        return ds.asstr()[start:stop]
    return ds[start:stop]


def _rows(values: np.ndarray) -> np.ndarray:
    """Stream data as [n, channels] (a 1-D dataset is one channel)."""
    return values.reshape(-1, 1) if values.ndim == 1 else values


#: numpy dtype kind + size -> LSL channel format (for streams whose attribute is missing).
_FORMAT_OF_DTYPE = {"f4": "float32", "f8": "double64", "i1": "int8", "i2": "int16",
                    "i4": "int32", "i8": "int64"}


@dataclass
class RecordedStream:
    """One recorded LSL stream. ``data`` is [n, channels]; ``timestamps`` [n] LSL seconds."""

    name: str
    group: h5py.Group = field(repr=False)
    length: int

    @cached_property
    def attrs(self) -> dict[str, Any]:
        """All attributes of ``/streams/<name>``."""
        return _attrs(self.group)

    @property
    def type(self) -> str:
        return str(self.attrs.get("type", ""))

    @property
    def nominal_srate(self) -> float:
        """Hz; 0 (irregular) when the attribute is missing or not a finite number >= 0."""
        try:
            rate = float(self.attrs.get("nominal_srate", 0.0))
        except (TypeError, ValueError):
            return 0.0
        return rate if np.isfinite(rate) and rate >= 0 else 0.0

    @property
    def channel_format(self) -> str:
        """The LSL format; taken from the stored data type when the attribute is missing."""
        fmt = str(self.attrs.get("channel_format", "")).strip().lower()
        if fmt in layout._LSL_DTYPES or fmt == layout.STRING_FORMAT:
            return fmt
        if self.is_string:
            return layout.STRING_FORMAT
        dtype = self.group["data"].dtype
        return _FORMAT_OF_DTYPE.get(f"{dtype.kind}{dtype.itemsize}", fmt)

    @property
    def channel_count(self) -> int:
        shape = self.group["data"].shape
        return int(shape[1]) if len(shape) > 1 else 1

    @property
    def channel_labels(self) -> tuple[str, ...]:
        return tuple(self.attrs.get("channel_labels", ()))

    @property
    def channel_units(self) -> tuple[str, ...]:
        return tuple(self.attrs.get("channel_units", ()))

    @property
    def source_id(self) -> str:
        return str(self.attrs.get("source_id", ""))

    @property
    def info_xml(self) -> str:
        return str(self.attrs.get("info_xml", ""))

    @property
    def is_string(self) -> bool:
        return h5py.check_string_dtype(self.group["data"].dtype) is not None

    @cached_property
    def data(self) -> np.ndarray:
        """All samples [n, channels] in the stream's dtype (strings as ``str`` objects)."""
        return _rows(_read(self.group["data"], 0, self.length))

    @cached_property
    def timestamps(self) -> np.ndarray:
        """Sample times [n], float64 seconds on the recording machine's LSL clock."""
        return np.asarray(self.group["timestamps"][: self.length], dtype=np.float64)

    def timestamp_problems(self) -> list[str]:
        """What is wrong with the stored time stamps (NaN/inf, going backwards); [] if none."""
        ts = self.timestamps
        problems = []
        bad = int(np.count_nonzero(~np.isfinite(ts)))
        if bad:
            problems.append(f"stream {self.name!r}: {bad} of {len(ts)} time stamps are not "
                            "finite (NaN/inf)")
        finite = ts[np.isfinite(ts)]
        steps = np.diff(finite)
        back = steps < 0
        if back.any():
            problems.append(
                f"stream {self.name!r}: the time stamps go backwards {int(back.sum())} times "
                f"(by up to {float(-steps[back].min()):.6g} s)")
        return problems

    @property
    def raw_timestamps_name(self) -> str | None:
        """Dataset holding the sender's uncorrected stamps (None in 1.0 live recordings)."""
        for name in (layout.RAW_STAMPS, layout.LEGACY_XDF_STAMPS):
            if name in self.group:
                return name
        return None

    @cached_property
    def raw_timestamps(self) -> np.ndarray:
        """[n] the sender's stamps as received, before clock correction and dejitter.

        NaN where unknown (format 1.0 live recordings did not keep them).
        """
        name = self.raw_timestamps_name
        if name is None:
            return np.full(self.length, np.nan)
        raw = self.group[name][: self.length]
        if len(raw) < self.length:  # interrupted write: pad what is missing
            raw = np.concatenate([raw, np.full(self.length - len(raw), np.nan)])
        return raw

    @cached_property
    def clock_offsets(self) -> np.ndarray:
        """[m, 2] rows of (time, offset) in seconds: the offset applied from ``time`` on."""
        if layout.CLOCK_OFFSETS not in self.group:
            return np.zeros((0, 2))
        return self.group[layout.CLOCK_OFFSETS][:]

    @cached_property
    def clock_measurements(self) -> np.ndarray:
        """[k, 3] raw LSL clock measurements (time, offset, round_trip) in seconds.

        Format 1.0 XDF imports stored the file's measurements as ``clock_offsets``; they are
        returned here with an unknown (NaN) round trip. 1.0 live recordings kept none.
        """
        if layout.CLOCK_MEASUREMENTS in self.group:
            return self.group[layout.CLOCK_MEASUREMENTS][:]
        if "xdf_stream_id" in self.group.attrs and len(self.clock_offsets):
            offsets = self.clock_offsets
            return np.column_stack([offsets, np.full(len(offsets), np.nan)])
        return np.zeros((0, 3))

    def read(self, start: int, stop: int) -> tuple[np.ndarray, np.ndarray]:
        """Samples and timestamps of rows ``start:stop`` (for chunked processing)."""
        stop = min(stop, self.length)
        return (_rows(_read(self.group["data"], start, stop)),
                np.asarray(self.group["timestamps"][start:stop], dtype=np.float64))

    def read_raw_timestamps(self, start: int, stop: int) -> np.ndarray:
        """Raw sender stamps of rows ``start:stop`` (NaN where unknown)."""
        stop = min(stop, self.length)
        name = self.raw_timestamps_name
        if name is None:
            return np.full(max(0, stop - start), np.nan)
        raw = self.group[name][start:stop]
        missing = max(0, stop - start) - len(raw)
        return np.concatenate([raw, np.full(missing, np.nan)]) if missing else raw


@dataclass
class DerivedSeries:
    """A derived series (``/derived/<path>``): data [n, ch], timestamps [n], attributes."""

    path: str
    data: np.ndarray
    timestamps: np.ndarray
    attrs: dict[str, Any]

    @property
    def filter_settings(self) -> Any:
        """The ``kneegui.dsp.FilterSettings`` the series was filtered with (None if unknown)."""
        from kneegui.recording.filter_meta import settings_from_attrs

        return settings_from_attrs(self.attrs)


@dataclass
class Predictions:
    """Predicted trajectories: ``values[i, j]`` = angle at ``timestamps[i] + horizons_ms[j]``."""

    timestamps: np.ndarray
    values: np.ndarray
    model_id: np.ndarray
    horizons_ms: np.ndarray


@dataclass
class Events:
    """Parallel arrays of event timestamps, labels and origins."""

    timestamp: np.ndarray
    label: np.ndarray
    origin: np.ndarray
    duration: np.ndarray | None = None  # seconds; 0 = an instant (all 0 in format 1.0 files)

    def __post_init__(self) -> None:
        if self.duration is None:
            self.duration = np.zeros(len(self.timestamp))

    def __len__(self) -> int:
        return len(self.timestamp)

    def as_list(self) -> list[tuple[float, str, str]]:
        return [(float(t), str(lab), str(o))
                for t, lab, o in zip(self.timestamp, self.label, self.origin, strict=True)]


@dataclass
class ModelEntry:
    """A model used during the session: its card (parsed JSON) and weights hash."""

    model_id: str
    card: dict[str, Any]
    sha256: str


class Session:
    """An open session file. Attributes: ``path``, ``attrs``, ``streams``, ``events``..."""

    def __init__(self, path: Path, file: h5py.File) -> None:
        self.path = path
        self.file = file
        self.attrs = _attrs(file)
        self.streams: dict[str, RecordedStream] = {}
        self.warnings: list[str] = []
        for name, group in file.get(layout.STREAMS, {}).items():
            stream = self._load_stream(name, group)
            if stream is not None:
                self.streams[name] = stream

    def _load_stream(self, name: str, group: h5py.Group) -> RecordedStream | None:
        """The stream, or None (with a warning) when it cannot be read; others still load."""
        data = group.get("data") if isinstance(group, h5py.Group) else None
        stamps = group.get("timestamps") if isinstance(group, h5py.Group) else None
        if not isinstance(data, h5py.Dataset) or not isinstance(stamps, h5py.Dataset):
            self.warnings.append(
                f"stream {name!r} lacks its data or timestamps (damaged file); skipped")
            return None
        if data.ndim not in (1, 2) or stamps.ndim != 1:
            self.warnings.append(
                f"stream {name!r} has data of shape {data.shape} and timestamps of shape "
                f"{stamps.shape}; expected [samples, channels] and [samples]; skipped")
            return None
        if data.ndim == 1:
            self.warnings.append(f"stream {name!r}: 1-D data, read as one channel")
        missing = [k for k in ("channel_format", "nominal_srate", "name")
                   if k not in group.attrs]
        if missing:
            self.warnings.append(
                f"stream {name!r} lacks the attributes {', '.join(missing)}; using defaults "
                "(format from the data type, irregular rate, the group name)")
        n_data, n_ts = data.shape[0], stamps.shape[0]
        if n_data != n_ts:
            self.warnings.append(
                f"stream {name!r}: {n_data} samples but {n_ts} timestamps (interrupted write); "
                f"reading the first {min(n_data, n_ts)}")
        return RecordedStream(name, group, min(n_data, n_ts))

    # -- metadata --------------------------------------------------------------------------
    @property
    def subject_id(self) -> str:
        return str(self.attrs.get("subject_id", ""))

    @property
    def operator(self) -> str:
        return str(self.attrs.get("operator", ""))

    @property
    def notes(self) -> str:
        return str(self.attrs.get("notes", ""))

    @property
    def app_version(self) -> str:
        return str(self.attrs.get("app_version", ""))

    @property
    def start_time(self) -> str:
        """UTC ISO 8601 start time."""
        return str(self.attrs.get("session_start_time", ""))

    @property
    def start_lsl(self) -> float | None:
        """LSL clock reading at ``start_time`` (None when the file does not say)."""
        value = self.attrs.get("session_start_lsl")
        try:
            value = float(value)
        except (TypeError, ValueError):
            return None
        return value if np.isfinite(value) else None

    @cached_property
    def start_datetime(self) -> dt.datetime | None:
        """``start_time`` as an aware UTC datetime (None when absent or unparsable)."""
        return parse_utc(self.start_time)

    def utc_datetime64(self, t: np.ndarray) -> np.ndarray | None:
        """LSL times -> ``datetime64[us]`` UTC (None when the start time or clock is unknown)."""
        start, start_lsl = self.start_datetime, self.start_lsl
        if start is None or start_lsl is None:
            return None
        base = np.datetime64(start.replace(tzinfo=None), "us")
        offset_us = np.round((np.asarray(t, dtype=np.float64) - start_lsl) * 1e6)
        return base + offset_us.astype("timedelta64[us]")

    @property
    def complete(self) -> bool:
        """False when the writer was killed or failed before closing the file."""
        return bool(self.attrs.get("complete", False))

    @property
    def format_version(self) -> str:
        return str(self.attrs.get("format_version", ""))

    # -- content ---------------------------------------------------------------------------
    @cached_property
    def events(self) -> Events:
        group = self.file.get(layout.EVENTS)
        if group is None or "timestamp" not in group:
            empty = np.zeros(0, dtype=object)
            return Events(np.zeros(0), empty, empty)
        columns = [k for k in ("timestamp", "label", "origin", "duration") if k in group]
        n = min(group[k].shape[0] for k in columns)
        duration = group["duration"][:n] if "duration" in group else np.zeros(n)
        return Events(group["timestamp"][:n], _read(group["label"], 0, n),
                      _read(group["origin"], 0, n), duration)

    @cached_property
    def derived(self) -> dict[str, DerivedSeries]:
        """Every derived series except predictions, keyed by path below ``/derived``."""
        out: dict[str, DerivedSeries] = {}
        root = self.file.get(layout.DERIVED)
        if root is None:
            return out

        def visit(name: str, obj: Any) -> None:
            if isinstance(obj, h5py.Group) and "data" in obj and "timestamps" in obj:
                if name == "predictions":
                    return
                n = min(obj["data"].shape[0], obj["timestamps"].shape[0])
                out[name] = DerivedSeries(name, _read(obj["data"], 0, n),
                                          obj["timestamps"][:n], _attrs(obj))

        root.visititems(visit)
        return out

    @cached_property
    def predictions(self) -> Predictions | None:
        group = self.file.get(layout.PREDICTIONS)
        if group is None:
            return None
        n = min(group[k].shape[0] for k in ("timestamps", "values", "model_id"))
        return Predictions(group["timestamps"][:n], group["values"][:n],
                           _read(group["model_id"], 0, n),
                           np.asarray(group.attrs.get("horizons_ms", [])))

    @cached_property
    def calibration(self) -> dict[str, dict[str, Any]]:
        """``{name: {"arrays": {...}, "attrs": {...}}}`` for every calibration stored."""
        out: dict[str, dict[str, Any]] = {}
        for name, group in self.file.get(layout.CALIBRATION, {}).items():
            arrays = {k: _read(ds) for k, ds in group.items() if isinstance(ds, h5py.Dataset)}
            out[name] = {"arrays": arrays, "attrs": _attrs(group)}
        return out

    @cached_property
    def models(self) -> dict[str, ModelEntry]:
        out: dict[str, ModelEntry] = {}
        for _, group in self.file.get(layout.MODELS, {}).items():
            card_text = group["card"].asstr()[()] if "card" in group else "{}"
            try:
                card = json.loads(card_text)
            except json.JSONDecodeError:
                card = {"unparsed": card_text}
            model_id = str(_attr(group, "model_id"))
            out[model_id] = ModelEntry(model_id, card, str(_attr(group, "sha256")))
        return out

    def duration(self) -> float:
        """Seconds between the first and last sample over all streams (0 if empty)."""
        starts = [np.nanmin(s.timestamps) for s in self.streams.values()
                  if s.length and np.isfinite(s.timestamps).any()]
        ends = [np.nanmax(s.timestamps) for s in self.streams.values()
                if s.length and np.isfinite(s.timestamps).any()]
        return float(max(ends) - min(starts)) if starts else 0.0

    def timestamp_problems(self) -> list[str]:
        """Time-stamp problems of every stream (NaN/inf, going backwards); [] if none.

        Reads every stream's time stamps; export and replay print these as warnings.
        """
        return [p for s in self.streams.values() for p in s.timestamp_problems()]

    def close(self) -> None:
        self.file.close()

    def __enter__(self) -> Session:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_session(path: str | Path, live: bool = False) -> Session:
    """Open a KneeGUI session file for reading (see module docstring for errors).

    A file that is still being recorded is locked by its writer; ``live=True`` opens it anyway
    (without HDF5 file locking) and shows the data as of the writer's last flush (best effort).
    """
    path = Path(path)
    if not path.exists():
        raise SessionFormatError(f"{path} does not exist; check the path")
    if path.is_dir():
        raise SessionFormatError(f"{path} is a directory; give the path of a .h5 session file")
    if not h5py.is_hdf5(path):
        raise SessionFormatError(
            f"{path} is not an HDF5 file, so not a KneeGUI session (if it is an .xdf recording, "
            "convert it with `kneegui import-xdf`)")
    try:
        file = h5py.File(path, "r", locking=False) if live else h5py.File(path, "r")
    except OSError as exc:
        text = str(exc).lower()
        if "truncated file" in text:
            raise SessionFormatError(
                f"{path} is truncated: the file is shorter than its HDF5 header says (an "
                "interrupted copy or download, or a full disk while it was copied); copy it "
                f"again from its source ({exc})") from exc
        if "unable to lock file" in text or "errno = 11" in text:
            raise SessionFormatError(
                f"{path} is being recorded right now (the writer holds its lock); stop the "
                "recording first, or open it with live=True for a best-effort look") from exc
        raise SessionFormatError(
            f"{path} is a damaged HDF5 file and cannot be opened ({exc}); "
            "try `h5clear -s` or recover it with the HDF5 tools") from exc
    try:
        fmt = _attr(file, "format", None)
        if fmt != layout.FORMAT_NAME:
            raise SessionFormatError(
                f"{path} is an HDF5 file but not a KneeGUI session (root attribute 'format' is "
                f"{fmt!r}, expected {layout.FORMAT_NAME!r})")
        version = str(_attr(file, "format_version", ""))
        try:
            major = int(version.split(".")[0])
        except ValueError:
            major = -1
        if major not in layout.SUPPORTED_MAJOR:
            raise SessionFormatError(
                f"{path} uses session format version {version!r}, which this KneeGUI "
                f"cannot read; update KneeGUI")
        return Session(path, file)
    except SessionFormatError:
        file.close()
        raise
    except (OSError, KeyError, RuntimeError) as exc:
        file.close()
        raise SessionFormatError(f"{path} is damaged and cannot be read ({exc})") from exc
