"""The one way a command reports bad input: a :class:`UserError` message, no traceback."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable


class UserError(Exception):
    """Bad input; the message (what is wrong and what to do) is printed as-is."""


def run_reporting(command: str, body: Callable[[argparse.Namespace], int],
                  args: argparse.Namespace, code: int = 2) -> int:
    """``body(args)``; a :class:`UserError` becomes ``kneegui COMMAND: message`` and ``code``."""
    try:
        return body(args)
    except UserError as exc:
        print(f"kneegui {command}: {exc}", file=sys.stderr)
        return code
