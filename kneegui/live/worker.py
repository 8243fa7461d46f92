"""Runs the predictor on the hub's aligned rows in its own thread (never on the GUI thread).

The worker sleeps until the hub writes aligned rows (no fixed-rate tick), then follows the
hub's aligned buffer with a lossless cursor: every new aligned row that ends a full window
(:attr:`kneegui.model.Predictor.rows_needed` rows, all finite) gets one prediction, stamped with
that row's time; rows the worker reads late are predicted late, not skipped. Each trajectory
goes to the LSL outlet first, then to a ring buffer (read by the plots) and the recorder.
End-to-end latency = the moment of the push minus the stamp of the newest input sample the
window needed (``AlignedFrame.ready``). The thread never raises: failures are counted and kept
as ``last_error`` for a banner.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import numpy as np

from kneegui.acquisition.ringbuffer import RingBuffer
from kneegui.live.metrics import RollingStats
from kneegui.model.predictor import ModelInputs

#: Seconds of prediction history kept for the plots and the running error.
HISTORY_S = 60.0
#: Seconds the worker sleeps at most without new rows (only to notice a stop request).
IDLE_WAKE = 0.25
_STREAMS = ("emg_env", "angle", "kinematics", "force")


class PredictionWorker:
    """Model-rate loop: new aligned rows from the hub -> ``predictor`` -> sinks."""

    def __init__(
        self,
        hub,
        predictor,
        model_id: str = "",
        clock: Callable[[], float] | None = None,
        arena=None,
    ) -> None:
        if clock is None:
            import pylsl

            clock = pylsl.local_clock
        self.hub = hub
        self.predictor = predictor
        self.rows_needed = int(predictor.rows_needed)
        self.model_rate = float(predictor.card.model_rate)
        self.n_horizons = int(predictor.horizons)
        self.model_id = model_id
        self._clock = clock
        self.horizons_ms = [1000.0 * (k + 1) / self.model_rate for k in range(self.n_horizons)]
        self.history = RingBuffer(int(HISTORY_S * self.model_rate), self.n_horizons, np.float32,
                                  arena=arena, name="predictions")
        self.inference_latency = RollingStats(2000)
        self.end_to_end_latency = RollingStats(2000)
        self.latency_log: list[tuple[float, float, float]] | None = None  # benchmarks
        self.writer = None  # kneegui.recording.SessionWriter while recording
        self.outlet = None  # PredictionOutlet while publishing
        self.errors = 0
        self.skipped = 0  # windows with a gap (a stream out): no prediction
        self.last_error: str | None = None
        self.ticks = 0
        self._cursor: int | None = None
        self._first_new = 0  # aligned index of the first row this worker predicts
        self._tail: ModelInputs | None = None  # the last rows_needed - 1 rows read
        self._tail_t = np.zeros(0)
        self._tail_ready = np.zeros(0)
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None

    # -- lifecycle -----------------------------------------------------------------------
    def start(self) -> None:
        if self._thread is not None:
            return
        self._stop.clear()
        if hasattr(self.hub, "subscribe_aligned"):
            self.hub.subscribe_aligned(self._wake)
        self._thread = threading.Thread(target=self._run, name="kneegui-inference", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 2.0) -> None:
        self._stop.set()
        self._wake.set()
        if hasattr(self.hub, "unsubscribe_aligned"):
            self.hub.unsubscribe_aligned(self._wake)
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    @property
    def predictions(self) -> int:
        return self.history.total_written

    # -- loop ----------------------------------------------------------------------------
    def record_latencies(self) -> None:
        """Keep (row time, newest input time, push time) of every prediction (benchmarks)."""
        self.latency_log = []

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(IDLE_WAKE)  # the hub's new rows wake the worker at once
            self._wake.clear()
            if self._stop.is_set():
                break
            self.ticks += 1
            try:
                self.step()
            except Exception as exc:  # noqa: BLE001 - surfaced as status, never kills the loop
                self.errors += 1
                self.last_error = f"prediction failed: {type(exc).__name__}: {exc}"

    def step(self) -> int:
        """Predict every aligned row that arrived since the last call; returns how many
        predictions were made."""
        if self._cursor is None:
            count = self.hub.aligned_count()
            self._first_new = count
            self._cursor = max(0, count - (self.rows_needed - 1))
        frame = self.hub.aligned_from(self._cursor)
        if frame is None or len(frame.t) == 0:
            return 0
        first_index = frame.next_index - len(frame.t)  # aligned index of frame row 0
        self._cursor = frame.next_index
        if frame.lost:  # fell behind the hub's whole buffer: the kept rows are not adjacent
            self._tail, self._tail_t, self._tail_ready = None, np.zeros(0), np.zeros(0)
        rows, t, ready = self._joined(frame)
        n_tail = len(t) - len(frame.t)
        # Row j of `rows` has aligned index first_index - n_tail + j.
        ends = np.arange(max(self.rows_needed - 1, n_tail), len(t))
        ends = ends[first_index - n_tail + ends >= self._first_new]
        self._keep_tail(rows, t, ready)
        ends = self._complete(rows, ends)
        if not len(ends):
            return 0
        t0 = time.perf_counter()
        trajectories = np.asarray(self.predictor.predict(rows, ends), dtype=np.float32)
        self.inference_latency.add((time.perf_counter() - t0) / len(ends))
        self._deliver(trajectories, t[ends], ready[ends])
        return len(ends)

    # -- helpers -------------------------------------------------------------------------
    def _joined(self, frame) -> tuple[ModelInputs, np.ndarray, np.ndarray]:
        """The kept tail followed by the frame's rows: (inputs, row times, ready times)."""
        new = ModelInputs.of(frame)
        ready = getattr(frame, "ready", None)
        ready = np.asarray(frame.t if ready is None else ready, np.float64)
        if self._tail is None:
            return new, np.asarray(frame.t), ready
        parts = {}
        for name in _STREAMS:
            old, cur = getattr(self._tail, name), getattr(new, name)
            parts[name] = None if cur is None else (
                cur if old is None else np.concatenate([old, cur]))
        return (ModelInputs(**parts), np.concatenate([self._tail_t, frame.t]),
                np.concatenate([self._tail_ready, ready]))

    def _keep_tail(self, rows: ModelInputs, t: np.ndarray, ready: np.ndarray) -> None:
        """Keep the newest ``rows_needed - 1`` rows: the start of the next windows."""
        start = max(0, len(t) - (self.rows_needed - 1))
        self._tail = ModelInputs(**{name: None if getattr(rows, name) is None
                                    else getattr(rows, name)[start:] for name in _STREAMS})
        self._tail_t = t[start:]
        self._tail_ready = ready[start:]

    def _complete(self, rows: ModelInputs, ends: np.ndarray) -> np.ndarray:
        """The ends whose whole window is finite in every stream the model uses (a window with
        a gap gives no prediction)."""
        if not len(ends):
            return ends
        bad = np.zeros(len(rows), bool)
        for arr in self.predictor.used_streams(rows):
            a = np.asarray(arr)
            bad |= ~np.isfinite(a.reshape(len(a), -1)).all(axis=1)
        bad_before = np.concatenate([[0], np.cumsum(bad)])
        ok = bad_before[ends + 1] - bad_before[ends + 1 - self.rows_needed] == 0
        self.skipped += int((~ok).sum())
        return ends[ok]

    def _deliver(self, trajectories: np.ndarray, t_end: np.ndarray, ready: np.ndarray) -> None:
        outlet = self.outlet
        if outlet is not None:  # the controller first
            for trajectory, t_last, t_ready in zip(trajectories, t_end, ready, strict=True):
                outlet.push(trajectory, float(t_last), float(t_ready))
        now = self._clock()
        for t_last, t_ready in zip(t_end, ready, strict=True):
            self.end_to_end_latency.add(now - float(t_ready))
            if self.latency_log is not None:
                self.latency_log.append((float(t_last), float(t_ready), now))
        self.history.write(trajectories[:, : self.n_horizons], np.asarray(t_end, np.float64))
        writer = self.writer
        if writer is not None:
            writer.add_prediction(np.asarray(t_end, np.float64), trajectories, self.model_id,
                                  self.horizons_ms)
