"""RecordingPump: follows stream readers (and a hub's derived series) and feeds a SessionWriter.

The pump owns one lossless cursor per ring buffer (``read_from(index)``), so readers are never
blocked or slowed down: if the pump falls so far behind that a ring buffer wrapped, the skipped
samples are counted (``WriterStatus.lost_samples``) and logged as a ``recorder`` event. Every
reader's clock offset is stored about once a second.

Reader events (gaps, clock jumps, outages, reconnects, errors) are logged to ``/events`` with
origin ``acquisition``: with ``drain_events=True`` (``kneegui record``: nobody else reads them)
the pump drains the readers' queues; with ``drain_events=False`` (a Hub: the GUI owns the
queues) it takes its own subscription to them. Either way a recording made from the window and
one made by ``kneegui record`` log the same events: the reader's detector is the one gap rule;
the pump has none of its own.

Each reader's raw sender stamps go to ``timestamps_raw``, every clock measurement in its
``clock_log`` to ``clock_measurements`` and every change of the applied offset to
``clock_offsets`` (measurements taken before the recording started are included: they set the
offset in force at the start). Derived EMG series carry the hub's filter settings; a change
during the recording updates them and is logged as an event.
"""

from __future__ import annotations

import contextlib
import json
import math
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from kneegui.recording.writer import SessionWriter, lsl_now


@dataclass
class _Follower:
    """Cursor state for one ring buffer."""

    key: str
    source: Any  # a StreamReader (read_from, events, status) or a ring buffer
    cursor: int
    is_reader: bool
    name: str
    derived: dict[str, Any] = field(default_factory=dict)  # add_derived keyword arguments
    last_offset: float | None = None
    clock_index: int = 0  # cursor into the reader's clock_log
    settings_source: Callable[[], Any] | None = None  # current FilterSettings of a derived series
    settings: Any = None  # the settings last stored
    history: list[dict[str, Any]] = field(default_factory=list)
    events: Any = None  # the pump's subscription to the reader's events


def hub_sources(hub: Any) -> tuple[list[Any], list[tuple[str, Any, dict[str, Any]]]]:
    """The readers assigned in an ``acquisition.Hub`` and its filtered/envelope EMG buffers.

    Derived series are ``emg_filtered/<EMG stream>`` and ``emg_envelope/<EMG stream>`` (the
    model's EMG channels at the EMG stream's rate, as shown live).
    """
    from kneegui.acquisition import Role

    readers = list(hub.readers)
    derived: list[tuple[str, Any, dict[str, Any]]] = []
    emg = hub.assignment(Role.EMG)
    if emg is None:
        return readers, derived
    info = emg.reader.info
    labels = [info.label(i) for i in emg.channels]
    units = [info.channel_units[i] if i < len(info.channel_units) else "" for i in emg.channels]
    for mode in ("filtered", "envelope"):
        try:
            buffer = hub.emg_buffer(mode)
        except (ValueError, RuntimeError):  # EMG not running in the hub
            continue
        derived.append((f"emg_{mode}/{info.name}", buffer, {
            "rate": float(info.nominal_srate), "labels": labels, "units": units,
            "source": info.name,
            "description": f"EMG {mode} live by the hub (causal filters, display settings)",
            "settings_source": lambda: hub.filter_settings, "filter_kind": mode}))
    return readers, derived


