"""`kneegui streams`: list the LSL streams on the network (name, type, channels, rate, ids).

Streams KneeGUI cannot read (0 channels, undefined format, invalid rate) are listed as
UNUSABLE with the reason; the other commands skip them. Exit codes: 0 listed (also when none
were found), 2 bad arguments.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

EXIT_OK, EXIT_USAGE = 0, 2


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "streams",
        help="list the LSL streams on the network",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--json", action="store_true", help="print a JSON list instead of a table")
    p.add_argument(
        "--timeout", type=float, default=2.0, metavar="S", help="seconds to look (default 2)"
    )
    p.add_argument("--type", dest="stream_type", metavar="T", help="only streams of LSL type T")
    p.set_defaults(run=run)


def _table(views: list) -> str:
    header = ("name", "type", "ch", "rate", "format", "source_id", "host", "channels")
    rows = [header]
    for v in views:
        if v.problem:
            rows.append((v.name, v.type, str(v.channel_count), "-", v.channel_format,
                         v.source_id, v.hostname, f"UNUSABLE: {v.problem}"))
            continue
        labels = [
            f"{v.label(i)}[{v.channel_units[i]}]" if v.channel_units[i] else v.label(i)
            for i in range(v.channel_count)
        ]
        shown = ", ".join(labels[:8]) + (f", ... (+{len(labels) - 8})" if len(labels) > 8 else "")
        rate = f"{v.nominal_srate:g} Hz" if v.nominal_srate > 0 else "irregular"
        rows.append(
            (v.name, v.type, str(v.channel_count), rate, v.channel_format, v.source_id,
             v.hostname, shown)
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(header) - 1)]
    lines = []
    for r in rows:
        cells = [r[i].ljust(widths[i]) for i in range(len(widths))]
        lines.append("  ".join([*cells, r[-1]]).rstrip())
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    from kneegui.commands._checks import positive_number

    error = positive_number("--timeout", args.timeout)
    if error:
        print(f"kneegui streams: {error}", file=sys.stderr)
        return EXIT_USAGE
    from kneegui.acquisition import discover

    views = discover(timeout=args.timeout, stream_type=args.stream_type)
    if args.json:
        print(json.dumps([v.to_dict() for v in views], indent=2))
        return EXIT_OK
    if not views:
        what = f" of type '{args.stream_type}'" if args.stream_type else ""
        print(
            f"no LSL streams{what} found within {args.timeout:g} s "
            "(is the sender running and on this network? try a longer --timeout)",
            file=sys.stderr,
        )
        return EXIT_OK
    print(_table(views))
    return EXIT_OK
