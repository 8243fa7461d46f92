"""SessionWriter: records streams, events, predictions and calibration to one HDF5 file.

Every public method is thread-safe and returns at once: it only puts an operation on a bounded
queue. The writer's own thread applies the operations, writes the pending rows in one batch and
flushes the file every ``flush_interval`` seconds (default 0.5 s, so a killed process loses at
most about one second). A failure to write (disk full, I/O error) stops the recording, keeps the
file as last flushed, and is reported by :meth:`SessionWriter.status` and ``on_error``.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import queue
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any

import numpy as np

import kneegui
from kneegui.recording import layout
from kneegui.recording.errors import (
    OutputExistsError,
    RecordingError,
    not_writable,
    os_error_hint,
)
from kneegui.recording.naming import resolve_session_path
from kneegui.recording.storage import FaultHook, SessionStorage
from kneegui.recording.streaminfo import StreamSpec, stream_attrs


def lsl_now() -> float:
    """The local LSL clock (the time base of every timestamp in a session)."""
    import pylsl

    return float(pylsl.local_clock())


@dataclass
class SessionMetadata:
    """Who and what a session is about (stored as root attributes)."""

    subject_id: str = ""
    operator: str = ""
    notes: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def coerce(cls, value: SessionMetadata | Mapping[str, Any] | None) -> SessionMetadata:
        """Accept a SessionMetadata, a dict with the same keys (others go to ``extra``) or None."""
        if value is None:
            return cls()
        if isinstance(value, SessionMetadata):
            return value
        data = dict(value)
        known = {k: str(data.pop(k)) for k in ("subject_id", "operator", "notes") if k in data}
        return cls(**known, extra=data)


class WriterState(Enum):
    """Lifecycle of a SessionWriter."""

    CREATED = "created"
    RECORDING = "recording"
    STOPPED = "stopped"
    FAILED = "failed"


@dataclass(frozen=True)
class WriterStatus:
    """A snapshot of the writer for status bars and the CLI."""

    state: WriterState
    path: Path
    samples_written: dict[str, int]
    samples_queued: int
    dropped_samples: int
    lost_samples: int
    events_written: int
    predictions_written: int
    file_bytes: int  # bytes of data in the file (as of the last flush while recording)
    last_flush_lsl: float | None
    seconds_recorded: float
    error: str | None
    #: True once the closed file was compressed (see kneegui.recording.compact)
    compressed: bool = False
    #: a problem that cost no data (e.g. the file could not be compressed after the recording)
    warning: str | None = None

    @property
    def ok(self) -> bool:
        """False once the recording failed."""
        return self.state is not WriterState.FAILED


_STOP = object()


def _as_text(value: Any) -> str:
    """A marker value as text (bytes are decoded as UTF-8)."""
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)


class SessionWriter:
    """Write one session file from any thread; the HDF5 work happens on the writer thread.

    ``sources``: an ``acquisition.Hub``, a ``StreamReader`` or a list of readers; when given,
    :meth:`start` also starts a :class:`~kneegui.recording.pump.RecordingPump` that follows them.
    """

    def __init__(
        self,
        path_or_dir: str | Path,
        metadata: SessionMetadata | Mapping[str, Any] | None = None,
        sources: Any = None,
        *,
        flush_interval: float = 0.5,
        queue_size: int = 2048,
        max_pending_bytes: int = 8 * 1024 * 1024,
        fault_hook: FaultHook | None = None,
        on_error: Callable[[str], None] | None = None,
        compression: bool = True,
    ) -> None:
        if not 0 < flush_interval <= 1.0:
            raise ValueError("flush_interval must be in (0, 1] seconds (crash-safety promise)")
        self.metadata = SessionMetadata.coerce(metadata)
        try:
            self.path = resolve_session_path(path_or_dir, self.metadata.subject_id)
        except OutputExistsError:
            raise
        except OSError as exc:  # read-only drive, no permission, name too long...
            raise not_writable(exc, path_or_dir, "create the recording folder or file") from exc
        self.flush_interval = flush_interval
        self.max_pending_bytes = max_pending_bytes
        self.on_error = on_error
        self._sources = sources
        self._pump: Any = None
        self._queue: queue.Queue = queue.Queue(maxsize=queue_size)
        # recorded uncompressed (crash-safe), compressed once closed: kneegui.recording.compact
        self.compression = compression
        self._storage = SessionStorage(self.path, fault_hook, compress=False)
        self._compressed = False
        self._closed = threading.Event()  # the file is closed (complete or failed)
        self._warning: str | None = None
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._state = WriterState.CREATED
        self._error: str | None = None
        self._names: set[str] = set()
        self._stream_channels: dict[str, int] = {}
        self._string_streams: set[str] = set()
        self._dtypes: dict[str, np.dtype] = {}
        self._derived: set[str] = set()
        self._has_predictions = False
        self._written: dict[str, int] = {}
        self._queued_samples = 0
        self._dropped = 0
        self._lost = 0
        self._events_written = 0
        self._predictions_written = 0
        self._last_flush: float | None = None
        self._data_bytes = 0
        self._started_mono: float | None = None
        self._stopped_mono: float | None = None
        self._opened = threading.Event()

    # -- lifecycle -------------------------------------------------------------------------
    def start(self) -> SessionWriter:
        """Create the file and start the writer thread (and the pump, if sources were given)."""
        if self._state is not WriterState.CREATED:
            raise RecordingError("a SessionWriter can only be started once; create a new one")
        start_utc = dt.datetime.now(dt.UTC)
        try:
            self._storage.open(self._root_attrs(start_utc))
        except OutputExistsError:
            raise
        except OSError as exc:  # nothing recorded yet: leave no empty stub behind
            self._storage.abandon()
            with contextlib.suppress(OSError):
                if self.path.exists():
                    self.path.unlink()
            raise not_writable(exc, self.path, "create the session file") from exc
        self._last_flush = lsl_now()
        self._started_mono = time.monotonic()
        self._state = WriterState.RECORDING
        self._thread = threading.Thread(target=self._run, name="kneegui-session-writer",
                                        daemon=True)
        self._thread.start()
        if self._sources is not None:
            from kneegui.recording.pump import RecordingPump

            self._pump = RecordingPump.for_sources(self, self._sources)
            self._pump.start()
        return self

    def stop(self, timeout: float = 30.0, wait: bool = True) -> WriterStatus:
        """Stop the pump, write everything queued, mark the file complete and close it.

        With ``compression`` the closed file is then compressed on the writer thread (about
        1/200 of the recording's length). ``wait=True`` waits for that too, however long it
        takes (it always progresses); ``wait=False`` returns once the file is closed and
        complete (a GUI that must not block): the file is replaced by its compressed copy
        atomically later, see :meth:`wait_compressed`.
        """
        if self._pump is not None:
            self._pump.stop()
        if self._thread is not None and self._thread.is_alive():
            self._queue.put(_STOP)
            self._closed.wait(timeout)
            if wait:
                self.wait_compressed()
        return self.status()

    def wait_compressed(self, timeout: float | None = None) -> bool:
        """Wait until the writer thread finished (file closed and compressed); False on
        timeout."""
        if self._thread is None:
            return True
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def __enter__(self) -> SessionWriter:
        return self.start() if self._state is WriterState.CREATED else self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def recording(self) -> bool:
        """True while data is accepted."""
        return self._state is WriterState.RECORDING

    def status(self) -> WriterStatus:
        """A consistent snapshot of counters, state and the last error."""
        with self._lock:
            end = self._stopped_mono or time.monotonic()
            seconds = (end - self._started_mono) if self._started_mono else 0.0
            return WriterStatus(
                state=self._state,
                path=self.path,
                samples_written=dict(self._written),
                samples_queued=self._queued_samples,
                dropped_samples=self._dropped,
                lost_samples=self._lost,
                events_written=self._events_written,
                predictions_written=self._predictions_written,
                file_bytes=self._data_bytes if self._state is WriterState.RECORDING
                else self._storage.file_size(),
                last_flush_lsl=self._last_flush,
                seconds_recorded=seconds,
                error=self._error,
                compressed=self._compressed,
                warning=self._warning,
            )

    # -- declarations ----------------------------------------------------------------------
    def add_stream(self, info: Any, name: str | None = None) -> str:
        """Declare a stream (a ``StreamInfoView`` or :class:`StreamSpec`); returns its HDF5 name.

        The name is the sanitized stream name, made unique with ``_2``, ``_3``... Use the
        returned name with :meth:`write_samples`.
        """
        spec = StreamSpec.from_info(info)
        dtype = layout.storage_dtype(spec.channel_format)
        if spec.channel_count < 1:
            raise ValueError(f"stream {spec.name!r} has no channels; nothing to record")
        with self._lock:
            key = layout.unique_name(layout.sanitize_name(name or spec.name), self._names)
            self._names.add(key)
            self._stream_channels[key] = spec.channel_count
            self._dtypes[key] = dtype
            if layout.is_string_format(spec.channel_format):
                self._string_streams.add(key)
            self._written[key] = 0
        self._put(("stream", key, dtype, spec), block=True)
        return key

    # -- data ------------------------------------------------------------------------------
    def write_samples(
        self,
        stream: str,
        data: np.ndarray | Sequence,
        timestamps: np.ndarray | Sequence[float],
        *,
        raw_timestamps: np.ndarray | Sequence[float] | None = None,
        block: bool = False,
        timeout: float | None = None,
    ) -> bool:
        """Queue samples [n, channels] with their timestamps [n] for ``stream``.

        ``raw_timestamps`` [n]: the sender's stamps before any correction (NaN when not given).
        Never blocks unless ``block=True``; returns False (and counts the samples as dropped)
        when the queue is full or the recording is not running.
        """
        if stream not in self._stream_channels:
            raise KeyError(f"unknown stream {stream!r}; declare it with add_stream() first")
        ts = np.asarray(timestamps, dtype=np.float64).reshape(-1)
        n_ch = self._stream_channels[stream]
        arr = np.asarray(data)
        if stream in self._string_streams:
            arr = np.vectorize(_as_text, otypes=[object])(arr) if arr.size else arr.astype(object)
        arr = arr.reshape(len(ts), n_ch) if arr.size == len(ts) * n_ch else arr
        if arr.shape != (len(ts), n_ch):
            raise ValueError(
                f"stream {stream!r}: data shape {np.shape(data)} does not match "
                f"{len(ts)} timestamps x {n_ch} channels"
            )
        if len(ts) == 0:
            return True
        if raw_timestamps is None:
            raw = np.full(len(ts), np.nan)
        else:
            raw = np.array(raw_timestamps, dtype=np.float64).reshape(-1)
            if raw.shape != ts.shape:
                raise ValueError(f"stream {stream!r}: {len(raw)} raw timestamps for "
                                 f"{len(ts)} samples")
        if stream in self._string_streams:
            arr = arr.copy()
        else:
            try:
                arr = np.array(arr, dtype=self._dtypes[stream])  # a copy in the stored dtype
            except (TypeError, ValueError) as exc:
                raise ValueError(f"stream {stream!r}: samples are not numbers ({exc})") from exc
        ok = self._put(("samples", stream, arr, ts.copy(), raw), block=block, timeout=timeout)
        with self._lock:
            if ok:
                self._queued_samples += len(ts)
            else:
                self._dropped += len(ts)
        return ok

    def add_clock_offset(self, stream: str, t: float, offset: float) -> bool:
        """Record the clock offset applied to ``stream``'s stamps from local time ``t`` on."""
        if stream not in self._stream_channels:
            raise KeyError(f"unknown stream {stream!r}; declare it with add_stream() first")
        return self._put(("clock", stream, layout.CLOCK_OFFSETS, [float(t), float(offset)]),
                         block=False)

    def add_clock_measurement(
        self, stream: str, t: float, offset: float, round_trip: float = float("nan")
    ) -> bool:
        """Record one raw LSL ``time_correction`` measurement (local time, offset, round trip)."""
        if stream not in self._stream_channels:
            raise KeyError(f"unknown stream {stream!r}; declare it with add_stream() first")
        row = [float(t), float(offset), float(round_trip)]
        return self._put(("clock", stream, layout.CLOCK_MEASUREMENTS, row), block=False)

    def add_event(
        self, label: str, t: float | None = None, origin: str = "operator", duration: float = 0.0
    ) -> bool:
        """Record an event (operator marker, gap, reconnect, calibration step...).

        ``duration`` (s): 0 for an instant, else the span the event covers (a gap, an outage).
        """
        t = lsl_now() if t is None else float(t)
        return self._put(("event", t, str(label), str(origin), float(duration)), block=False)

    def note_lost(self, n_samples: int) -> None:
        """Count samples that never reached the writer (the pump fell behind a ring buffer)."""
        with self._lock:
            self._lost += int(n_samples)

    def add_prediction(
        self,
        t: float | Sequence[float],
        trajectory: np.ndarray | Sequence,
        model_id: str,
        horizons_ms: Sequence[float] | None = None,
    ) -> bool:
        """Record predictions: ``t`` scalar + ``trajectory`` [H], or ``t`` [n] + [n, H].

        ``horizons_ms`` defaults to 10, 20, ... ms (model at 100 Hz); it is fixed by the first
        prediction of the session.
        """
        ts = np.atleast_1d(np.asarray(t, dtype=np.float64))
        values = np.asarray(trajectory, dtype=np.float32).reshape(len(ts), -1)
        horizons = None if horizons_ms is None else np.asarray(horizons_ms, dtype=np.float64)
        return self._put(("prediction", ts, values, str(model_id), horizons), block=False)

    def add_derived(
        self,
        name: str,
        data: np.ndarray,
        timestamps: np.ndarray | Sequence[float],
        *,
        rate: float = 0.0,
        labels: Sequence[str] = (),
        units: Sequence[str] = (),
        source: str = "",
        description: str = "",
        attrs: Mapping[str, Any] | None = None,
    ) -> bool:
        """Record a derived series under ``/derived/<name>`` (e.g. ``emg_filtered/<stream>``).

        The attributes (rate, labels, units, source, description and any extra ``attrs``, e.g.
        the filter settings) are taken from the first call; change them with
        :meth:`set_derived_attrs`.
        """
        path = "/".join(layout.sanitize_name(part) for part in name.split("/") if part)
        if not path or path == "predictions":
            raise ValueError(f"invalid derived series name {name!r}")
        ts = np.asarray(timestamps, dtype=np.float64).reshape(-1)
        arr = np.asarray(data)
        arr = arr.reshape(len(ts), -1)
        all_attrs = {"rate": float(rate), "channel_labels": list(labels),
                     "channel_units": list(units), "source": source,
                     "description": description, **dict(attrs or {})}
        return self._put(("derived", path, arr.copy(), ts.copy(), all_attrs), block=False)

    def set_derived_attrs(self, name: str, attrs: Mapping[str, Any]) -> bool:
        """Update attributes of ``/derived/<name>`` (applied after its data queued so far)."""
        path = "/".join(layout.sanitize_name(part) for part in name.split("/") if part)
        return self._put(("derived_attrs", path, dict(attrs)), block=True, timeout=5.0)

    def add_calibration(
        self, name: str, arrays: Mapping[str, np.ndarray], attrs: Mapping[str, Any] | None = None
    ) -> bool:
        """Store calibration results under ``/calibration/<name>`` (arrays + attributes)."""
        arrays = {layout.sanitize_name(k, "array"): np.asarray(v) for k, v in arrays.items()}
        return self._put(("calibration", layout.sanitize_name(name, "calibration"), arrays,
                          dict(attrs or {})), block=True, timeout=5.0)

    def add_model(self, model_id: str, card_json: str, sha256: str) -> bool:
        """Store a model card (JSON text) and its weights hash under ``/models/<id>``."""
        return self._put(("model", str(model_id), str(card_json), str(sha256)),
                         block=True, timeout=5.0)

    def set_notes(self, notes: str) -> bool:
        """Replace the session notes (root attribute ``notes``)."""
        return self._put(("attrs", {"notes": str(notes)}), block=True, timeout=5.0)

    # -- internals -------------------------------------------------------------------------
    def _root_attrs(self, start_utc: dt.datetime) -> dict[str, Any]:
        md = self.metadata
        return {
            "format": layout.FORMAT_NAME,
            "format_version": layout.FORMAT_VERSION,
            "subject_id": md.subject_id,
            "operator": md.operator,
            "notes": md.notes,
            "app": "kneegui",
            "app_version": kneegui.__version__,
            "session_start_time": start_utc.isoformat(timespec="milliseconds").replace(
                "+00:00", "Z"),
            "session_start_lsl": lsl_now(),
            "session_end_time": "",
            "complete": False,
            # fixed size, so that a failure can be written in place even on a full disk
            "writer_error": np.array(b"", dtype=layout.error_attr_dtype()),
            **{f"meta_{k}": v for k, v in md.extra.items()},
        }

    def _put(self, item: tuple, *, block: bool, timeout: float | None = None) -> bool:
        if self._state is not WriterState.RECORDING:
            if self._state is WriterState.CREATED and item[0] == "stream":
                raise RecordingError("start() the SessionWriter before declaring streams")
            return False
        try:
            self._queue.put(item, block=block, timeout=timeout)
        except queue.Full:
            return False
        return True

    def _run(self) -> None:
        next_flush = time.monotonic() + self.flush_interval
        stopping = False
        try:
            while not stopping:
                wait = max(0.0, next_flush - time.monotonic())
                try:
                    item = self._queue.get(timeout=wait)
                except queue.Empty:
                    item = None
                if item is _STOP:
                    stopping = True
                elif item is not None:
                    self._apply(item)
                    # drain whatever else is ready without waiting
                    while not stopping:
                        try:
                            item = self._queue.get_nowait()
                        except queue.Empty:
                            break
                        if item is _STOP:
                            stopping = True
                        else:
                            self._apply(item)
                        if self._storage.pending_bytes > self.max_pending_bytes:
                            break
                now = time.monotonic()
                if (stopping or now >= next_flush
                        or self._storage.pending_bytes > self.max_pending_bytes):
                    self._commit_and_flush()
                    next_flush = now + self.flush_interval
            self._finish()
        except Exception as exc:  # noqa: BLE001 - every failure must become a visible status
            self._fail(exc)

    def _commit_and_flush(self) -> None:
        pending = {k: s.pending_rows for k, s in self._storage.sets.items()}
        self._storage.commit()
        self._storage.flush()
        data_bytes = self._storage.data_size()
        with self._lock:
            self._data_bytes = data_bytes
            for key, rows in pending.items():
                if key.startswith(layout.STREAMS + "/") and key.count("/") == 1:
                    name = key[len(layout.STREAMS) + 1:]
                    self._written[name] = self._written.get(name, 0) + rows
                    self._queued_samples -= rows
                elif key == layout.EVENTS:
                    self._events_written += rows
                elif key == layout.PREDICTIONS:
                    self._predictions_written += rows
            self._last_flush = lsl_now()

    def _finish(self) -> None:
        end = dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        self._storage.close({"session_end_time": end, "complete": True})
        with self._lock:
            self._state = WriterState.STOPPED
            self._stopped_mono = time.monotonic()
        worker = None
        if self.compression:
            # a non-daemon thread, started before stop() can return: an exiting program waits
            # for it instead of leaving a half-written copy (the session is complete either way)
            worker = threading.Thread(target=self._compress, name="kneegui-session-compress",
                                      daemon=False)
            worker.start()
        self._closed.set()
        if worker is not None:
            worker.join()

    def _compress(self) -> None:
        """Compress the closed, complete file; a failure keeps it uncompressed (no data lost)."""
        from kneegui.recording.compact import compact

        try:
            compact(self.path)
        except Exception as exc:  # noqa: BLE001 - the uncompressed file is complete and valid
            reason = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
            with self._lock:
                self._warning = (f"{self.path} was kept uncompressed: compressing it after the "
                                 f"recording failed ({reason}); all data are in the file")
            return
        with self._lock:
            self._compressed = True

    def _fail(self, exc: BaseException) -> None:
        reason, hint = os_error_hint(exc)
        if not isinstance(exc, OSError):
            hint = "please report this with the file"
        message = (
            f"recording stopped: writing {self.path} failed ({reason}); everything flushed "
            f"before the failure is kept in the file; {hint}, then start a new recording"
        )
        with self._lock:
            self._state = WriterState.FAILED
            self._error = message
            self._stopped_mono = time.monotonic()
            self._dropped += self._queued_samples  # accepted but never written
            self._queued_samples = 0
        with contextlib.suppress(Exception):  # best effort: the disk may be unusable
            self._storage.record_error(message)
        self._storage.abandon()
        self._closed.set()
        # discard queued items so producers blocked on a full queue are released
        while True:
            try:
                self._queue.get_nowait()
            except queue.Empty:
                break
        if self.on_error is not None:
            with contextlib.suppress(Exception):
                self.on_error(message)

    def _apply(self, item: tuple) -> None:
        kind = item[0]
        st = self._storage
        if kind == "samples":
            _, stream, data, ts, raw = item
            st.sets[f"{layout.STREAMS}/{stream}"].append(
                data=data, timestamps=ts, **{layout.RAW_STAMPS: raw})
        elif kind == "event":
            _, t, label, origin, duration = item
            st.sets[layout.EVENTS].append(
                timestamp=np.array([t]), label=np.array([label], dtype=object),
                origin=np.array([origin], dtype=object), duration=np.array([duration]))
        elif kind == "clock":
            _, stream, dataset, row = item
            st.sets[f"{layout.STREAMS}/{stream}/{dataset}"].append(**{dataset: np.array([row])})
        elif kind == "prediction":
            _, ts, values, model_id, horizons = item
            if layout.PREDICTIONS not in st.sets:
                if horizons is None:
                    horizons = layout.default_horizons_ms(values.shape[1])
                st.create_predictions(values.shape[1], horizons)
            st.sets[layout.PREDICTIONS].append(
                timestamps=ts, values=values,
                model_id=np.array([model_id] * len(ts), dtype=object))
        elif kind == "derived":
            _, path, data, ts, attrs = item
            full = f"{layout.DERIVED}/{path}"
            if full not in st.sets:
                st.create_series(full, data.dtype, data.shape[1], attrs)
            st.sets[full].append(data=data, timestamps=ts)
        elif kind == "stream":
            _, key, dtype, spec = item
            st.create_stream(key, dtype, spec.channel_count, stream_attrs(spec))
        elif kind == "calibration":
            _, name, arrays, attrs = item
            st.write_calibration(name, arrays, attrs)
        elif kind == "model":
            _, model_id, card, sha = item
            st.write_model(model_id, layout.sanitize_name(model_id, "model"), card, sha)
        elif kind == "attrs":
            st.set_root_attrs(item[1])
        elif kind == "derived_attrs":
            _, path, attrs = item
            full = f"{layout.DERIVED}/{path}"
            if full in st.sets:
                st.set_group_attrs(full, attrs)
        else:  # pragma: no cover - internal
            raise RuntimeError(f"unknown writer operation {kind!r}")
