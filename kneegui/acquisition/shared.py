"""Ring buffers another process can read: the headless predictor writes, the window reads.

An :class:`Arena` is a private folder of memory-mapped files (``/dev/shm`` where it exists, so
RAM; else the temp folder) owned by the writing process. A :class:`~kneegui.acquisition.
ringbuffer.RingBuffer` given the arena keeps its samples, stamps and a two-number header
``[writing_until, total]`` there. A :class:`RingView` in another process maps the same file
read-only and offers the same read API. The writer never waits for a reader: a reader copies,
then checks that no write reached the slots it copied (``writing_until`` is raised before the
slots are rewritten) and copies again if one did. (x86 keeps stores in program order, which
this relies on; on other CPUs a display read may rarely see a half-written chunk. The sample path
itself never reads through a view.)
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import uuid
from pathlib import Path

import numpy as np

_HEADER = 64  # bytes: [writing_until, total] as int64, padded
_EMPTY_TS = np.empty(0, np.float64)


def _shared_root() -> Path:
    shm = Path("/dev/shm")
    return shm if shm.is_dir() and os.access(shm, os.W_OK) else Path(tempfile.gettempdir())


class Arena:
    """A folder of shared ring buffers; :meth:`close` deletes it (the owner's job)."""

    def __init__(self, root: str | Path | None = None) -> None:
        base = Path(root) if root is not None else _shared_root()
        self.path = base / f"kneegui-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self.path.mkdir(mode=0o700, parents=True)
        self._count = 0

    def allocate(self, name: str, capacity: int, n_channels: int, dtype: np.dtype):
        """(data [capacity, ch], ts [capacity], header [2], spec) mapped into a new file."""
        self._count += 1
        safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", name)[:40] or "ring"
        path = self.path / f"{self._count:03d}-{safe}.ring"
        dtype = np.dtype(dtype)
        ts_bytes = 8 * capacity
        size = _HEADER + ts_bytes + dtype.itemsize * capacity * n_channels
        with open(path, "wb") as f:
            f.truncate(size)
        spec = {"path": str(path), "capacity": capacity, "n_channels": n_channels,
                "dtype": dtype.str, "name": name}
        header, ts, data = _map(spec, "r+")
        return data, ts, header, spec

    def close(self) -> None:
        shutil.rmtree(self.path, ignore_errors=True)


def _map(spec: dict, mode: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    cap, ch, dtype = int(spec["capacity"]), int(spec["n_channels"]), np.dtype(spec["dtype"])
    path = spec["path"]
    header = np.memmap(path, dtype=np.int64, mode=mode, offset=0, shape=(2,))
    ts = np.memmap(path, dtype=np.float64, mode=mode, offset=_HEADER, shape=(cap,))
    data = np.memmap(path, dtype=dtype, mode=mode, offset=_HEADER + 8 * cap, shape=(cap, ch))
    return header, ts, data


class RingView:
    """Read-only view of a shared :class:`~kneegui.acquisition.ringbuffer.RingBuffer` (by its
    ``spec``) with the same read API; every read returns copies."""

    def __init__(self, spec: dict) -> None:
        self.spec = dict(spec)
        self.capacity = int(spec["capacity"])
        self.n_channels = int(spec["n_channels"])
        self.dtype = np.dtype(spec["dtype"])
        self._header, self._ts, self._data = _map(spec, "r")

    # -- state ------------------------------------------------------------------------------
    @property
    def total_written(self) -> int:
        return int(self._header[1])

    @property
    def oldest_index(self) -> int:
        return max(0, self.total_written - self.capacity)

    def __len__(self) -> int:
        return min(self.total_written, self.capacity)

    def last_timestamp(self) -> float | None:
        _, ts = self.latest(1)
        return float(ts[-1]) if len(ts) else None

    # -- reads ------------------------------------------------------------------------------
    def latest(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        data, ts, _ = self._read(lambda total: (total - max(0, min(int(n), total,
                                                                 self.capacity)), total))
        return data, ts

    def tail(self, n: int):
        from kneegui.acquisition.ringbuffer import CursorRead

        data, ts, stop = self._read(lambda total: (total - max(0, min(int(n), total,
                                                                    self.capacity)), total))
        return CursorRead(data, ts, stop, 0)

    def latest_seconds(self, seconds: float) -> tuple[np.ndarray, np.ndarray]:
        def pick(total: int) -> tuple[int, int]:
            if total == 0:
                return 0, 0
            newest = self._ts[(total - 1) % self.capacity]
            return self._first_at_or_after(total, newest - seconds, strict=False), total

        data, ts, _ = self._read(pick)
        return data, ts

    def since(self, t: float) -> tuple[np.ndarray, np.ndarray]:
        data, ts, _ = self._read(lambda total: (self._first_at_or_after(total, t, True), total))
        return data, ts

    def read_from(self, index: int, max_samples: int | None = None):
        from kneegui.acquisition.ringbuffer import CursorRead

        index = int(index)
        lost = [0]

        def pick(total: int) -> tuple[int, int]:
            if index > total:
                raise ValueError(f"cursor index {index} is ahead of the {total} samples written")
            oldest = max(0, total - self.capacity)
            lost[0] = max(0, oldest - index)
            start = max(index, oldest)
            return start, total if max_samples is None else min(total, start + max_samples)

        data, ts, stop = self._read(pick)
        return CursorRead(data, ts, stop, lost[0])

    # -- internals --------------------------------------------------------------------------
    def _read(self, pick) -> tuple[np.ndarray, np.ndarray, int]:
        """Copy the range ``pick(total)`` returns, again if the writer reached it meanwhile."""
        for _ in range(100):
            total = int(self._header[1])
            start, stop = pick(total)
            data, ts = self._copy(start, stop)
            if int(self._header[0]) - self.capacity <= start:
                return data, ts, stop
        return np.empty((0, self.n_channels), self.dtype), _EMPTY_TS, int(self._header[1])

    def _copy(self, start: int, stop: int) -> tuple[np.ndarray, np.ndarray]:
        n = stop - start
        if n <= 0:
            return np.empty((0, self.n_channels), self.dtype), _EMPTY_TS.copy()
        p = start % self.capacity
        first = min(n, self.capacity - p)
        if first == n:
            return np.array(self._data[p : p + n]), np.array(self._ts[p : p + n])
        return (np.concatenate((self._data[p:], self._data[: n - first])),
                np.concatenate((self._ts[p:], self._ts[: n - first])))

    def _first_at_or_after(self, total: int, t: float, strict: bool) -> int:
        oldest = max(0, total - self.capacity)
        n = total - oldest
        if n == 0:
            return total
        side = "right" if strict else "left"
        p = oldest % self.capacity
        first = min(n, self.capacity - p)
        k = int(np.searchsorted(self._ts[p : p + first], t, side=side))
        if k < first:
            return oldest + k
        return oldest + first + int(np.searchsorted(self._ts[: n - first], t, side=side))
