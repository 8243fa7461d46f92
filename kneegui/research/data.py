"""Recordings -> model-rate :class:`Series` (EMG features from the live ``kneegui.dsp``): UCI
folders (:func:`load_series`) and any dataset, folder or manifest, of UCI files, KneeGUI sessions
and XDF files (:func:`load_dataset_series`, through :mod:`kneegui.labdata`)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from kneegui.model.config import EMG_CHANNELS, MODEL_RATE
from kneegui.research.training import Series


def angle_at_model_rate(angle: np.ndarray, fs: float, model_rate: float, n_out: int) -> np.ndarray:
    """Angle at the model ticks of the EMG feature path (row ``k`` = input sample ``k*fs/rate``)."""
    step = fs / model_rate
    idx = np.minimum(np.round(np.arange(n_out) * step).astype(np.int64), len(angle) - 1)
    return np.asarray(angle, np.float32)[idx]


def series_from_recording(
    rec, model_rate: float = MODEL_RATE, settings=None, with_td: bool = False
) -> Series:
    """Model-rate series of one :class:`kneegui.datasets.uci.UciRecording`.

    ``with_td`` adds the ridge baseline's time-domain features (from the band-passed EMG).
    """
    from kneegui import dsp

    settings = settings if settings is not None else dsp.FilterSettings()
    env = dsp.emg_features_offline(rec.emg, rec.fs, model_rate, settings)
    angle = angle_at_model_rate(rec.angle, rec.fs, model_rate, len(env))
    td = None
    if with_td:
        from kneegui.research.baselines import td_features

        chain = dsp.FilterChain(rec.fs, rec.emg.shape[1], settings)
        filtered = chain.process(np.asarray(rec.emg, np.float64)).filtered
        td = td_features(filtered, rec.fs, model_rate, len(env))
    return Series(
        name=rec.name, subject=rec.subject, group=rec.group, exercise=rec.exercise,
        emg_env=np.asarray(env, np.float32), angle=angle, flags=frozenset(rec.flags), td=td,
    )


def load_series(
    root: str | Path,
    exercises: Iterable[str] = ("mar",),
    groups: Iterable[str] = ("N", "A"),
    model_rate: float = MODEL_RATE,
    settings=None,
    progress=None,
    with_td: bool = False,
) -> list[Series]:
    """All UCI recordings under ``root`` (duplicates dropped) as model-rate series."""
    from kneegui.datasets.uci import load_uci_dataset

    recs = load_uci_dataset(root, exercises=tuple(exercises), groups=tuple(groups),
                            progress=progress)
    return [series_from_recording(r, model_rate, settings, with_td and r.exercise == "mar")
            for r in recs]


def linked_subjects(root: str | Path, groups: Iterable[str] = ("N", "A")) -> dict[str, set[str]]:
    """Subjects that share a duplicated recording (e.g. 1N/2N): never split them across folds."""
    from kneegui.datasets.uci import linked_by_duplicates, load_uci_dataset

    return linked_by_duplicates(
        load_uci_dataset(root, exercises=None, groups=tuple(groups), drop_duplicates=False))


def subjects_of(series: Sequence[Series]) -> list[str]:
    """Distinct subjects in a stable order (group N first, then by number)."""
    def key(s: str) -> tuple[str, int]:
        digits = "".join(ch for ch in s if ch.isdigit())
        return ("".join(ch for ch in s if not ch.isdigit()) != "N", int(digits or 0))
    return sorted({s.subject for s in series}, key=key)


@dataclass
class DatasetSeries:
    """A dataset (folder or manifest) at the model rate, ready for training and evaluation."""

    series: list[Series]
    muscles: tuple[str, ...]
    problems: list[tuple[str, str]] = field(default_factory=list)  # (file, why not usable)
    unused: list[tuple[str, str]] = field(default_factory=list)  # (file, nothing to use: why)
    duplicates: dict[str, str] = field(default_factory=dict)
    description: str = ""
    spec: object = None  # kneegui.labdata.DatasetSpec


def dataset_muscles(recordings: Sequence, declared: Sequence[str] = ()) -> tuple[str, ...]:
    """The EMG inputs of a dataset: those its manifest declares, else the EMG channel names
    of its recordings when they all agree (ValueError listing them otherwise)."""
    from kneegui.labdata import emg_names

    if declared:
        return tuple(declared)
    layouts = {emg_names(r) for r in recordings if r.emg is not None}
    if len(layouts) > 1:
        lines = "; ".join(f"{', '.join(lay)}" for lay in sorted(layouts))
        raise ValueError(
            f"the recordings have different EMG channels ({lines}); say which channels are "
            "which muscle in a manifest ([channels] \"<label>\" = \"RF\" ...) or choose the "
            "inputs with --muscles")
    return layouts.pop() if layouts else ()


def load_dataset_series(
    source,
    activities: Sequence[str] | None = None,
    groups: Sequence[str] | None = None,
    muscles: Sequence[str] | None = None,
    *,
    use_emg: bool = True,
    with_td: bool = False,
    model_rate: float = MODEL_RATE,
    settings=None,
    progress=None,
) -> DatasetSeries:
    """Every usable piece of every selected recording of a dataset (folder or manifest) as a
    model-rate :class:`Series` (:mod:`kneegui.labdata`: same DSP and alignment as live; gap-free,
    walking found by the gait detector). Files or recordings that cannot be used (not a
    recording, a muscle missing, an EMG rate the features cannot use, no knee angle) are listed
    in ``problems`` with the reason and how to fix it, never dropped silently."""
    from kneegui import dsp
    from kneegui.labdata import (
        emg_inputs,
        is_walking,
        load_dataset,
        require_angle,
        to_model_rate,
        usable_pieces,
    )

    settings = settings if settings is not None else dsp.FilterSettings()
    ds = load_dataset(source, activities, groups, progress)
    problems = [(str(p), msg) for p, msg in ds.problems]
    chosen = tuple(muscles) if muscles else (
        dataset_muscles(ds.recordings, ds.spec.inputs) if use_emg else ())
    out: list[Series] = []
    unused: list[tuple[str, str]] = []
    for rec in ds.recordings:
        try:
            require_angle(rec)
            ms = to_model_rate(rec, chosen if use_emg else None, model_rate=model_rate,
                               settings=settings, emg=use_emg)
        except ValueError as exc:  # RecordingError, LayoutError
            problems.append((str(rec.path), str(exc)))
            continue
        pieces, report = usable_pieces(ms)
        if not pieces:
            unused.append((str(rec.path), f"{rec.path.name}: no walking found (the gait detector "
                           f"found {report.gait_cycles or 0} gait cycles in "
                           f"{len(ms) / model_rate:.1f} s)"))
            continue
        td_full = None
        if with_td and ms.emg_env is not None and (is_walking(rec.activity)
                                                   or not rec.activity.strip()):
            td_full = _td_of(rec, emg_inputs(rec, chosen), ms, settings)
        for piece in pieces:
            td = None
            if td_full is not None:
                start = int(np.searchsorted(ms.t, piece.t[0]))
                td = td_full[start : start + len(piece)]
            out.append(Series(
                name=piece.name, subject=piece.subject, group=piece.group,
                exercise=piece.activity, emg_env=piece.emg_env, angle=piece.angle,
                kinematics=piece.kinematics, force=piece.force, flags=piece.flags, td=td,
                muscles=piece.muscles if piece.emg_env is not None else EMG_CHANNELS))
    spec = ds.spec
    return DatasetSeries(out, chosen, problems, unused, dict(ds.duplicates),
                         f"{spec.kind} {spec.source.name} ({spec.name})", spec)


def _td_of(rec, emg_sig, ms, settings) -> np.ndarray:
    """The ridge baseline's time-domain features at every row of ``ms``."""
    from kneegui import dsp
    from kneegui.acquisition.units import TO_MILLIVOLTS, factor_to
    from kneegui.research.baselines import td_features

    chain = dsp.FilterChain(emg_sig.rate, emg_sig.n_channels, settings)
    gain = factor_to(emg_sig.units, TO_MILLIVOLTS)  # millivolts, like the envelopes
    filtered = chain.process(np.asarray(emg_sig.data, np.float64) * gain).filtered
    if rec.one_clock:
        return td_features(filtered, emg_sig.rate, ms.model_rate, len(ms))
    ends = np.searchsorted(emg_sig.t, ms.t, side="right")
    return td_features(filtered, emg_sig.rate, ms.model_rate, len(ms), ends=ends)
