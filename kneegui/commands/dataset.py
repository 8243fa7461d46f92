"""`kneegui dataset info DIR`: what a folder of UCI "EMG dataset in Lower Limb" TXT files holds.

Lists every recording found by file name (``<number><N|A><mar|pie|sen>.txt``, any depth): group,
exercise, duration, header style, angle sign/offset applied, quirk flags, duplicates and the gait
cycles the segmenter finds. Malformed files are listed with the reason (exit code 1).
Exit codes: 0 ok, 1 some files malformed, 2 folder missing or no files found.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "dataset",
        help="inspect a folder of UCI Lower Limb EMG TXT files",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = p.add_subparsers(dest="dataset_command", metavar="ACTION", required=True)
    info = sub.add_parser("info", help="list recordings, flags and gait cycles found")
    info.add_argument("directory", help="folder holding the TXT files (searched recursively)")
    info.add_argument("--json", action="store_true", help="print JSON instead of a table")
    info.add_argument(
        "--exercise",
        action="append",
        choices=("mar", "pie", "sen"),
        help="only this exercise (repeatable; default all)",
    )
    info.add_argument(
        "--group",
        action="append",
        choices=("N", "A"),
        help="only this group (repeatable; default both)",
    )
    info.set_defaults(run=run)


def _describe(rec, segmenter_cls) -> dict:
    cycles = segmenter_cls(rec.fs).segment(rec.angle) if rec.exercise == "mar" else None
    return {
        "name": rec.name,
        "path": str(rec.path),
        "subject": rec.subject,
        "group": rec.group,
        "exercise": rec.exercise,
        "samples": rec.n_samples,
        "duration_s": round(rec.duration_s, 3),
        "fs": rec.fs,
        "header_style": rec.header_style,
        "angle_native_fs": rec.angle_native_fs,
        "angle_sign": rec.angle_sign,
        "angle_offset_deg": rec.angle_offset_deg,
        "angle_range_deg": [round(float(rec.angle.min()), 1), round(float(rec.angle.max()), 1)],
        "flags": sorted(rec.flags),
        "duplicate_of": rec.duplicate_of,
        "gait_cycles": None if cycles is None else len(cycles),
        "gait_cycle_median_s": (
            round(float(sorted(c.duration for c in cycles)[len(cycles) // 2]), 3)
            if cycles
            else None
        ),
    }


def _table(rows: list[dict], errors: list[dict]) -> str:
    head = (
        f"{'name':8s} {'grp':3s} {'ex':3s} {'dur_s':>6s} {'style':5s} {'sign':>4s} "
        f"{'cycles':>6s} {'dup_of':7s} flags"
    )
    lines = [head]
    for r in rows:
        cycles = "-" if r["gait_cycles"] is None else str(r["gait_cycles"])
        lines.append(
            f"{r['name']:8s} {r['group']:3s} {r['exercise']:3s} {r['duration_s']:6.1f} "
            f"{r['header_style']:5s} {r['angle_sign']:+4d} {cycles:>6s} "
            f"{r['duplicate_of'] or '':7s} {','.join(r['flags'])}"
        )
    lines += [f"MALFORMED {e['path']}: {e['error']}" for e in errors]
    total = sum(r["duration_s"] for r in rows if not r["duplicate_of"])
    lines.append(
        f"{len(rows)} recordings ({sum(1 for r in rows if r['duplicate_of'])} duplicates), "
        f"{total / 60:.1f} min without duplicates, {len(errors)} malformed"
    )
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from kneegui.datasets.uci import UciFormatError, find_uci_files, mark_duplicates, read_uci_file
    from kneegui.dsp.gait import GaitSegmenter

    try:
        paths = find_uci_files(args.directory, args.exercise, args.group)
    except FileNotFoundError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if not paths:
        print(
            f"error: no UCI TXT files (named like 3Amar.txt) under {args.directory}",
            file=sys.stderr,
        )
        return 2
    recordings, errors = [], []
    for path in tqdm(paths, desc="reading", unit="file", file=sys.stderr, leave=False):
        try:
            recordings.append(read_uci_file(path))
        except UciFormatError as exc:
            errors.append({"path": str(path), "error": str(exc)})
    rows = [_describe(rec, GaitSegmenter) for rec in mark_duplicates(recordings)]
    if args.json:
        print(
            json.dumps(
                {"directory": str(args.directory), "recordings": rows, "malformed": errors},
                indent=2,
            )
        )
    else:
        print(_table(rows, errors))
    return 1 if errors else 0
