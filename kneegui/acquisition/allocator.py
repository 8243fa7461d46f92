"""The C allocator setting for processes that hold LSL inlets for hours (glibc only).

Each liblsl inlet keeps a sample queue of ``max_buflen x rate`` slots: 1.9 MB for the reader's
60 s of 2 kHz. glibc serves a block that large with ``mmap`` and unmaps it when the inlet goes
at a sender restart, but then raises its mmap threshold to the freed size, so every later
queue comes from the reading thread's heap and stays there when its inlet goes (measured: a
heap grows 4.8 MB after the second inlet; the soak's recorder and predictor kept ~3 MB this way
over their first sender restarts). A fixed threshold keeps large blocks mapped and returned.

Only for processes whose job is the sample path (`kneegui record`, `kneegui predict`, the
window's predictor process): with a fixed threshold every large tensor of a training step is
mapped afresh, and fine-tuning steps took ~45 % longer (measured with the shipped network,
batch 32, one thread), so the window's process, which fine-tunes, keeps glibc's default.
"""

from __future__ import annotations

import ctypes
import platform
import sys

#: blocks of at least this size are always mapped (and unmapped when freed)
MMAP_THRESHOLD_BYTES = 256 * 1024
_M_MMAP_THRESHOLD = -3  # glibc <malloc.h>
_applied = False


def glibc_here() -> bool:
    """Whether this process runs on glibc (Linux), the allocator the setting is for."""
    return sys.platform.startswith("linux") and platform.libc_ver()[0] == "glibc"


def keep_inlet_queues_mapped() -> bool:
    """Fix glibc's mmap threshold for this process (idempotent); False where not glibc."""
    global _applied
    if _applied:
        return True
    if not glibc_here():
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
        _applied = bool(libc.mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES))
    except (OSError, AttributeError):
        return False
    return _applied


def inlet_queues_kept_mapped() -> bool:
    """Whether :func:`keep_inlet_queues_mapped` took effect in this process."""
    return _applied
