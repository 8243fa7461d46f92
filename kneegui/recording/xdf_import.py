"""Convert an XDF file (LabRecorder) into a KneeGUI session, reading the file once.

The file is read by :mod:`kneegui.recording.xdf_reader` (strict, reports damage) and clock-
synchronised with pyxdf's algorithm (clock resets handled, no dejitter). Each XDF stream becomes
``/streams/<name>``: ``timestamps`` are the synchronised times, ``timestamps_raw`` the times
stored in the file, ``clock_measurements`` and ``clock_offsets`` the file's (time, offset)
measurements, and the stream header is kept as ``info_xml``. Streams without samples are kept.
Every sample of a string (marker) stream also becomes an event (origin ``xdf:<stream name>``).
``session_start_lsl`` is the earliest time in the file (first sample or clock measurement, on
the recording machine's clock): XDF stores the start date but not the LSL time it belongs to.
A damaged or truncated file is imported as far as it is readable: ``complete`` is False and
an event (origin ``xdf``) says what was lost and where.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

import kneegui
from kneegui.recording import layout
from kneegui.recording.naming import resolve_session_path
from kneegui.recording.storage import SessionStorage, set_attrs
from kneegui.recording.streaminfo import StreamSpec, channels_from_xml, stream_attrs
from kneegui.recording.xdf_reader import (
    Damage,
    SyncedStream,
    XdfFile,
    XdfFormatError,
    read_xdf,
    synchronize,
)

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


@dataclass
class ImportReport:
    """What an import found: per-stream summaries and the problems (empty when complete)."""

    path: Path
    streams: list[ImportedStream]
    problems: list[str] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        return not self.problems


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


def _start_time(header: dict | None) -> str:
    info = (header or {}).get("info")
    raw = _first(info if isinstance(info, dict) else {}, "datetime")
    if not raw:
        return ""
    for fmt in ("%Y-%m-%dT%H:%M:%S%z", "%Y-%m-%dT%H:%M:%S.%f%z"):
        try:
            when = dt.datetime.strptime(raw, fmt)
        except ValueError:
            continue
        return when.astimezone(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    return raw


def _earliest_time(synced: dict[int, SyncedStream]) -> float:
    """Earliest time in the file on the recording machine's clock (NaN if it has none)."""
    times = [float(s.timestamps[0]) for s in synced.values() if len(s.timestamps)]
    times += [float(np.min(_local_clock_times(s.stream))) for s in synced.values()
              if s.stream.clock_times]
    times = [t for t in times if math.isfinite(t)]
    return min(times) if times else float("nan")


def _local_clock_times(stream: Any) -> np.ndarray:
    """Clock-offset collection times on the recording machine's clock.

    XDF stores them on the sender's clock (LabRecorder writes ``now - offset``); adding the
    offset gives the local time the measurement was taken.
    """
    return (np.asarray(stream.clock_times, dtype=np.float64)
            + np.asarray(stream.clock_values, dtype=np.float64))


def _time_at(synced: dict[int, SyncedStream], counts: dict[int, int]) -> tuple[float, str]:
    """(time, description) of the last sample read before a damaged range."""
    best, name = -math.inf, ""
    for sid, n in counts.items():
        s = synced.get(sid)
        if s is not None and 0 < n <= len(s.timestamps) and s.timestamps[n - 1] > best:
            best, name = float(s.timestamps[n - 1]), s.stream.name
    return best, name


def _damage_events(xdf: XdfFile, synced: dict[int, SyncedStream]) -> list[tuple[float, str, float]]:
    """(time, label, duration) events describing every loss found in the file."""
    events: list[tuple[float, str, float]] = []
    for d in xdf.damage:
        events.append(_describe_damage(xdf, synced, d))
    for s in synced.values():
        stream, n = s.stream, len(s.timestamps)
        last = f", the last at {s.timestamps[-1]:.3f} s" if n else ""
        expected = stream.footer_count
        t = float(s.timestamps[-1]) if n else _earliest_time(synced)
        if stream.footer is None:
            events.append((t, f"XDF import: stream {stream.name!r} has no footer (the recording "
                              f"was not stopped cleanly, or the file was cut): {n} samples "
                              f"read{last}; anything after that is missing", 0.0))
        elif expected is not None and n < expected:
            events.append((t, f"XDF import: stream {stream.name!r}: {n} of {expected} samples "
                              f"(footer) could be read, {expected - n} lost", 0.0))
    return events


