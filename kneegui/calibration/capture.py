"""Walking capture: aligned model-rate frames cut into gap-free segments, with gait cycles.

A stream outage ends the current segment; the next frames start a new one, so no training window
and no gait cycle ever spans a gap. Cycles are detected by a streaming counter on the knee angle.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class CycleRef:
    """One gait cycle: samples ``[start, end)`` of segment ``segment``."""

    segment: int
    start: int
    end: int

    @property
    def length(self) -> int:
        return self.end - self.start


@dataclass(frozen=True)
class Segment:
    """Gap-free aligned data at the model rate."""

    t: np.ndarray  # float64 [n] local LSL clock seconds
    emg_env: np.ndarray  # float32 [n, channels]
    angle: np.ndarray  # float32 [n] degrees, flexion positive


@dataclass(frozen=True)
class CalibrationCapture:
    """What the walking capture produced: the input of fine-tuning and of validation.

    ``train_cycles`` adapt the model; ``holdout_cycle`` is never trained on (it starts at least
    ``purge_samples`` after the last training cycle ends, or in a later segment).
    """

    model_rate: float
    segments: list[Segment]
    train_cycles: list[CycleRef]
    holdout_cycle: CycleRef
    purge_samples: int
    baseline: dict[str, list[float]] = field(default_factory=dict)

    def data_hash(self) -> str:
        """SHA-256 over the captured samples and cycle boundaries (identifies the training data)."""
        h = hashlib.sha256()
        for seg in self.segments:
            for arr in (seg.t, seg.emg_env, seg.angle):
                h.update(np.ascontiguousarray(arr).tobytes())
        for c in [*self.train_cycles, self.holdout_cycle]:
            h.update(f"{c.segment}:{c.start}:{c.end};".encode())
        return h.hexdigest()


#: Builds a streaming cycle detector; called with the model rate. Its ``update(angle, t)`` returns
#: the cycles completed by that chunk as ``(t_start, t_end)`` pairs in the stream's clock.
CycleDetectorFactory = Callable[[float], "CycleDetector"]


class CycleDetector:
    """Protocol of the streaming detector used by :class:`WalkingCapture` (see ``detectors``)."""

    def update(self, angle: np.ndarray, t: np.ndarray) -> list[tuple[float, float]]:
        raise NotImplementedError


class _GrowingSegment:
    def __init__(self, n_channels: int) -> None:
        self.t: list[np.ndarray] = []
        self.emg: list[np.ndarray] = []
        self.angle: list[np.ndarray] = []
        self.n = 0
        self.n_channels = n_channels

    def append(self, t: np.ndarray, emg: np.ndarray, angle: np.ndarray) -> None:
        self.t.append(np.asarray(t, dtype=np.float64).copy())
        self.emg.append(np.asarray(emg, dtype=np.float32).reshape(len(t), -1).copy())
        self.angle.append(np.asarray(angle, dtype=np.float32).reshape(-1).copy())
        self.n += len(t)

    def last_t(self) -> float | None:
        return float(self.t[-1][-1]) if self.t else None

    def freeze(self) -> Segment:
        if not self.t:
            empty = np.zeros(0)
            return Segment(empty, np.zeros((0, self.n_channels), np.float32), empty.astype("f4"))
        return Segment(np.concatenate(self.t), np.concatenate(self.emg), np.concatenate(self.angle))


class WalkingCapture:
    """Accumulates aligned frames and gait cycles until ``train_cycles`` + 1 held-back cycle exist.

    ``purge_samples`` (normally the model's input window) is the minimum distance between the end
    of the last training cycle and the start of the held-back cycle in the same segment, so that
    the held-back cycle's input windows share no samples with a training target.
    ``tail_samples`` (normally the longest horizon) are recorded after the held-back cycle so that
    every sample of it can be a prediction target.
    """

    def __init__(
        self,
        train_cycles: int,
        model_rate: float,
        detector_factory: CycleDetectorFactory,
        purge_samples: int = 0,
        tail_samples: int = 0,
        n_channels: int = 4,
    ) -> None:
        if train_cycles < 1:
            raise ValueError("train_cycles must be at least 1")
        self.target_train = train_cycles
        self.model_rate = float(model_rate)
        self.purge_samples = int(purge_samples)
        self.tail_samples = int(tail_samples)
        self._factory = detector_factory
        self._n_channels = n_channels
        self._segments: list[_GrowingSegment] = [_GrowingSegment(n_channels)]
        self._detector = detector_factory(self.model_rate)
        self._all_cycles: list[CycleRef] = []
        self.train: list[CycleRef] = []
        self.holdout: CycleRef | None = None
        self._segment_open = True

    def retarget(self, train_cycles: int) -> None:
        """Change the number of training cycles mid-capture: never below the cycles already
        counted, and only until the held-back cycle is taken (ValueError otherwise)."""
        if train_cycles < 1:
            raise ValueError("train_cycles must be at least 1")
        if self.holdout is not None or train_cycles < len(self.train):
            raise ValueError(f"{len(self.train)} cycles are already captured; the target can only "
                             "grow until the held-back cycle is taken")
        self.target_train = train_cycles

    # -- feeding -------------------------------------------------------------------------------
    def append(self, t: np.ndarray, emg_env: np.ndarray, angle: np.ndarray) -> list[CycleRef]:
        """Add aligned frames; returns the gait cycles completed by them."""
        t = np.asarray(t, dtype=np.float64).reshape(-1)
        if t.size == 0:
            return []
        if not self._segment_open:
            self._segments.append(_GrowingSegment(self._n_channels))
            self._detector = self._factory(self.model_rate)
            self._segment_open = True
        seg_index = len(self._segments) - 1
        seg = self._segments[seg_index]
        last = seg.last_t()
        if last is not None and t[0] <= last:  # overlapping re-delivery: keep only new samples
            keep = t > last
            t, emg_env, angle = t[keep], np.asarray(emg_env)[keep], np.asarray(angle)[keep]
            if t.size == 0:
                return []
        seg.append(t, emg_env, angle)
        seg_t = np.concatenate(seg.t) if len(seg.t) > 1 else seg.t[0]
        new: list[CycleRef] = []
        for t0, t1 in self._detector.update(np.asarray(angle, dtype=np.float64).reshape(-1), t):
            start = int(np.searchsorted(seg_t, t0 - 0.5 / self.model_rate))
            end = int(np.searchsorted(seg_t, t1 - 0.5 / self.model_rate))
            if end - start < 2 or start < 0:
                continue
            ref = CycleRef(seg_index, start, end)
            self._all_cycles.append(ref)
            self._assign(ref)
            new.append(ref)
        return new

    def break_segment(self) -> None:
        """A stream was lost: the next frames start a new segment (and a fresh cycle detector)."""
        if self._segments[-1].n > 0:
            self._segment_open = False

    def _assign(self, ref: CycleRef) -> None:
        if len(self.train) < self.target_train:
            self.train.append(ref)
            return
        if self.holdout is not None:
            return
        last = self.train[-1]
        if ref.segment != last.segment or ref.start - last.end >= self.purge_samples:
            self.holdout = ref

    # -- state ---------------------------------------------------------------------------------
    @property
    def complete(self) -> bool:
        """Enough training cycles, a held-back cycle, and ``tail_samples`` recorded after it."""
        if len(self.train) < self.target_train or self.holdout is None:
            return False
        return self._segments[self.holdout.segment].n >= self.holdout.end + self.tail_samples

    @property
    def cycle_count(self) -> int:
        """Every detected cycle (training, purge gap and held-back)."""
        return len(self._all_cycles)

    @property
    def n_samples(self) -> int:
        return sum(s.n for s in self._segments)

    def recent(self, seconds: float) -> Segment:
        """The newest ``seconds`` of the current segment (for live plots)."""
        seg = self._segments[-1].freeze()
        n = int(seconds * self.model_rate)
        return Segment(seg.t[-n:], seg.emg_env[-n:], seg.angle[-n:])

    def result(self, baseline: dict[str, list[float]] | None = None) -> CalibrationCapture:
        """Freeze the capture. Raises ``ValueError`` unless :attr:`complete`."""
        if not self.complete:
            raise ValueError(
                f"capture incomplete: {len(self.train)} of {self.target_train} training cycles, "
                f"{'a' if self.holdout else 'no'} held-back cycle"
            )
        assert self.holdout is not None
        return CalibrationCapture(
            model_rate=self.model_rate,
            segments=[s.freeze() for s in self._segments],
            train_cycles=list(self.train),
            holdout_cycle=self.holdout,
            purge_samples=self.purge_samples,
            baseline=dict(baseline or {}),
        )

    def all_segments(self) -> list[Segment]:
        """Everything captured so far (also when incomplete), e.g. for the session file."""
        return [s.freeze() for s in self._segments]
