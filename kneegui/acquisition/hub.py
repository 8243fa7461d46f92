"""The hub: roles -> one model-rate time base, plus live filtered EMG for display and recording.

The hub's thread sleeps until a reader writes a chunk (each reader's ring buffer wakes it: no
fixed-rate polling), then reads the NEW samples of each assigned reader through its lossless
cursor, and

* EMG: runs the display/recording :class:`~kneegui.dsp.FilterChain` (full rate, into
  :meth:`Hub.emg_buffer` ``"filtered"`` / ``"envelope"``) and the model's
  :class:`~kneegui.dsp.EmgFeatureExtractor` (envelope at the model rate, each feature stamped
  with the EMG stream's own clock through ``process_with_times``);
* EMG features and the knee angle in the model units (mV, degrees) when the stream declares
  another voltage or angle unit (:mod:`kneegui.acquisition.units`);
* every role: keeps a short history of (timestamp, value) and linearly interpolates it onto the
  common grid ``t_k = k / model_rate`` (local LSL clock). Alignment uses the timestamps only,
  never arrival order.

A grid point is emitted once every role has a sample at or after it. If a role's reader
delivers nothing new for ``max_wait`` seconds (its sender is out), the grid moves on with the
other roles and that role's values are NaN for those points; NaN also
marks points inside a hole longer than ``max_hole`` seconds in a role's data. At start-up the
grid waits up to ``START_WAIT`` s (local clock, from the first data to arrive; not the data's own
stamps, which may lie far in the past) for every role's first sample. Aligned rows go into a ring
buffer read with :meth:`Hub.latest_aligned` (snapshot) or :meth:`Hub.aligned_from` (cursor);
consumers that must react at once subscribe to it (:meth:`Hub.subscribe_aligned`). Each row
also keeps how long after its grid time the newest sample it needed was stamped
(``AlignedFrame.ready``: that sample's time), the reference of the end-to-end latency.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from kneegui.acquisition.alignment import (
    MAX_HOLE_S,
    MAX_WAIT_S,
    grid_index_at_or_after,
    grid_index_at_or_before,
    hole_limit,
    interpolate_at,
)
from kneegui.acquisition.events import ReaderStatus
from kneegui.acquisition.reader import StreamReader
from kneegui.acquisition.ringbuffer import RingBuffer
from kneegui.acquisition.roles import Role, RoleError, check_emg_picks, check_role
from kneegui.acquisition.units import TO_DEGREES, TO_MILLIVOLTS, factor_to
from kneegui.dsp import EmgFeatureExtractor, FilterChain, FilterSettings

#: Longest history (seconds of a role's own timestamps) kept for interpolation.
HISTORY_SECONDS = 10.0
#: Seconds the grid waits at start-up for roles that have not delivered data yet.
START_WAIT = 2.0
#: Roles placed on the aligned grid, in column order.
ALIGNED_ROLES = (Role.EMG, Role.KNEE_ANGLE, Role.KINEMATICS, Role.FORCE)
#: Seconds the hub sleeps at most without new data (only time-based rules need it: the
#: start-up wait and a role that went silent).
IDLE_WAKE = 0.1
#: Seconds: a woken hub skips chunks that complete no grid row (1-sample pushes at kHz rates
#: would otherwise run the DSP thousands of times a second) for at most this long; then it
#: reads them anyway (display, roles whose sender is out, max_wait).
COALESCE_S = 0.02


@dataclass(frozen=True)
class Assignment:
    """A reader doing a role; ``channels`` are the stream channel indices the role uses."""

    role: Role
    reader: StreamReader
    channels: list[int]


@dataclass(frozen=True)
class AlignedFrame:
    """Model inputs on the common grid (rows oldest first).

    ``emg_env`` has the assigned EMG channels (``[m, 0]`` when no EMG is assigned); roles that
    are not assigned are None. NaN marks a role with no data around that grid point.
    ``next_index``/``lost`` are set by :meth:`Hub.aligned_from` (cursor reads).
    """

    t: np.ndarray  # [m] float64, local LSL clock
    emg_env: np.ndarray  # [m, ch] float32
    angle: np.ndarray | None  # [m] float32, degrees
    kinematics: np.ndarray | None  # [m, k] float32
    force: np.ndarray | None  # [m, f] float32
    next_index: int = 0
    lost: int = 0
    #: [m] local time of the newest input sample each row needed (>= t): the first sample at
    #: or after the grid time of every role (EMG: the envelope sample, within one raw sample
    #: period of the raw sample that completed it). None where not known.
    ready: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.t)


@dataclass(frozen=True)
class HubStatus:
    running: bool
    model_rate: float
    aligned: int  # grid points emitted since start
    incomplete: int  # grid points emitted with NaN for at least one role
    lost_samples: int  # reader samples overwritten before the hub read them
    waiting_for: list[str]  # roles the grid is waiting for right now
    last_error: str | None


@dataclass
class _Track:
    """Per-role state of the hub thread."""

    role: Role
    reader: StreamReader
    picks: list[int]
    cursor: int = 0
    t: np.ndarray = field(default_factory=lambda: np.zeros(0))
    v: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)))
    extractor: EmgFeatureExtractor | None = None
    chain: FilterChain | None = None
    last_arrival: float = -math.inf  # local clock when the hub last got new samples
    first_arrival: float = math.inf  # local clock when the hub first got samples
    gain: float = 1.0  # stream unit -> model unit (EMG: mV, angle: degrees; acquisition.units)

    def append(self, t: np.ndarray, v: np.ndarray) -> None:
        if t.shape[0] == 0:
            return
        self.t = np.concatenate((self.t, t)) if self.t.size else t
        self.v = np.concatenate((self.v, v)) if self.v.size else v
        if self.t[-1] - self.t[0] > HISTORY_SECONDS:  # bounded even if the grid is stuck
            self.forget_before(float(self.t[-1]) - HISTORY_SECONDS)

    @property
    def last_t(self) -> float:
        return float(self.t[-1]) if self.t.size else -math.inf

    def values_at(self, grid: np.ndarray, max_hole: float) -> np.ndarray:
        """Linear interpolation at ``grid``; NaN outside the data or across a long hole."""
        if self.t.size == 0:
            return np.full((grid.shape[0], len(self.picks)), np.nan)
        return interpolate_at(self.t, self.v, grid, max_hole)

    def first_at_or_after(self, grid: np.ndarray) -> np.ndarray:
        """Stamp of the first sample at or after each grid time (the grid time if none)."""
        if self.t.size == 0:
            return grid
        hi = np.minimum(np.searchsorted(self.t, grid, side="left"), self.t.size - 1)
        return np.maximum(self.t[hi], grid)

    def forget_before(self, t: float) -> None:
        """Drop samples no longer needed to interpolate at times >= ``t``."""
        if self.t.size < 2:
            return
        keep_from = max(0, int(np.searchsorted(self.t, t, side="right")) - 1)
        if keep_from:
            self.t = self.t[keep_from:]
            self.v = self.v[keep_from:]


class Hub:
    """Assigns roles to stream readers and aligns them on the model-rate grid."""

    def __init__(
        self,
        model_rate: float = 100.0,
        *,
        feature_settings: FilterSettings | None = None,
        filter_settings: FilterSettings | None = None,
        aligned_seconds: float = 600.0,
        display_seconds: float = 60.0,
        max_wait: float = MAX_WAIT_S,
        max_hole: float = MAX_HOLE_S,
        arena=None,
    ):
        if model_rate <= 0:
            raise ValueError(f"model rate must be > 0 Hz, got {model_rate}")
        self.model_rate = float(model_rate)
        #: settings of the model features (must match what the model was trained with)
        self.feature_settings = feature_settings or FilterSettings()
        self._filter_settings = filter_settings or FilterSettings()
        self._pending_settings: FilterSettings | None = None
        self.aligned_seconds = aligned_seconds
        self.display_seconds = display_seconds
        self.max_wait = max_wait
        self.max_hole = max_hole
        self.arena = arena  # kneegui.acquisition.shared.Arena: buffers another process reads
        self._wake = threading.Event()
        self._aligned_listeners: list[threading.Event] = []
        self._assignments: dict[Role, Assignment] = {}
        self._tracks: list[_Track] = []
        self._aligned: RingBuffer | None = None
        self._columns: dict[Role, slice] = {}
        self._emg_buffers: dict[str, RingBuffer] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._next_k: int | None = None
        self._incomplete = 0
        self._lost = 0
        self._waiting: list[str] = []
        self._last_error: str | None = None

    # ------------------------------------------------------------------ roles
    def assign(
        self, role: Role, reader: StreamReader, channels: Sequence[int | str] | None = None
    ) -> Assignment:
        """Give ``reader`` a role. EMG: ``channels`` are the channels that feed the model, in the
        model's input order (:func:`kneegui.model.layout.match_channels`; default: all).

        Raises :class:`RoleError` when the stream does not fit the role.
        """
        if self._thread is not None:
            raise RuntimeError("assign roles before Hub.start()")
        if role is Role.EMG:
            picks = check_emg_picks(reader.info, channels)
        else:
            picks = check_role(reader.info, role, channels)
        assignment = Assignment(role, reader, picks)
        self._assignments[role] = assignment
        return assignment

    def assignment(self, role: Role) -> Assignment | None:
        return self._assignments.get(role)

    @property
    def readers(self) -> list[StreamReader]:
        """The assigned readers (each once)."""
        out: list[StreamReader] = []
        for a in self._assignments.values():
            if a.reader not in out:
                out.append(a.reader)
        return out

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> Hub:
        """Start any assigned reader that is not running, then the alignment thread."""
        if self._thread is not None:
            return self
        aligned = [r for r in ALIGNED_ROLES if r in self._assignments]
        if not aligned:
            raise RoleError("assign at least an EMG or a knee-angle stream before starting")
        self._build(aligned)
        for reader in self.readers:
            reader.buffer.subscribe(self._wake)
            reader.start()
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="kneegui-hub", daemon=True)
        self._thread.start()
        return self

    def stop(self, stop_readers: bool = True) -> None:
        """Stop the hub thread (and, by default, the assigned readers)."""
        self._stop.set()
        self._wake.set()
        for reader in self.readers:
            reader.buffer.unsubscribe(self._wake)
        if self._thread is not None:
            self._thread.join(5.0)
        self._thread = None
        if stop_readers:
            for reader in self.readers:
                reader.stop()

    def _build(self, aligned: list[Role]) -> None:
        col = 0
        for role in aligned:
            a = self._assignments[role]
            track = _Track(role, a.reader, a.channels, cursor=a.reader.buffer.total_written)
            units = [a.reader.info.channel_units[i] if i < len(a.reader.info.channel_units)
                     else "" for i in a.channels]
            if role in (Role.EMG, Role.KNEE_ANGLE):
                track.gain = factor_to(units, TO_MILLIVOLTS if role is Role.EMG else TO_DEGREES)
            if role is Role.EMG:
                fs = a.reader.info.nominal_srate
                track.extractor = EmgFeatureExtractor(
                    fs, len(a.channels), self.model_rate, self.feature_settings
                )
                track.chain = FilterChain(fs, len(a.channels), self._filter_settings)
                capacity = int(math.ceil(self.display_seconds * fs))
                self._emg_buffers = {
                    mode: RingBuffer(capacity, len(a.channels), np.float32, arena=self.arena,
                                     name=f"hub-emg-{mode}")
                    for mode in ("filtered", "envelope")
                }
            self._tracks.append(track)
            self._columns[role] = slice(col, col + len(a.channels))
            col += len(a.channels)
        capacity = int(self.aligned_seconds * self.model_rate)
        # one more column: seconds from the grid time to the newest sample the row needed
        self._aligned = RingBuffer(capacity, col + 1, np.float32, arena=self.arena,
                                   name="hub-aligned")
        for event in self._aligned_listeners:
            self._aligned.subscribe(event)
        self._ready_column = col
        self._rows = AlignedRows(self._aligned, self._columns)

    # ------------------------------------------------------------------ settings
    def set_filter_settings(self, settings: FilterSettings) -> None:
        """Change the display/recording EMG filters live (applied at the next tick).

        The model features keep ``feature_settings`` (the model was trained with them).
        """
        with self._lock:
            self._filter_settings = settings
            self._pending_settings = settings

    @property
    def filter_settings(self) -> FilterSettings:
        return self._filter_settings

    # ------------------------------------------------------------------ outputs
    def emg_buffer(self, mode: str) -> RingBuffer:
        """Full-rate ``"filtered"`` or ``"envelope"`` EMG of the assigned EMG channels."""
        if mode not in ("filtered", "envelope"):
            raise ValueError(f"EMG buffer mode must be 'filtered' or 'envelope', got {mode!r}")
        if mode not in self._emg_buffers:
            raise RuntimeError("no EMG stream is running in the hub (assign EMG and start())")
        return self._emg_buffers[mode]

    def subscribe_aligned(self, event: threading.Event) -> None:
        """Set ``event`` whenever new aligned rows are written (the prediction worker)."""
        if event not in self._aligned_listeners:
            self._aligned_listeners.append(event)
        if self._aligned is not None:
            self._aligned.subscribe(event)

    def unsubscribe_aligned(self, event: threading.Event) -> None:
        if event in self._aligned_listeners:
            self._aligned_listeners.remove(event)
        if self._aligned is not None:
            self._aligned.unsubscribe(event)

    @property
    def aligned_columns(self) -> dict[Role, slice]:
        """Which columns of the aligned buffer each role fills."""
        return dict(self._columns)

    @property
    def aligned_buffer(self) -> RingBuffer | None:
        """The aligned rows' ring buffer (its last column: readiness delay, seconds)."""
        return self._aligned

    def aligned_count(self) -> int:
        """Grid points emitted so far (the cursor index of the next one)."""
        return 0 if self._aligned is None else self._aligned.total_written

    def latest_aligned(self, n: int) -> AlignedFrame | None:
        """The newest ``n`` aligned rows (fewer at start-up), or None before the first."""
        return None if self._aligned is None else self._rows.latest(n)

    def aligned_from(self, index: int, max_rows: int | None = None) -> AlignedFrame | None:
        """Lossless cursor read of aligned rows from absolute ``index`` (see RingBuffer)."""
        return None if self._aligned is None else self._rows.read_from(index, max_rows)

    def statuses(self) -> list[ReaderStatus]:
        return [r.status() for r in self.readers]

    def status(self) -> HubStatus:
        with self._lock:
            return HubStatus(
                running=self._thread is not None and self._thread.is_alive(),
                model_rate=self.model_rate,
                aligned=self.aligned_count(),
                incomplete=self._incomplete,
                lost_samples=self._lost,
                waiting_for=list(self._waiting),
                last_error=self._last_error,
            )

    # ------------------------------------------------------------------ thread
    def _run(self) -> None:
        import pylsl

        last_step = 0.0
        while not self._stop.is_set():
            woken = self._wake.wait(IDLE_WAKE)  # a reader's new chunk wakes the hub at once
            self._wake.clear()  # before reading: a chunk written from now on wakes it again
            if self._stop.is_set():
                break
            now = pylsl.local_clock()
            if woken and now - last_step < COALESCE_S and not self._row_may_be_ready():
                continue  # a chunk that completes no grid row: read it with the next one
            last_step = now
            try:
                self.step(now)
            except Exception as exc:  # noqa: BLE001 - the hub keeps running; status shows it
                with self._lock:
                    self._last_error = f"{type(exc).__name__}: {exc}"

    def _row_may_be_ready(self) -> bool:
        """True when every reader's newest sample reached the next grid time (a row may be
        complete), or the grid has not started. Cheap: one look at each ring buffer's end."""
        if self._next_k is None:
            return True
        target = self._next_k / self.model_rate
        for track in self._tracks:
            newest = track.reader.buffer.last_timestamp()
            if newest is None or newest < target:
                return False
        return True

    def step(self, now: float | None = None) -> int:
        """One tick: read new samples, emit the grid points that are ready; returns how many."""
        import pylsl

        now = pylsl.local_clock() if now is None else now
        for track in self._tracks:
            self._read_new(track, now)
        emitted = self._emit(now)
        self._tell_readers()
        return emitted

    def _read_new(self, track: _Track, now: float) -> None:
        r = track.reader.read_from(track.cursor)
        track.cursor = r.next_index
        if r.lost:
            with self._lock:
                self._lost += r.lost
        if r.timestamps.size == 0:
            return
        track.last_arrival = now
        track.first_arrival = min(track.first_arrival, now)
        values = r.data[:, track.picks].astype(np.float64)
        if track.role is Role.EMG:
            with self._lock:
                pending, self._pending_settings = self._pending_settings, None
            if pending is not None:
                fs = track.reader.info.nominal_srate
                track.chain = FilterChain(fs, len(track.picks), pending)
            out = track.chain.process(values)
            self._emg_buffers["filtered"].write(out.filtered.astype(np.float32), r.timestamps)
            self._emg_buffers["envelope"].write(out.envelope.astype(np.float32), r.timestamps)
            model_values = values if track.gain == 1.0 else values * track.gain
            features, t_features = track.extractor.process_with_times(model_values, r.timestamps)
            track.append(t_features, features)
        else:
            track.append(r.timestamps, values if track.gain == 1.0 else values * track.gain)

    def _emit(self, now: float) -> int:
        rate = self.model_rate
        started = [tr for tr in self._tracks if tr.t.size]
        if self._next_k is None:
            if not started:
                self._note_waiting()
                return 0
            waited = now - min(tr.first_arrival for tr in self._tracks)
            if len(started) < len(self._tracks) and waited < START_WAIT:
                self._note_waiting()  # give every role a moment to deliver its first data
                return 0
            self._next_k = grid_index_at_or_after(max(float(tr.t[0]) for tr in started), rate)
        # a role whose reader delivered nothing new for max_wait seconds (sender out) no longer
        # holds the grid back; a reader still catching up on a backlog does
        active = [tr for tr in started if now - tr.last_arrival <= self.max_wait]
        if not active:
            self._note_waiting()
            return 0
        last_k = grid_index_at_or_before(min(tr.last_t for tr in active), rate)
        if last_k < self._next_k:
            self._note_waiting()
            return 0
        ks = np.arange(self._next_k, last_k + 1)
        grid = ks / rate
        row = np.empty((grid.shape[0], self._aligned.n_channels), np.float32)
        incomplete = np.zeros(grid.shape[0], bool)
        ready = grid.copy()
        for track in self._tracks:
            values = track.values_at(grid, self._hole_limit(track))
            row[:, self._columns[track.role]] = values
            incomplete |= np.isnan(values).any(axis=1)
            ready = np.maximum(ready, track.first_at_or_after(grid))
            track.forget_before(float(grid[-1]))
        row[:, self._ready_column] = ready - grid
        self._aligned.write(row, grid)
        self._next_k = int(last_k) + 1
        with self._lock:
            self._incomplete += int(incomplete.sum())
        self._note_waiting()
        return int(grid.shape[0])

    def _tell_readers(self) -> None:
        """Tell each reader the stamp of its sample the next grid row waits for (the first at or
        after the grid time on the role's own sample sequence; EMG: features at the model rate),
        so that a reader pacing its pulls wakes for it (:meth:`StreamReader.expect`)."""
        if self._next_k is None:
            return
        t_next = self._next_k / self.model_rate
        for track in self._tracks:
            rate = self._track_rate(track)
            last = track.last_t
            needed = None  # irregular rate, no data yet, or the row has this role's data
            if rate > 0 and math.isfinite(last) and last < t_next:
                needed = last + math.ceil((t_next - last) * rate - 1e-6) / rate
            track.reader.expect(needed)

    def _hole_limit(self, track: _Track) -> float:
        """Longest interpolation span for a role (at least 2 of its own sample periods)."""
        return hole_limit(self._track_rate(track), self.max_hole, self.max_wait)

    def _track_rate(self, track: _Track) -> float:
        """Rate of a role's series in the hub: EMG features at the model rate, others at their
        stream's nominal rate (0: irregular)."""
        return self.model_rate if track.role is Role.EMG else track.reader.info.nominal_srate

    def _note_waiting(self) -> None:
        target = (self._next_k or 0) / self.model_rate
        waiting = [tr.role.name for tr in self._tracks if tr.last_t < target or tr.t.size == 0]
        with self._lock:
            self._waiting = waiting


