"""Export a session to CSV: one file per stream (time column + one column per channel),
plus ``events.csv``, ``predictions.csv`` and one file per derived series.

Streams are read in blocks, so a long recording does not have to fit in memory.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

import numpy as np

from kneegui.recording.layout import sanitize_name
from kneegui.recording.naming import short_name_part
from kneegui.recording.reader import Session

TIME_COLUMN = "time_s"
_BLOCK = 100_000


def channel_columns(labels: Sequence[str], n: int) -> list[str]:
    """Unique, non-empty column names for ``n`` channels (``ch1``... where a label is missing)."""
    columns: list[str] = []
    for i in range(n):
        label = labels[i] if i < len(labels) and labels[i] else f"ch{i + 1}"
        base, k = label, 2
        while label in columns or label == TIME_COLUMN:
            label = f"{base}_{k}"
            k += 1
        columns.append(label)
    return columns


def _write_rows(path: Path, header: list[str],
                blocks: Iterable[tuple[np.ndarray, np.ndarray]]) -> int:
    """Write ``time`` + values rows; times with 9 decimals, numbers with full precision."""
    rows = 0
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(header)
        for values, times in blocks:
            if values.dtype.kind == "f":
                fmt = "%.9g" if values.dtype.itemsize <= 4 else "%.17g"
                text = np.char.mod(fmt, values.astype(np.float64))
            else:
                text = values.astype(str)
            stamps = np.char.mod("%.9f", times)
            writer.writerows(np.column_stack([stamps, text]).tolist())
            rows += len(times)
    return rows


def export_csv(session: Session, out_dir: str | Path,
               progress: Callable[[str], None] | None = None) -> list[Path]:
    """Write the CSV files into ``out_dir`` (created); refuses to overwrite existing files."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    plan: list[tuple[Path, Callable[[Path], int]]] = []
    for name, stream in session.streams.items():
        header = [TIME_COLUMN, *channel_columns(stream.channel_labels, stream.channel_count)]

        def blocks(s=stream):
            for start in range(0, s.length, _BLOCK):
                data, ts = s.read(start, start + _BLOCK)
                yield data, ts

        plan.append((out / f"{short_name_part(name)}.csv",
                     lambda p, h=header, b=blocks: _write_rows(p, h, b())))
    for path, series in session.derived.items():
        header = [TIME_COLUMN, *channel_columns(series.attrs.get("channel_labels", ()),
                                                series.data.shape[1])]
        fname = short_name_part(
            "derived_" + "_".join(sanitize_name(p) for p in path.split("/"))) + ".csv"
        plan.append((out / fname, lambda p, h=header, s=series:
                     _write_rows(p, h, [(s.data, s.timestamps)])))
    pred = session.predictions
    if pred is not None:
        header = [TIME_COLUMN, "model_id", *[f"h{h:g}ms" for h in pred.horizons_ms]]
        values = np.column_stack([pred.model_id.astype(str),
                                  np.char.mod("%.6g", pred.values.astype(np.float64))]) \
            if len(pred.timestamps) else np.zeros((0, len(header) - 1), dtype=str)
        plan.append((out / "predictions.csv",
                     lambda p, h=header, v=values: _write_rows(p, h, [(v, pred.timestamps)])))
    ev = session.events
    plan.append((out / "events.csv", lambda p: _write_rows(
        p, [TIME_COLUMN, "label", "origin"],
        [(np.column_stack([ev.label.astype(str), ev.origin.astype(str)])
          if len(ev) else np.zeros((0, 2), dtype=str), ev.timestamp)])))
    existing = [str(p) for p, _ in plan if p.exists()]
    if existing:
        raise FileExistsError(
            f"{len(existing)} CSV file(s) already exist in {out} (e.g. {existing[0]}); "
            "export into an empty directory, nothing was overwritten")
    written = []
    for path, write in plan:
        write(path)
        written.append(path)
        if progress is not None:
            progress(path.name)
    return written
