"""The window's session: the same API as :class:`~kneegui.live.session.LiveSession`, with the
sample path (readers, hub, prediction worker, outlet, recorder) in a predictor process of its
own (:mod:`kneegui.live.service`).

Why a process: in one process the window's painting and the sample path share one interpreter
lock, and a prediction waits for the window's Python work (measured with
``benchmarks/live_latency.py``, see docs/architecture.md). Here the window only reads the
predictor's ring buffers from shared memory (:class:`~kneegui.acquisition.shared.RingView`:
the snapshots the plots draw and the aligned rows the calibration wizard captures) and sends
commands over a pipe; status and events come on request, at most a few times a second.

The process starts at the first ``connect`` or ``load_model`` and ends with :meth:`close`. If it
dies, every command raises :class:`PredictorProcessError` with what to do.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from kneegui.live.session import ConnectedStream, LiveSession

#: Seconds a status snapshot is reused before the predictor is asked again.
STATUS_MAX_AGE = 0.2
#: Seconds to wait for the predictor process to answer a command.
CALL_TIMEOUT = 60.0


class PredictorProcessError(RuntimeError):
    """The predictor process is gone or did not answer; the message says what to do."""


class _Stats:
    """The read side of ``kneegui.live.metrics.RollingStats`` over values sent by the
    predictor."""

    def __init__(self, values: Any = (), count: int = 0) -> None:
        self._values = np.asarray(values, np.float64)
        self.count = int(count)  # values ever added (the window holds the newest)

    def values(self) -> np.ndarray:
        return self._values.copy()

    def percentile(self, q: float) -> float | None:
        return float(np.percentile(self._values, q)) if self._values.size else None

    def median(self) -> float | None:
        return self.percentile(50)


class _ReaderMirror:
    """A stream reader as the window sees it: its buffer (shared) and its status."""

    def __init__(self, remote: RemoteSession, info: Any, role: str, channels: tuple,
                 spec: dict | None) -> None:
        from kneegui.acquisition import Role
        from kneegui.acquisition.shared import RingView

        self._remote = remote
        self.info = info
        self.role = Role[role]
        self.channels = list(channels or ())
        self.buffer = RingView(spec) if spec else None
        self._events: deque = deque(maxlen=1000)

    def latest(self, seconds: float):
        return self.buffer.latest_seconds(seconds)

    def since(self, t: float):
        return self.buffer.since(t)

    def read_from(self, index: int, max_samples: int | None = None):
        return self.buffer.read_from(index, max_samples)

    def status(self):
        return self._remote._status().get("readers", {}).get(self.info.uid)

    def events(self) -> list:
        self._remote._status()
        out = list(self._events)
        self._events.clear()
        return out


@dataclass(frozen=True)
class _Assignment:
    role: Any
    reader: _ReaderMirror
    channels: list[int]


class _HubMirror:
    """The hub's read API (aligned rows, filtered EMG) over its shared buffers."""

    def __init__(self, remote: RemoteSession, layout: dict, readers: list[_ReaderMirror]) -> None:
        from kneegui.acquisition import Role
        from kneegui.acquisition.hub import AlignedRows
        from kneegui.acquisition.shared import RingView

        self._remote = remote
        self.model_rate = float(layout["model_rate"])
        columns = {Role[k]: slice(*v) for k, v in layout["columns"].items()}
        self._rows = AlignedRows(RingView(layout["aligned"]), columns) if layout["aligned"] \
            else None
        self._emg = {m: RingView(spec) for m, spec in (layout["emg"] or {}).items()}
        self._readers = readers
        self._assigned = {Role[k]: v for k, v in layout["assigned"].items()}

    @property
    def readers(self) -> list[_ReaderMirror]:
        return list(self._readers)

    def assignment(self, role: Any) -> _Assignment | None:
        for r in self._readers:
            if r.role == role and role in self._assigned:
                return _Assignment(role, r, list(self._assigned[role]))
        return None

    def emg_buffer(self, mode: str):
        if mode not in ("filtered", "envelope"):
            raise ValueError(f"EMG buffer mode must be 'filtered' or 'envelope', got {mode!r}")
        if mode not in self._emg:
            raise RuntimeError("no EMG stream is running in the hub")
        return self._emg[mode]

    def aligned_count(self) -> int:
        return 0 if self._rows is None else self._rows.count()

    def latest_aligned(self, n: int):
        return None if self._rows is None else self._rows.latest(n)

    def aligned_from(self, index: int, max_rows: int | None = None):
        return None if self._rows is None else self._rows.read_from(index, max_rows)

    @property
    def filter_settings(self):
        """The display/recording EMG filter the predictor runs now."""
        return self._remote._status().get("filter_settings")

    def statuses(self) -> list:
        return [r.status() for r in self._readers]

    def status(self):
        return self._remote._status().get("hub")


