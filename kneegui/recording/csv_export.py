"""Export a session to CSV: one file per stream, per derived series, ``predictions.csv`` and
``events.csv``, each with a JSON sidecar (``<file>.json``) describing its columns and source.

Columns: ``time [s]`` (seconds since the session start), ``lsl_time [s]`` (the recording
machine's LSL clock, as stored in the session), ``utc_time`` (ISO 8601 UTC wall clock, from the
session start time; omitted when the session has none), then one column per channel named
``<label> [<unit>]``. Values are printed at their stored precision: the shortest text that reads
back to the same float32/float64 (``-0.0098``, not ``-0.00980000012``). Streams are written in
blocks, so a long recording does not have to fit in memory.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from kneegui.recording.layout import sanitize_name
from kneegui.recording.naming import short_name_part
from kneegui.recording.reader import Session

TIME_COLUMN = "time [s]"
LSL_COLUMN = "lsl_time [s]"
UTC_COLUMN = "utc_time"
_BLOCK = 100_000


def column_name(label: str, unit: str) -> str:
    """``label [unit]`` (just the label when the unit is unknown)."""
    return f"{label} [{unit}]" if unit else label


def channel_columns(labels: Sequence[str], n: int, units: Sequence[str] = ()) -> list[str]:
    """Unique column names for ``n`` channels (``ch1``... where a label is missing)."""
    columns: list[str] = []
    reserved = {TIME_COLUMN, LSL_COLUMN, UTC_COLUMN}
    for i in range(n):
        label = labels[i] if i < len(labels) and labels[i] else f"ch{i + 1}"
        unit = units[i] if i < len(units) else ""
        base, k = label, 2
        name = column_name(label, unit)
        while name in columns or name in reserved:
            label = f"{base}_{k}"
            name = column_name(label, unit)
            k += 1
        columns.append(name)
    return columns


def format_values(values: np.ndarray) -> np.ndarray:
    """Text of every value at its stored precision (shortest round-trip form for floats)."""
    return np.asarray(values).astype(str)


class _Clock:
    """LSL seconds -> the three time columns of a row."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self.start = session.start_lsl
        self.has_utc = session.start_datetime is not None and self.start is not None

    @property
    def header(self) -> list[str]:
        return [TIME_COLUMN, LSL_COLUMN] + ([UTC_COLUMN] if self.has_utc else [])

    def columns(self, t: np.ndarray) -> list[np.ndarray]:
        rel = t - (self.start if self.start is not None else 0.0)
        out = [np.char.mod("%.9f", rel), np.char.mod("%.9f", t)]
        if self.has_utc:
            utc = self.session.utc_datetime64(t)
            text = np.char.add(np.datetime_as_string(utc, unit="us"), "Z")
            out.append(np.where(np.isnat(utc), "", text))  # a NaN time stamp: no wall clock
        return out

    def describe(self) -> list[dict[str, Any]]:
        start = self.start if self.start is not None else 0.0
        cols = [
            {"name": TIME_COLUMN, "unit": "s",
             "description": f"seconds since the session start (LSL time {start:.6f})"},
            {"name": LSL_COLUMN, "unit": "s",
             "description": "time on the recording machine's LSL clock (pylsl.local_clock), "
                            "clock-corrected, as stored in the session"},
        ]
        if self.has_utc:
            cols.append({"name": UTC_COLUMN, "unit": "ISO 8601 UTC",
                         "description": "wall-clock time: session_start_time + time [s] "
                                        "(microseconds; as exact as the clock mapping)"})
        return cols


def _write_rows(path: Path, header: list[str], clock: _Clock,
                blocks: Iterable[tuple[np.ndarray, np.ndarray]]) -> int:
    rows = 0
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(header)
        for values, times in blocks:
            if not len(times):
                continue
            text = format_values(values)
            columns = clock.columns(np.asarray(times, dtype=np.float64))
            writer.writerows(np.column_stack([*columns, text]).tolist())
            rows += len(times)
    return rows


def _sidecar(path: Path, content: dict[str, Any]) -> None:
    path.with_suffix(".json").write_text(json.dumps(content, indent=2, default=str) + "\n",
                                         encoding="utf-8")


def _session_info(session: Session) -> dict[str, Any]:
    a = session.attrs
    return {
        "file": session.path.name, "format_version": session.format_version,
        "subject_id": session.subject_id, "operator": session.operator,
        "session_start_time": session.start_time, "session_start_lsl": session.start_lsl,
        "complete": session.complete, "app_version": session.app_version,
        "imported_from": a.get("imported_from", ""),
    }


