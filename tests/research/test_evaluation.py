"""Evaluation protocol pieces: the development split never reaches the test windows, the
pretrained-network cache gives the same network without retraining, and a test subject's memory
blend is chosen on the other subjects only."""

from __future__ import annotations

import numpy as np
import pytest

from kneegui.model import ModelInputs, Predictor
from kneegui.model.io import model_paths
from kneegui.research.evaluation import pretrained
from kneegui.research.selection import blend_summary, choose_blends
from kneegui.research.splits import dev_split, gait_cycles, plan_split
from kneegui.research.training import TrainSettings

H = 50
WINDOW = 100


def test_dev_split_scores_inside_the_calibration_only(gait_series):
    checked = 0
    for s in gait_series:
        split = plan_split(gait_cycles(s.angle, 100.0), len(s), WINDOW, H, 3)
        if split is None:
            continue
        dev = dev_split(split, WINDOW, H)
        if split.k_used == 1:
            assert dev is None
            continue
        assert dev is not None and dev.k_used == split.k_used - 1
        assert dev.cycles == split.cycles[:-1] and dev.calib_end == split.cycles[-2][1]
        # Scored: newest sample after the development calibration, future inside the real
        # calibration, so far from the purge gap and the test windows.
        assert dev.test_ends.min() >= dev.calib_end
        assert dev.test_ends.max() + H < split.calib_end < split.test_ends.min()
        checked += 1
    assert checked >= 5


def test_pretrained_networks_are_cached_and_reused(gait_series, tmp_path):
    pool = gait_series[:3]
    settings = TrainSettings(input_set="emg+angle", window=40, epochs=1, windows_per_epoch=256,
                             val_windows=256, seed=3, threads=1)
    first = pretrained(pool, settings, tmp_path)
    files = sorted(tmp_path.iterdir())
    assert len(files) == 2  # weights + card
    second = pretrained(pool, settings, tmp_path)
    assert second.path is not None and sorted(tmp_path.iterdir()) == files
    s = gait_series[3]
    ends = np.arange(100, 400, 10)
    preds = [Predictor(m).predict(ModelInputs.of(s), ends) for m in (first, second)]
    np.testing.assert_array_equal(*preds)
    # Other settings or other data: another entry, never the cached one.
    pretrained(pool[:2], settings, tmp_path)
    assert len(list(tmp_path.iterdir())) == 4
    # A damaged entry is retrained, not trusted.
    weights = model_paths(second.path.with_suffix(""))[0]
    weights.write_bytes(b"not a model")
    third = pretrained(pool, settings, tmp_path)
    assert third.path is None  # freshly trained
    np.testing.assert_array_equal(Predictor(third).predict(ModelInputs.of(s), ends), preds[0])


def test_blend_choice_uses_only_other_unlinked_subjects():
    def rec(subject, a, b):
        nm = {lab: {"nmae": [v] * 50, "memory_weight": [v] * 50}
              for lab, v in (("a", a), ("b", b))}
        return {"subject": subject, "methods": {
            "emg:finetuned": {"nmae": [9.0] * 50},
            **{f"emg:finetuned@{k}": v for k, v in nm.items()},
            "emg:no_extrapolator@a": {"nmae": [1.0] * 50}}}

    records = {"1N": rec("1N", 0.1, 0.9), "2N": rec("2N", 0.1, 0.9), "3A": rec("3A", 0.9, 0.2)}
    predictions = {"1N": {"emg:finetuned@a": np.zeros(1), "emg:finetuned@b": np.ones(1)}}
    excluded = {"1N": {"1N", "2N"}, "2N": {"1N", "2N"}, "3A": {"3A"}}
    choose_blends(records, predictions, excluded)
    assert records["1N"]["methods"]["emg:finetuned"]["blend"] == "b"  # from 3A only
    assert records["3A"]["methods"]["emg:finetuned"]["blend"] == "a"  # from 1N and 2N
    assert records["3A"]["methods"]["emg:finetuned"]["nmae"] == [0.9] * 50  # 3A's own score
    assert records["3A"]["methods"]["emg:no_extrapolator"]["nmae"] == [1.0] * 50
    scores = records["1N"]["methods"]["emg:finetuned"]["blend_scores"]
    assert scores == pytest.approx({"a": 0.1, "b": 0.9})
    assert predictions["1N"] == {"emg:finetuned": np.ones(1)}
    assert not [k for r in records.values() for k in r["methods"] if "@" in k]
    summary = blend_summary({n: {**r, "methods": {"0": r["methods"]}} for n, r in records.items()})
    assert summary["emg"]["chosen"] == {"b": 2, "a": 1}
    assert summary["emg"]["best_on_all"] == "a"  # mean 0.37 vs 0.67 over all recordings
