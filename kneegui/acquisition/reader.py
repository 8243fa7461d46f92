"""One LSL inlet per stream, read in its own thread into a clock-corrected ring buffer.

Timestamps in the buffer are local-clock seconds: sender timestamp, dejittered (regular
streams), plus the ``time_correction`` offset, forced strictly increasing (see
:mod:`kneegui.acquisition.clock`). Gaps are detected on the raw sender timestamps. This is the
ONE gap rule of KneeGUI: the recorder and the window log the reader's events, nothing else.

Clock faults of the sender are repaired, never smeared over the time axis: a sender clock that
jumps back, or ahead of real time (stamps later than the samples' arrival), while the samples
keep their pace is a ``clock_jump`` - the stamps are re-based so that the samples continue on
one time line and nothing is reported missing. Samples without a finite stamp (NaN/inf) are
stamped from the sample rate (irregular streams: their arrival time) and reported as
``bad_timestamps``. A sender that comes back (after an outage) with stamps before the data
already received, or in the future, is re-based on the arrival time of its samples.

Outages and reconnects: the inlet is opened with ``recover=False`` so that a vanished sender
surfaces as ``LostError`` instead of being retried invisibly. A reader whose sender is lost, or
silent for longer than ``outage_timeout``, reports a ``disconnected`` event and looks for a
stream with the same ``source_id`` every ``reconnect_interval`` seconds; when data flows
again (from the same outlet or a new one) it reports ``reconnected`` with the outage length.
No exception leaves the thread: failures become ``error`` events and ``status().last_error``.
"""

from __future__ import annotations

import contextlib
import math
import threading
import time
from collections import deque
from collections.abc import Sequence

import numpy as np

from kneegui.acquisition import events as ev
from kneegui.acquisition.clock import (
    ClockLog,
    ClockMeasurement,
    ClockOffset,
    Dejitter,
    is_this_host,
    make_increasing,
    measure_time_correction,
)
from kneegui.acquisition.discovery import StreamInfoView, resolve_source_id
from kneegui.acquisition.events import (
    AcquisitionEvent,
    EventQueue,
    EventSubscription,
    ReaderStatus,
)
from kneegui.acquisition.ringbuffer import CursorRead, RingBuffer
from kneegui.acquisition.roles import Role, RoleError, check_role

#: Samples held for an irregular-rate stream per second of ``buffer_seconds``.
IRREGULAR_SAMPLES_PER_SECOND = 100
#: A jump between consecutive sender timestamps larger than this many periods is a gap ...
GAP_PERIODS = 1.5
#: ... unless the sender's chunk-timing jitter is larger: then the chunk start must be off the
#: fitted line by JITTER_FACTOR times the running mean |deviation| of the chunk starts.
JITTER_FACTOR = 4.0
#: Starting guess of that mean deviation (typical of senders that stamp chunks on push).
INITIAL_JITTER = 1e-3
#: Seconds of data an offset from the fitted line must persist to count as a gap.
CONFIRM_SECONDS = 0.1
#: Seconds of arrivals the effective rate is computed over (``status().effective_rate``).
RATE_WINDOW_S = 2.0
#: Seconds between pulls at least, while a stream delivers fewer samples per pull than it
#: sends in that time (sample-by-sample pushes at kHz rates): bounds the reader's wake-ups.
#: Measured (benchmarks/live_latency.py, 4 ch EMG at 2 kHz + angle at 1 kHz pushed sample by
#: sample, 2 cores): sample to prediction median / p99 9.7 / 43 ms with 1 ms, 7.1 / 25 with 2,
#: 7.1 / 18 with 3, 6.6 / 13 with 5: fewer wake-ups leave the CPU to the prediction.
MIN_PULL_INTERVAL = 0.005
#: A paced reader that was told which sample its consumer waits for (:meth:`StreamReader.expect`,
#: the hub: the sample that completes the next grid row) wakes this long after that sample's
#: stamp instead of up to MIN_PULL_INTERVAL later (senders that push sample by sample stamp on
#: push: the stamp is about when it arrives) ...
ARRIVAL_MARGIN = 0.0003
#: ... and pulls without pausing until it is here or this many seconds overdue.
LATE_LIMIT = 0.002
#: A steady offset counts as a gap only above this many times the mean |residual| (stamp noise).
GAP_NOISE_FACTOR = 20.0
#: Minimal step between consecutive output timestamps, seconds.
MIN_STEP = 1e-7
#: Stamps this far (s) ahead of the local time their sample arrived are not believed: the
#: sender's clock jumped (a sample cannot arrive before it was measured).
FUTURE_MARGIN = 0.25
#: An irregular stream whose stamps go back by more than this (s) had a clock jump.
IRREGULAR_BACK_LIMIT = 5.0
#: A regular stream that was opened but sends nothing for this long (s) is reported (no_data).
NO_DATA_SECONDS = 2.0
#: After an outage, look for the sender without pause (resolves back to back) for this long (s),
#: so that little of a restarted sender's first data is missed (liblsl sends an outlet's data
#: only to inlets subscribed when it was pushed); then every reconnect_interval.
FAST_RECONNECT_SECONDS = 30.0
#: Timeout of those resolves: long enough for liblsl's second query wave (multicast, 0.5 s
#: after the first), the only one that reaches outlets outside the unicast port range (busy
#: machines with many outlets): shorter resolves never find those (measured).
FAST_RESOLVE_SECONDS = 0.6
#: A regular stream silent for this long (s, or 10 periods) is checked for a replacement: a
#: restarted sender's new outlet (same source_id) while the old one is gone, before the outage
#: timeout (a sender stopped gracefully keeps its outlet silent for a moment).
EARLY_LOOK_SECONDS = 0.2
#: Seconds between two ``bad_timestamps`` events of one stream (the first comes at once).
BAD_STAMP_REPORT_INTERVAL = 10.0


