"""`kneegui dataset info DATA`: what a dataset holds and whether a model can use it.

DATA is a folder of recordings (UCI text files named like 3Amar.txt, KneeGUI sessions .h5, XDF
files .xdf; any depth) or a manifest (.toml / .csv; docs/datasets.md). For every recording:
source, subject, group, activity, duration, the EMG stream (channels, rate, unit) and the model
inputs its channels carry, the knee angle, the rows on the model time base, holes, walking found
by the gait detector (gait cycles), UCI quirk flags and duplicates. With --muscles or --model
every recording is checked against those EMG inputs (and the model's feature band against the
EMG rate); a recording that lacks one is listed with its channels and how to map them.
Exit codes: 0 ok, 1 some files unusable (listed with the reason), 2 dataset missing or empty.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "dataset",
        help="inspect a dataset (folder or manifest of UCI files, sessions, XDF files)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = p.add_subparsers(dest="dataset_command", metavar="ACTION", required=True)
    info = sub.add_parser("info", help="list recordings, channels, walking and problems found")
    info.add_argument("directory", metavar="DATA",
                      help="a folder (searched recursively) or a manifest .toml / .csv")
    info.add_argument("--json", action="store_true", help="print JSON instead of a table")
    info.add_argument("--activity", "--exercise", dest="activity", action="append",
                      help="only this activity (repeatable; 'walk' = walking and unlabelled; "
                      "default all)")
    info.add_argument("--group", action="append", help="only this group (repeatable; default "
                      "all)")
    check = info.add_mutually_exclusive_group()
    check.add_argument("--muscles", help="check that every recording has these EMG inputs "
                       "(comma list, e.g. RF,BF,VM,ST)")
    check.add_argument("--model", help="check every recording against this model's channel "
                       "layout and feature band (stem/file path)")
    info.set_defaults(run=run)


def _signal(sig) -> dict | None:
    if sig is None:
        return None
    return {"stream": sig.stream, "channels": sig.n_channels, "labels": list(sig.labels),
            "unit": sig.unit(), "rate_hz": sig.rate}


def _uci_fields(rec) -> dict:
    """The UCI reader's notes on a text file (header style, angle sign...)."""
    from kneegui.datasets.uci import read_uci_file

    uci = read_uci_file(rec.path)
    return {"header_style": uci.header_style, "angle_native_fs": uci.angle_native_fs,
            "angle_sign": uci.angle_sign, "angle_offset_deg": uci.angle_offset_deg}


def _describe(rec, muscles, dsp_settings, duplicate_of) -> dict:
    import numpy as np

    from kneegui.labdata import emg_names, require_angle, to_model_rate, usable_pieces
    from kneegui.model.layout import emg_rate_problem

    row: dict[str, Any] = {
        "name": rec.name, "path": str(rec.path), "source": rec.source, "subject": rec.subject,
        "group": rec.group, "activity": rec.activity,
        "duration_s": round(rec.duration_s + (1.0 / rec.emg.rate if rec.one_clock and rec.emg
                                              else 0.0), 3),
        "emg": _signal(rec.emg), "emg_inputs": list(emg_names(rec)),
        "angle": _signal(rec.angle), "kinematics": _signal(rec.kinematics),
        "force": _signal(rec.force), "flags": sorted(rec.flags), "notes": list(rec.notes),
        "duplicate_of": duplicate_of, "problems": [],
    }
    if rec.source == "uci":
        row.update(_uci_fields(rec))
    if rec.emg is not None:
        problem = emg_rate_problem(rec.emg.rate, dsp_settings)
        if problem:
            row["problems"].append(problem)
    if rec.angle is None:
        try:
            require_angle(rec)
        except ValueError as exc:
            row["problems"].append(str(exc))
    try:
        ms = to_model_rate(rec, muscles or None, emg=rec.emg is not None or bool(muscles))
    except ValueError as exc:
        row["problems"].append(str(exc))
        return row
    pieces, report = usable_pieces(ms)
    cycles = sorted(report.cycle_rows)
    row.update({
        "model_rows": report.rows, "hole_rows": report.hole_rows, "pieces": report.pieces,
        "walking_s": None if report.walking_rows is None else report.walking_rows / 100.0,
        "gait_cycles": report.gait_cycles,
        "gait_cycle_median_s": (round(float(np.median(cycles)) / ms.model_rate, 3)
                                if cycles else None),
    })
    return row


