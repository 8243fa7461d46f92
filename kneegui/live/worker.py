"""Runs the model at the model rate in its own thread (never on the GUI thread).

Each tick takes the latest aligned window from the hub, predicts the 50-step trajectory,
stores it in a ring buffer (read by the plots), hands it to the recorder and the LSL outlet,
and measures inference latency and end-to-end latency (input sample time -> prediction).
The thread never raises: failures are counted and kept as ``last_error`` for a banner.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Callable

import numpy as np

from kneegui.acquisition.ringbuffer import RingBuffer
from kneegui.live.metrics import RollingStats

#: Seconds of prediction history kept for the plots and the running error.
HISTORY_S = 60.0
#: Model steps predicted per tick at most when the worker fell behind (older ones are dropped:
#: a late prediction is worth less than a current one).
CATCH_UP = 4


class PredictionWorker:
    """Model-rate loop: ``hub.latest_aligned`` -> ``engine.predict`` per new step -> sinks."""

    def __init__(
        self,
        hub,
        engine,
        window: int,
        model_rate: float = 100.0,
        n_horizons: int = 50,
        model_id: str = "",
        clock: Callable[[], float] | None = None,
    ) -> None:
        if clock is None:
            import pylsl

            clock = pylsl.local_clock
        self.hub = hub
        self.engine = engine
        self.window = int(window)
        self.model_rate = float(model_rate)
        self.n_horizons = int(n_horizons)
        self.model_id = model_id
        self._clock = clock
        self.horizons_ms = [1000.0 * (k + 1) / self.model_rate for k in range(self.n_horizons)]
        self.history = RingBuffer(int(HISTORY_S * model_rate), n_horizons, np.float32)
        self.inference_latency = RollingStats(2000)
        self.end_to_end_latency = RollingStats(2000)
        self.writer = None  # kneegui.recording.SessionWriter while recording
        self.outlet = None  # PredictionOutlet while publishing
        self.errors = 0
        self.skipped = 0
        self.last_error: str | None = None
        self.ticks = 0
        self._last_t = -np.inf
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- lifecycle -----------------------------------------------------------------------
    def start(self) -> None:
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="kneegui-inference", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 2.0) -> None:
        self._stop.set()
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
    def _run(self) -> None:
        period = 1.0 / self.model_rate
        next_tick = time.monotonic()
        while not self._stop.is_set():
            next_tick += period
            delay = next_tick - time.monotonic()
            if delay > 0:
                self._stop.wait(delay)
            elif delay < -5 * period:
                next_tick = time.monotonic()  # fell behind: resynchronise, don't burst
            self.ticks += 1
            try:
                self.step()
            except Exception as exc:  # noqa: BLE001 - surfaced as status, never kills the loop
                self.errors += 1
                self.last_error = f"prediction failed: {type(exc).__name__}: {exc}"

    def step(self) -> int:
        """One tick: a prediction for every model step that arrived since the last tick
        (at most ``CATCH_UP`` of them, newest first kept); returns how many were made."""
        frame = self.hub.latest_aligned(self.window + CATCH_UP - 1)
        if frame is None or len(frame.t) < self.window:
            return 0
        t = np.asarray(frame.t)
        first_new = int(np.searchsorted(t, self._last_t, side="right"))
        first_new = max(first_new, self.window - 1)
        made = 0
        for end in range(first_new, len(t)):
            made += self._predict_row(frame, end)
        return made

    def _predict_row(self, frame, end: int) -> int:
        """Predict from the window ending at row ``end`` of ``frame``."""
        start = end + 1 - self.window
        t_last = float(frame.t[end])
        self._last_t = t_last
        emg = frame.emg_env[start : end + 1]
        angle = None if frame.angle is None else frame.angle[start : end + 1]
        if not np.isfinite(emg).all() or (angle is not None and not np.isfinite(angle).all()):
            self.skipped += 1  # a stream is out: no prediction rather than a wrong one
            return 0
        sub = dataclasses.replace(
            frame, t=frame.t[start : end + 1], emg_env=emg, angle=angle,
            kinematics=None if frame.kinematics is None else frame.kinematics[start : end + 1],
            force=None if frame.force is None else frame.force[start : end + 1],
        )
        t0 = time.perf_counter()
        trajectory = np.asarray(self.engine.predict(sub), dtype=np.float32).reshape(-1)
        self.inference_latency.add(time.perf_counter() - t0)
        self.end_to_end_latency.add(self._clock() - t_last)
        self.history.write(trajectory[None, : self.n_horizons], np.array([t_last]))
        writer, outlet = self.writer, self.outlet
        if writer is not None:
            writer.add_prediction(t_last, trajectory, self.model_id, self.horizons_ms)
        if outlet is not None:
            outlet.push(trajectory, t_last)
        return 1
