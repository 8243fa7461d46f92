"""The predictor process behind the window: a :class:`~kneegui.live.session.LiveSession` (readers,
hub, prediction worker, outlet, recorder) in a process of its own, so that the window's Python
work never holds the interpreter lock the sample path needs.

The window (:class:`kneegui.live.remote.RemoteSession`) sends commands over a pipe and reads the
session's ring buffers (raw EMG and angle, filtered EMG, aligned rows, predictions) from shared
memory (:class:`kneegui.acquisition.shared.Arena`). Status and events travel on request.

If the window goes away without closing the session (a crash), a running recording is not
stopped: the process keeps recording and predicting headless, writes an event saying so, and
ends the recording cleanly on SIGTERM / SIGHUP, after :data:`ORPHAN_MAX_S`, or when every stream
has been silent for :data:`ORPHAN_SILENT_S`. Without a recording it just closes.
"""

from __future__ import annotations

import dataclasses
import signal
import sys
import threading
import time
from typing import Any

#: Longest time an orphaned predictor keeps recording after its window disappeared.
ORPHAN_MAX_S = 3600.0
#: An orphaned recording ends when every stream was out this long.
ORPHAN_SILENT_S = 60.0


def _import_recording() -> None:
    """Import what a recording needs (h5py, the writer, pump and compaction) now: the window
    may start one while predictions run, and an import holds the interpreter lock (py-spy showed
    h5py's import on the main thread while the window started recording)."""
    import kneegui.recording.compact
    import kneegui.recording.filter_meta
    import kneegui.recording.pump
    import kneegui.recording.writer  # noqa: F401


def serve(conn: Any, outlet_name: str | None, model_rate: float, buffer_seconds: float) -> None:
    """Entry point of the predictor process (``multiprocessing`` spawn target)."""
    from kneegui.acquisition.allocator import keep_inlet_queues_mapped
    from kneegui.acquisition.shared import Arena
    from kneegui.live.session import LiveSession, favour_sample_path

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl+C belongs to the window: it closes us
    stop = threading.Event()
    for name in ("SIGTERM", "SIGHUP"):
        if hasattr(signal, name):
            signal.signal(getattr(signal, name), lambda *_: stop.set())
    _import_recording()
    favour_sample_path()
    keep_inlet_queues_mapped()  # this process reads inlets for hours and never fine-tunes
    arena = Arena()
    session = LiveSession(model_rate=model_rate, buffer_seconds=buffer_seconds, arena=arena,
                          outlet_name=outlet_name)
    service = _Service(session)
    try:
        while not stop.is_set():
            if not conn.poll(0.2):
                continue
            try:
                request = conn.recv()
            except (EOFError, OSError):
                _orphaned(session, stop)
                return
            reply = service.handle(request)
            try:
                conn.send(reply)
            except (BrokenPipeError, OSError):
                _orphaned(session, stop)
                return
            if request[0] == "close":
                return
    finally:
        session.close()
        arena.close()


