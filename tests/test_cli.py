"""The console script lists its subcommands and reports its version."""

import subprocess
import sys

from kneegui import __version__
from kneegui.cli import build_parser


def test_version_flag_prints_package_version():
    out = subprocess.run(
        [sys.executable, "-m", "kneegui", "--version"], capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == f"kneegui {__version__}"


def test_help_lists_every_registered_subcommand():
    parser = build_parser()
    help_text = parser.format_help()
    sub_actions = [a for a in parser._actions if a.dest == "command"]
    assert sub_actions, "no subcommand group"
    for name in sub_actions[0].choices:
        assert name in help_text
