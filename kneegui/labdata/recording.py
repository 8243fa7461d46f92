"""One recording type for every source: EMG, knee angle, other kinematics and force, each on its
own time base, plus who was recorded doing what."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

#: Activities that are walking (the UCI data's "mar", for marcha, among them).
WALKING_ACTIVITIES = frozenset({"mar", "walk", "walking", "gait", "treadmill", "overground"})


class RecordingError(ValueError):
    """A file is not a usable recording; the message says what it holds and what to change."""


def is_walking(activity: str) -> bool:
    """True for an activity name that means walking (``walk``, ``gait``, UCI ``mar``...)."""
    return activity.strip().lower() in WALKING_ACTIVITIES


@dataclass(frozen=True)
class Signal:
    """One stream's samples: ``data [n, ch]`` stamped ``t [n]`` (seconds, increasing, one clock
    for every signal of a recording), channel labels and units, nominal rate (0 = irregular)."""

    data: np.ndarray
    t: np.ndarray
    labels: tuple[str, ...]
    units: tuple[str, ...]
    rate: float
    stream: str = ""  # where it came from: stream name, or file column

    def __post_init__(self) -> None:
        data = np.asarray(self.data)
        if data.ndim != 2 or np.shape(self.t) != (data.shape[0],):
            raise RecordingError(f"{self.stream or 'signal'}: samples {data.shape} and time "
                                 f"stamps {np.shape(self.t)} do not match")
        if len(self.labels) != data.shape[1]:
            raise RecordingError(f"{self.stream or 'signal'}: {len(self.labels)} labels for "
                                 f"{data.shape[1]} channels")

    @property
    def n_samples(self) -> int:
        return int(self.data.shape[0])

    @property
    def n_channels(self) -> int:
        return int(self.data.shape[1])

    @property
    def duration_s(self) -> float:
        return float(self.t[-1] - self.t[0]) if self.n_samples > 1 else 0.0

    def unit(self) -> str:
        """The channels' common unit ("" when unknown or mixed)."""
        from kneegui.acquisition.units import common_unit

        return common_unit(self.units)

    def columns(self, picks: list[int]) -> Signal:
        """This signal restricted to channels ``picks`` (in that order)."""
        return replace(self, data=self.data[:, picks], labels=tuple(self.labels[i] for i in picks),
                       units=tuple(self.units[i] for i in picks))

    def describe(self) -> str:
        unit = self.unit() or "unit unknown"
        rate = f"{self.rate:g} Hz" if self.rate > 0 else "irregular"
        return f"'{self.stream}' ({self.n_channels} ch, {rate}, {unit})"


@dataclass(frozen=True)
class LabRecording:
    """One recording from any source (UCI text file, KneeGUI session, XDF file).

    Samples are as recorded, in their units. ``emg``'s labels are the channel labels as
    recorded; ``channel_map`` (label -> model input) says which muscle a channel carries where
    its label does not. ``angle`` is one channel, flexion positive. ``one_clock``: every signal
    was sampled on one clock at the same instants (text files), so model-rate row ``k`` is
    sample ``k * fs / rate``.
    """

    name: str
    path: Path
    source: str  # "uci" | "session" | "xdf"
    subject: str
    group: str
    activity: str
    emg: Signal | None
    angle: Signal | None
    kinematics: Signal | None = None
    force: Signal | None = None
    channel_map: dict[str, str] = field(default_factory=dict)
    one_clock: bool = False
    flags: frozenset[str] = frozenset()
    notes: tuple[str, ...] = ()
    start_s: float | None = None  # keep only [start_s, end_s) from the recording's start
    end_s: float | None = None
    streams_found: tuple[str, ...] = ()  # every numeric stream of the file (for messages)

    @property
    def signals(self) -> list[Signal]:
        return [s for s in (self.emg, self.angle, self.kinematics, self.force) if s is not None]

    @property
    def t0(self) -> float:
        """The recording's start: its earliest sample (seconds, the recording's clock)."""
        firsts = [float(s.t[0]) for s in self.signals if s.n_samples]
        return min(firsts) if firsts else 0.0

    @property
    def duration_s(self) -> float:
        lasts = [float(s.t[-1]) for s in self.signals if s.n_samples]
        return (max(lasts) - self.t0) if lasts else 0.0


def require_angle(rec: LabRecording) -> LabRecording:
    """``rec``, or :class:`RecordingError` saying which streams there are and how to name the
    knee angle (the model predicts it, so every use needs it)."""
    if rec.angle is not None:
        return rec
    found = "; ".join(rec.streams_found) or "none"
    raise RecordingError(
        f"{rec.path.name}: no knee-angle stream (the model predicts the knee angle); its "
        f"streams: {found}. Name the stream (manifest [streams] angle = \"<stream name>\", "
        "or --angle NAME) or map the channel that holds the knee angle (manifest [channels] "
        "\"<label>\" = \"angle\", or --channel-map \"<label>=angle\")")
