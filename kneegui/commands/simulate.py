"""`kneegui simulate`: publish a real gait recording as live LSL EMG + knee-angle streams.

Without --source it replays the shipped UCI gait clip (resources/demo_gait/4Amar.txt, see
resources/ATTRIBUTION.md). Streams: '<prefix>-EMG' (type EMG, 4 ch RF/BF/VM/ST, mV) and
'<prefix>-KneeAngle' (type Angle, knee_flexion, degrees), 1000 Hz x --speed, source_ids
'<id-prefix>-emg' / '<id-prefix>-angle'. Runs until Ctrl-C, --duration, or the end of the file
when --no-loop is given. Exit codes: 0 done, 1 publishing failed, 2 bad arguments or source.
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "simulate",
        help="publish a recorded gait session as live LSL streams (no hardware needed)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--source", metavar="PATH", help="a UCI TXT file (default: the shipped clip)")
    loop = p.add_mutually_exclusive_group()
    loop.add_argument("--loop", dest="loop", action="store_true", default=True,
                      help="loop forever at matching gait phases (default)")
    loop.add_argument("--no-loop", dest="loop", action="store_false",
                      help="stop at the end of the file")
    p.add_argument("--speed", type=float, default=1.0, metavar="X",
                   help="playback speed; the nominal rate becomes 1000 Hz x X (default 1)")
    p.add_argument("--duration", type=float, metavar="S", help="stop after S seconds")
    p.add_argument("--id-prefix", default="kneegui-sim",
                   help="source_id prefix (default kneegui-sim)")
    p.add_argument("--name-prefix", default="KneeGUI-Sim",
                   help="stream name prefix (default KneeGUI-Sim)")
    p.add_argument("--quiet", action="store_true", help="no progress output")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from kneegui.commands._checks import first_error, positive_number

    error = first_error(positive_number("--speed", args.speed, unit="a speed factor"),
                        positive_number("--duration", args.duration))
    if error:
        print(f"kneegui simulate: {error}", file=sys.stderr)
        return EXIT_USAGE
    from kneegui.acquisition import SimulatedLab
    from kneegui.commands._signals import SignalGuard
    from kneegui.datasets.uci import UciFormatError

    try:
        lab = SimulatedLab(args.source, loop=args.loop, speed=args.speed,
                           source_id_prefix=args.id_prefix, name_prefix=args.name_prefix,
                           duration=args.duration)
    except (FileNotFoundError, UciFormatError, ValueError) as exc:
        print(f"kneegui simulate: {exc}", file=sys.stderr)
        return EXIT_USAGE
    rec = lab.recording
    with SignalGuard("simulate", "closing the outlets") as guard, guard.deferred():
        lab.start()
        if not args.quiet:
            print(
                f"publishing {rec.name} ({rec.n_samples / rec.fs:.1f} s, loop "
                f"{lab.loop_start / rec.fs:.2f}-{lab.loop_end / rec.fs:.2f} s) at {lab.rate:g} Hz "
                f"as '{lab.emg_name}' ({lab.emg_source_id}) and '{lab.angle_name}' "
                f"({lab.angle_source_id}); Ctrl-C stops",
                file=sys.stderr,
            )
        try:
            progress = _progress(args, lab)
            while not lab.wait(0.25) and not guard.stop_requested:
                if progress is not None:
                    progress.n = lab.samples_sent / lab.rate
                    progress.refresh()
            if progress is not None:
                progress.n = lab.samples_sent / lab.rate
                progress.close()
        finally:
            time.sleep(0.1)  # let the last chunk leave before the outlets go
            lab.stop()
    if guard.received and not args.quiet:
        print(f"stopped by {guard.received} after {lab.samples_sent} samples", file=sys.stderr)
    if lab.last_error:
        print(f"kneegui simulate: publishing failed: {lab.last_error}", file=sys.stderr)
        return EXIT_FAILED
    return EXIT_OK


def _progress(args: argparse.Namespace, lab: Any):
    if args.quiet:
        return None
    from tqdm import tqdm

    total = args.duration
    if total is None and not args.loop:
        total = lab.recording.n_samples / lab.rate
    return tqdm(total=total, unit="s", desc="simulate", file=sys.stderr,
                bar_format="{desc}: {n:.1f}/{total} s {bar}" if total else "{desc}: {n:.1f} s")
