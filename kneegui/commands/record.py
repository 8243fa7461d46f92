"""`kneegui record`: record LSL streams headless into a crash-safe HDF5 session file.

Discovers the streams on the network (all of them, or those named with --streams), records
until --duration seconds have passed, Ctrl-C, SIGTERM or SIGHUP (each closes the file cleanly:
complete, nothing lost), and prints the session path. Streams that cannot be read (0 channels,
undefined format) are listed and skipped. The file layout is described in
docs/session-format.md. Exit codes: 0 recorded, 1 the recording failed or nothing was received
(the file keeps what was written), 2 bad arguments, no streams, or the file cannot be created.
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
                   help="seconds to record (default: until Ctrl-C, SIGTERM or SIGHUP)")
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


def _say(message: str) -> None:
    print(f"kneegui record: {message}", file=sys.stderr)


def run(args: argparse.Namespace) -> int:
    from kneegui.commands._checks import first_error, positive_number
    from kneegui.commands._signals import SignalGuard, StopSignal

    error = first_error(positive_number("--duration", args.duration),
                        positive_number("--discover-timeout", args.discover_timeout))
    if error:
        _say(error)
        return EXIT_USAGE
    with SignalGuard("record", "still closing the session file, please wait") as guard:
        try:
            return _record(args, guard)
        except StopSignal as stop:
            _say(f"stopped by {stop.name} before the recording started; nothing was written")
            return EXIT_FAILED


def _usable_readers(views: list) -> list:
    """Readers for the streams that can be read; the others are reported and skipped."""
    from kneegui.acquisition.reader import StreamReader
    from kneegui.acquisition.roles import RoleError

    readers = []
    for view in views:
        problem = view.problem
        if problem is None:
            try:
                readers.append(StreamReader(view))
                continue
            except RoleError as exc:
                problem = str(exc)
        _say(f"skipping unusable stream {view.describe()}: {problem}")
    return readers


def _record(args: argparse.Namespace, guard: Any) -> int:
    from kneegui.acquisition import discovery
    from kneegui.recording import (
        OutputExistsError,
        OutputNotWritableError,
        SessionWriter,
        WriterState,
    )
    from kneegui.recording.pump import RecordingPump

    views = discovery.discover(timeout=args.discover_timeout, stream_type=args.stream_type)
    views, missing = _pick(views, args.streams)
    if missing:
        _say(f"no stream named or with source_id {missing[0]!r} found; "
             "`kneegui streams` lists what is available")
        return EXIT_USAGE
    if not views:
        _say("no LSL streams found; start the amplifier/goniometer (or `kneegui simulate`) "
             "and check that it is on this network")
        return EXIT_USAGE
    readers = _usable_readers(views)
    if not readers:
        _say("none of the streams found can be recorded (see above); fix their senders")
        return EXIT_USAGE
    metadata = {"subject_id": args.subject, "operator": args.operator, "notes": args.notes}
    with guard.deferred():  # from here on a signal stops the recording cleanly
        try:
            writer = SessionWriter(args.out, metadata)
            writer.start()
        except (OutputExistsError, OutputNotWritableError) as exc:
            _say(f"{exc}; nothing was recorded")
            return EXIT_USAGE
        pump = RecordingPump(writer, readers).start()
        try:
            for reader in readers:
                reader.start()
            print(f"recording {len(readers)} stream(s) to {writer.path}: "
                  + ", ".join(r.info.name for r in readers), file=sys.stderr)
            _wait(writer, args.duration, args.quiet, guard)
        finally:
            pump.stop()
            silent = [r for r in readers if r.status().received == 0]
            for reader in silent:
                writer.add_event(f"no_data: no samples from {reader.info.name} during the "
                                 "recording (its outlet never sent data)", origin="recorder")
            status = writer.stop()
            for reader in readers:
                reader.stop()
    total = sum(status.samples_written.values())
    if status.state is WriterState.FAILED:
        _say(status.error or "the recording failed")
        return EXIT_FAILED
    how = f"stopped by {guard.received}; " if guard.received else ""
    print(f"{how}wrote {total} samples ({status.file_bytes / 1e6:.1f} MB, "
          f"{status.events_written} events)", file=sys.stderr)
    if status.warning:
        print(f"warning: {status.warning}", file=sys.stderr)
    for reader in silent:
        print(f"warning: stream {reader.info.describe()} sent no samples: its outlet exists "
              "but never pushed data; check that the device or sender is started",
              file=sys.stderr)
    if status.lost_samples or status.dropped_samples:
        print(f"warning: {status.lost_samples + status.dropped_samples} samples could not be "
              "recorded (see /events)", file=sys.stderr)
    print(writer.path)
    if total == 0:
        _say("nothing was received from any stream; the file holds only the events")
        return EXIT_FAILED
    return EXIT_OK


def _wait(writer: Any, duration: float | None, quiet: bool, guard: Any) -> None:
    """Show progress until ``duration`` passed, a stop signal, or the writer failed."""
    from tqdm import tqdm

    start = time.monotonic()
    with tqdm(total=duration, unit="s", disable=quiet, file=sys.stderr,
              bar_format="{l_bar}{bar}| {n:.1f}/{total_fmt} s {postfix}" if duration
              else "recording {n:.1f} s {postfix}") as bar:
        while writer.recording and not guard.stop_requested:
            elapsed = time.monotonic() - start
            if duration is not None and elapsed >= duration:
                break
            status = writer.status()
            bar.n = min(elapsed, duration) if duration else elapsed
            bar.set_postfix_str(f"{sum(status.samples_written.values())} samples, "
                                f"{status.file_bytes / 1e6:.1f} MB")
            time.sleep(min(0.1, max(0.0, (duration or 1e9) - elapsed)))
        if duration:
            bar.n = min(time.monotonic() - start, duration)
            bar.refresh()