def _describe_damage(xdf: XdfFile, synced: dict[int, SyncedStream], d: Damage):
    t, before = _time_at(synced, d.counts_before)
    where = f"bytes {d.start}-{d.end} of {xdf.size}"
    if d.truncated:
        text = (f"XDF import: the file ends inside a chunk at byte {d.start} of {xdf.size} (it "
                f"was cut off: {d.reason}); nothing after that can be read")
    else:
        text = f"XDF import: {where} are unreadable ({d.reason}); reading resumed after them"
    losses, duration = [], 0.0
    for sid, s in synced.items():
        n0 = d.counts_before.get(sid, 0)
        if 0 < n0 < len(s.timestamps):
            step = float(s.timestamps[n0] - s.timestamps[n0 - 1])
            rate = s.stream.nominal_srate
            if rate > 0 and step * rate > 1.5:
                losses.append(f"about {round(step * rate) - 1} samples of {s.stream.name!r} "
                              f"({step:.3f} s)")
                duration = max(duration, step)
    if d.stream_id is not None and d.lost_samples is not None and d.stream_id in xdf.streams:
        losses.insert(0, f"one chunk of {d.lost_samples} samples of "
                         f"{xdf.streams[d.stream_id].name!r}")
    if losses:
        text += "; lost: " + ", ".join(dict.fromkeys(losses))
    if before:
        text += f" (after {before} at {t:.3f} s)"
    if not math.isfinite(t):
        t = _earliest_time(synced)
    return (t if math.isfinite(t) else 0.0), text, duration


def import_xdf(
    xdf_path: str | Path,
    out: str | Path,
    subject_id: str = "",
    progress: Callable[[int, int], None] | None = None,
) -> tuple[Path, list[ImportedStream]]:
    """Write a session from ``xdf_path`` to ``out`` (file or directory; never overwrites).

    Returns the session path and a summary per stream (see :func:`import_xdf_report` for the
    problems found). ``progress(done, total)`` is called after each stream.
    """
    report = import_xdf_report(xdf_path, out, subject_id, progress)
    return report.path, report.streams


def import_xdf_report(
    xdf_path: str | Path,
    out: str | Path,
    subject_id: str = "",
    progress: Callable[[int, int], None] | None = None,
) -> ImportReport:
    """Like :func:`import_xdf`; the report also lists what was lost (``complete`` False)."""
    xdf_path = Path(xdf_path)
    if not xdf_path.is_file():
        raise XdfImportError(f"{xdf_path} does not exist or is not a file")
    try:
        xdf = read_xdf(xdf_path)
        synced = synchronize(xdf)
    except XdfFormatError as exc:
        raise XdfImportError(f"{exc}; is it a LabRecorder .xdf file?") from exc
    except Exception as exc:  # noqa: BLE001 - clock sync on damaged data must not traceback
        raise XdfImportError(f"{xdf_path} could not be converted ({type(exc).__name__}: "
                             f"{exc}); please report this with the file") from exc
    problems = _damage_events(xdf, synced)
    target = resolve_session_path(out, subject_id)
    storage = SessionStorage(target)
    summary: list[ImportedStream] = []
    taken: set[str] = set()
    events: list[tuple[float, str, str, float]] = []
    try:  # a failure (also a full disk while creating it) leaves no stub behind
        header_info = (xdf.header or {}).get("info")
        storage.open({
            "format": layout.FORMAT_NAME,
            "format_version": layout.FORMAT_VERSION,
            "subject_id": subject_id,
            "operator": "",
            "notes": f"imported from {xdf_path.name}",
            "app": "kneegui",
            "app_version": kneegui.__version__,
            "session_start_time": _start_time(xdf.header),
            "session_start_lsl": _earliest_time(synced),
            "session_start_lsl_source": "earliest time in the XDF file (first sample or clock "
                                        "measurement, recording machine's clock)",
            "session_end_time": "",
            "complete": False,
            "writer_error": "",
            "imported_from": xdf_path.name,
            "xdf_header": json.dumps(_plain(header_info if isinstance(header_info, dict) else {})),
            "xdf_damage": json.dumps([
                {"start_byte": d.start, "end_byte": d.end, "reason": d.reason,
                 "truncated": d.truncated, "stream_id": d.stream_id, "lost_samples": d.lost_samples}
                for d in xdf.damage]),
        })
        for i, sid in enumerate(sorted(synced)):
            imported, marker_events = _write_stream(storage, synced[sid], taken)
            summary.append(imported)
            events += marker_events
            if progress is not None:
                progress(i + 1, len(synced))
        events += [(t, label, "xdf", duration) for t, label, duration in problems]
        events.sort(key=lambda e: e[0])
        if events:
            ts, labels, origins, durations = zip(*events, strict=True)
            storage.sets[layout.EVENTS].append(
                timestamp=np.asarray(ts, dtype=np.float64),
                label=np.asarray(labels, dtype=object), origin=np.asarray(origins, dtype=object),
                duration=np.asarray(durations, dtype=np.float64))
        storage.close({"complete": not problems, "session_end_time": ""})
    except FileExistsError:  # someone else's file appeared under that name: not ours
        storage.abandon()
        raise
    except BaseException:
        storage.abandon()
        target.unlink(missing_ok=True)  # a half-imported copy is worthless; the XDF is intact
        raise
    return ImportReport(target, summary, [label for _, label, _ in problems])


