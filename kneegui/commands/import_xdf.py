"""`kneegui import-xdf`: convert a LabRecorder .xdf file into a KneeGUI session (.h5).

Keeps every stream (also empty ones), the stream headers (full XML), the clock measurements and
the original time stamps; `timestamps` are synchronized with pyxdf's algorithm (clock resets
handled); marker (string) samples also become events. A damaged or cut-off file is imported as
far as it is readable, with events saying what was lost and where. Exit codes: 0 imported,
2 bad arguments or not readable as XDF, 3 imported what was readable from a damaged file.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("import-xdf", help="convert an XDF recording to a session file",
                              description=__doc__,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("xdf", type=Path, metavar="FILE.xdf")
    p.add_argument("--out", required=True, metavar="SESSION.h5_OR_DIR",
                   help="session file to create (must not exist) or a directory")
    p.add_argument("--subject", default="", help="subject id to store")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from kneegui.recording import OutputExistsError
    from kneegui.recording.errors import os_error_hint
    from kneegui.recording.xdf_import import XdfImportError, import_xdf_report

    bar = tqdm(unit="stream", file=sys.stderr, desc="importing")

    def progress(done: int, total: int) -> None:
        bar.total = total
        bar.n = done
        bar.refresh()

    from kneegui.commands._signals import SignalGuard, StopSignal

    try:
        with SignalGuard("import-xdf"):  # a stop signal aborts; the half-made file is removed
            report = import_xdf_report(args.xdf, args.out, args.subject, progress)
    except StopSignal as stop:
        bar.close()
        print(f"kneegui import-xdf: stopped by {stop.name}; nothing was written, {args.xdf} is "
              "unchanged", file=sys.stderr)
        return 1
    except (XdfImportError, OutputExistsError) as exc:
        bar.close()
        print(f"kneegui import-xdf: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # read-only or full drive, name too long...
        bar.close()
        reason, hint = os_error_hint(exc)
        print(f"kneegui import-xdf: cannot write the session to {args.out} ({reason}): {hint}; "
              f"nothing was written, {args.xdf} is unchanged", file=sys.stderr)
        return 2
    bar.close()
    for s in report.streams:
        print(f"  {s.name}: {s.samples} samples x {s.channels} ch {s.channel_format}, "
              f"{s.clock_offsets} clock offsets", file=sys.stderr)
    for problem in report.problems:
        print(f"warning: {problem}", file=sys.stderr)
    if report.problems:
        print(f"kneegui import-xdf: {args.xdf} is damaged; imported what was readable "
              "(complete=False, the losses are events in /events)", file=sys.stderr)
    print(report.path)
    return 0 if report.complete else 3