def _channels(labels: Sequence[str], units: Sequence[str], columns: list[str]) -> list[dict]:
    return [{"name": col, "label": labels[i] if i < len(labels) else "",
             "unit": units[i] if i < len(units) else "", "channel": i + 1}
            for i, col in enumerate(columns)]


def export_csv(session: Session, out_dir: str | Path,
               progress: Callable[[str], None] | None = None) -> list[Path]:
    """Write the CSV files (+ JSON sidecars) into ``out_dir`` (created); never overwrites."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    clock = _Clock(session)
    info = _session_info(session)
    plan: list[tuple[Path, Callable[[Path], int]]] = []
    for name, stream in session.streams.items():
        columns = channel_columns(stream.channel_labels, stream.channel_count,
                                  stream.channel_units)
        header = [*clock.header, *columns]

        def write(p, s=stream, h=header, cols=columns) -> int:
            def blocks():
                for start in range(0, s.length, _BLOCK):
                    yield s.read(start, start + _BLOCK)

            n = _write_rows(p, h, clock, blocks())
            a = s.attrs
            _sidecar(p, {
                "kind": "stream", "rows": n, "session": info,
                "stream": {"hdf5_name": s.name, "name": a.get("name", s.name), "type": s.type,
                           "source_id": s.source_id, "hostname": a.get("hostname", ""),
                           "nominal_srate": s.nominal_srate, "channel_format": s.channel_format,
                           "channel_count": s.channel_count, "info_xml": s.info_xml},
                "columns": clock.describe() + _channels(s.channel_labels, s.channel_units,
                                                        cols),
            })
            return n

        plan.append((out / f"{short_name_part(name)}.csv", write))
    for path, series in session.derived.items():
        labels = series.attrs.get("channel_labels", ())
        units = series.attrs.get("channel_units", ())
        columns = channel_columns(labels, series.data.shape[1], units)
        fname = short_name_part(
            "derived_" + "_".join(sanitize_name(p) for p in path.split("/"))) + ".csv"

        def write_derived(p, s=series, cols=columns, lab=labels, un=units) -> int:
            n = _write_rows(p, [*clock.header, *cols], clock, [(s.data, s.timestamps)])
            attrs = {k: (v.tolist() if isinstance(v, np.ndarray) else v)
                     for k, v in s.attrs.items()}
            _sidecar(p, {"kind": "derived", "rows": n, "session": info, "series": s.path,
                         "attributes": attrs,
                         "columns": clock.describe() + _channels(lab, un, cols)})
            return n

        plan.append((out / fname, write_derived))
    pred = session.predictions
    if pred is not None:
        horizons = [f"h{h:g}ms [deg]" for h in pred.horizons_ms]

        def write_predictions(p) -> int:
            values = np.column_stack([pred.model_id.astype(str), format_values(pred.values)]) \
                if len(pred.timestamps) else np.zeros((0, len(horizons) + 1), dtype=str)
            n = _write_rows(p, [*clock.header, "model_id", *horizons], clock,
                            [(values, pred.timestamps)])
            _sidecar(p, {"kind": "predictions", "rows": n, "session": info,
                         "horizons_ms": pred.horizons_ms.tolist(),
                         "columns": clock.describe() + [
                             {"name": "model_id", "description": "model that made the row"}]
                         + [{"name": h, "unit": "deg", "description":
                             f"knee angle expected {ms:g} ms after the row's time"}
                            for h, ms in zip(horizons, pred.horizons_ms, strict=True)]})
            return n

        plan.append((out / "predictions.csv", write_predictions))
    ev = session.events

    def write_events(p) -> int:
        values = np.column_stack([np.char.mod("%.9f", ev.duration), ev.label.astype(str),
                                  ev.origin.astype(str)]) if len(ev) \
            else np.zeros((0, 3), dtype=str)
        n = _write_rows(p, [*clock.header, "duration [s]", "label", "origin"], clock,
                        [(values, ev.timestamp)])
        _sidecar(p, {"kind": "events", "rows": n, "session": info,
                     "columns": clock.describe() + [
                         {"name": "duration [s]", "unit": "s",
                          "description": "0 for an instant, else the span the event covers"},
                         {"name": "label", "description": "what happened"},
                         {"name": "origin", "description": "operator | acquisition | recorder "
                          "| calibration | model | xdf | xdf:<marker stream>"}]})
        return n

    plan.append((out / "events.csv", write_events))
    existing = [str(p) for p, _ in plan if p.exists() or p.with_suffix(".json").exists()]
    if existing:
        raise FileExistsError(
            f"{len(existing)} CSV file(s) already exist in {out} (e.g. {existing[0]}); "
            "export into an empty directory, nothing was overwritten")
    written = []
    for path, write in plan:
        write(path)
        written += [path, path.with_suffix(".json")]
        if progress is not None:
            progress(path.name)
    return written
