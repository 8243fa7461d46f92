"""Republish a recorded session to LSL with its original timing and stream metadata.

Every recorded stream gets an outlet with the original name, type, rate, format and the full
``<desc>`` of its stream-info XML (channel labels, units, manufacturer...). The source_id is the
original one plus :data:`SOURCE_SUFFIX`, so a replay never collides with the live device while
tools that reconnect by source_id still find the replay again after a restart. Sample time stamps
are the recorded ones shifted to "now" (and divided by ``speed``), so inter-sample timing, gaps
and cross-stream alignment are preserved. At ``speed`` != 1 the advertised nominal rate is
scaled by ``speed`` too, so consumers see a consistent stream.
"""

from __future__ import annotations

import math
import threading
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from kneegui.recording.reader import RecordedStream, Session
from kneegui.recording.streaminfo import parse_desc

SOURCE_SUFFIX = "-replay"
_FORMATS = {"float32": 1, "double64": 2, "float64": 2, "string": 3, "int32": 4, "int16": 5,
            "int8": 6, "int64": 7}
_BLOCK = 20_000


def replay_source_id(stream: RecordedStream) -> str:
    """The source_id the replay outlet of ``stream`` uses (derived from the original)."""
    base = stream.source_id or f"kneegui:{stream.attrs.get('name', stream.name)}"
    return f"{base}{SOURCE_SUFFIX}"


def play_times(ts: np.ndarray) -> np.ndarray:
    """The stamps a replay uses: NaN/inf stamps are interpolated between their finite
    neighbours, and a stamp never goes before the one of the sample before it (so that every
    sample is played, in order). The file itself is not changed."""
    ts = np.asarray(ts, dtype=np.float64)
    bad = ~np.isfinite(ts)
    if bad.any():
        good = np.flatnonzero(~bad)
        ts = ts.copy()
        ts[bad] = np.interp(np.flatnonzero(bad), good, ts[good]) if good.size else 0.0
    if ts.size > 1 and np.any(np.diff(ts) < 0):
        ts = np.maximum.accumulate(ts)
    return ts


def replay_problem(stream: RecordedStream) -> str | None:
    """Why ``stream`` cannot be replayed (None when it can)."""
    if stream.channel_format.lower() not in _FORMATS:
        return (f"stream {stream.name!r} has an unknown channel format "
                f"{stream.channel_format!r}; it is not replayed")
    if stream.channel_count < 1:
        return f"stream {stream.name!r} has no channels; it is not replayed"
    return None


def _copy_desc(src: ET.Element, dst: Any) -> None:
    """Copy XML children of ``src`` into a pylsl XMLElement ``dst`` (recursively)."""
    for child in src:
        if len(child):
            _copy_desc(child, dst.append_child(child.tag))
        else:
            dst.append_child_value(child.tag, child.text or "")


def make_stream_info(stream: RecordedStream, speed: float = 1.0) -> Any:
    """A ``pylsl.StreamInfo`` reproducing the recorded stream's header and ``<desc>``.

    The nominal rate is multiplied by ``speed`` (samples really arrive that fast).
    """
    import pylsl

    fmt = stream.channel_format.lower()
    if fmt not in _FORMATS:
        raise ValueError(f"stream {stream.name!r} has unknown channel format {fmt!r}")
    info = pylsl.StreamInfo(
        str(stream.attrs.get("name", stream.name)), stream.type, stream.channel_count,
        stream.nominal_srate * speed, _FORMATS[fmt], replay_source_id(stream))
    desc = parse_desc(stream.info_xml)
    if desc is not None and len(desc):
        _copy_desc(desc, info.desc())
    elif any(stream.channel_labels):
        channels = info.desc().append_child("channels")
        units = stream.channel_units
        for i, label in enumerate(stream.channel_labels):
            ch = channels.append_child("channel")
            ch.append_child_value("label", label)
            if i < len(units) and units[i]:
                ch.append_child_value("unit", units[i])
    return info


@dataclass
class _Track:
    stream: RecordedStream
    outlet: Any
    timestamps: np.ndarray
    position: int = 0
    block_start: int = 0
    block: np.ndarray | None = None

    def rows(self, start: int, stop: int) -> np.ndarray:
        """Data rows start:stop, read from the file in blocks."""
        out = []
        while start < stop:
            if self.block is None or not (self.block_start <= start
                                          < self.block_start + len(self.block)):
                self.block_start = start
                self.block, _ = self.stream.read(start, start + _BLOCK)
            end = min(stop, self.block_start + len(self.block))
            out.append(self.block[start - self.block_start: end - self.block_start])
            start = end
        return out[0] if len(out) == 1 else np.concatenate(out)