class _Service:
    """Executes the window's requests on the session; every failure becomes a reply."""

    def __init__(self, session: Any) -> None:
        self.session = session
        self.layout_version = 0

    def handle(self, request: tuple) -> tuple:
        command, args, kwargs = request
        try:
            result = getattr(self, f"do_{command}")(*args, **kwargs)
        except Exception as exc:  # noqa: BLE001 - sent back and raised in the window
            return ("error", type(exc).__name__, str(exc))
        return ("ok", result)

    # -- commands -------------------------------------------------------------------------
    def do_connect(self, assignments: list) -> dict:
        from kneegui.live.streams import StreamChoice

        chosen = [StreamChoice(_with_handle(info), role, channels, channel_map)
                  for info, role, channels, channel_map in assignments]
        self.session.connect(chosen)
        return self.do_layout()

    def do_disconnect(self) -> None:
        self.session.disconnect()
        self.layout_version += 1

    def do_load_model(self, path: str) -> dict:
        self.session.load_model(path)
        return {"model_id": self.session.model_id, "sha256": self.session.weights_sha256,
                "layout": self.do_layout()}

    def do_set_publishing(self, on: bool) -> dict | None:
        self.session.set_publishing(on)
        return _outlet(self.session.outlet)

    def do_set_filter(self, values: dict) -> None:
        self.session.set_filter(values)

    def do_start_recording(self, out_dir: str, subject: str, notes: str) -> str:
        return str(self.session.start_recording(out_dir, subject, notes))

    def do_stop_recording(self) -> str | None:
        path = self.session.stop_recording()
        return None if path is None else str(path)

    def do_add_marker(self, label: str) -> bool:
        return self.session.add_marker(label)

    def do_writer(self, method: str, args: tuple, kwargs: dict) -> Any:
        writer = self.session.writer
        if writer is None:
            raise RuntimeError("not recording")
        if method not in ("add_event", "add_calibration", "add_model"):
            raise ValueError(f"writer method {method!r} is not available to the window")
        return getattr(writer, method)(*args, **kwargs)

    def do_layout(self) -> dict:
        """Where the window finds the shared buffers (ring buffer specs) and what they hold."""
        self.layout_version += 1
        s = self.session
        streams = [{"info": dataclasses.replace(c.info, handle=None), "role": c.role,
                    "channels": c.channels, "buffer": c.reader.buffer.spec}
                   for c in s.state.streams]
        hub = None
        if s.hub is not None:
            from kneegui.acquisition import Role

            h = s.hub
            assigned = {r.name: list(h.assignment(r).channels) for r in Role
                        if h.assignment(r) is not None}
            emg = None
            if "EMG" in assigned and h.aligned_buffer is not None:
                emg = {m: h.emg_buffer(m).spec for m in ("filtered", "envelope")}
            hub = {"model_rate": h.model_rate, "aligned": _spec(h.aligned_buffer),
                   "columns": {r.name: (c.start, c.stop)
                               for r, c in h.aligned_columns.items()},
                   "emg": emg, "assigned": assigned}
        worker = None
        if s.worker is not None:
            w = s.worker
            worker = {"history": w.history.spec, "model_rate": w.model_rate,
                      "n_horizons": w.n_horizons, "model_id": w.model_id,
                      "rows_needed": w.rows_needed}
        return {"version": self.layout_version, "streams": streams, "hub": hub,
                "worker": worker}

    def do_status(self) -> dict:
        s = self.session
        readers = {c.info.uid: c.reader.status() for c in s.state.streams}
        events = s.drain_events() if s.connected else []
        worker = None
        if s.worker is not None:
            w = s.worker
            worker = {"predictions": w.predictions, "skipped": w.skipped, "errors": w.errors,
                      "last_error": w.last_error, "running": w.running,
                      "inference": (w.inference_latency.values()[-1000:],
                                    w.inference_latency.count),
                      "end_to_end": (w.end_to_end_latency.values()[-1000:],
                                     w.end_to_end_latency.count)}
        return {"readers": readers, "events": events,
                "hub": None if s.hub is None else s.hub.status(), "worker": worker,
                "filter_settings": None if s.hub is None else s.hub.filter_settings,
                "writer": s.recording_status(), "outlet": _outlet(s.outlet),
                "layout_version": self.layout_version}

    def do_record_latencies(self) -> None:
        if self.session.worker is not None:
            self.session.worker.record_latencies()

    def do_latency_log(self) -> list | None:
        w = self.session.worker
        return None if w is None or w.latency_log is None else list(w.latency_log)

    def do_ping(self) -> float:
        return time.monotonic()

    def do_close(self) -> None:
        self.session.close()


def _spec(buffer: Any) -> dict | None:
    return None if buffer is None else buffer.spec


def _outlet(outlet: Any) -> dict | None:
    if outlet is None:
        return None
    return {"name": outlet.name, "source_id": outlet.source_id, "pushed": outlet.pushed}


def _with_handle(info: Any) -> Any:
    """The stream again, resolved in this process (an inlet needs a resolved handle)."""
    try:
        import pylsl

        found = pylsl.resolve_byprop("uid", info.uid, minimum=1, timeout=2.0) if info.uid else []
    except Exception:  # noqa: BLE001 - fall back to the source_id the reader resolves itself
        found = []
    if not found:
        return info
    return dataclasses.replace(info, handle=found[0])


def _orphaned(session: Any, stop: threading.Event) -> None:
    """The window is gone: keep a running recording going headless until told to stop."""
    if session.writer is None:
        return
    path = session.writer.path
    session.writer.add_event("the window closed unexpectedly; recording and prediction continue "
                             "headless", origin="app")
    print(f"kneegui: the window is gone; recording to {path} continues until SIGTERM "
          f"(at most {ORPHAN_MAX_S:.0f} s)", file=sys.stderr, flush=True)
    start = time.monotonic()
    silent_since: float | None = None
    while not stop.wait(1.0):
        now = time.monotonic()
        out = all(not c.reader.status().connected for c in session.state.streams)
        silent_since = (silent_since or now) if out else None
        if now - start > ORPHAN_MAX_S or (silent_since and now - silent_since > ORPHAN_SILENT_S):
            break
    session.writer.add_event("headless recording ended", origin="app")
    session.stop_recording()