class AlignedRows:
    """Aligned rows as :class:`AlignedFrame` s, read from the hub's ring buffer (or from a view
    of it in another process): role columns as given, the last column the readiness delay."""

    def __init__(self, buffer, columns: dict[Role, slice]) -> None:
        self.buffer = buffer
        self.columns = dict(columns)

    def count(self) -> int:
        return self.buffer.total_written

    def latest(self, n: int) -> AlignedFrame | None:
        r = self.buffer.tail(n)
        if r.timestamps.size == 0:
            return None
        return self.frame(r.data, r.timestamps, r.next_index, 0)

    def read_from(self, index: int, max_rows: int | None = None) -> AlignedFrame:
        r = self.buffer.read_from(index, max_rows)
        return self.frame(r.data, r.timestamps, r.next_index, r.lost)

    def frame(self, data: np.ndarray, t: np.ndarray, next_index: int, lost: int) -> AlignedFrame:
        def part(role: Role) -> np.ndarray | None:
            cols = self.columns.get(role)
            return None if cols is None else data[:, cols]

        emg, angle = part(Role.EMG), part(Role.KNEE_ANGLE)
        return AlignedFrame(
            t=t, emg_env=np.zeros((t.shape[0], 0), np.float32) if emg is None else emg,
            angle=None if angle is None else angle[:, 0], kinematics=part(Role.KINEMATICS),
            force=part(Role.FORCE), next_index=next_index, lost=lost,
            ready=t + data[:, -1].astype(np.float64),
        )


__all__ = ["AlignedFrame", "AlignedRows", "Assignment", "Hub", "HubStatus",
           "grid_index_at_or_after", "grid_index_at_or_before"]
