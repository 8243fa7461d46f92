"""`kneegui export`: write a recorded session as CSV, NWB or EMG-/Motion-BIDS.

csv:  one CSV per stream, derived series, predictions and events, with units in the header,
      session/LSL/UTC time columns and a JSON sidecar per file (--out DIR).
nwb:  one NWB file (pynwb): EMG in volts with an electrode/muscle table, knee angle in
      degrees, events, predictions, filtered EMG, subject and devices (--out FILE.nwb or DIR).
bids: an EMG-BIDS (BDF) + Motion-BIDS (knee angle) dataset; a new one, or new files in an
      existing dataset (--out DIR).
Nothing is ever overwritten. Exit codes: 0 written, 1 stopped by a signal or the disk failed,
2 bad arguments or unreadable session.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from pathlib import Path
from typing import Any

SEXES = ("M", "F", "O", "U")


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("export", help="export a recorded session to CSV, NWB or BIDS",
                              description=__doc__,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("session", type=Path, metavar="SESSION.h5")
    p.add_argument("--format", choices=("csv", "nwb", "bids"), default="csv",
                   help="output format (default csv)")
    p.add_argument("--out", type=Path, required=True, metavar="DIR_OR_FILE",
                   help="csv/bids: directory; nwb: a .nwb file or a directory")
    who = p.add_argument_group("subject (nwb, bids)")
    who.add_argument("--species", default="Homo sapiens", help="default Homo sapiens")
    who.add_argument("--sex", choices=SEXES, default="U", help="M, F, O or U (unknown)")
    who.add_argument("--age", type=float, metavar="YEARS", help="age in years")
    who.add_argument("--institution", default="", help="institution name")
    nwb = p.add_argument_group("nwb")
    nwb.add_argument("--lab", default="", help="lab name")
    nwb.add_argument("--experimenter", action="append", default=[], metavar="NAME",
                     help="experimenter (repeat for several; default: the session operator)")
    nwb.add_argument("--session-start", metavar="ISO8601",
                     help="start date-time for sessions without one (XDF imports), e.g. "
                          "2025-01-31T09:00:00Z")
    bids = p.add_argument_group("bids")
    bids.add_argument("--subject", default="", help="subject label (default: session subject)")
    bids.add_argument("--task", default="walking", help="task label (default walking)")
    bids.add_argument("--bids-session", default="", metavar="LABEL", help="ses-<LABEL>")
    bids.add_argument("--run", type=int, dest="bids_run", metavar="INDEX", help="run index")
    bids.add_argument("--dataset-name", default="KneeGUI recordings")
    bids.add_argument("--author", action="append", default=[], metavar="NAME",
                      help="dataset author (repeat for several)")
    bids.add_argument("--power-line", type=float, metavar="HZ",
                      help="mains frequency (default: the notch of the recorded EMG filters)")
    bids.add_argument("--emg-reference", default="n/a",
                      help="EMGReference, e.g. Bipolar for bipolar surface sensors")
    bids.add_argument("--placement", default="",
                      help="how electrodes were placed (e.g. SENIAM guidelines)")
    p.set_defaults(run=run)


def _fail(message: str, code: int = 2) -> int:
    print(f"kneegui export: {message}", file=sys.stderr)
    return code


def run(args: argparse.Namespace) -> int:
    from kneegui.recording import SessionFormatError, open_session

    if args.age is not None and not 0 <= args.age < 150:
        return _fail("--age must be in years, between 0 and 150")
    if args.bids_run is not None and args.bids_run < 0:
        return _fail("--run must be >= 0")
    if args.power_line is not None and args.power_line <= 0:
        return _fail("--power-line must be > 0 Hz (50 or 60)")
    start = None
    if args.session_start:
        from kneegui.recording.reader import parse_utc

        start = parse_utc(args.session_start)
        if start is None:
            return _fail(f"--session-start {args.session_start!r} is not an ISO 8601 "
                         "date-time (e.g. 2025-01-31T09:00:00Z)")
    try:
        session = open_session(args.session)
    except SessionFormatError as exc:
        return _fail(str(exc))
    try:
        return _export(session, args, start)
    except OSError as exc:
        return _fail(f"writing {args.out} failed ({exc.strerror or exc}); check the path, the "
                     "disk space and the permissions")


def _write(session: Any, args: argparse.Namespace,
           start: dt.datetime | None) -> tuple[int, list[Path], list[str]]:
    """(exit code, files written, warnings) of the chosen format."""
    from tqdm import tqdm

    if args.format == "csv":
        from kneegui.recording.csv_export import export_csv

        n_files = len(session.streams) + len(session.derived) + 1 + (
            session.predictions is not None)
        with tqdm(total=n_files, unit="file", file=sys.stderr) as bar:
            try:
                files = export_csv(session, args.out, progress=lambda _n: bar.update())
            except FileExistsError as exc:
                return _fail(str(exc)), [], []
        return 0, files, []
    if args.format == "nwb":
        return _nwb(session, args, start)
    return _bids(session, args)


def _export(session: Any, args: argparse.Namespace, start: dt.datetime | None) -> int:
    from kneegui.commands._signals import SignalGuard, StopSignal
    from kneegui.recording.errors import os_error_hint

    with session:
        for warning in [*session.warnings, *session.timestamp_problems()]:
            print(f"kneegui export: warning: {warning}; exported as stored", file=sys.stderr)
        try:
            with SignalGuard("export"):
                code, files, warnings = _write(session, args, start)
        except StopSignal as stop:
            return _fail(f"stopped by {stop.name}; the files written so far are in {args.out}, "
                         "the last one may be incomplete", code=1)
        except OSError as exc:  # read-only or full drive, name too long...
            reason, hint = os_error_hint(exc)
            return _fail(f"cannot write into {args.out} ({reason}): {hint}; files written "
                         "before the failure are complete, the last one may not be", code=1)
        if code:
            return code
    for warning in warnings:
        print(f"warning: {warning}", file=sys.stderr)
    for path in files:
        print(path)
    return 0


def _nwb(session: Any, args: argparse.Namespace, start: dt.datetime | None):
    from kneegui.recording.nwb_export import (
        NwbExportError,
        NwbOptions,
        export_nwb,
        missing_metadata,
    )

    age = f"P{args.age:g}Y" if args.age is not None else ""
    options = NwbOptions(species=args.species, sex=args.sex, age=age,
                         institution=args.institution, lab=args.lab,
                         experimenter=list(args.experimenter), session_start=start)
    try:
        path = export_nwb(session, args.out, options)
    except (NwbExportError, FileExistsError) as exc:
        return _fail(str(exc)), [], []
    return 0, [path], missing_metadata(options)


def _bids(session: Any, args: argparse.Namespace):
    from kneegui.recording.bids_export import BidsExportError, BidsOptions, export_bids

    options = BidsOptions(
        subject=args.subject, task=args.task, session=args.bids_session, run=args.bids_run,
        dataset_name=args.dataset_name, power_line=args.power_line,
        emg_reference=args.emg_reference, placement=args.placement,
        species=args.species.lower(), sex={"U": "n/a"}.get(args.sex, args.sex),
        age=f"{args.age:g}" if args.age is not None else "n/a",
        institution=args.institution, authors=tuple(args.author))
    try:
        files, warnings = export_bids(session, args.out, options)
    except (BidsExportError, FileExistsError) as exc:
        return _fail(str(exc)), [], []
    return 0, files, warnings
