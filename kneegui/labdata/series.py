"""A :class:`LabRecording` on the model time base, computed with the live path's code.

EMG (in millivolts) and the knee angle (in degrees) are converted from the units their streams
declare, as the hub converts them (:mod:`kneegui.acquisition.units`). EMG envelopes come from
:class:`kneegui.dsp.EmgFeatureExtractor` run over the whole recording
and stamped on the EMG clock (``process_with_times``, bit-identical to the live hub in any
chunking); every signal is then aligned onto the grid ``t_k = k / model_rate`` by
:func:`kneegui.acquisition.alignment.align`, the hub's interpolation rule (NaN across holes). So
the rows of a recorded session are the rows the app aligned while it was recorded.

Text files (``one_clock``: every signal sampled at the same instants, t = 0 at the first sample)
use the index form of the same rule, row ``k`` = sample ``k * fs / rate``
(:func:`kneegui.dsp.emg_features_offline`): on every row the alignment gives too, it gives the
same numbers bit for bit (the alignment may drop the final row to float rounding of the
feature stamps), which keeps results on the UCI files identical to earlier releases.

Rows with a hole (NaN) split a recording into gap-free pieces; no window ever spans a hole.
Walking is found, not assumed: for walking (or unlabelled) activities, the gait detector
(:class:`kneegui.dsp.GaitSegmenter`) finds the gait cycles; a pause longer than
:data:`WALK_PAUSE_S` without a cycle ends a walking segment, which keeps :data:`WALK_MARGIN_S`
before its first and after its last cycle (starting and stopping); the rest is not walking.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from kneegui.acquisition.units import TO_DEGREES, TO_MILLIVOLTS, factor_to
from kneegui.labdata.recording import LabRecording, RecordingError, Signal, is_walking
from kneegui.model.config import MODEL_RATE
from kneegui.model.layout import ANGLE_INPUT, LayoutError, emg_rate_problem, match_channels

#: A pause longer than this (seconds without a gait cycle) ends a walking segment.
WALK_PAUSE_S = 12.0
#: Seconds kept before the first and after the last gait cycle of a walking segment.
WALK_MARGIN_S = 3.0


@dataclass(frozen=True)
class ModelRateSeries:
    """Rows on the model grid: ``t [m]`` (the recording's clock), EMG envelopes ``[m, k]`` of
    ``muscles`` (in that order), knee angle ``[m]`` degrees, extra kinematics / force."""

    name: str
    subject: str
    group: str
    activity: str
    t: np.ndarray
    emg_env: np.ndarray | None
    angle: np.ndarray | None
    kinematics: np.ndarray | None = None
    force: np.ndarray | None = None
    muscles: tuple[str, ...] = ()
    path: Path | None = None
    source: str = ""
    flags: frozenset[str] = frozenset()
    t0: float = 0.0  # the recording's start (its earliest sample)
    model_rate: float = MODEL_RATE
    notes: tuple[str, ...] = field(default=())

    def __len__(self) -> int:
        return int(self.t.shape[0])

    @property
    def offset_s(self) -> float:
        """Seconds from the recording's start to row 0."""
        return float(self.t[0] - self.t0) if len(self) else 0.0

    def rows(self, start: int, stop: int, name: str | None = None) -> ModelRateSeries:
        """Rows ``[start, stop)`` as a series of their own."""
        def cut(a: np.ndarray | None) -> np.ndarray | None:
            return None if a is None else a[start:stop]

        return replace(self, name=name or self.name, t=self.t[start:stop],
                       emg_env=cut(self.emg_env), angle=cut(self.angle),
                       kinematics=cut(self.kinematics), force=cut(self.force))

    def finite_rows(self) -> np.ndarray:
        """True for rows where every stream the series holds is finite."""
        ok = np.ones(len(self), bool)
        for arr in (self.emg_env, self.angle, self.kinematics, self.force):
            if arr is not None:
                ok &= np.isfinite(np.asarray(arr).reshape(len(self), -1)).all(axis=1)
        return ok


# -- channels ------------------------------------------------------------------------------------
def emg_names(rec: LabRecording) -> tuple[str, ...]:
    """The inputs the recording's EMG channels carry: the channel map's name for a channel
    where it gives one, else the channel's label (channels mapped to the angle left out)."""
    if rec.emg is None:
        return ()
    lookup = {k.strip().casefold(): v.strip() for k, v in rec.channel_map.items()}
    out = []
    for label in rec.emg.labels:
        name = lookup.get(label.strip().casefold(), label)
        if name.casefold() != ANGLE_INPUT:
            out.append(name)
    return tuple(out)


def emg_inputs(rec: LabRecording, muscles: Sequence[str], consumer: str = "the model") -> Signal:
    """The recording's EMG channels that carry ``muscles``, in that order (:class:`LayoutError`
    naming what is there and how to map it when one is missing)."""
    if rec.emg is None:
        raise LayoutError(f"{rec.path.name}: {consumer} needs the EMG of {', '.join(muscles)}, "
                          "but the recording has no EMG stream (name it: manifest [streams] "
                          "emg = \"<stream name>\")")
    labels = {lab.casefold() for lab in rec.emg.labels}
    present = {k: v for k, v in rec.channel_map.items() if k.strip().casefold() in labels}
    picks = match_channels(muscles, rec.emg.labels, channel_map=present,
                           source=f"{rec.path.name} (EMG stream {rec.emg.describe()})",
                           consumer=consumer)
    return rec.emg.columns(picks)


# -- the model time base -------------------------------------------------------------------------
def to_model_rate(
    rec: LabRecording,
    muscles: Sequence[str] | None = None,
    *,
    model_rate: float = MODEL_RATE,
    settings=None,
    emg: bool = True,
) -> ModelRateSeries:
    """``rec`` on the model grid (see the module docstring). ``muscles``: the EMG inputs, in
    order (default every EMG channel, named by :func:`emg_names`); ``emg=False`` leaves EMG out
    (angle-only use). Rows outside ``rec.start_s``..``rec.end_s`` are dropped."""
    from kneegui import dsp

    settings = settings if settings is not None else dsp.FilterSettings()
    emg_sig = None
    if emg and rec.emg is not None:
        muscles = tuple(muscles) if muscles is not None else emg_names(rec)
        emg_sig = emg_inputs(rec, muscles)
        problem = emg_rate_problem(emg_sig.rate, _settings_dict(settings))
        if problem:
            raise RecordingError(f"{rec.path.name}: {problem}")
    elif emg and muscles:
        emg_inputs(rec, muscles)  # raises: no EMG stream
    if rec.angle is None and emg_sig is None:
        raise RecordingError(f"{rec.path.name}: neither EMG nor a knee angle to use")
    rec, notes = _in_model_units(rec)
    if emg_sig is not None:
        emg_sig = replace(emg_sig, data=np.asarray(emg_sig.data, np.float64)
                          * factor_to(emg_sig.units, TO_MILLIVOLTS))
    if rec.one_clock:
        t, env, streams = _index_rule(rec, emg_sig, model_rate, settings)
    else:
        t, env, streams = _aligned(rec, emg_sig, model_rate, settings)
    series = ModelRateSeries(
        name=rec.name, subject=rec.subject, group=rec.group, activity=rec.activity, t=t,
        emg_env=None if env is None else env.astype(np.float32),
        angle=None if streams[0] is None else streams[0][:, 0].astype(np.float32),
        kinematics=None if streams[1] is None else streams[1].astype(np.float32),
        force=None if streams[2] is None else streams[2].astype(np.float32),
        muscles=() if emg_sig is None else tuple(muscles or ()),
        path=rec.path, source=rec.source, flags=rec.flags, t0=rec.t0, model_rate=model_rate,
        notes=rec.notes + notes)
    return _cropped(series, rec.start_s, rec.end_s)


def _in_model_units(rec: LabRecording) -> tuple[LabRecording, tuple[str, ...]]:
    """The knee angle in degrees, as the hub converts it (EMG is converted to millivolts where
    its channels are picked); notes say what was converted."""
    notes = []
    for sig, table, target in ((rec.emg, TO_MILLIVOLTS, "mV"), (rec.angle, TO_DEGREES, "deg")):
        if sig is not None and factor_to(sig.units, table) != 1.0:
            notes.append(f"{sig.stream}: {sig.unit()} converted to {target}")
    if rec.angle is not None and factor_to(rec.angle.units, TO_DEGREES) != 1.0:
        angle = replace(rec.angle, data=np.asarray(rec.angle.data, np.float64)
                        * factor_to(rec.angle.units, TO_DEGREES))
        rec = replace(rec, angle=angle)
    return rec, tuple(notes)


def _settings_dict(settings) -> dict:
    from dataclasses import asdict

    return asdict(settings)


def _index_rule(rec: LabRecording, emg_sig: Signal | None, rate: float, settings):
    from kneegui import dsp

    ref = emg_sig if emg_sig is not None else rec.angle
    fs = ref.rate
    n_in = ref.n_samples
    env = None
    if emg_sig is not None:
        env = dsp.emg_features_offline(np.asarray(emg_sig.data), fs, rate, settings)
        n_out = len(env)
    else:
        n_out = int(np.floor((n_in - 1) * rate / fs)) + 1 if n_in else 0
    idx = np.minimum(np.round(np.arange(n_out) * (fs / rate)).astype(np.int64), n_in - 1)
    streams = []
    for sig in (rec.angle, rec.kinematics, rec.force):
        streams.append(None if sig is None else np.asarray(sig.data, np.float32)[idx])
    return ref.t[0] + np.arange(n_out) / rate, env, streams


def _aligned(rec: LabRecording, emg_sig: Signal | None, rate: float, settings):
    from kneegui import dsp
    from kneegui.acquisition.alignment import TimedSamples, align

    tracks: list[TimedSamples | None] = []
    if emg_sig is not None:
        extractor = dsp.EmgFeatureExtractor(emg_sig.rate, emg_sig.n_channels, rate, settings)
        features, t_features = extractor.process_with_times(
            np.asarray(emg_sig.data, np.float64), emg_sig.t)
        tracks.append(TimedSamples(t_features, features, rate))
    else:
        tracks.append(None)
    for sig in (rec.angle, rec.kinematics, rec.force):
        tracks.append(None if sig is None else TimedSamples(sig.t, np.asarray(sig.data), sig.rate))
    used = [tr for tr in tracks if tr is not None]
    grid, values = align(used, rate)
    it = iter(values)
    out = [None if tr is None else next(it) for tr in tracks]
    return grid, out[0], out[1:]


def _cropped(series: ModelRateSeries, start_s: float | None, end_s: float | None
             ) -> ModelRateSeries:
    if start_s is None and end_s is None:
        return series
    rel = series.t - series.t0
    keep = np.ones(len(series), bool)
    if start_s is not None:
        keep &= rel >= start_s
    if end_s is not None:
        keep &= rel < end_s
    idx = np.flatnonzero(keep)
    if not len(idx):
        raise RecordingError(
            f"{series.name}: nothing between {start_s or 0:g} s and {end_s if end_s else 'the end'}"
            f" (the recording lasts {rel[-1] if len(rel) else 0:.1f} s from its first sample)")
    return series.rows(int(idx[0]), int(idx[-1]) + 1)


# -- pieces: gap-free, walking -------------------------------------------------------------------
def gap_free_spans(ok: np.ndarray) -> list[tuple[int, int]]:
    """Runs ``[start, end)`` of True in ``ok``."""
    edges = np.flatnonzero(np.diff(np.r_[0, ok.astype(np.int8), 0]))
    return [(int(a), int(b)) for a, b in zip(edges[::2], edges[1::2], strict=True)]


def walking_segments(angle: np.ndarray, rate: float, pause_s: float = WALK_PAUSE_S,
                     margin_s: float = WALK_MARGIN_S
                     ) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
    """Walking segments ``[start, end)`` (row indices) of a gap-free angle, and the gait cycles
    found (see the module docstring)."""
    from kneegui.dsp import GaitSegmenter

    cycles = [(int(c.start), int(c.end)) for c in GaitSegmenter(rate).segment(angle)]
    if not cycles:
        return [], []
    runs = [[cycles[0][0], cycles[0][1]]]
    for start, end in cycles[1:]:
        if start - runs[-1][1] > pause_s * rate:
            runs.append([start, end])
        else:
            runs[-1][1] = end
    margin = int(round(margin_s * rate))
    n = len(angle)
    return [(max(0, a - margin), min(n, b + margin)) for a, b in runs], cycles


@dataclass(frozen=True)
class PieceReport:
    """What :func:`usable_pieces` did with one recording (for ``kneegui dataset info``)."""

    rows: int
    hole_rows: int
    pieces: int
    walking_rows: int | None  # None: not a walking activity (used whole)
    gait_cycles: int | None
    cycle_rows: tuple[int, ...] = ()  # length of every gait cycle found (rows)


def usable_pieces(series: ModelRateSeries, min_rows: int = 1
                  ) -> tuple[list[ModelRateSeries], PieceReport]:
    """The gap-free pieces of ``series``; for walking (or unlabelled) activities only their
    walking segments. Pieces are named ``<name>`` (one piece) or ``<name>#<k>``."""
    ok = series.finite_rows()
    spans = gap_free_spans(ok)
    walking = is_walking(series.activity) or not series.activity.strip()
    cycle_rows: list[int] = []
    pieces: list[tuple[int, int]] = []
    for a, b in spans:
        if not walking or series.angle is None:
            pieces.append((a, b))
            continue
        segs, cycles = walking_segments(np.asarray(series.angle[a:b]), series.model_rate)
        cycle_rows += [e - s for s, e in cycles]
        pieces += [(a + s, a + e) for s, e in segs]
    pieces = [(a, b) for a, b in pieces if b - a >= min_rows]
    out = []
    for k, (a, b) in enumerate(pieces):
        name = series.name if len(pieces) == 1 else f"{series.name}#{k + 1}"
        piece = series.rows(a, b, name)
        if walking and series.angle is not None and not series.activity.strip():
            piece = replace(piece, activity="walk", flags=piece.flags | {"walking_detected"})
        out.append(piece)
    walking_rows = sum(b - a for a, b in pieces) if walking and series.angle is not None else None
    found = walking and series.angle is not None
    report = PieceReport(len(series), int((~ok).sum()), len(out), walking_rows,
                         len(cycle_rows) if found else None, tuple(cycle_rows))
    return out, report
