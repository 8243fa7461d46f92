"""The HDF5 side of the writer: growing datasets, batched appends, flushes.

Only the writer thread touches a :class:`SessionStorage`. Appends are kept in memory and written
in one batch by :meth:`SessionStorage.commit`, directly followed by :meth:`SessionStorage.flush`,
so the file on disk is consistent except during that short burst (see docs/session-format.md,
"Crash safety").

Disk space for a batch is reserved with ``posix_fallocate`` *before* HDF5 sees the batch, so a
full disk (or a file-size limit) is detected while the file is still consistent: the batch is
dropped, the file is closed as last flushed, and it stays readable. ``fault_hook(op)`` is called
before every reserve/commit/flush with ``op`` in {"reserve", "commit", "flush"} and may raise
(used to inject I/O failures in tests).
"""

from __future__ import annotations

import contextlib
import errno
import json
import math
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from kneegui.recording import layout

FaultHook = Callable[[str], None]
_TARGET_CHUNK_BYTES = 128 * 1024
#: Room for HDF5 metadata (B-tree nodes, object headers, heaps) per batch.
METADATA_MARGIN_BYTES = 1024 * 1024
#: The margin used when the generous one no longer fits (the last megabyte of a full disk
#: or below a file-size limit): enough for the metadata of one batch.
TIGHT_MARGIN_BYTES = 128 * 1024
_VLEN_POINTER_BYTES = 16
#: HDF5 filters on every numeric dataset of a finished session: byte shuffle + deflate level 1.
#: Deflate is built into every HDF5 library (MATLAB, h5dump, HDFView read it without plugins).
#: A live recording is written without them and compressed once closed (recording.compact:
#: rewriting compressed chunks is not crash-safe); XDF imports write them directly.
COMPRESSION: dict[str, Any] = {"compression": "gzip", "compression_opts": 1, "shuffle": True}
#: HDF5 chunk cache of the file (datasets opened without their own, e.g. on reopen). Each dataset
#: the recorder appends to gets its own cache of :func:`chunk_cache_bytes`: room for exactly the
#: one chunk it appends to. HDF5 keeps every chunk a cache has room for, so a bigger cache fills
#: with old chunks for as long as there is room (1 MiB per dataset: +1.2 MB/min; 512 KiB: ~3 MB
#: more over the first 11 minutes, the 100 Hz stream needing 164 s per chunk; issue #17).
CHUNK_CACHE_BYTES = 512 * 1024


def chunk_cache_bytes(chunk_bytes: int) -> int:
    """A dataset's chunk cache: one chunk fits (an append never re-reads it), two do not."""
    return chunk_bytes + chunk_bytes // 2 + 1024


