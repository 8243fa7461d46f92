"""Compress a finished session file: copy it with shuffle + deflate, then atomically replace it.

Why after the recording and not while writing: a compressed HDF5 chunk changes size every time
rows are appended to it, so HDF5 writes it to a new place and may give the old place to the
next chunk it writes. A process killed between such a write and the next flush leaves a file
whose index still points at the old place, now holding other bytes: the whole chunk becomes
unreadable ("filter returned failure during read"), measured in about 1 of 30 SIGKILLs. Written
uncompressed, a chunk keeps its place and appending rewrites the old rows with the same bytes,
so a killed recording stays readable up to its last flush. The writer therefore records
uncompressed and compresses here once the file is closed; a killed recording simply stays
uncompressed.

The copy goes to ``<name>.compacting`` next to the file, is flushed to disk, checked (every
dataset's shape and dtype) and then renamed over the original, so the session file is always
either the complete uncompressed one or the complete compressed one.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

import h5py
import numpy as np

from kneegui.recording.storage import COMPRESSION

#: Rows copied per read/write when compressing a dataset.
BLOCK_BYTES = 32 * 1024 * 1024
SUFFIX = ".compacting"


def _copy_attrs(src: h5py.HLObject, dst: h5py.HLObject) -> None:
    for key in src.attrs:
        dtype = src.attrs.get_id(key).dtype
        dst.attrs.create(key, src.attrs[key], dtype=dtype)


def _copy_dataset(src: h5py.Dataset, parent: h5py.Group, name: str) -> None:
    numeric = src.dtype.kind in "fiub" and src.ndim >= 1 and src.size > 0
    if not numeric:  # strings, scalars, empty datasets: copied as they are
        parent.copy(src, name)
        return
    dst = parent.create_dataset(name, shape=src.shape, maxshape=src.maxshape, dtype=src.dtype,
                                chunks=src.chunks or True, **COMPRESSION)
    row_bytes = max(1, int(np.prod(src.shape[1:], dtype=np.int64)) * src.dtype.itemsize)
    step = max(1, BLOCK_BYTES // row_bytes)
    for start in range(0, src.shape[0], step):
        dst[start:start + step] = src[start:start + step]
    _copy_attrs(src, dst)


def _copy_group(src: h5py.Group, dst: h5py.Group) -> None:
    for name in src:  # creation order (the writer tracks it)
        obj = src.get(name)
        if isinstance(obj, h5py.Group):
            child = dst.create_group(name, track_order=True)
            _copy_attrs(obj, child)
            _copy_group(obj, child)
        elif isinstance(obj, h5py.Dataset):
            _copy_dataset(obj, dst, name)


def _same_layout(a: h5py.Group, b: h5py.Group) -> bool:
    """Every dataset of ``a`` exists in ``b`` with the same shape and dtype."""
    found: list[str] = []

    def visit(name: str, obj: object) -> None:
        if isinstance(obj, h5py.Dataset):
            other = b.get(name)
            if not isinstance(other, h5py.Dataset) or other.shape != obj.shape \
                    or other.dtype != obj.dtype:
                found.append(name)

    a.visititems(visit)
    return not found


def compact(path: str | Path) -> int:
    """Replace the closed session ``path`` by a compressed copy; returns the bytes saved.

    Raises ``OSError`` (disk full, permissions...) or ``RuntimeError`` (the copy does not match)
    and then leaves the original untouched and removes the partial copy.
    """
    path = Path(path)
    tmp = path.with_name(path.name + SUFFIX)
    before = path.stat().st_size
    try:
        with h5py.File(path, "r") as src, h5py.File(tmp, "w", track_order=True) as dst:
            _copy_attrs(src, dst)
            _copy_group(src, dst)
            dst.flush()
            if not _same_layout(src, dst):
                raise RuntimeError(f"the compressed copy of {path} does not match it")
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
        with contextlib.suppress(OSError):  # make the rename itself durable
            fd = os.open(path.parent, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return before - path.stat().st_size
