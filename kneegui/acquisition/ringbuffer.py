"""A preallocated, thread-safe ring buffer of samples and their timestamps.

One writer (a reader thread) and any number of readers. Writes copy only the new chunk into
the preallocated storage (at most two slice assignments); every read returns a fresh copy, so
callers may keep or modify what they get.

Two ways to read:

* snapshots for display and models: :meth:`RingBuffer.latest`, :meth:`RingBuffer.latest_seconds`,
  :meth:`RingBuffer.since`;
* a lossless cursor for consumers that must see every sample (recorder, hub):
  :meth:`RingBuffer.read_from` with an absolute sample index. Index ``i`` names the ``i``-th
  sample ever written (0-based), so ``total_written`` is the index of the next sample.

Consumers on the sample path do not poll: :meth:`RingBuffer.subscribe` hands the buffer a
``threading.Event`` that every write sets (the hub waits on its readers' buffers, the
prediction worker on the hub's). With an :class:`~kneegui.acquisition.shared.Arena` the storage
lives in a memory-mapped file that another process (the window) reads through
:class:`~kneegui.acquisition.shared.RingView` without ever making the writer wait.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, NamedTuple

import numpy as np

if TYPE_CHECKING:
    from kneegui.acquisition.shared import Arena


class CursorRead(NamedTuple):
    """What :meth:`RingBuffer.read_from` returns."""

    data: np.ndarray  # [n, channels]
    timestamps: np.ndarray  # [n] float64
    next_index: int  # pass this to the next read_from call
    lost: int  # requested samples that had already been overwritten
    #: [n] float64 sender stamps as received (buffers made with ``raw_stamps=True``), else None
    raw_timestamps: np.ndarray | None = None


class RingBuffer:
    """Fixed-capacity circular storage of ``[n, channels]`` samples plus float64 timestamps.

    Timestamps are expected to be non-decreasing (the stream readers guarantee it); the
    time-based reads (:meth:`since`, :meth:`latest_seconds`) rely on that. With
    ``raw_stamps=True`` a second float64 column keeps each sample's raw (uncorrected) stamp,
    written with :meth:`write` and returned by :meth:`read_from` as ``raw_timestamps``.
    """

    def __init__(
        self,
        capacity: int,
        n_channels: int,
        dtype: np.dtype | type | str = np.float32,
        *,
        raw_stamps: bool = False,
        arena: Arena | None = None,
        name: str = "",
    ):
        if capacity < 1:
            raise ValueError(f"ring buffer capacity must be >= 1 sample, got {capacity}")
        if n_channels < 1:
            raise ValueError(f"ring buffer needs >= 1 channel, got {n_channels}")
        self.capacity = int(capacity)
        self.n_channels = int(n_channels)
        self.dtype = np.dtype(dtype)
        self.spec: dict | None = None  # how another process attaches (shared storage only)
        self._header: np.ndarray | None = None  # shared: [writing_until, total]
        if arena is not None and self.dtype.kind != "O":
            self._data, self._ts, self._header, self.spec = arena.allocate(
                name, self.capacity, self.n_channels, self.dtype)
        else:
            self._data = np.zeros((self.capacity, self.n_channels), dtype=self.dtype)
            self._ts = np.zeros(self.capacity, dtype=np.float64)
        # Touch every page now: fresh zero pages would otherwise be faulted in one by one on
        # the sample path during the buffer's first pass, and the process's memory would creep
        # up for as long as that pass lasts (10 minutes for the hub's aligned buffer; #17).
        self._data.fill(0)
        self._ts.fill(0.0)
        # raw (uncorrected) stamps stay in this process: the recorder reads them, not the window
        self._raw = np.full(self.capacity, np.nan) if raw_stamps else None
        self._total = 0
        self._lock = threading.Lock()
        self._listeners: list[threading.Event] = []

    def subscribe(self, event: threading.Event) -> None:
        """Set ``event`` after every write (a consumer waits on it instead of polling)."""
        with self._lock:
            if event not in self._listeners:
                self._listeners.append(event)

    def unsubscribe(self, event: threading.Event) -> None:
        with self._lock:
            if event in self._listeners:
                self._listeners.remove(event)

    # ------------------------------------------------------------------ writing
    def write(
        self, data: np.ndarray, timestamps: np.ndarray, raw_timestamps: np.ndarray | None = None
    ) -> None:
        """Append ``data[n, channels]`` with ``timestamps[n]`` (and ``raw_timestamps[n]``, kept
        only by buffers made with ``raw_stamps=True``; NaN when not given).

        A chunk longer than the capacity keeps only its newest ``capacity`` samples (the older
        ones count as written and then overwritten, so cursor readers see them as ``lost``).
        """
        data = np.asarray(data)
        if data.ndim == 1:
            data = data.reshape(-1, self.n_channels)
        timestamps = np.asarray(timestamps, dtype=np.float64).reshape(-1)
        n = data.shape[0]
        if data.ndim != 2 or data.shape[1] != self.n_channels:
            raise ValueError(
                f"chunk has shape {data.shape}, ring buffer expects [n, {self.n_channels}]"
            )
        if timestamps.shape[0] != n:
            raise ValueError(f"{n} samples but {timestamps.shape[0]} timestamps")
        if n == 0:
            return
        raw = None
        if self._raw is not None:
            raw = (np.full(n, np.nan) if raw_timestamps is None
                   else np.asarray(raw_timestamps, dtype=np.float64).reshape(-1))
            if raw.shape[0] != n:
                raise ValueError(f"{n} samples but {raw.shape[0]} raw timestamps")
        with self._lock:
            if self._header is not None:  # other processes: these slots are being rewritten
                self._header[0] = self._total + n
            skipped = max(0, n - self.capacity)
            if skipped:
                data, timestamps = data[skipped:], timestamps[skipped:]
                raw = None if raw is None else raw[skipped:]
            start = (self._total + skipped) % self.capacity
            m = data.shape[0]
            first = min(m, self.capacity - start)
            self._data[start : start + first] = data[:first]
            self._ts[start : start + first] = timestamps[:first]
            if raw is not None:
                self._raw[start : start + first] = raw[:first]
            if first < m:
                self._data[: m - first] = data[first:]
                self._ts[: m - first] = timestamps[first:]
                if raw is not None:
                    self._raw[: m - first] = raw[first:]
            self._total += n
            if self._header is not None:
                self._header[1] = self._total
            listeners = list(self._listeners)
        for event in listeners:
            event.set()

    def clear(self) -> None:
        """Forget the contents (``total_written`` keeps counting, cursors see a loss)."""
        with self._lock:
            self._total += self.capacity  # every held sample becomes "overwritten"
            if self._header is not None:
                self._header[0] = self._header[1] = self._total

    # ------------------------------------------------------------------ state
    @property
    def total_written(self) -> int:
        """Number of samples ever written: the absolute index of the next sample."""
        with self._lock:
            return self._total

    @property
    def oldest_index(self) -> int:
        """Absolute index of the oldest sample still held."""
        with self._lock:
            return self._oldest()

    def __len__(self) -> int:
        with self._lock:
            return min(self._total, self.capacity)

    def last_timestamp(self) -> float | None:
        """Timestamp of the newest sample, or None when empty."""
        with self._lock:
            if self._total == 0:
                return None
            return float(self._ts[(self._total - 1) % self.capacity])

    # ------------------------------------------------------------------ reading
    def latest(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        """Copies of the newest ``min(n, held)`` samples and their timestamps, oldest first."""
        with self._lock:
            n = max(0, min(int(n), self._total, self.capacity))
            return self._copy(self._total - n, self._total)

    def tail(self, n: int) -> CursorRead:
        """Like :meth:`latest`, with ``next_index`` = ``total_written`` read atomically."""
        with self._lock:
            n = max(0, min(int(n), self._total, self.capacity))
            data, ts = self._copy(self._total - n, self._total)
            return CursorRead(data, ts, self._total, 0)

    def latest_seconds(self, seconds: float) -> tuple[np.ndarray, np.ndarray]:
        """Samples whose timestamp is within ``seconds`` of the newest sample (inclusive)."""
        with self._lock:
            if self._total == 0:
                return self._copy(0, 0)
            newest = self._ts[(self._total - 1) % self.capacity]
            start = self._first_index_at_or_after(newest - seconds, strict=False)
            return self._copy(start, self._total)

    def since(self, t: float) -> tuple[np.ndarray, np.ndarray]:
        """Samples with timestamp strictly greater than ``t`` (use the last seen timestamp)."""
        with self._lock:
            start = self._first_index_at_or_after(t, strict=True)
            return self._copy(start, self._total)

    def read_from(self, index: int, max_samples: int | None = None) -> CursorRead:
        """Lossless cursor read: every sample from absolute ``index`` on (at most ``max_samples``).

        If some requested samples were already overwritten, reading starts at the oldest held
        sample and ``lost`` says how many were skipped. An index beyond ``total_written`` is an
        error (it would silently skip future samples).
        """
        index = int(index)
        with self._lock:
            if index > self._total:
                raise ValueError(
                    f"cursor index {index} is ahead of the {self._total} samples written"
                )
            oldest = self._oldest()
            lost = max(0, oldest - index)
            start = max(index, oldest)
            stop = self._total if max_samples is None else min(self._total, start + max_samples)
            data, ts = self._copy(start, stop)
            raw = None if self._raw is None else self._copy_column(self._raw, start, stop)
            return CursorRead(data, ts, stop, lost, raw)

    # ------------------------------------------------------------------ internals
    def _oldest(self) -> int:
        return max(0, self._total - self.capacity)

    def _copy(self, start: int, stop: int) -> tuple[np.ndarray, np.ndarray]:
        """Copy absolute indices [start, stop) out of the ring (lock held)."""
        n = stop - start
        if n <= 0:
            return (
                np.empty((0, self.n_channels), dtype=self.dtype),
                np.empty(0, dtype=np.float64),
            )
        p = start % self.capacity
        first = min(n, self.capacity - p)
        if first == n:
            return self._data[p : p + n].copy(), self._ts[p : p + n].copy()
        data = np.concatenate((self._data[p:], self._data[: n - first]))
        ts = np.concatenate((self._ts[p:], self._ts[: n - first]))
        return data, ts

    def _copy_column(self, column: np.ndarray, start: int, stop: int) -> np.ndarray:
        """Copy absolute indices [start, stop) of a per-sample column (lock held)."""
        n = stop - start
        if n <= 0:
            return np.empty(0, dtype=column.dtype)
        p = start % self.capacity
        first = min(n, self.capacity - p)
        if first == n:
            return column[p : p + n].copy()
        return np.concatenate((column[p:], column[: n - first]))

    def _first_index_at_or_after(self, t: float, strict: bool) -> int:
        """Absolute index of the first held sample with ts > t (strict) or ts >= t (lock held)."""
        oldest = self._oldest()
        n = self._total - oldest
        if n == 0:
            return self._total
        side = "right" if strict else "left"
        p = oldest % self.capacity
        first = min(n, self.capacity - p)
        seg1 = self._ts[p : p + first]
        k = int(np.searchsorted(seg1, t, side=side))
        if k < first:
            return oldest + k
        seg2 = self._ts[: n - first]
        return oldest + first + int(np.searchsorted(seg2, t, side=side))
