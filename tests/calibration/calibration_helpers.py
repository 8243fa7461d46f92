"""Shared by the calibration tests: a real UCI gait subject and a small model trained without it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np


@dataclass
class CalibrationSubject:
    recording: object  # UciRecording (gait)
    t: np.ndarray  # model-rate timestamps
    emg_env: np.ndarray
    angle: np.ndarray


def pick_calibration_subject(uci_dir: Path):
    """The gait recording with the most detected cycles (decided from the data, not a list)."""
    from kneegui.datasets.uci import load_uci_dataset
    from kneegui.dsp.gait import GaitSegmenter

    recs = load_uci_dataset(uci_dir, exercises=("mar",))
    return max(recs, key=lambda r: len(GaitSegmenter(r.fs).segment(r.angle))), recs


def subject_frames(recording, t0: float = 1000.0) -> CalibrationSubject:
    from kneegui.research.data import series_from_recording

    s = series_from_recording(recording)
    t = t0 + np.arange(len(s.angle)) / 100.0
    return CalibrationSubject(recording, t, s.emg_env, s.angle)


def pretrained_without(uci_dir: Path, cache_dir: Path):
    """A small emg+angle model pretrained on every gait recording except the calibration subject.

    Trained once per test session (cached under ``cache_dir``), small budget.
    """
    from kneegui.model.io import load_model, save_model
    from kneegui.research.data import linked_subjects, series_from_recording
    from kneegui.research.training import TrainSettings, train_model

    target, recs = pick_calibration_subject(uci_dir)
    stem = cache_dir / f"pretrained-without-{target.subject}"
    if stem.with_name(stem.name + ".json").is_file():
        return load_model(stem), target
    excluded = linked_subjects(uci_dir).get(target.subject, {target.subject})
    series = [series_from_recording(r) for r in recs if r.subject not in excluded]
    assert series and all(s.subject != target.subject for s in series)
    settings = TrainSettings(
        input_set="emg+angle", epochs=3, windows_per_epoch=3000, threads=2, seed=0,
        net=dict(conv_channels=16, lstm_hidden=32, head_hidden=32, attention_dim=16),
    )
    result = train_model(series, settings, name=f"pretrained-without-{target.subject}")
    save_model(stem, result.model)
    return load_model(stem), target