class _WorkerMirror:
    """The prediction worker as the window sees it: its history (shared) and its counters."""

    def __init__(self, remote: RemoteSession, layout: dict) -> None:
        from kneegui.acquisition.shared import RingView

        self._remote = remote
        self.history = RingView(layout["history"])
        self.model_rate = float(layout["model_rate"])
        self.n_horizons = int(layout["n_horizons"])
        self.model_id = layout["model_id"]
        self.rows_needed = int(layout["rows_needed"])

    def _get(self, key: str, default: Any = None) -> Any:
        return (self._remote._status().get("worker") or {}).get(key, default)

    @property
    def predictions(self) -> int:
        return self.history.total_written

    def record_latencies(self) -> None:
        """Keep every prediction's timing in the predictor (benchmarks; see PredictionWorker)."""
        self._remote._call("record_latencies")

    @property
    def latency_log(self) -> list | None:
        return self._remote._call("latency_log")

    @property
    def skipped(self) -> int:
        return int(self._get("skipped", 0))

    @property
    def errors(self) -> int:
        return int(self._get("errors", 0))

    @property
    def last_error(self) -> str | None:
        return self._get("last_error")

    @property
    def running(self) -> bool:
        return bool(self._get("running", False))

    @property
    def inference_latency(self) -> _Stats:
        return _Stats(*self._get("inference", ((), 0)))

    @property
    def end_to_end_latency(self) -> _Stats:
        return _Stats(*self._get("end_to_end", ((), 0)))


class _WriterProxy:
    """The recorder's API the window uses, carried out by the predictor process."""

    def __init__(self, remote: RemoteSession, path: Path) -> None:
        self._remote = remote
        self.path = path

    def status(self):
        return self._remote._status().get("writer")

    def add_event(self, label: str, t: float | None = None, origin: str = "operator") -> bool:
        return self._remote._call("writer", "add_event", (label,), {"t": t, "origin": origin})

    def add_calibration(self, name: str, arrays: dict, attrs: dict) -> Any:
        return self._remote._call("writer", "add_calibration", (name, arrays, attrs), {})

    def add_model(self, model_id: str, card_json: str, sha256: str) -> Any:
        return self._remote._call("writer", "add_model", (model_id, card_json, sha256), {})


@dataclass
class _OutletView:
    name: str
    source_id: str
    pushed: int = 0


