"""`kneegui replay`: republish a recorded session to LSL with its original timing and metadata.

Each stream keeps its name, type, rate, format and full <desc>; its source_id is the original
plus "-replay". KneeGUI, LabRecorder or any LSL tool can consume the replay.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("replay", help="republish a recorded session as LSL streams",
                              description=__doc__)
    p.add_argument("session", type=Path, metavar="SESSION.h5")
    p.add_argument("--loop", action="store_true", help="start again at the end, until Ctrl-C")
    p.add_argument("--speed", type=float, default=1.0, metavar="X",
                   help="playback speed factor (default 1.0 = real time)")
    p.add_argument("--streams", nargs="+", metavar="NAME",
                   help="replay only these recorded streams (names as in the file)")
    p.add_argument("--wait-for-consumers", type=float, default=0.0, metavar="S",
                   help="wait up to S seconds for every outlet to have a consumer first")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from kneegui.commands._checks import first_error, non_negative_number, positive_number
    from kneegui.commands._signals import SignalGuard
    from kneegui.recording import SessionFormatError, open_session
    from kneegui.recording.replay import Replayer, replay_source_id

    error = first_error(
        positive_number("--speed", args.speed, unit="a speed factor"),
        non_negative_number("--wait-for-consumers", args.wait_for_consumers))
    if error:
        print(f"kneegui replay: {error}", file=sys.stderr)
        return 2
    try:
        session = open_session(args.session)
    except SessionFormatError as exc:
        print(f"kneegui replay: {exc}", file=sys.stderr)
        return 2
    with session:
        try:
            replayer = Replayer(session, args.streams, speed=args.speed, loop=args.loop)
        except KeyError as exc:
            print(f"kneegui replay: {exc.args[0]}", file=sys.stderr)
            return 2
        for warning in [*session.warnings, *replayer.skipped]:
            print(f"kneegui replay: warning: {warning}", file=sys.stderr)
        for problem in session.timestamp_problems():
            print(f"kneegui replay: warning: {problem}; replayed in recorded order (missing "
                  "stamps interpolated, backward steps held)", file=sys.stderr)
        if not replayer.stream_names:
            print(f"kneegui replay: {args.session} holds no samples to replay", file=sys.stderr)
            return 2
        with SignalGuard("replay", "closing the outlets") as guard, guard.deferred():
            replayer.open()
            for name in replayer.stream_names:
                print(f"publishing {name} as source_id "
                      f"{replay_source_id(session.streams[name])}", file=sys.stderr)
            if args.wait_for_consumers > 0:
                replayer.wait_for_consumers(args.wait_for_consumers)
            with tqdm(total=100, unit="%", file=sys.stderr,
                      desc=f"replay x{args.speed:g}") as bar:
                def progress(fraction: float) -> None:
                    if guard.stop_requested:
                        replayer.stop_soon()
                    bar.n = round(100 * fraction)
                    bar.set_postfix_str(f"pass {replayer.loops_done + 1}")

                try:
                    replayer.run(progress)
                finally:
                    replayer.stop()
        how = f"stopped by {guard.received}; " if guard.received else ""
        print(f"{how}replayed {replayer.samples_pushed} samples", file=sys.stderr)
    return 0
