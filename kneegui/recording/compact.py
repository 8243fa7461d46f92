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

The copy goes to ``<name>.compacting`` next to the file, is flushed to disk, checked and then
renamed over the original, so the session file is always either the complete uncompressed one
or the complete compressed one. The check compares every dataset's shape and dtype and reads
back the first, the last and evenly spaced chunks (``CHECK_CHUNKS``): a wrong encoding would
show in any of them. Chunks are shuffled and deflated in a thread pool (zlib releases the GIL)
and written with HDF5's direct chunk write, in exactly the layout the shuffle + deflate filters
produce, so every HDF5 reader decompresses them as usual.
"""

from __future__ import annotations

import contextlib
import os
import threading
import zlib
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from kneegui.recording.storage import COMPRESSION

#: Bytes read per block when compressing a dataset.
BLOCK_BYTES = 8 * 1024 * 1024
#: Chunks per dataset read back and compared with the original after the copy.
CHECK_CHUNKS = 8
SUFFIX = ".compacting"


def _copy_attrs(src: h5py.HLObject, dst: h5py.HLObject) -> None:
    for key in src.attrs:
        dtype = src.attrs.get_id(key).dtype
        dst.attrs.create(key, src.attrs[key], dtype=dtype)


def _parallel_map(func: Callable[[Any], bytes], items: Sequence[Any]) -> list[bytes]:
    """``[func(x) for x in items]`` on a few threads (zlib releases the GIL).

    Plain threads, not concurrent.futures: those refuse work while the interpreter exits, and
    a writer stopped with ``wait=False`` compresses exactly then.
    """
    results: list[Any] = [None] * len(items)
    workers = max(1, min(4, os.cpu_count() or 1, len(items)))

    def run(first: int) -> None:
        for i in range(first, len(items), workers):
            results[i] = func(items[i])

    threads = [threading.Thread(target=run, args=(w,), name="kneegui-compress-chunk")
               for w in range(1, workers)]
    started = []
    for thread in threads:
        try:
            thread.start()
            started.append(thread)
        except RuntimeError:  # no new threads (interpreter finalizing): do it here
            break
    run(0)
    for thread in started:
        thread.join()
    for w in range(len(started) + 1, workers):  # work of threads that could not start
        run(w)
    return results


def _deflate(chunk: np.ndarray) -> bytes:
    """A full chunk as HDF5's shuffle then deflate (zlib) filters store it."""
    item = chunk.dtype.itemsize
    raw = np.ascontiguousarray(chunk).view(np.uint8).reshape(-1, item)
    return zlib.compress(raw.T.tobytes() if item > 1 else raw.tobytes(),
                         COMPRESSION["compression_opts"])


def _copy_dataset(src: h5py.Dataset, parent: h5py.Group, name: str) -> None:
    numeric = (src.dtype.kind in "fiub" and src.dtype.byteorder in "=|<" and src.ndim >= 1
               and src.size > 0 and src.chunks is not None
               and all(c == s for c, s in zip(src.chunks[1:], src.shape[1:], strict=True)))
    if not numeric:  # strings, scalars, empty or unusual datasets: copied as they are
        parent.copy(src, name)
        return
    dst = parent.create_dataset(name, shape=src.shape, maxshape=src.maxshape, dtype=src.dtype,
                                chunks=src.chunks, **COMPRESSION)
    rows = src.chunks[0]
    trailing = src.shape[1:]
    row_bytes = max(1, int(np.prod(trailing, dtype=np.int64)) * src.dtype.itemsize)
    step = max(1, BLOCK_BYTES // (row_bytes * rows)) * rows
    zeros = (0,) * len(trailing)
    for start in range(0, src.shape[0], step):
        block = src[start:start + step]
        pieces = []
        for first in range(0, len(block), rows):
            piece = block[first:first + rows]
            if len(piece) < rows:  # the edge chunk is stored full size (fill value 0)
                full = np.zeros((rows, *trailing), dtype=src.dtype)
                full[: len(piece)] = piece
                piece = full
            pieces.append((start + first, piece))
        for (offset, _), data in zip(pieces, _parallel_map(lambda p: _deflate(p[1]), pieces),
                                     strict=True):
            dst.id.write_direct_chunk((offset, *zeros), data, 0)
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


def _identical(a: h5py.Group, b: h5py.Group) -> str | None:
    """The first dataset of ``a`` that ``b`` does not hold identically (None if all match)."""
    mismatch: list[str] = []

    def visit(name: str, obj: object) -> None:
        if mismatch or not isinstance(obj, h5py.Dataset):
            return
        other = b.get(name)
        if not isinstance(other, h5py.Dataset) or other.shape != obj.shape \
                or other.dtype != obj.dtype:
            mismatch.append(name)
            return
        if obj.dtype.kind not in "fiub" or obj.ndim == 0 or obj.size == 0:
            return  # copied by HDF5 itself
        rows = obj.chunks[0] if obj.chunks else obj.shape[0]
        n_chunks = -(-obj.shape[0] // rows)
        for k in sorted({int(i) for i in np.linspace(0, n_chunks - 1, CHECK_CHUNKS)}):
            part = slice(k * rows, (k + 1) * rows)
            if obj[part].tobytes() != other[part].tobytes():
                mismatch.append(name)
                return

    a.visititems(visit)
    return mismatch[0] if mismatch else None


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
            different = _identical(src, dst)
            if different is not None:
                raise RuntimeError(f"the compressed copy of {path} differs in {different}")
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