def chunk_rows(row_bytes: int, is_string: bool = False) -> int:
    """Rows per chunk so one chunk holds about 128 KiB (strings: 256 rows)."""
    if is_string:
        return 256
    rows = max(64, _TARGET_CHUNK_BYTES // max(1, row_bytes))
    return int(min(16384, 1 << (int(rows).bit_length() - 1)))


def attr_value(value: Any) -> Any:
    """Turn a Python value into something HDF5 stores as an attribute (dicts become JSON)."""
    if value is None:
        return ""
    if isinstance(value, Mapping):
        return json.dumps(value, default=str)
    if isinstance(value, (list, tuple)):
        if all(isinstance(v, str) for v in value):
            return np.array(list(value), dtype=layout.string_dtype())
        if all(isinstance(v, (int, float, np.number)) for v in value):
            return np.asarray(value)
        return json.dumps(list(value), default=str)
    return value


def set_attrs(obj: h5py.HLObject, attrs: Mapping[str, Any]) -> None:
    """Write every attribute (converted with :func:`attr_value`)."""
    for key, value in attrs.items():
        obj.attrs[key] = attr_value(value)


class ColumnSet:
    """Parallel growing datasets of equal length (e.g. ``data`` and ``timestamps``).

    ``columns`` maps dataset name -> (dtype, trailing shape).
    """

    def __init__(
        self,
        group: h5py.Group,
        columns: Mapping[str, tuple[np.dtype, tuple[int, ...]]],
        compress: bool = True,
    ) -> None:
        self.datasets: dict[str, h5py.Dataset] = {}
        self._pending: dict[str, list[np.ndarray]] = {name: [] for name in columns}
        self._chunks: dict[str, tuple[int, int]] = {}  # name -> (rows per chunk, chunk bytes)
        self.pending_rows = 0
        self.pending_bytes = 0
        for name, (dtype, trailing) in columns.items():
            dtype = np.dtype(dtype)
            is_string = h5py.check_string_dtype(dtype) is not None
            item = _VLEN_POINTER_BYTES if is_string else dtype.itemsize
            row_bytes = int(np.prod(trailing, dtype=np.int64)) * item
            rows = chunk_rows(row_bytes, is_string)
            self._chunks[name] = (rows, rows * row_bytes)
            if name in group:
                self.datasets[name] = group[name]
                continue
            self.datasets[name] = group.create_dataset(
                name,
                shape=(0, *trailing),
                maxshape=(None, *trailing),
                dtype=dtype,
                chunks=(rows, *trailing) if trailing else (rows,),
                rdcc_nbytes=chunk_cache_bytes(rows * row_bytes),
                **(COMPRESSION if compress and not is_string else {}),
            )

    @property
    def length(self) -> int:
        """Rows already written to the file (not counting pending rows)."""
        return int(next(iter(self.datasets.values())).shape[0])

    def bytes_needed(self) -> int:
        """Upper bound of the file space the pending rows will take (new chunks + strings).

        A chunk gets its whole space when it is first written, so only chunks not touched
        before count.
        """
        if self.pending_rows == 0:
            return 0
        total = 0
        length = self.length
        for name, (rows, chunk_bytes) in self._chunks.items():
            new_chunks = math.ceil((length + self.pending_rows) / rows) - math.ceil(length / rows)
            total += new_chunks * chunk_bytes
            for part in self._pending[name]:
                if part.dtype == object:
                    total += sum(len(str(v).encode()) + 32 for v in part.reshape(-1))
        return total

    def append(self, **columns: np.ndarray) -> None:
        """Queue rows (all columns must have the same number of rows)."""
        lengths = {len(v) for v in columns.values()}
        if len(lengths) != 1 or set(columns) != set(self._pending):
            raise ValueError(f"columns {sorted(columns)} with lengths {lengths} do not match")
        n = lengths.pop()
        if n == 0:
            return
        for name, values in columns.items():
            self._pending[name].append(values)
            self.pending_bytes += values.nbytes
        self.pending_rows += n

    def commit(self) -> int:
        """Write the pending rows to the file; returns how many rows were written."""
        n_new = self.pending_rows
        if n_new == 0:
            return 0
        start = self.length
        for name, parts in self._pending.items():
            ds = self.datasets[name]
            block = parts[0] if len(parts) == 1 else np.concatenate(parts, axis=0)
            ds.resize(start + n_new, axis=0)
            ds[start : start + n_new] = block
            parts.clear()
        self.pending_rows = 0
        self.pending_bytes = 0
        return n_new


class SessionStorage:
    """One open session file, written by a single thread."""

    def __init__(
        self, path: Path, fault_hook: FaultHook | None = None, compress: bool = True
    ) -> None:
        self.path = Path(path)
        self.fault_hook = fault_hook
        self.compress = compress
        self.file: h5py.File | None = None
        self.sets: dict[str, ColumnSet] = {}
        self._fd: int | None = None

    # -- lifecycle -------------------------------------------------------------------------
    def open(self, root_attrs: Mapping[str, Any]) -> None:
        """Create the file (refusing to overwrite) with the root attributes and groups."""
        try:
            self.file = h5py.File(self.path, "w-", track_order=True,
                                  rdcc_nbytes=CHUNK_CACHE_BYTES)
        except FileExistsError as exc:  # pragma: no cover - the race after resolve_session_path
            raise FileExistsError(f"{self.path} appeared meanwhile; not overwriting it") from exc
        set_attrs(self.file, root_attrs)
        for group in (layout.STREAMS, layout.DERIVED, layout.CALIBRATION, layout.MODELS):
            self.file.create_group(group, track_order=True)
        events = self.file.create_group(layout.EVENTS)
        events.attrs["description"] = "operator markers and acquisition/recording events"
        string = layout.string_dtype()
        self.sets[layout.EVENTS] = ColumnSet(
            events,
            {"timestamp": (np.dtype("f8"), ()), "label": (string, ()), "origin": (string, ()),
             "duration": (np.dtype("f8"), ())},
            self.compress,
        )
        events["timestamp"].attrs["unit"] = "s"
        events["duration"].attrs["unit"] = "s"
        events["duration"].attrs["description"] = "0 for an instant, else the span it covers"
        self._fd = os.open(self.path, os.O_RDWR)
        self.reserve(METADATA_MARGIN_BYTES)
        self.flush()

    def close(self, final_attrs: Mapping[str, Any] | None = None) -> None:
        """Commit what is pending, write ``final_attrs`` on the root and close."""
        if self.file is None:
            return
        try:
            self.commit()
            if final_attrs:
                set_attrs(self.file, final_attrs)
            self.flush()
        finally:
            f, self.file = self.file, None
            end_of_data = f.id.get_filesize()
            f.close()
            self._close_fd()
        # give back the space reserved but not used (HDF5 ignores bytes past its end of data)
        with contextlib.suppress(OSError):
            if self.path.stat().st_size > end_of_data:
                os.truncate(self.path, end_of_data)

    def abandon(self) -> None:
        """Close after a failure without trying to write anything more than HDF5 must."""
        f, self.file = self.file, None
        end_of_data = None
        if f is not None:
            with contextlib.suppress(Exception):  # the failure was already reported
                end_of_data = f.id.get_filesize()
                f.close()
        self._close_fd()
        if end_of_data:  # release the reserved space on a full disk
            with contextlib.suppress(OSError):
                if self.path.stat().st_size > end_of_data:
                    os.truncate(self.path, end_of_data)

    def _close_fd(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            with contextlib.suppress(OSError):
                os.close(fd)

    # -- object creation -------------------------------------------------------------------
    def _root(self) -> h5py.File:
        if self.file is None:
            raise RuntimeError("session file is not open")
        return self.file

    def create_stream(
        self, name: str, dtype: np.dtype, n_channels: int, attrs: Mapping[str, Any]
    ) -> None:
        """``/streams/<name>``: ``data`` [n, ch], ``timestamps`` and ``timestamps_raw`` [n],
        ``clock_offsets`` [m, 2] and ``clock_measurements`` [k, 3]."""
        group = self._root()[layout.STREAMS].create_group(name)
        set_attrs(group, attrs)
        key = f"{layout.STREAMS}/{name}"
        f8 = np.dtype("f8")
        self.sets[key] = ColumnSet(
            group, {"data": (dtype, (n_channels,)), "timestamps": (f8, ()),
                    layout.RAW_STAMPS: (f8, ())}, self.compress)
        set_attrs(group["timestamps"], {
            "unit": "s", "clock": "local LSL clock (pylsl.local_clock), corrected",
            "description": "sender stamp + applied clock offset, dejittered (regular rates), "
                           "strictly increasing"})
        set_attrs(group[layout.RAW_STAMPS], {
            "unit": "s", "clock": "the sender's LSL clock, as received",
            "description": "the stamp the sender gave each sample, no correction (NaN where "
                           "unknown)"})
        self.sets[f"{key}/{layout.CLOCK_OFFSETS}"] = ColumnSet(
            group, {layout.CLOCK_OFFSETS: (f8, (2,))}, self.compress)
        set_attrs(group[layout.CLOCK_OFFSETS], {
            "columns": ["time", "offset"], "unit": "s",
            "description": "offset applied to the sender stamps from `time` (local clock) on: "
                           "the median of the last 12 measurements, in force from just after "
                           "the measurement that changed it"})
        self.sets[f"{key}/{layout.CLOCK_MEASUREMENTS}"] = ColumnSet(
            group, {layout.CLOCK_MEASUREMENTS: (f8, (3,))}, self.compress)
        set_attrs(group[layout.CLOCK_MEASUREMENTS], {
            "columns": ["time", "offset", "round_trip"], "unit": "s",
            "description": "every LSL time_correction measurement: local time it was taken, "
                           "offset (local - sender clock), round-trip time of the probe "
                           "(NaN where unknown)"})

    def create_series(
        self, path: str, dtype: np.dtype, n_channels: int, attrs: Mapping[str, Any]
    ) -> None:
        """A derived time series: ``<path>/data`` [n, ch] and ``<path>/timestamps``."""
        group = self._root().require_group(path)
        set_attrs(group, attrs)
        self.sets[path] = ColumnSet(
            group, {"data": (dtype, (n_channels,)), "timestamps": (np.dtype("f8"), ())},
            self.compress)
        group["timestamps"].attrs["unit"] = "s"

    def create_predictions(self, n_horizons: int, horizons_ms: np.ndarray) -> None:
        """``/derived/predictions`` with ``timestamps``, ``values`` [n, H] and ``model_id``."""
        group = self._root().require_group(layout.PREDICTIONS)
        group.attrs["horizons_ms"] = np.asarray(horizons_ms, dtype="f8")
        group.attrs["unit"] = "deg"
        group.attrs["description"] = "predicted future knee angle; row i, column j = angle " \
            "expected at timestamps[i] + horizons_ms[j] / 1000"
        self.sets[layout.PREDICTIONS] = ColumnSet(
            group,
            {
                "timestamps": (np.dtype("f8"), ()),
                "values": (np.dtype("f4"), (n_horizons,)),
                "model_id": (layout.string_dtype(), ()),
            },
            self.compress,
        )
        group["timestamps"].attrs["unit"] = "s"

    def write_calibration(
        self, name: str, arrays: Mapping[str, np.ndarray], attrs: Mapping[str, Any]
    ) -> None:
        """``/calibration/<name>/<array>`` plus attributes (an existing name is replaced)."""
        parent = self._root()[layout.CALIBRATION]
        if name in parent:
            del parent[name]
        group = parent.create_group(name)
        for key, value in arrays.items():
            arr = np.asarray(value)
            if arr.dtype.kind in "UO":
                arr = arr.astype(object).astype(layout.string_dtype())
            group.create_dataset(key, data=arr)
        set_attrs(group, attrs)

    def write_model(self, model_id: str, name: str, card_json: str, sha256: str) -> None:
        """``/models/<name>`` with the card as a JSON string dataset and its hash."""
        parent = self._root()[layout.MODELS]
        if name in parent:
            return  # same model already stored
        group = parent.create_group(name)
        group.create_dataset("card", data=card_json, dtype=layout.string_dtype())
        group.attrs["model_id"] = model_id
        group.attrs["sha256"] = sha256

    def set_root_attrs(self, attrs: Mapping[str, Any]) -> None:
        """Update root attributes (e.g. notes added during the session)."""
        set_attrs(self._root(), attrs)

    def set_group_attrs(self, path: str, attrs: Mapping[str, Any]) -> None:
        """Update the attributes of an existing group (e.g. new filter settings)."""
        set_attrs(self._root()[path], attrs)

    # -- data ------------------------------------------------------------------------------
    @property
    def pending_bytes(self) -> int:
        """Memory held by rows not yet written."""
        return sum(s.pending_bytes for s in self.sets.values())

    def bytes_needed(self, margin: int = METADATA_MARGIN_BYTES) -> int:
        """File space the next :meth:`commit` + :meth:`flush` may need."""
        return sum(s.bytes_needed() for s in self.sets.values()) + margin

    def reserve(self, nbytes: int) -> None:
        """Make sure ``nbytes`` past HDF5's current end of data are allocated on disk.

        Raises ``OSError`` (ENOSPC, EFBIG...) *before* HDF5 touches the file when space is
        missing, so the file stays consistent. (HDF5 trims the file to its end of data at every
        flush, so the reservation is renewed for every batch.)
        """
        end = int(self._root().id.get_filesize())
        target = end + int(nbytes)
        if self._fd is None or os.fstat(self._fd).st_size >= target:
            return
        if self.fault_hook is not None:
            self.fault_hook("reserve")
        try:
            os.posix_fallocate(self._fd, 0, target)
        except OSError as exc:
            if exc.errno in (errno.EOPNOTSUPP, errno.EINVAL):
                return  # filesystem cannot reserve: HDF5 reports a full disk itself
            raise

    def commit(self) -> int:
        """Reserve space, then write all pending rows; returns the number of rows written."""
        try:
            self.reserve(self.bytes_needed())
        except OSError as exc:
            if exc.errno not in (errno.ENOSPC, errno.EFBIG, errno.EDQUOT):
                raise
            self.reserve(self.bytes_needed(TIGHT_MARGIN_BYTES))  # use the last free space
        if self.fault_hook is not None:
            self.fault_hook("commit")
        return sum(s.commit() for s in self.sets.values())

    def flush(self) -> None:
        """Ask HDF5 to push everything to the operating system (file consistent on disk)."""
        if self.fault_hook is not None:
            self.fault_hook("flush")
        self._root().flush()

    def record_error(self, message: str) -> None:
        """Write ``message`` into the root attribute ``writer_error`` and flush.

        The attribute has a fixed size (``layout.ERROR_ATTR_BYTES``), so it is overwritten in
        place and needs no new file space: this works on a full disk too.
        """
        root = self._root()
        text = message.encode("utf-8")[: layout.ERROR_ATTR_BYTES]
        text = text.decode("utf-8", "ignore").encode("utf-8")  # no character cut in half
        if "writer_error" in root.attrs:
            root.attrs.modify("writer_error", np.array(text, dtype=layout.error_attr_dtype()))
        else:
            root.attrs["writer_error"] = np.array(text, dtype=layout.error_attr_dtype())
        root.flush()

    def data_size(self) -> int:
        """Bytes of HDF5 data in the file (without space reserved ahead); writer thread only."""
        return int(self._root().id.get_filesize()) if self.file is not None else 0

    def file_size(self) -> int:
        """Bytes on disk right now (may include space reserved for the next batch)."""
        try:
            return self.path.stat().st_size
        except OSError:
            return 0
