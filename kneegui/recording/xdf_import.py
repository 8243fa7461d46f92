"""Convert an XDF file (LabRecorder) into a KneeGUI session with pyxdf.

Each XDF stream becomes ``/streams/<name>``: ``timestamps`` are the clock-synchronized times
(pyxdf ``synchronize_clocks`` with clock-reset handling, no dejitter), ``timestamps_original``
the times stored in the file, ``clock_offsets`` the file's (time, offset) measurements, and the
stream header is kept as ``info_xml``. Streams without samples are kept (zero rows).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

import kneegui
from kneegui.recording import layout
from kneegui.recording.naming import resolve_session_path
from kneegui.recording.storage import SessionStorage, set_attrs
from kneegui.recording.streaminfo import StreamSpec, channels_from_xml, stream_attrs

_INFO_ORDER = ("name", "type", "channel_count", "channel_format", "source_id", "nominal_srate",
               "version", "created_at", "uid", "session_id", "hostname")


class XdfImportError(ValueError):
    """The XDF file cannot be read or converted."""


@dataclass(frozen=True)
class ImportedStream:
    """Summary of one imported stream."""

    name: str
    samples: int
    channels: int
    channel_format: str
    clock_offsets: int


def _first(info: dict, key: str, default: str = "") -> str:
    value = info.get(key)
    if isinstance(value, list):
        value = value[0] if value else default
    return default if value is None else str(value)


def _to_xml(parent: ET.Element, mapping: Any) -> None:
    """Rebuild XML children from pyxdf's dict-of-lists representation."""
    if not isinstance(mapping, dict):
        return
    for key, values in mapping.items():
        for value in values if isinstance(values, list) else [values]:
            child = ET.SubElement(parent, str(key))
            if isinstance(value, dict):
                _to_xml(child, value)
            elif value is not None:
                child.text = str(value)


def _plain(mapping: Any) -> Any:
    """pyxdf dict-of-lists -> plain JSON-able structure."""
    if isinstance(mapping, dict):
        return {k: _plain(v) for k, v in mapping.items()}
    if isinstance(mapping, list):
        return [_plain(v) for v in mapping]
    return mapping


def info_xml(info: dict) -> str:
    """The stream header as LSL ``<info>`` XML (standard fields first, then ``desc``)."""
    root = ET.Element("info")
    skip = {"desc", "stream_id", "effective_srate", "segments", "clock_segments"}
    keys = [k for k in _INFO_ORDER if k in info]
    keys += [k for k in info if k not in keys and k not in skip]
    for key in keys:
        ET.SubElement(root, key).text = _first(info, key)
    desc = ET.SubElement(root, "desc")
    desc_value = info.get("desc")
    if isinstance(desc_value, list) and desc_value and isinstance(desc_value[0], dict):
        _to_xml(desc, desc_value[0])
    return ET.tostring(root, encoding="unicode")


