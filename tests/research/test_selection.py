"""The research options' choices: the product's defaults are what they pick on all UCI gait
recordings, and the fitted memory share stays a share per horizon."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from kneegui.adaptation.blend import DEFAULT_BLEND
from kneegui.adaptation.memory import DEFAULT_PARAMS
from kneegui.model.memory import memory_group
from kneegui.research.selection import blend_label, fit_blend_weight, select_memory_params

H = 50


def test_default_memory_params_are_the_selection_on_all_gait_recordings(gait_series):
    """The product's memory parameters are not hand-picked: they are what the evaluation's
    selection rule (used per fold on the pretraining subjects) picks on every UCI gait
    recording."""
    for group, params in DEFAULT_PARAMS.items():
        assert select_memory_params(gait_series, group, 100, H, 3) == params.to_dict()


def test_default_blends_are_the_best_blends_of_the_shipped_budget_evaluation():
    """DEFAULT_BLEND is copied from the reported evaluation (docs/model_eval_loso_full): the
    blend with the lowest mean NMAE over horizons on all recordings, per input set."""
    results = Path(__file__).parents[2] / "docs" / "model_eval_loso_full" / "results.json"
    blends = json.loads(results.read_text())["blends"]
    for input_set, entry in blends.items():
        assert blend_label(*DEFAULT_BLEND[memory_group(input_set)]) == entry["best_on_all"]


def test_memory_share_fitted_on_the_held_back_cycle(subject_model):
    parts = subject_model[0].parts
    share = fit_blend_weight(parts.network_val, parts.memory_val, parts.true_val)
    assert share.shape == (H,) and (share >= 0).all() and (share <= 1).all()
    assert np.ptp(share) > 0  # one per horizon, from the held-back cycle