def _table(rows: list[dict], problems: list[dict], ignored: list[str], checked: str) -> str:
    head = (f"{'name':16s} {'src':7s} {'subject':8s} {'grp':4s} {'activity':8s} {'dur_s':>6s} "
            f"{'EMG':16s} {'inputs':22s} {'walk_s':>6s} {'cycles':>6s} {'holes':>5s} notes")
    lines = [head]
    for r in rows:
        emg = r["emg"]
        emg_text = f"{emg['channels']}ch@{emg['rate_hz']:g}Hz" if emg else "-"
        walk = "-" if r.get("walking_s") is None else f"{r['walking_s']:.1f}"
        cycles = "-" if r.get("gait_cycles") is None else str(r["gait_cycles"])
        holes = str(r.get("hole_rows", "-"))
        notes = ",".join(r["flags"])
        if r["duplicate_of"]:
            notes = f"duplicate of {r['duplicate_of']} " + notes
        inputs = ",".join(r["emg_inputs"])
        lines.append(
            f"{r['name'][:16]:16s} {r['source']:7s} {r['subject'][:8]:8s} {r['group'][:4]:4s} "
            f"{r['activity'][:8]:8s} {r['duration_s']:6.1f} {emg_text:16s} {inputs[:22]:22s} "
            f"{walk:>6s} {cycles:>6s} {holes:>5s} {notes}")
    lines += [f"UNUSABLE {p['path']}: {p['error']}" for p in problems]
    if ignored:
        lines.append(f"(not recordings, ignored: {', '.join(ignored)})")
    if checked:
        lines.append(f"checked against {checked}")
    total = sum(r["duration_s"] for r in rows if not r["duplicate_of"])
    lines.append(
        f"{len(rows)} recordings ({sum(1 for r in rows if r['duplicate_of'])} duplicates), "
        f"{total / 60:.1f} min without duplicates, {len(problems)} malformed or unusable")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from kneegui.labdata import DatasetError, load_dataset, open_dataset

    try:
        spec = open_dataset(args.directory)
    except DatasetError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    muscles = [m.strip() for m in (args.muscles or "").split(",") if m.strip()]
    dsp_settings: dict = {}
    if args.model:
        from kneegui.model.io import ModelLoadError, read_card

        try:
            card = read_card(args.model)
        except (ModelLoadError, OSError) as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        muscles, dsp_settings = list(card.emg_inputs), dict(card.dsp_settings)
    muscles = muscles or list(spec.inputs)
    bar = tqdm(total=len(spec.entries), desc="reading", unit="file", file=sys.stderr,
               leave=False)
    loaded = load_dataset(spec, args.activity, args.group, drop_duplicates=False,
                          progress=lambda done, total, path: bar.update(1))
    dups, recordings = dict(loaded.duplicates), loaded.recordings
    rows, problems = [], [{"path": str(p), "error": msg} for p, msg in loaded.problems]
    for rec in tqdm(recordings, desc="analysing", unit="file", file=sys.stderr, leave=False):
        row = _describe(rec, muscles, dsp_settings, dups.get(rec.name))
        rows.append(row)
        problems += [{"path": row["path"], "error": msg} for msg in row["problems"]]
    bar.close()
    if not rows and not problems:
        print(f"error: no recordings in {args.directory} match --activity / --group",
              file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps({"dataset": str(spec.source), "kind": spec.kind, "name": spec.name,
                          "inputs_checked": muscles, "recordings": rows, "malformed": problems,
                          "ignored": list(spec.ignored)}, indent=2))
    else:
        checked = ""
        if muscles:
            checked = f"the EMG inputs {', '.join(muscles)}" + (
                f" (model {args.model})" if args.model else "")
        print(_table(rows, problems, list(spec.ignored), checked))
    return 1 if problems else 0
