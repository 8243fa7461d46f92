"""`kneegui gui`: open the main window (streams are discovered from the network)."""

from __future__ import annotations


def register(subparsers) -> None:
    p = subparsers.add_parser("gui", help="open the main window (live LSL streams)")
    p.set_defaults(run=run)


def run(args) -> int:
    from kneegui.gui.app import run_main_window

    return run_main_window()
