"""Argument checks shared by the CLI subcommands: one clear line instead of a traceback.

argparse accepts ``nan``, ``inf`` and negative values for ``type=float``; a duration of NaN
would record forever and a NaN speed would publish a broken stream. Each check returns an
error message (the caller prints it and exits with code 2) or None when the value is fine.
"""

from __future__ import annotations

import math


def positive_number(option: str, value: float | None, unit: str = "seconds",
                    optional: bool = True) -> str | None:
    """``value`` must be a finite number > 0 (None is fine when ``optional``)."""
    if value is None:
        return None if optional else f"{option} is required"
    if not math.isfinite(value) or value <= 0:
        return f"{option} must be > 0 and finite ({unit}), got {value:g}"
    return None


def non_negative_number(option: str, value: float | None, unit: str = "seconds") -> str | None:
    """``value`` must be a finite number >= 0 (None is fine)."""
    if value is None:
        return None
    if not math.isfinite(value) or value < 0:
        return f"{option} must be >= 0 and finite ({unit}), got {value:g}"
    return None


def first_error(*messages: str | None) -> str | None:
    """The first message that is not None."""
    return next((m for m in messages if m), None)
