"""`kneegui gui`: open the main window (streams are discovered from the network)."""

from __future__ import annotations


def register(subparsers) -> None:
    p = subparsers.add_parser("gui", help="open the main window (live LSL streams)")
    p.set_defaults(run=run)


def run(args) -> int:
    import sys

    from kneegui.gui.app import run_main_window
    from kneegui.gui.platform_check import QtPlatformError

    try:
        return run_main_window()
    except QtPlatformError as exc:
        print(f"kneegui gui: {exc}", file=sys.stderr)
        return 1