def pull_pause(pulled_at: float, clock: float, expected: float | None, last: float | None) -> float:
    """Seconds a reader of a sample-by-sample sender waits before its next pull: at most until
    MIN_PULL_INTERVAL after the last pull (take what came meanwhile in one pull: the per-pull
    cost is the same), but only until ARRIVAL_MARGIN after the stamp of the sample the consumer
    expects, and not at all while that sample is due (up to LATE_LIMIT after its stamp; a pull
    then returns as soon as a sample arrives). ``clock``: now; ``last``: the newest stamp given
    out; all on the local clock."""
    rest = pulled_at + MIN_PULL_INTERVAL - clock
    if rest <= 0 or expected is None or (last is not None and expected <= last):
        return rest  # nothing expected or already here
    early = expected + ARRIVAL_MARGIN - clock
    if early < -LATE_LIMIT:
        return rest  # long overdue: a sender that stamps in the past; pace as usual
    return min(rest, max(early, 0.0))


class StreamReader:
    """Reads one LSL stream into a :class:`RingBuffer` from a background thread.

    The constructor checks the stream against ``role`` and raises :class:`RoleError` when it
    does not fit. ``channels`` picks the role's channels (indices or labels); the buffer always
    holds every channel of the stream.
    """

    def __init__(
        self,
        info: StreamInfoView,
        buffer_seconds: float = 60.0,
        role: Role | None = None,
        channels: Sequence[int | str] | None = None,
        *,
        outage_timeout: float = 1.0,
        reconnect_interval: float = 0.5,
        clock_interval: float = 5.0,
        pull_timeout: float = 0.05,
        arena=None,
    ):
        self.info = info
        self.role = role
        picks = check_role(info, role, channels) if role else list(range(info.channel_count))
        self.channels = picks
        if info.channel_format == "undefined" or info.channel_count < 1:
            raise RoleError(f"stream {info.describe()} has no readable channels")
        rate = info.nominal_srate
        capacity = (
            int(np.ceil(buffer_seconds * rate))
            if rate > 0
            else int(buffer_seconds * IRREGULAR_SAMPLES_PER_SECOND)
        )
        self.buffer = RingBuffer(max(capacity, 16), info.channel_count, info.numpy_dtype,
                                 raw_stamps=True, arena=arena, name=f"reader-{info.name}")
        #: every clock measurement (time, offset, round trip, applied offset), for recording
        self.clock_log = ClockLog()
        period = 1.0 / rate if rate > 0 else 0.0
        self.outage_timeout = max(outage_timeout, 25 * period)
        self.reconnect_interval = reconnect_interval
        self.clock_interval = clock_interval
        self.pull_timeout = pull_timeout
        self._max_chunk = max(64, int(rate * 0.5)) if rate > 0 else 1024

        self._events = EventQueue()
        self._lock = threading.Lock()  # guards the status fields below
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._opened = threading.Event()
        self._inlet = None
        self._inlet_uid = ""
        self._tried_handle = False
        self._clock = ClockOffset(same_host=is_this_host(info.hostname))
        self._last_remote_time: float | None = None  # dedups liblsl's cached measurement
        self._dejitter = Dejitter(rate) if rate > 0 else None
        self._period = period
        # status
        self._connected = False
        self._ever_connected = False
        self._received = 0
        self._gaps = 0
        self._outages = 0
        self._reconnects = 0
        self._last_error: str | None = None
        self._last_error_time = -1e9
        self._arrivals: deque[tuple[float, int]] = deque()
        self._delays: deque[float] = deque(maxlen=4096)
        self._delay_log: deque[tuple[int, float]] | None = None
        self._clock_jumps = 0
        self._bad_stamps = 0
        # timing state (reader thread only)
        self._step_jitter = INITIAL_JITTER  # mean |residual| of chunk starts vs the fit
        self._suspect: _Suspect | None = None  # chunks off the fitted line, being watched
        #: pieces of a suspect that may follow a gap: (data, raw stamps, line stamps)
        self._held: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        #: sender stamps as received, of samples not yet given out to the buffer
        self._raw_pending: deque[np.ndarray] = deque()
        self._rebase = 0.0  # added to sender stamps: repairs of the sender's clock jumps
        self._tail: float | None = None  # last stamp given out (within the chunk being stamped)
        self._bad_pending = 0  # bad stamps not reported yet
        self._bad_reported_at = -1e9
        self._no_data_reported = False
        self._last_out: float | None = None
        self._last_arrival = 0.0
        self._outage_since: float | None = None  # local time the last sample was stamped
        self._outage_started: float | None = None  # local time the outage was noticed
        self._next_clock = 0.0
        self._next_reconnect = 0.0
        self._rate_since = 0.0  # monotonic time of the first sample of this connection
        self._expected: float | None = None  # expect(): the stamp the consumer waits for

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> StreamReader:
        """Open the inlet and start the reader thread (returns self)."""
        if self._thread is not None and self._thread.is_alive():
            return self
        self._stop.clear()
        self._thread = threading.Thread(
            target=self._run, name=f"lsl-reader-{self.info.name}", daemon=True
        )
        self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the thread and close the inlet."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
        self._thread = None
        self._close_inlet()
        with self._lock:
            self._connected = False

    def __enter__(self) -> StreamReader:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def expect(self, stamp: float | None) -> None:
        """The (local-clock) stamp of the sample the consumer waits for next (the hub: the one
        that completes its next grid row). When pulls are paced (a sender that pushes fewer
        samples per pull than MIN_PULL_INTERVAL holds), the reader wakes for it as it arrives
        instead of up to MIN_PULL_INTERVAL later. Any thread; ``None``: nothing expected."""
        self._expected = stamp

    @property
    def expected(self) -> float | None:
        """The stamp given to :meth:`expect` last."""
        return self._expected

    def wait_until_open(self, timeout: float = 5.0) -> bool:
        """Block until the inlet is subscribed (data pushed from then on will arrive)."""
        return self._opened.wait(timeout)

    def wait_for_samples(self, n: int = 1, timeout: float = 5.0) -> bool:
        """Block until ``n`` samples were received in total (True) or ``timeout`` passes."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.buffer.total_written >= n:
                return True
            time.sleep(0.005)
        return self.buffer.total_written >= n

    # ------------------------------------------------------------------ reading API
    def latest(self, seconds: float) -> tuple[np.ndarray, np.ndarray]:
        """(data, timestamps) of the newest ``seconds`` of the stream (copies)."""
        return self.buffer.latest_seconds(seconds)

    def since(self, t: float) -> tuple[np.ndarray, np.ndarray]:
        """(data, timestamps) of every held sample stamped after ``t`` (copies)."""
        return self.buffer.since(t)

    def read_from(self, index: int, max_samples: int | None = None) -> CursorRead:
        """Lossless cursor read, see :meth:`RingBuffer.read_from`."""
        return self.buffer.read_from(index, max_samples)

    def events(self) -> list[AcquisitionEvent]:
        """Events since the last call (drains the queue; one consumer should own it)."""
        return self._events.drain()

    def subscribe_events(self) -> EventSubscription:
        """An independent queue of the events from now on (for a second consumer, e.g. the
        recorder next to the GUI); ``drain()`` it, ``close()`` it when done."""
        return self._events.subscribe()

    def status(self) -> ReaderStatus:
        now = time.monotonic()
        with self._lock:
            self._prune_arrivals(now)
            span = min(RATE_WINDOW_S, max(now - self._rate_since, 1e-3))
            rate = sum(n for _, n in self._arrivals) / span if self._thread else 0.0
            delay = float(np.median(self._delays)) if self._delays else float("nan")
            return ReaderStatus(
                name=self.info.name,
                source_id=self.info.source_id,
                role=self.role.name if self.role else None,
                connected=self._connected,
                received=self._received,
                effective_rate=rate,
                nominal_rate=self.info.nominal_srate,
                gaps=self._gaps,
                outages=self._outages,
                reconnects=self._reconnects,
                clock_offset=self._clock.offset,
                clock_jitter=self._clock.jitter,
                delay=delay,
                last_error=self._last_error,
                running=self._thread is not None and self._thread.is_alive(),
                clock_jumps=self._clock_jumps,
                bad_timestamps=self._bad_stamps,
            )

    def record_delays(self, enabled: bool = True) -> None:
        """Keep every per-chunk delay (for benchmarks); drain with :meth:`drain_delays`."""
        with self._lock:
            self._delay_log = deque() if enabled else None

    def drain_delays(self) -> list[tuple[int, float]]:
        """Per pulled chunk: (buffer index of its last sample, seconds from that sample's
        corrected stamp to the moment it was in the ring buffer)."""
        with self._lock:
            if self._delay_log is None:
                return []
            out = list(self._delay_log)
            self._delay_log.clear()
            return out

    # ------------------------------------------------------------------ thread
    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self._step()
            except Exception as exc:  # noqa: BLE001 - nothing may escape the thread
                self._report_error(f"{type(exc).__name__}: {exc}")
                self._close_inlet()
                self._stop.wait(0.2)
        with contextlib.suppress(Exception):  # give out what was held back for a decision
            self._confirm_suspect(report=False)

    def _step(self) -> None:
        import pylsl
        from pylsl.util import LostError

        if self._inlet is None:
            if not self._connect() and not self._fast_reconnect():
                self._stop.wait(self.reconnect_interval)
            return
        try:
            data, ts = self._inlet.pull_chunk(
                timeout=self.pull_timeout,
                max_samples=self._max_chunk,
                min_samples=1,
                as_numpy=True,
            )
        except LostError:
            self._begin_outage("the sender was lost")
            self._close_inlet()
            return
        now = pylsl.local_clock()
        if len(ts):
            self._ingest(data, np.asarray(ts, dtype=np.float64))
            if len(ts) < MIN_PULL_INTERVAL * self._rate():
                rest = self._pull_pause(now)
                if rest > 0:
                    time.sleep(rest)
        else:
            self._check_silence(now)
        if now >= self._next_clock:
            self._refresh_clock(timeout=0.5)

    # ------------------------------------------------------------------ connecting
    def _connect(self, target: StreamInfoView | None = None) -> bool:
        """Open an inlet on ``target``, else on this stream or a new outlet with its source_id."""
        import pylsl
        from pylsl.util import LostError

        if target is None and not self._tried_handle and self.info.handle is not None:
            target = self.info
        self._tried_handle = True
        if target is None:
            target = self._find_sender()
            if target is None:
                return False
        inlet = pylsl.StreamInlet(
            target.handle, max_buflen=max(30, int(self.buffer.capacity / max(1, self._rate()))),
            recover=False,
        )
        try:
            inlet.open_stream(timeout=2.0)
        except LostError:  # a stale answer from a sender that just went: not found yet
            del inlet
            return False
        except Exception as exc:  # noqa: BLE001
            self._report_error(f"could not open stream {self.info.describe()}: {exc}")
            del inlet
            return False
        self._inlet = inlet
        self._inlet_uid = target.uid
        self._clock.reset()
        # the first estimate takes ~0.6 s; samples wait in liblsl's buffer meanwhile
        self._refresh_clock(timeout=2.0)
        self._opened.set()
        self._last_arrival = pylsl.local_clock()
        return True

    def _fast_reconnect(self) -> bool:
        """True early in an outage: look for the sender again at once (short resolves)."""
        import pylsl

        if self._outage_since is None or self._outage_started is None:
            return False
        return pylsl.local_clock() - self._outage_started < FAST_RECONNECT_SECONDS

    def _find_sender(self) -> StreamInfoView | None:
        """A stream with our source_id and the same shape (another outlet than the current
        one if there is one), or None."""
        if not self.info.source_id:
            self._report_error(
                f"stream {self.info.describe()} has no source_id, so it cannot be reconnected"
            )
            return None
        timeout = FAST_RESOLVE_SECONDS if self._fast_reconnect() else 1.0
        fitting = []
        for candidate in resolve_source_id(self.info.source_id, timeout=timeout):
            if self._same_shape(candidate):
                fitting.append(candidate)
                continue
            self._report_error(
                f"a stream with source_id {self.info.source_id} came back as "
                f"{candidate.describe()}, which does not match {self.info.describe()}; "
                "not reconnected"
            )
        others = [c for c in fitting if c.uid != self._inlet_uid]
        return (others or fitting or [None])[0]

    def _same_shape(self, candidate: StreamInfoView) -> bool:
        return (candidate.channel_count == self.info.channel_count
                and candidate.channel_format == self.info.channel_format)

    def _look_for_replacement(self) -> None:
        """Silent but not yet out: if our outlet is gone and a new one with our source_id and
        shape is there (a restarted sender), switch to it now: every moment counts, since
        liblsl delivers only what is pushed after an inlet subscribed."""
        if not self.info.source_id:
            return
        found = resolve_source_id(self.info.source_id, timeout=FAST_RESOLVE_SECONDS,
                                  wait_all=True)
        if any(c.uid == self._inlet_uid for c in found):
            return  # the old outlet is still there: just silent
        fitting = [c for c in found if self._same_shape(c)]
        if fitting:
            self._begin_outage("its outlet was replaced by a new one with the same source_id")
            self._close_inlet()
            self._connect(fitting[0])

    def _close_inlet(self) -> None:
        inlet, self._inlet = self._inlet, None
        if inlet is not None:
            with contextlib.suppress(Exception):
                inlet.close_stream()
            del inlet

    def _pull_pause(self, pulled_at: float) -> float:
        """Seconds to wait before the next pull (:func:`pull_pause`)."""
        import pylsl

        return pull_pause(pulled_at, pylsl.local_clock(), self._expected, self._last_out)

    def _rate(self) -> float:
        return self.info.nominal_srate if self.info.nominal_srate > 0 else 1.0

    def _refresh_clock(self, timeout: float) -> None:
        import pylsl

        now = pylsl.local_clock()
        self._next_clock = now + self.clock_interval
        try:
            value, remote, round_trip = measure_time_correction(self._inlet, timeout)
        except Exception:  # noqa: BLE001 - a slow answer keeps the previous offset
            if not self._clock.known:
                self._next_clock = now + 0.5  # no estimate yet: ask again soon
            return
        with self._lock:
            self._clock.add(value)
            applied = self._clock.offset
        # liblsl re-measures in the background; log each measurement once
        if remote != self._last_remote_time and math.isfinite(value):
            self._last_remote_time = remote
            self.clock_log.append(ClockMeasurement(remote + value, value, round_trip, applied,
                                                   pylsl.local_clock()))

    # ------------------------------------------------------------------ outages
    def _check_silence(self, now: float) -> None:
        """Declare an outage when a regular stream stays silent; look for a new outlet."""
        if self._outage_since is None:
            silent = now - self._last_arrival
            if self._ever_connected and self._period > 0 and silent > self.outage_timeout:
                self._begin_outage(f"no data for {now - self._last_arrival:.1f} s")
            elif (self._ever_connected and self._period > 0
                  and max(EARLY_LOOK_SECONDS, 10 * self._period) < silent
                  < self.outage_timeout - FAST_RESOLVE_SECONDS):  # never delays the outage
                self._look_for_replacement()
            elif (not self._ever_connected and self._period > 0 and not self._no_data_reported
                  and silent > max(self.outage_timeout, NO_DATA_SECONDS)):
                self._report_no_data(silent)
            return
        if now >= self._next_reconnect:
            self._next_reconnect = now + (0.0 if self._fast_reconnect()
                                          else self.reconnect_interval)
            sender = self._find_sender()
            if sender is not None and sender.uid != self._inlet_uid:
                self._close_inlet()  # the old outlet is gone for good; use the new one
                self._connect(sender)

    def _begin_outage(self, why: str) -> None:
        if self._outage_since is not None:
            return
        import pylsl

        self._confirm_suspect()
        self._outage_since = self._last_out if self._last_out is not None else 0.0
        self._outage_started = pylsl.local_clock()
        with self._lock:
            self._connected = False
            self._outages += 1
        self._events.put(
            AcquisitionEvent(
                ev.DISCONNECTED,
                self.info.name,
                self.info.source_id,
                self._outage_since,
                message=f"stream {self.info.describe()} disconnected: {why}",
            )
        )

    # ------------------------------------------------------------------ ingest
    def _ingest(self, data: np.ndarray, raw: np.ndarray) -> None:
        import pylsl

        arrival = pylsl.local_clock()
        if data.dtype == object:
            data = np.vectorize(_decode, otypes=[object])(data)
        first_time = not self._ever_connected
        resuming = self._outage_since is not None or first_time
        if resuming:
            self._rebase = 0.0  # a new connection: judge its clock afresh
        self._raw_pending.append(raw)  # as received (recorded beside the corrected stamps)
        raw = self._repair_nonfinite(raw, arrival)
        if resuming:
            self._align_connection(raw, arrival, first_time)
            self._resume(raw[0] + self._rebase + self._clock.offset, first_time)
            self._suspect = None  # the outage itself was reported; look for gaps after it
            if self._dejitter is not None:
                self._dejitter.reset()
        self._last_arrival = arrival
        with self._lock:
            self._received += raw.shape[0]
            now_m = time.monotonic()
            self._arrivals.append((now_m, raw.shape[0]))
            self._prune_arrivals(now_m)  # bounded also when nobody reads status()
        self._write(self._stamp(data, raw, arrival))

    def _prune_arrivals(self, now: float) -> None:
        """Forget arrivals older than RATE_WINDOW_S (call with ``_lock`` held)."""
        while self._arrivals and self._arrivals[0][0] < now - RATE_WINDOW_S:
            self._arrivals.popleft()

    def _write(self, pieces: list[tuple[np.ndarray, np.ndarray]]) -> None:
        """Put stamped pieces (data, local-clock stamps) into the ring buffer, in order."""
        import pylsl

        for data, stamps in pieces:
            out = make_increasing(stamps, self._last_out, MIN_STEP)
            self.buffer.write(data, out, self._take_raw(data.shape[0]))
            self._last_out = float(out[-1])
            delay = pylsl.local_clock() - self._last_out
            with self._lock:
                self._delays.append(delay)
                if self._delay_log is not None:
                    self._delay_log.append((self.buffer.total_written - 1, delay))

    def _take_raw(self, n: int) -> np.ndarray:
        """The sender's own stamps of the next ``n`` samples given out (pieces leave in the
        order they arrived, held ones included)."""
        parts: list[np.ndarray] = []
        while n > 0 and self._raw_pending:
            head = self._raw_pending[0]
            if head.shape[0] <= n:
                parts.append(self._raw_pending.popleft())
                n -= head.shape[0]
            else:
                parts.append(head[:n])
                self._raw_pending[0] = head[n:]
                n = 0
        if n > 0:  # never expected: keep the sample, mark its raw stamp unknown
            parts.append(np.full(n, np.nan))
        return np.concatenate(parts) if len(parts) > 1 else parts[0]

    def _resume(self, first_stamp: float, first_time: bool) -> None:
        """First data of a connection: report it."""
        if first_time:
            kind, duration, msg = ev.CONNECTED, 0.0, f"receiving {self.info.describe()}"
            t = float(first_stamp)
        else:
            t = float(self._outage_since or first_stamp)
            duration = max(0.0, float(first_stamp) - t)
            kind = ev.RECONNECTED
            msg = f"stream {self.info.describe()} is back after {duration:.2f} s"
            with self._lock:
                self._reconnects += 1
        missing = int(round(duration / self._period)) - 1 if self._period and duration else 0
        self._events.put(
            AcquisitionEvent(
                kind, self.info.name, self.info.source_id, t, duration, max(0, missing), msg
            )
        )
        self._outage_since = None
        self._ever_connected = True
        self._rate_since = time.monotonic()
        with self._lock:
            self._connected = True
            self._last_error = None  # data flows: earlier trouble is over (events keep it)

    # ------------------------------------------------------------------ stamping
    def _repair_nonfinite(self, raw: np.ndarray, arrival: float) -> np.ndarray:
        """Sender stamps with NaN/inf replaced: one period from the nearest finite stamp of the
        chunk, else the fitted line, else the arrival time (irregular streams: arrival)."""
        bad = ~np.isfinite(raw)
        if not bad.any():
            return raw
        n = raw.shape[0]
        idx = np.arange(n)
        fixed = raw.copy()
        good = np.flatnonzero(~bad)
        dj = self._dejitter
        if self._period > 0 and good.size:
            left = np.maximum.accumulate(np.where(bad, -1, idx))
            anchor = np.where(left >= 0, left, good[0])
            fixed[bad] = raw[anchor[bad]] + (idx[bad] - anchor[bad]) * self._period
        elif (self._period > 0 and dj is not None and dj.has_fit and self._suspect is None
              and self._outage_since is None):
            fixed = dj.predict(n) - self._rebase
        else:
            base = arrival - self._clock.offset - self._rebase
            fixed[bad] = base - (n - 1 - idx[bad]) * self._period
        self._note_bad_stamps(int(bad.sum()), arrival)
        return fixed

    def _note_bad_stamps(self, n: int, now: float) -> None:
        with self._lock:
            self._bad_stamps += n
        self._bad_pending += n
        if now - self._bad_reported_at < BAD_STAMP_REPORT_INTERVAL:
            return
        how = "from the sample rate" if self._period > 0 else "with their arrival time"
        self._events.put(AcquisitionEvent(
            ev.BAD_TIMESTAMPS, self.info.name, self.info.source_id, now,
            message=f"{self._bad_pending} samples of {self.info.name} came without a valid time "
                    f"stamp (NaN or infinite); they were stamped {how}; check the sender's clock"))
        self._bad_pending = 0
        self._bad_reported_at = now

    def _align_connection(self, raw: np.ndarray, arrival: float, first_time: bool) -> None:
        """At (re)connection: re-base stamps that lie in the future, or (after an outage)
        before the data already received, on the arrival time of the samples."""
        offset = self._clock.offset
        first = float(raw[0]) + self._rebase + offset
        last = float(raw[-1]) + self._rebase + offset
        ahead = last - arrival
        behind = not first_time and self._last_out is not None and first <= self._last_out
        if ahead <= FUTURE_MARGIN and not behind:
            return
        delta = arrival - last  # the newest sample is stamped with its arrival time
        self._rebase += delta
        where = f"{ahead:.3f} s ahead of real time" if ahead > FUTURE_MARGIN else \
            f"{self._last_out - first:.3f} s before the data received before the outage"
        when = "at the start" if first_time else "after reconnecting"
        self._report_clock_jump(
            arrival if self._last_out is None else self._last_out, -delta,
            f"the time stamps of {self.info.name} {when} were {where} (sender clock reset?); "
            "they were re-based on the arrival time of the samples")

    def _stamp(self, data: np.ndarray, raw: np.ndarray,
               arrival: float) -> list[tuple[np.ndarray, np.ndarray]]:
        """(data, local-clock stamps) pieces ready for the buffer; reports gaps and jumps.

        Pieces that might follow a gap are held back until that is decided (at most
        CONFIRM_SECONDS of data), so that no stamp given out is ever taken back."""
        offset = self._clock.offset
        if self._dejitter is None:
            return [(data, self._stamp_irregular(raw, arrival, offset))]
        # A pulled chunk may hold several sender pushes: split it where the stamps step by more
        # than the tolerance, and judge every piece against the fitted line.
        steps = np.diff(raw)
        cuts = np.flatnonzero(np.abs(steps - self._period) > self._tolerance()) + 1
        bounds = [0, *cuts.tolist(), raw.shape[0]]
        ready: list[tuple[np.ndarray, np.ndarray]] = []
        self._tail = self._last_out
        for a, b in zip(bounds[:-1], bounds[1:], strict=True):
            for piece, stamps in self._stamp_segment(data[a:b], raw[a:b], arrival - offset):
                if self._behind_tail(float(stamps[0])):
                    # a decision came too late for stamps already given out (raw stamps of a
                    # piece that could not wait ahead of the line): continue after them, and
                    # start a new line from there (never squeeze samples together)
                    stamps = stamps + (self._tail + self._period - offset - float(stamps[0]))
                    if self._suspect is None and not self._held:
                        self._dejitter.reset()
                ready.append((piece, stamps + offset))
                self._tail = float(stamps[-1]) + offset
        return ready

    def _stamp_irregular(self, raw: np.ndarray, arrival: float, offset: float) -> np.ndarray:
        """Irregular streams: sender stamps, re-based when the sender's clock jumped."""
        out = raw + self._rebase + offset
        ahead = float(out[-1]) - arrival
        back = self._last_out is not None and float(out[0]) < self._last_out - IRREGULAR_BACK_LIMIT
        if ahead > FUTURE_MARGIN or back:
            delta = arrival - float(out[-1])
            self._rebase += delta
            out = out + delta
            self._report_clock_jump(
                self._last_out if self._last_out is not None else arrival, -delta,
                f"the clock of {self.info.name} jumped by {-delta:+.3f} s; its samples were "
                "re-based on their arrival time")
        return out

    def _tolerance(self) -> float:
        return max((GAP_PERIODS - 1.0) * self._period, JITTER_FACTOR * self._step_jitter)

    def _stamp_segment(self, data: np.ndarray, raw_seg: np.ndarray,
                       arrival: float) -> list[tuple[np.ndarray, np.ndarray]]:
        """Dejittered stamps (sender clock) of one piece, plus held pieces now decided; at the
        chunk boundary, tell a sender gap from chunk jitter or a jump of the sender's clock.

        ``arrival`` is the chunk's arrival on the sender's clock. A chunk whose first stamp is
        off the fitted line by more than the tolerance makes the stream "suspect": such chunks
        stay out of the fit. Ahead of the line but not of real time, it may be a gap: the
        chunks are held back. Behind the line, or ahead of real time, it may be a clock jump
        or jitter: the chunks continue the line at once. A chunk back on the line ends it (it
        was jitter, e.g. a sender that stamps on push and was delayed): held chunks continue
        the line. If instead the offset stays put for CONFIRM_SECONDS of data, it is real: a
        gap (samples missing; the fit skips them and the held chunks follow the line after the
        gap) or a clock jump (the stamps are re-based onto the line). Chunks that cannot wait
        longer for a decision are given out as they are (see :meth:`_release_undecided`).
        """
        dj = self._dejitter
        seg = raw_seg + self._rebase
        if not dj.has_fit:
            return [(data, dj.process(self._continue_after_tail(seg)))]
        residual = float(seg[0]) - dj.expected_next()
        tolerance = self._tolerance()
        if abs(residual) <= tolerance:
            released = self._release_held(on_line=True)  # it was jitter
            self._suspect = None
            self._step_jitter += 0.05 * (abs(residual) - self._step_jitter)
            if self._behind_tail(dj.expected_next()):
                # raw stamps given out earlier lie ahead of the line: follow them instead
                dj.reset()
                return [*released, (data, dj.process(self._continue_after_tail(seg)))]
            return [*released, (data, dj.process(seg))]
        if self._suspect is None:
            before = self._tail if self._tail is not None else float(seg[0])
            in_future = float(seg[-1]) - arrival > FUTURE_MARGIN
            self._suspect = _Suspect(before, gap_like=residual > 0 and not in_future)
        self._suspect.add(residual, seg.shape[0])
        predicted = dj.predict(seg.shape[0])
        dj.skip(seg.shape[0])
        out: list[tuple[np.ndarray, np.ndarray]] = []
        if self._suspect.gap_like:
            self._held.append((data, seg.copy(), predicted))
        else:
            out.append((data, predicted))
        if self._suspect.samples * self._period >= CONFIRM_SECONDS:
            out = self._settle_suspect(tolerance) + out
        return out

    def _release_held(self, on_line: bool,
                      shift: float | None = None) -> list[tuple[np.ndarray, np.ndarray]]:
        """Held pieces with their line stamps (``on_line``; moved by ``shift`` seconds after a
        gap) or their raw stamps (made regular where a piece holds several pushes)."""
        held, self._held = self._held, []
        if on_line:
            return [(data, predicted + (shift or 0.0)) for data, _, predicted in held]
        return [(data, self._regular(raw)) for data, raw, _ in held]

    def _regular(self, raw: np.ndarray) -> np.ndarray:
        """``raw`` if its samples follow each other, else one period apart up to its last
        stamp (a piece of several pushes whose stamps overlap; pushes stamp the last sample)."""
        if raw.shape[0] < 2 or float(np.diff(raw).min()) > 0.5 * self._period:
            return raw
        return float(raw[-1]) - np.arange(raw.shape[0] - 1, -1, -1) * self._period

    def _release_undecided(self) -> list[tuple[np.ndarray, np.ndarray]]:
        """Held pieces given out before a decision. Raw stamps when the offset keeps growing
        and the pieces follow each other (a sender slower than its nominal rate); else the
        line (a delayed sender catching up: its late push stamps are not the sample times).
        Once on the line, the rest of the suspect stays on it."""
        sus = self._suspect
        if sus.mode != "line":
            previous = -np.inf if self._tail is None else self._tail - self._clock.offset
            consistent = True
            for _, raw, _ in self._held:
                if float(raw[0]) <= previous:
                    consistent = False
                    break
                previous = float(raw[-1])
            growing = bool(np.all(np.diff(sus.residuals) >= -self._tolerance()))
            sus.mode = "raw" if consistent and growing else "line"
        return self._release_held(on_line=sus.mode == "line")

    def _behind_tail(self, stamp: float) -> bool:
        """True when ``stamp`` (sender clock) would not come after the last stamp given out."""
        if self._tail is None:
            return False
        return stamp + self._clock.offset < self._tail + 0.5 * self._period

    def _continue_after_tail(self, seg: np.ndarray) -> np.ndarray:
        """A new line (after a reset) never starts before the stamps already given out."""
        if not self._behind_tail(float(seg[0])):
            return seg
        delta = self._tail + self._period - self._clock.offset - float(seg[0])
        self._rebase += delta
        return seg + delta

    def _gap_threshold(self, tolerance: float) -> float:
        """Smallest steady shift reported as a gap or clock jump.

        Senders that stamp chunks on push have noisy stamps whose level also moves when their
        scheduling latency changes; such shifts are not told from lost samples unless they are
        well above the stamp noise (GAP_NOISE_FACTOR x mean |residual|).
        """
        return max(tolerance, GAP_NOISE_FACTOR * self._step_jitter)

    @staticmethod
    def _suspect_offset(sus, tolerance: float) -> tuple[float, bool]:
        """(median offset from the fitted line, steady?) of a suspect's recent stamps."""
        recent = sus.recent()
        return float(np.median(recent)), float(np.ptp(recent)) <= 2 * tolerance

    def _report_suspect_gap(self, sus, shift: float) -> int:
        """Report a steady positive offset as a gap; returns the samples missing."""
        missing = int(round(shift / self._period))
        self._report_gap(sus.before, shift + self._period, missing)
        return missing

    def _settle_suspect(self, tolerance: float) -> list[tuple[np.ndarray, np.ndarray]]:
        """Decide what a long-lasting offset from the fitted line was; returns the held pieces
        that are decided now (stamped accordingly)."""
        sus = self._suspect
        shift, steady = self._suspect_offset(sus, tolerance)
        if not steady and sus.samples * self._period < 2.0:
            # still moving (a sender catching up): keep watching, but hold no more than
            # CONFIRM_SECONDS of data
            return self._release_undecided()
        self._suspect = None
        threshold = self._gap_threshold(tolerance)
        if sus.gap_like:
            if steady and shift > threshold:
                missing = self._report_suspect_gap(sus, shift)
                self._dejitter.skip(missing)
                # the held samples come after the gap: the line moved by the missing samples
                return self._release_held(on_line=True, shift=missing * self._period)
            # erratic stamps, or the sender's stamping latency changed: follow the new level
            # (a new line never starts before the stamps already given out)
            self._dejitter.reset()
            return self._release_held(on_line=False)
        # Behind the line or ahead of real time while the samples kept their pace: the
        # sender's clock jumped. Re-base its stamps onto the line: nothing is missing.
        self._rebase -= shift
        if abs(shift) > threshold:
            self._report_clock_jump(sus.before, shift)
        return []

    def _confirm_suspect(self, report: bool = True) -> None:
        """The stream stopped while suspect: a steady positive offset counts as a gap (when
        the reader itself stops, nothing is reported: it cannot be confirmed)."""
        sus, self._suspect = self._suspect, None
        if sus is None:
            return
        if not report:
            offset = self._clock.offset
            self._write([(d, t + offset) for d, t in self._release_held(on_line=True)])
            return
        tolerance = self._tolerance()
        shift, steady = self._suspect_offset(sus, tolerance)
        threshold = self._gap_threshold(tolerance)
        missing = 0
        if sus.gap_like and steady and shift > threshold:
            missing = self._report_suspect_gap(sus, shift)
        elif not sus.gap_like:
            self._rebase -= shift
            if abs(shift) > threshold:
                self._report_clock_jump(sus.before, shift)
        offset = self._clock.offset
        pieces = self._release_held(on_line=True, shift=missing * self._period)
        self._write([(d, t + offset) for d, t in pieces])

    def _report_gap(self, before: float, step: float, missing: int) -> None:
        with self._lock:
            self._gaps += 1
        self._events.put(
            AcquisitionEvent(
                ev.GAP,
                self.info.name,
                self.info.source_id,
                before,
                step,
                max(missing, 0),
                f"{max(missing, 0)} samples missing in {self.info.name} ({step * 1000:.1f} ms)",
            )
        )

    def _report_clock_jump(self, before: float, step: float, message: str = "") -> None:
        with self._lock:
            self._clock_jumps += 1
        if not message:
            direction = "back" if step < 0 else "ahead of real time"
            message = (
                f"the clock of {self.info.name} jumped {direction} by {abs(step):.3f} s while "
                f"its samples kept their pace: they stay on one continuous time line (repaired, "
                "no samples missing)")
        self._events.put(
            AcquisitionEvent(ev.CLOCK_JUMP, self.info.name, self.info.source_id, before,
                             message=message)
        )

    def _report_no_data(self, silent: float) -> None:
        self._no_data_reported = True
        message = (
            f"stream {self.info.describe()} is open but has sent no data for {silent:.1f} s: "
            "its outlet exists but pushes no samples; check that the device or sender is "
            "started (not paused)")
        with self._lock:
            self._last_error = message
        import pylsl

        self._events.put(AcquisitionEvent(ev.NO_DATA, self.info.name, self.info.source_id,
                                          pylsl.local_clock(), message=message))

    def _report_error(self, message: str) -> None:
        """Status + an ``error`` event (the same message at most every 10 s)."""
        import pylsl

        now = pylsl.local_clock()
        with self._lock:
            repeated = message == self._last_error and now - self._last_error_time < 10.0
            self._last_error = message
            if not repeated:
                self._last_error_time = now
        if repeated:
            return
        self._events.put(
            AcquisitionEvent(ev.ERROR, self.info.name, self.info.source_id, now, message=message)
        )


class _Suspect:
    """Chunk-start residuals (seconds) since the stamps left the fitted line."""

    def __init__(self, before: float, gap_like: bool = True):
        self.before = before  # output stamp of the last sample before it started
        #: ahead of the line but not of real time: could be a gap (pieces held); else a
        #: clock jump or jitter (stamps continue the line)
        self.gap_like = gap_like
        #: how held pieces were given out before a decision: None, "raw" or "line"
        self.mode: str | None = None
        self.residuals: list[float] = []
        self.samples = 0

    def add(self, residual: float, n: int) -> None:
        self.residuals.append(residual)
        self.samples += n

    def recent(self) -> np.ndarray:
        """The later half of the residuals (the settled part)."""
        r = np.asarray(self.residuals)
        return r[len(r) // 2 :]


def _decode(value: object) -> object:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else value