class RecordingPump:
    """Copy every new sample of the followed buffers into ``writer`` from a background thread."""

    def __init__(
        self,
        writer: SessionWriter,
        readers: Iterable[Any] = (),
        *,
        derived: Iterable[tuple[str, Any, dict[str, Any]]] = (),
        poll_interval: float = 0.05,
        clock_interval: float = 1.0,
        drain_events: bool = True,
        preroll: bool = False,
    ) -> None:
        """``readers``: StreamReaders; ``derived``: (name, ring buffer, add_derived kwargs).

        ``preroll=True`` also records what the buffers already hold when the pump starts.
        Reader events are always logged: ``drain_events=True`` drains the readers' own queues
        (nobody else reads them), ``False`` takes a subscription and leaves the queues to their
        owner (the GUI).
        """
        self.writer = writer
        self.poll_interval = poll_interval
        self.clock_interval = clock_interval
        self.drain_events = drain_events
        self.error: str | None = None
        self._readers = list(readers)
        self._derived = list(derived)
        self._preroll = preroll
        self._followers: list[_Follower] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @classmethod
    def for_sources(cls, writer: SessionWriter, sources: Any, **kwargs: Any) -> RecordingPump:
        """Build a pump for a Hub (its readers and derived buffers), one reader or a list."""
        if hasattr(sources, "recording_sources"):  # a hub that lists what to record
            readers, derived = sources.recording_sources()
            kwargs.setdefault("drain_events", False)
            return cls(writer, readers, derived=derived, **kwargs)
        if hasattr(sources, "assignment"):  # acquisition.Hub
            readers, derived = hub_sources(sources)
            kwargs.setdefault("drain_events", False)
            return cls(writer, readers, derived=derived, **kwargs)
        if hasattr(sources, "read_from") and hasattr(sources, "info"):
            return cls(writer, [sources], **kwargs)
        return cls(writer, list(sources), **kwargs)

    def start(self) -> RecordingPump:
        """Declare the streams on the writer and start following."""
        for reader in self._readers:
            key = self.writer.add_stream(reader.info)
            start = reader.buffer.oldest_index if self._preroll else reader.buffer.total_written
            events = (reader.subscribe_events()
                      if not self.drain_events and hasattr(reader, "subscribe_events") else None)
            self._followers.append(_Follower(key, reader, start, True, reader.info.name,
                                             events=events))
        for name, buffer, kwargs in self._derived:
            start = buffer.oldest_index if self._preroll else buffer.total_written
            kwargs = dict(kwargs)
            source = kwargs.pop("settings_source", None)
            kind = kwargs.pop("filter_kind", None)
            follower = _Follower(name, buffer, start, False, name, kwargs)
            if source is not None and kind is not None:
                follower.settings_source = source
                follower.derived["filter_kind"] = kind
            self._followers.append(follower)
        self._thread = threading.Thread(target=self._run, name="kneegui-recording-pump",
                                        daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """Copy what is left in the buffers, then stop (the writer keeps running)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
        for f in self._followers:
            if f.events is not None:
                f.events.close()

    def _run(self) -> None:
        next_clock = 0.0
        try:
            while True:
                stopping = self._stop.is_set()
                for follower in self._followers:
                    self._copy(follower)
                self._copy_events()
                now = time.monotonic()
                if now >= next_clock or stopping:
                    self._copy_clock_offsets()
                    next_clock = now + self.clock_interval
                if stopping or not self.writer.recording:
                    return
                self._stop.wait(self.poll_interval)
        except Exception as exc:  # noqa: BLE001 - must be visible, not a silent dead thread
            self.error = f"recording pump stopped: {type(exc).__name__}: {exc}"
            with contextlib.suppress(Exception):
                self.writer.add_event(self.error, origin="recorder")

    def _copy(self, f: _Follower) -> None:
        read = f.source.read_from(f.cursor)
        if read.lost:
            self.writer.note_lost(read.lost)
            t = float(read.timestamps[0]) if len(read.timestamps) else lsl_now()
            self.writer.add_event(
                f"recorder fell behind: {read.lost} samples of {f.name} were overwritten in "
                "the ring buffer before they could be written", t=t, origin="recorder")
        if len(read.timestamps):
            if f.is_reader:
                self.writer.write_samples(f.key, read.data, read.timestamps, block=True,
                                          timeout=2.0, raw_timestamps=read.raw_timestamps)
            else:
                self._copy_derived(f, read)
        f.cursor = read.next_index

    def _copy_derived(self, f: _Follower, read: Any) -> None:
        """Write a derived block, with its filter settings (updated when they changed)."""
        kwargs = {k: v for k, v in f.derived.items() if k != "filter_kind"}
        if f.settings_source is None:
            self.writer.add_derived(f.key, read.data, read.timestamps, **kwargs)
            return
        from kneegui.recording.filter_meta import filter_attrs, settings_dict

        settings = f.settings_source()
        kind = f.derived["filter_kind"]
        rate = float(kwargs.get("rate", 0.0))
        t0 = float(read.timestamps[0])
        if f.settings is None:  # first block: settings go with the series' creation
            f.settings = settings
            f.history = [{"from_time": t0, "settings": settings_dict(settings)}]
            attrs = {**filter_attrs(settings, rate, kind), "filter_history": json.dumps(f.history)}
            self.writer.add_derived(f.key, read.data, read.timestamps, attrs=attrs, **kwargs)
            return
        self.writer.add_derived(f.key, read.data, read.timestamps, **kwargs)
        if settings != f.settings:  # the hub applies new settings at its next tick
            f.settings = settings
            f.history.append({"from_time": t0, "settings": settings_dict(settings)})
            attrs = filter_attrs(settings, rate, kind)
            self.writer.set_derived_attrs(
                f.key, {**attrs, "filter_history": json.dumps(f.history)})
            self.writer.add_event(
                f"display filter changed for {f.key}: {attrs['filter_description']}",
                t=t0, origin="recorder")

    def _copy_events(self) -> None:
        for f in self._followers:
            if f.events is not None:
                events = f.events.drain()
            elif self.drain_events and f.is_reader and hasattr(f.source, "events"):
                events = f.source.events()
            else:
                continue
            for event in events:
                label = f"{event.kind}: {event.message}" if event.message else event.kind
                duration = float(getattr(event, "duration", 0.0) or 0.0)
                self.writer.add_event(label, t=event.t, origin="acquisition", duration=duration)

    def _copy_clock_offsets(self) -> None:
        """Store new clock measurements and every change of the applied offset.

        Readers without a ``clock_log`` (nothing measured) store none: no placeholder rows.
        """
        for f in self._followers:
            log = getattr(f.source, "clock_log", None) if f.is_reader else None
            if log is None:
                continue
            rows, f.clock_index = log.read_from(f.clock_index)
            for row in rows:
                self.writer.add_clock_measurement(f.key, row.time, row.offset, row.round_trip)
                if row.applied != f.last_offset:
                    since = row.applied_from if math.isfinite(row.applied_from) else row.time
                    self.writer.add_clock_offset(f.key, since, row.applied)
                    f.last_offset = row.applied