def _write_stream(storage: SessionStorage, synced: SyncedStream, taken: set[str]
                  ) -> tuple[ImportedStream, list[tuple[float, str, str, float]]]:
    stream = synced.stream
    info = stream.info
    n_ch, fmt = stream.channel_count, stream.channel_format
    xml = info_xml(info)
    labels, units = channels_from_xml(xml)
    segments = [[0, len(synced.timestamps) - 1]] if len(synced.timestamps) else []
    spec = StreamSpec(
        name=stream.name, type=_first(info, "type"), channel_count=n_ch,
        nominal_srate=stream.nominal_srate, channel_format=fmt,
        source_id=_first(info, "source_id"), hostname=_first(info, "hostname"),
        uid=_first(info, "uid"), channel_labels=labels, channel_units=units, xml=xml,
        extra={
            "xdf_stream_id": int(stream.stream_id),
            "xdf_footer": json.dumps(_plain((stream.footer or {}).get("info", {}))),
            "xdf_segments": json.dumps(segments),
            "xdf_clock_segments": json.dumps([list(seg) for seg in synced.clock_segments]),
            "xdf_effective_srate": _effective_rate(synced.timestamps, stream.nominal_srate),
        },
    )
    key = layout.unique_name(layout.sanitize_name(spec.name), taken)
    taken.add(key)
    storage.create_stream(key, layout.storage_dtype(fmt), n_ch, stream_attrs(spec))
    ts = synced.timestamps
    markers: list[tuple[float, str, str, float]] = []
    if stream.is_string:
        data = np.empty((len(ts), n_ch), dtype=object)
        for row, sample in enumerate(synced.data):
            data[row] = [str(v) for v in sample]
        origin = f"xdf:{stream.name}"
        markers = [(float(t), " | ".join(row), origin, 0.0)
                   for t, row in zip(ts, data.tolist(), strict=True)]
    else:
        data = np.asarray(synced.data).reshape(len(ts), n_ch)
    storage.sets[f"{layout.STREAMS}/{key}"].append(
        data=data, timestamps=ts, **{layout.RAW_STAMPS: synced.raw_timestamps})
    clock = np.column_stack([_local_clock_times(stream),
                             np.asarray(stream.clock_values, dtype=np.float64)]).reshape(-1, 2)
    storage.sets[f"{layout.STREAMS}/{key}/{layout.CLOCK_OFFSETS}"].append(
        **{layout.CLOCK_OFFSETS: clock})
    storage.sets[f"{layout.STREAMS}/{key}/{layout.CLOCK_MEASUREMENTS}"].append(
        **{layout.CLOCK_MEASUREMENTS: np.column_stack([clock, np.full(len(clock), np.nan)])})
    storage.commit()
    group = storage.file[f"{layout.STREAMS}/{key}"]
    set_attrs(group["timestamps"], {
        "clock": "recording machine's LSL clock, synchronized by pyxdf's algorithm",
        "description": "file stamps + a robust line fit of the clock offsets per clock segment "
                       "(clock resets handled, no dejitter)"})
    set_attrs(group[layout.RAW_STAMPS], {"clock": "the sender's LSL clock",
                                         "description": "time stamps as stored in the XDF file"})
    set_attrs(group[layout.CLOCK_OFFSETS], {
        "description": "XDF import: the file's clock-offset measurements (pyxdf fits a line "
                       "through them per clock segment; the correction applied to each sample "
                       "is timestamps - timestamps_raw)"})
    set_attrs(group[layout.CLOCK_MEASUREMENTS], {
        "description": "XDF import: the file's clock-offset measurements; time = the file's "
                       "collection time (sender clock) + offset = the recording machine's "
                       "clock; XDF does not store the round trip (NaN)"})
    return ImportedStream(key, len(ts), n_ch, fmt, len(clock)), markers


def _effective_rate(ts: np.ndarray, nominal: float) -> float:
    if nominal <= 0 or len(ts) < 2 or not ts[-1] > ts[0]:
        return 0.0
    return float((len(ts) - 1) / (ts[-1] - ts[0]))