class Replayer:
    """Publish ``session`` streams as LSL outlets; :meth:`run` blocks, :meth:`start` threads."""

    #: Seconds the outlets stay open after the last sample of a non-looping replay.
    DRAIN_SECONDS = 1.0

    def __init__(
        self,
        session: Session,
        streams: Sequence[str] | None = None,
        *,
        speed: float = 1.0,
        loop: bool = False,
        tick: float = 0.005,
    ) -> None:
        if not (math.isfinite(speed) and speed > 0):
            raise ValueError(f"--speed must be a finite number > 0, got {speed}")
        names = list(session.streams) if not streams else list(streams)
        unknown = [n for n in names if n not in session.streams]
        if unknown:
            raise KeyError(f"no stream {unknown[0]!r} in {session.path}; it has "
                           f"{', '.join(session.streams) or 'no streams'}")
        #: why streams were left out (unknown format, ...): one message each
        self.skipped: list[str] = []
        for name in list(names):
            problem = replay_problem(session.streams[name])
            if problem:
                self.skipped.append(problem)
                names.remove(name)
        self.session = session
        self.speed = float(speed)
        self.loop = loop
        self.tick = tick
        self.tracks: list[_Track] = []
        self.samples_pushed = 0
        self.loops_done = 0
        self.error: str | None = None
        self._names = [n for n in names if session.streams[n].length > 0]
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._times = {n: play_times(session.streams[n].timestamps) for n in self._names}
        starts = [self._times[n][0] for n in self._names]
        ends = [self._times[n][-1] for n in self._names]
        self.t_first = float(min(starts)) if starts else 0.0
        self.duration = float(max(ends) - self.t_first) if ends else 0.0

    @property
    def stream_names(self) -> list[str]:
        """Streams that will be replayed (empty streams are skipped)."""
        return list(self._names)

    def open(self) -> list[Any]:
        """Create the outlets (so consumers can connect before :meth:`run`); returns infos."""
        import pylsl

        if not self.tracks:
            for name in self._names:
                stream = self.session.streams[name]
                outlet = pylsl.StreamOutlet(make_stream_info(stream, self.speed), chunk_size=0,
                                            max_buffered=360)
                self.tracks.append(_Track(stream, outlet, self._times[name]))
        return [t.outlet.get_info() for t in self.tracks]

    def wait_for_consumers(self, timeout: float) -> bool:
        """Wait until every outlet has at least one consumer (or ``timeout`` passes)."""
        deadline = time.monotonic() + timeout
        for track in self.tracks:
            remaining = max(0.0, deadline - time.monotonic())
            if not track.outlet.wait_for_consumers(remaining):
                return False
        return True

    def run(self, progress: Callable[[float], None] | None = None) -> None:
        """Publish until the end (or forever with ``loop``) or :meth:`stop`.

        ``progress(fraction_of_current_pass)`` is called about 10 times a second.
        """
        import pylsl

        self.open()
        period = self._loop_period()
        t0 = pylsl.local_clock()
        next_progress = 0.0
        while not self._stop.is_set():
            now = pylsl.local_clock()
            target = self.t_first + (now - t0) * self.speed  # recorded time due by now
            shift = t0 - self.t_first / self.speed + self.loops_done * period / self.speed
            done = True
            for track in self.tracks:
                done &= self._push_due(track, target - self.loops_done * period, shift)
            if progress is not None and now >= next_progress:
                progress(min(1.0, (target - self.loops_done * period - self.t_first)
                             / max(period, 1e-9)))
                next_progress = now + 0.1
            if done:
                if not self.loop:
                    if progress is not None:
                        progress(1.0)
                    # liblsl sends asynchronously: give connected inlets time to receive the
                    # last chunk before the caller closes the outlets.
                    self._stop.wait(self.DRAIN_SECONDS)
                    break
                self.loops_done += 1
                for track in self.tracks:
                    track.position = 0
            self._stop.wait(self.tick)

    def _loop_period(self) -> float:
        """Recorded seconds per pass: duration plus one sample period of the fastest stream."""
        rates = [self.session.streams[n].nominal_srate for n in self._names]
        gap = 1.0 / max(rates) if rates and max(rates) > 0 else 0.01
        return self.duration + gap

    def _push_due(self, track: _Track, target: float, shift: float) -> bool:
        """Push samples recorded up to ``target``; True when the track is finished."""
        stop = int(np.searchsorted(track.timestamps, target, side="right"))
        start = track.position
        if stop > start:
            data = track.rows(start, stop)
            stamps = track.timestamps[start:stop] / self.speed + shift
            if track.stream.is_string:
                for row, stamp in zip(data, stamps, strict=True):
                    track.outlet.push_sample([str(v) for v in row], float(stamp))
            else:
                track.outlet.push_chunk(np.ascontiguousarray(data), stamps.tolist())
            track.position = stop
            self.samples_pushed += stop - start
        return track.position >= len(track.timestamps)

    def start(self) -> Replayer:
        """Run in a background thread."""
        self.open()
        self._thread = threading.Thread(target=self._run_safe, name="kneegui-replay",
                                        daemon=True)
        self._thread.start()
        return self

    def _run_safe(self) -> None:
        try:
            self.run()
        except Exception as exc:  # noqa: BLE001 - reported via .error
            self.error = f"replay stopped: {type(exc).__name__}: {exc}"

    def stop_soon(self) -> None:
        """Ask :meth:`run` to return after its current step (outlets stay open)."""
        self._stop.set()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop publishing and close the outlets."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
        self.tracks.clear()

    @property
    def finished(self) -> bool:
        return self._thread is not None and not self._thread.is_alive()
