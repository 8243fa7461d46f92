"""UCI recordings -> model-rate :class:`Series` (EMG features from the live ``kneegui.dsp``)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

from kneegui.model.config import MODEL_RATE
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
    from kneegui.datasets.uci import load_uci_dataset

    recs = load_uci_dataset(root, exercises=None, groups=tuple(groups), drop_duplicates=False)
    by_name = {r.name: r.subject for r in recs}
    links: dict[str, set[str]] = {}
    for r in recs:
        if r.duplicate_of and by_name.get(r.duplicate_of, r.subject) != r.subject:
            other = by_name[r.duplicate_of]
            links.setdefault(r.subject, {r.subject}).add(other)
            links.setdefault(other, {other}).add(r.subject)
    return links


def subjects_of(series: Sequence[Series]) -> list[str]:
    """Distinct subjects in a stable order (group N first, then by number)."""
    def key(s: str) -> tuple[str, int]:
        digits = "".join(ch for ch in s if ch.isdigit())
        return ("".join(ch for ch in s if not ch.isdigit()) != "N", int(digits or 0))
    return sorted({s.subject for s in series}, key=key)