def _start_time(header: dict) -> str:
    raw = _first(header.get("info", {}), "datetime")
    if not raw:
        return ""
    try:
        when = dt.datetime.strptime(raw, "%Y-%m-%dT%H:%M:%S%z")
    except ValueError:
        return raw
    return when.astimezone(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _load(path: Path, synchronize: bool) -> tuple[list[dict], dict]:
    import pyxdf

    # pyxdf logs a warning per stream whose segments differ from its clock segments: harmless
    logging.getLogger("pyxdf.pyxdf").setLevel(logging.ERROR)
    return pyxdf.load_xdf(str(path), synchronize_clocks=synchronize, handle_clock_resets=True,
                          dejitter_timestamps=False)


def import_xdf(
    xdf_path: str | Path,
    out: str | Path,
    subject_id: str = "",
    progress: Callable[[int, int], None] | None = None,
) -> tuple[Path, list[ImportedStream]]:
    """Write a session from ``xdf_path`` to ``out`` (file or directory; never overwrites).

    Returns the session path and a summary per stream. ``progress(done, total)`` is called after
    each stream.
    """
    xdf_path = Path(xdf_path)
    if not xdf_path.is_file():
        raise XdfImportError(f"{xdf_path} does not exist or is not a file")
    try:
        synced, header = _load(xdf_path, synchronize=True)
        raw, _ = _load(xdf_path, synchronize=False)
    except Exception as exc:  # noqa: BLE001 - pyxdf raises many kinds on foreign/damaged input
        raise XdfImportError(f"{xdf_path} could not be read as XDF ({type(exc).__name__}: "
                             f"{exc}); is it a LabRecorder .xdf file?") from exc
    raw_by_id = {s["info"]["stream_id"]: s for s in raw}
    target = resolve_session_path(out, subject_id)
    storage = SessionStorage(target)
    summary: list[ImportedStream] = []
    streams = sorted(synced, key=lambda s: s["info"]["stream_id"])
    taken: set[str] = set()
    try:  # a failure (also a full disk while creating it) leaves no stub behind
        storage.open({
            "format": layout.FORMAT_NAME,
            "format_version": layout.FORMAT_VERSION,
            "subject_id": subject_id,
            "operator": "",
            "notes": f"imported from {xdf_path.name}",
            "app": "kneegui",
            "app_version": kneegui.__version__,
            "session_start_time": _start_time(header),
            "session_start_lsl": 0.0,
            "session_end_time": "",
            "complete": False,
            "writer_error": "",
            "imported_from": xdf_path.name,
            "xdf_header": json.dumps(_plain(header.get("info", {}))),
        })
        for i, stream in enumerate(streams):
            summary.append(_write_stream(storage, stream, raw_by_id, taken))
            if progress is not None:
                progress(i + 1, len(streams))
        storage.close({"complete": True, "session_end_time": ""})
    except FileExistsError:  # someone else's file appeared under that name: not ours
        storage.abandon()
        raise
    except BaseException:
        storage.abandon()
        target.unlink(missing_ok=True)  # a half-imported copy is worthless; the XDF is intact
        raise
    return target, summary


def _write_stream(storage: SessionStorage, stream: dict, raw_by_id: dict,
                  taken: set[str]) -> ImportedStream:
    info = stream["info"]
    n_ch = int(_first(info, "channel_count", "1"))
    fmt = _first(info, "channel_format", "float32")
    xml = info_xml(info)
    labels, units = channels_from_xml(xml)
    spec = StreamSpec(
        name=_first(info, "name"), type=_first(info, "type"), channel_count=n_ch,
        nominal_srate=float(_first(info, "nominal_srate", "0") or 0),
        channel_format=fmt, source_id=_first(info, "source_id"),
        hostname=_first(info, "hostname"), uid=_first(info, "uid"),
        channel_labels=labels, channel_units=units, xml=xml,
        extra={
            "xdf_stream_id": int(info["stream_id"]),
            "xdf_footer": json.dumps(_plain(stream.get("footer", {}))),
            "xdf_segments": json.dumps([list(map(int, s)) for s in info.get("segments", [])]),
            "xdf_clock_segments": json.dumps(
                [list(map(int, s)) for s in info.get("clock_segments", [])]),
            "xdf_effective_srate": float(info.get("effective_srate", 0.0) or 0.0),
        },
    )
    key = layout.unique_name(layout.sanitize_name(spec.name), taken)
    taken.add(key)
    dtype = layout.storage_dtype(fmt)
    storage.create_stream(key, dtype, n_ch, stream_attrs(spec))
    ts = np.asarray(stream["time_stamps"], dtype=np.float64).reshape(-1)
    if layout.is_string_format(fmt):
        data = np.empty((len(ts), n_ch), dtype=object)
        for row, sample in enumerate(stream["time_series"]):
            data[row] = [str(v) for v in sample]
    else:
        data = np.asarray(stream["time_series"]).reshape(len(ts), n_ch)
    storage.sets[f"{layout.STREAMS}/{key}"].append(data=data, timestamps=ts)
    clock = np.column_stack([np.asarray(stream["clock_times"], dtype=np.float64),
                             np.asarray(stream["clock_values"], dtype=np.float64)])
    storage.sets[f"{layout.STREAMS}/{key}/clock_offsets"].append(
        clock_offsets=clock.reshape(-1, 2))
    storage.commit()
    group = storage.file[f"{layout.STREAMS}/{key}"]
    original = np.asarray(raw_by_id[info["stream_id"]]["time_stamps"], dtype=np.float64)
    group.create_dataset("timestamps_original", data=original.reshape(-1))
    group["timestamps_original"].attrs["unit"] = "s"
    group["timestamps"].attrs["clock"] = (
        "synchronized by pyxdf (clock offsets applied, clock resets handled, no dejitter)")
    set_attrs(group, {})
    return ImportedStream(key, len(ts), n_ch, fmt, len(clock))
