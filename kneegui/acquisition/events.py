"""Events and status that stream readers report (gaps, outages, reconnects, errors)."""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import asdict, dataclass
from typing import Any

#: Kinds of :class:`AcquisitionEvent`.
CONNECTED = "connected"  # first data from a stream
GAP = "gap"  # samples missing: the sender's stamps skipped ahead while its data kept its pace
CLOCK_JUMP = "clock_jump"  # the sender's clock jumped (back, or ahead of real time): repaired
BAD_TIMESTAMPS = "bad_timestamps"  # samples without a finite stamp: stamped from the rate
NO_DATA = "no_data"  # a regular stream was opened but has not sent a single sample
DISCONNECTED = "disconnected"  # sender silent past the outage timeout, or lost
RECONNECTED = "reconnected"  # data flows again after an outage (same source_id)
ERROR = "error"  # something failed inside the reader thread; the thread keeps going


@dataclass(frozen=True)
class AcquisitionEvent:
    """One thing that happened to a stream, in local-clock time.

    ``t`` is when it started (for a gap: the last sample before it); ``duration`` how long the
    data was missing (0 when unknown or not applicable); ``missing`` the estimated number of
    samples that never arrived.
    """

    kind: str
    stream: str
    source_id: str
    t: float
    duration: float = 0.0
    missing: int = 0
    message: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class ReaderStatus:
    """A snapshot of one reader's health, safe to read from any thread."""

    name: str
    source_id: str
    role: str | None
    connected: bool
    received: int  # samples received since start
    effective_rate: float  # samples / s over the last few seconds of arrival time
    nominal_rate: float
    gaps: int
    outages: int
    reconnects: int
    clock_offset: float  # seconds added to sender timestamps
    clock_jitter: float  # std of recent time_correction estimates, seconds
    delay: float  # median of (arrival - sample time) of the newest chunks, seconds
    last_error: str | None
    running: bool
    clock_jumps: int = 0  # sender clock jumps repaired
    bad_timestamps: int = 0  # samples that came without a finite timestamp


class EventQueue:
    """Bounded, thread-safe queue that the consumer drains (oldest events drop when full).

    Further consumers (the recorder next to the GUI) :meth:`subscribe`: each subscription gets
    every event put after it was made, independently of the others and of :meth:`drain`.
    """

    def __init__(self, maxlen: int = 10_000):
        self._maxlen = maxlen
        self._items: deque[AcquisitionEvent] = deque(maxlen=maxlen)
        self._subscribers: list[EventSubscription] = []
        self._lock = threading.Lock()

    def put(self, event: AcquisitionEvent) -> None:
        with self._lock:
            self._items.append(event)
            for sub in self._subscribers:
                sub._items.append(event)

    def drain(self) -> list[AcquisitionEvent]:
        with self._lock:
            items = list(self._items)
            self._items.clear()
            return items

    def subscribe(self) -> EventSubscription:
        """A second, independent queue of the events from now on (``close()`` it when done)."""
        sub = EventSubscription(self, self._maxlen)
        with self._lock:
            self._subscribers.append(sub)
        return sub

    def _unsubscribe(self, sub: EventSubscription) -> None:
        with self._lock:
            if sub in self._subscribers:
                self._subscribers.remove(sub)


class EventSubscription:
    """One consumer's view of an :class:`EventQueue` (see :meth:`EventQueue.subscribe`)."""

    def __init__(self, queue: EventQueue, maxlen: int):
        self._queue = queue
        self._items: deque[AcquisitionEvent] = deque(maxlen=maxlen)

    def drain(self) -> list[AcquisitionEvent]:
        with self._queue._lock:
            items = list(self._items)
            self._items.clear()
            return items

    def close(self) -> None:
        """Stop receiving events."""
        self._queue._unsubscribe(self)
