"""The `kneegui` command line: one subcommand per job.

Each subcommand lives in its own module under :mod:`kneegui.commands` and exposes
``register(subparsers)``; the module's ``run(args) -> int`` does the work. Heavy imports
(torch, Qt) happen inside ``run`` so that ``kneegui --help`` stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from kneegui import __version__

#: Subcommand modules, in the order `kneegui --help` lists them.
COMMAND_MODULES: tuple[str, ...] = (
    "demo",
    "gui",
    "streams",
    "simulate",
    "record",
    "replay",
    "export",
    "import_xdf",
    "train",
    "evaluate",
    "calibrate",
    "predict",
    "models",
    "dataset",
)


def build_parser() -> argparse.ArgumentParser:
    """Build the top-level parser with every available subcommand."""
    parser = argparse.ArgumentParser(
        prog="kneegui",
        description="Live knee-angle prediction from EMG over Lab Streaming Layer.",
    )
    parser.add_argument("--version", action="version", version=f"kneegui {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(f"kneegui.commands.{name}").register(sub)
    return parser


#: commands whose process runs the sample path for hours (see kneegui.acquisition.allocator)
SAMPLE_PATH_COMMANDS = frozenset({"record", "predict"})


def configure_process(argv: list[str]) -> None:
    """Process-wide settings for the command about to run (only when ``kneegui`` is the
    process: tests that call :func:`main` with a list leave their own process alone)."""
    if argv and argv[0] in SAMPLE_PATH_COMMANDS:
        from kneegui.acquisition.allocator import keep_inlet_queues_mapped

        keep_inlet_queues_mapped()


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `kneegui` console script (``argv=None``: this process's arguments)."""
    if argv is None:
        configure_process(sys.argv[1:])
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "run", None):
        parser.print_help()
        return 0
    try:
        return int(args.run(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
