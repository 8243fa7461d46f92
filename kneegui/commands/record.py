"""`kneegui record`: record LSL streams headless into a crash-safe HDF5 session file.

Discovers the streams on the network (all of them, or those named with --streams), records
until --duration seconds have passed or Ctrl-C, and prints the session path. The file layout is
described in docs/session-format.md. Exit codes: 0 recorded, 1 the recording failed (the file
keeps what was written), 2 bad arguments or no streams.
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "record", help="record LSL streams to a crash-safe HDF5 session file (headless)",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", required=True, metavar="FILE_OR_DIR",
                   help="session file (.h5, must not exist) or directory (a name "
                        "subject_UTCdatetime_counter.h5 is chosen)")
    p.add_argument("--duration", type=float, metavar="S",
                   help="seconds to record (default: until Ctrl-C)")
    p.add_argument("--streams", nargs="+", metavar="NAME_OR_SOURCE_ID",
                   help="record only these streams (name or source_id; default: all found)")
    p.add_argument("--type", dest="stream_type", help="record only streams of this LSL type")
    p.add_argument("--subject", default="", help="subject id (root attribute subject_id)")
    p.add_argument("--operator", default="", help="operator name")
    p.add_argument("--notes", default="", help="free-text notes")
    p.add_argument("--discover-timeout", type=float, default=2.0, metavar="S",
                   help="seconds to look for streams (default 2)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(run=run)


def _pick(views: list, wanted: list[str] | None) -> tuple[list, list[str]]:
    if not wanted:
        return views, []
    chosen, missing = [], []
    for key in wanted:
        hits = [v for v in views if key in (v.name, v.source_id)]
        if not hits:
            missing.append(key)
        chosen += [v for v in hits if v not in chosen]
    return chosen, missing


def run(args: argparse.Namespace) -> int:
    from kneegui.acquisition import discovery
    from kneegui.acquisition.reader import StreamReader
    from kneegui.recording import OutputExistsError, SessionWriter, WriterState

    if args.duration is not None and args.duration <= 0:
        print("kneegui record: --duration must be > 0 seconds", file=sys.stderr)
        return EXIT_USAGE
    views = discovery.discover(timeout=args.discover_timeout, stream_type=args.stream_type)
    views, missing = _pick(views, args.streams)
    if missing:
        print(f"kneegui record: no stream named or with source_id {missing[0]!r} found; "
              "`kneegui streams` lists what is available", file=sys.stderr)
        return EXIT_USAGE
    if not views:
        print("kneegui record: no LSL streams found; start the amplifier/goniometer (or "
              "`kneegui simulate`) and check that it is on this network", file=sys.stderr)
        return EXIT_USAGE
    metadata = {"subject_id": args.subject, "operator": args.operator, "notes": args.notes}
    try:
        writer = SessionWriter(args.out, metadata)
    except OutputExistsError as exc:
        print(f"kneegui record: {exc}", file=sys.stderr)
        return EXIT_USAGE
    readers = [StreamReader(v) for v in views]
    writer.start()
    from kneegui.recording.pump import RecordingPump

    pump = RecordingPump(writer, readers).start()
    for reader in readers:
        reader.start()
    print(f"recording {len(readers)} stream(s) to {writer.path}: "
          + ", ".join(v.name for v in views), file=sys.stderr)
    interrupted = False
    try:
        _wait(writer, args.duration, args.quiet)
    except KeyboardInterrupt:
        interrupted = True
    finally:
        pump.stop()
        status = writer.stop()
        for reader in readers:
            reader.stop()
    total = sum(status.samples_written.values())
    if status.state is WriterState.FAILED:
        print(f"kneegui record: {status.error}", file=sys.stderr)
        return EXIT_FAILED
    print(f"{'stopped by Ctrl-C; ' if interrupted else ''}wrote {total} samples "
          f"({status.file_bytes / 1e6:.1f} MB, {status.events_written} events)", file=sys.stderr)
    if status.warning:
        print(f"warning: {status.warning}", file=sys.stderr)
    if status.lost_samples or status.dropped_samples:
        print(f"warning: {status.lost_samples + status.dropped_samples} samples could not be "
              "recorded (see /events)", file=sys.stderr)
    print(writer.path)
    return EXIT_OK


def _wait(writer: Any, duration: float | None, quiet: bool) -> None:
    """Show progress until ``duration`` passed, Ctrl-C, or the writer failed."""
    from tqdm import tqdm

    start = time.monotonic()
    with tqdm(total=duration, unit="s", disable=quiet, file=sys.stderr,
              bar_format="{l_bar}{bar}| {n:.1f}/{total_fmt} s {postfix}" if duration
              else "recording {n:.1f} s {postfix}") as bar:
        while writer.recording:
            elapsed = time.monotonic() - start
            if duration is not None and elapsed >= duration:
                break
            status = writer.status()
            bar.n = min(elapsed, duration) if duration else elapsed
            bar.set_postfix_str(f"{sum(status.samples_written.values())} samples, "
                                f"{status.file_bytes / 1e6:.1f} MB")
            time.sleep(min(0.2, max(0.0, (duration or 1e9) - elapsed)))
        if duration:
            bar.n = min(time.monotonic() - start, duration)
            bar.refresh()
