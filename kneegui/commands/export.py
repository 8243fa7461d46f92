"""`kneegui export`: write a session's streams, derived series, predictions and events as CSV.

One CSV per stream (first column time_s = LSL seconds, then one column per channel named by
its label), derived_<kind>_<stream>.csv, predictions.csv and events.csv. Nothing is overwritten.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("export", help="export a recorded session to CSV files",
                              description=__doc__)
    p.add_argument("session", type=Path, metavar="SESSION.h5")
    p.add_argument("--format", choices=("csv",), default="csv", help="output format (csv)")
    p.add_argument("--out", type=Path, required=True, metavar="DIR",
                   help="directory for the CSV files (created; must not contain them yet)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from kneegui.commands._signals import SignalGuard, StopSignal
    from kneegui.recording import SessionFormatError, open_session
    from kneegui.recording.csv_export import export_csv
    from kneegui.recording.errors import os_error_hint

    try:
        session = open_session(args.session)
    except SessionFormatError as exc:
        print(f"kneegui export: {exc}", file=sys.stderr)
        return 2
    with session:
        for warning in [*session.warnings, *session.timestamp_problems()]:
            print(f"kneegui export: warning: {warning}; exported as stored", file=sys.stderr)
        n_files = len(session.streams) + len(session.derived) + 1 + (
            session.predictions is not None)
        with tqdm(total=n_files, unit="file", file=sys.stderr) as bar:
            try:
                with SignalGuard("export"):
                    files = export_csv(session, args.out, progress=lambda _name: bar.update())
            except StopSignal as stop:
                print(f"kneegui export: stopped by {stop.name}; the CSV files written so far "
                      f"are in {args.out}, the last one may be incomplete", file=sys.stderr)
                return 1
            except FileExistsError as exc:
                print(f"kneegui export: {exc}", file=sys.stderr)
                return 2
            except OSError as exc:  # read-only or full drive, name too long...
                reason, hint = os_error_hint(exc)
                print(f"kneegui export: cannot write the CSV files into {args.out} ({reason}): "
                      f"{hint}; files written before the failure are complete, the last one "
                      "may not be", file=sys.stderr)
                return 1
    for path in files:
        print(path)
    return 0