class RemoteSession(LiveSession):
    """:class:`LiveSession` with the sample path in the predictor process (see module doc)."""

    def __init__(self, model_rate: float = 100.0, buffer_seconds: float = 60.0, *,
                 outlet_name: str | None = None) -> None:
        super().__init__(model_rate, buffer_seconds, outlet_name=outlet_name)
        self._process = None
        self._conn = None
        self._lock = threading.Lock()
        self._status_cache: dict = {}
        self._status_time = -1e9
        self._layout_version = 0

    # -- the process ------------------------------------------------------------------------
    @property
    def process_alive(self) -> bool:
        return self._process is not None and self._process.is_alive()

    @property
    def pid(self) -> int | None:
        return None if self._process is None else self._process.pid

    def process_problem(self) -> str | None:
        """What to tell the operator when the predictor process has died, else None."""
        if self._process is None or self._process.is_alive():
            return None
        return (f"The predictor process stopped (exit code {self._process.exitcode}): no "
                "predictions, no recording. A session file keeps everything written up to then. "
                "Connect the streams again to restart it.")

    def _ensure_process(self) -> None:
        if self.process_alive:
            return
        import multiprocessing as mp

        from kneegui.live.service import serve

        ctx = mp.get_context("spawn")
        parent, child = ctx.Pipe()
        process = ctx.Process(target=serve, name="kneegui-predictor", daemon=True,
                              args=(child, self.outlet_name, self.model_rate,
                                    self.buffer_seconds))
        process.start()
        child.close()
        self._process, self._conn = process, parent

    def _call(self, command: str, *args: Any, **kwargs: Any) -> Any:
        self._ensure_process()
        with self._lock:
            try:
                self._conn.send((command, args, kwargs))
                if not self._conn.poll(CALL_TIMEOUT):
                    raise PredictorProcessError(
                        f"the predictor process did not answer {command!r} within "
                        f"{CALL_TIMEOUT:.0f} s; restart KneeGUI")
                reply = self._conn.recv()
            except (EOFError, BrokenPipeError, OSError) as exc:
                code = None if self._process is None else self._process.exitcode
                raise PredictorProcessError(
                    f"the predictor process stopped (exit code {code}); reconnect the streams "
                    "to start it again") from exc
        if reply[0] == "error":
            raise _error(reply[1], reply[2])
        return reply[1]

    # -- streams ----------------------------------------------------------------------------
    def connect(self, assignments) -> None:
        if self._process is not None and not self.process_alive:
            self._reset_process()
        sent = [(_plain(a.info), a.role, tuple(a.channels) if a.channels else None,
                 getattr(a, "channel_map", None)) for a in assignments]
        layout = self._call("connect", sent)
        self._assignments = list(assignments)
        self._apply(layout)

    def disconnect(self) -> None:
        if self.process_alive:
            self._call("disconnect")
        self.writer = None
        self.worker = None
        self.hub = None
        self.state.streams = []
        self._quality = None

    def _apply(self, layout: dict) -> None:
        """Mirror the predictor's buffers (after connect / a model switch)."""
        self._layout_version = layout["version"]
        readers = [_ReaderMirror(self, s["info"], s["role"], s["channels"], s["buffer"])
                   for s in layout["streams"]]
        self.state.streams = [ConnectedStream(r.info, s["role"], r, s["channels"])
                              for r, s in zip(readers, layout["streams"], strict=True)]
        self.hub = None if layout["hub"] is None else _HubMirror(self, layout["hub"], readers)
        self.worker = None if layout["worker"] is None else _WorkerMirror(self, layout["worker"])
        self._quality = None

    # -- model ------------------------------------------------------------------------------
    def load_model(self, path: str | Path) -> None:
        from kneegui.model import load_model

        loaded = load_model(path)  # for the window: card, calibration wizard (raises clearly)
        reply = self._call("load_model", str(path))
        self.loaded = loaded
        self.weights_sha256 = reply["sha256"]
        self.model_id = reply["model_id"]
        self.state.model_path = Path(path)
        self.state.model_name = loaded.card.name
        self.state.input_set = loaded.card.input_set
        self._apply(reply["layout"])

    def set_publishing(self, on: bool) -> None:
        if not self.process_alive and not on:
            self.outlet = None
            return
        reply = self._call("set_publishing", bool(on))
        self.outlet = None if reply is None else _OutletView(reply["name"], reply["source_id"])

    def set_filter(self, values: dict) -> None:
        from kneegui.dsp import FilterSettings

        if self.process_alive:
            self._call("set_filter", dict(values))
            self._status_time = -1e9  # the next status shows the new filter
        self.filter_settings = FilterSettings(**{k: v for k, v in values.items()
                                                 if k in FilterSettings.__dataclass_fields__})

    # -- recording --------------------------------------------------------------------------
    def start_recording(self, out_dir: str | Path, subject: str, notes: str) -> Path:
        if self.hub is None:
            raise RuntimeError("Connect the streams before recording.")
        if self.writer is not None:
            return self.writer.path
        path = Path(self._call("start_recording", str(out_dir), subject, notes))
        self.writer = _WriterProxy(self, path)
        self.state.recording_path = path
        self._status_time = -1e9
        return path

    def stop_recording(self) -> Path | None:
        if self.writer is None:
            return None
        self.writer = None
        path = self._call("stop_recording") if self.process_alive else None
        return None if path is None else Path(path)

    def add_marker(self, label: str) -> bool:
        if self.writer is None:
            return False
        return bool(self._call("add_marker", label))

    def recording_status(self):
        return None if self.writer is None else self._status().get("writer")

    # -- status -----------------------------------------------------------------------------
    def drain_events(self) -> list:
        events = []
        for s in self.state.streams:
            events.extend(s.reader.events())
        return events

    def _status(self) -> dict:
        """The predictor's status snapshot (at most :data:`STATUS_MAX_AGE` old)."""
        now = time.monotonic()
        if now - self._status_time < STATUS_MAX_AGE or not self.process_alive:
            return self._status_cache
        try:
            status = self._call("status")
        except PredictorProcessError:
            return self._status_cache
        self._status_time = now
        self._status_cache = status
        by_uid = {s.info.uid: s.reader for s in self.state.streams}
        for event in status.get("events", ()):
            for reader in by_uid.values():
                if event.source_id == reader.info.source_id:
                    reader._events.append(event)
                    break
        if self.outlet is not None and status.get("outlet"):
            self.outlet.pushed = status["outlet"]["pushed"]
        return status

    # -- shutdown ---------------------------------------------------------------------------
    def close(self) -> None:
        if self.process_alive:
            with contextlib.suppress(PredictorProcessError):
                self._call("close")
        self._reset_process()
        self.hub = self.worker = self.writer = self.outlet = None
        self.state.streams = []

    def _reset_process(self) -> None:
        process, self._process = self._process, None
        if self._conn is not None:
            self._conn.close()
            self._conn = None
        if process is not None:
            process.join(5.0)
            if process.is_alive():
                process.terminate()
                process.join(2.0)


def _plain(info: Any) -> Any:
    """A stream description without its pylsl handle (it cannot cross processes)."""
    import dataclasses

    return dataclasses.replace(info, handle=None) if dataclasses.is_dataclass(info) else info


def _error(kind: str, message: str) -> Exception:
    """The predictor's exception, as a local one of a type the window already handles."""
    from kneegui.acquisition.roles import RoleError
    from kneegui.model.io import ModelLoadError

    known = {"RoleError": RoleError, "ModelLoadError": ModelLoadError, "ValueError": ValueError,
             "RuntimeError": RuntimeError, "OSError": OSError, "FileNotFoundError": OSError,
             "PermissionError": OSError}
    return known.get(kind, RuntimeError)(message)
