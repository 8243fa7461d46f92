"""Subject extrapolator (kneegui.adaptation.extrapolator): fitted on calibration cycles only, it
beats constant velocity on later cycles; stacked by fine-tuning; stored in the card, checked on
load."""

from __future__ import annotations

import json

import numpy as np
import pytest

from kneegui.adaptation.extrapolator import MAX_STEPS, fit_extrapolator
from kneegui.adaptation.metrics import future_matrix
from kneegui.model import load_model
from kneegui.model.io import ModelLoadError, model_paths, save_model
from kneegui.research.baselines import constant_velocity
from kneegui.research.splits import gait_cycles, plan_split

H = 50


def test_extrapolator_of_three_cycles_beats_constant_velocity_later(held_out):
    split = plan_split(gait_cycles(held_out.angle, 100.0), len(held_out), 100, H, 3)
    c_end = split.calib_end
    ex = fit_extrapolator(held_out.angle[:c_end], np.arange(c_end), H)
    assert ex is not None and ex.fitted[:MAX_STEPS].all() and not ex.fitted[MAX_STEPS:].any()
    ends = split.test_ends
    true = future_matrix(held_out.angle, ends, H)
    err = np.abs(ex.predict(held_out.angle, ends) - true).mean(axis=0)
    cv = np.abs(constant_velocity(held_out.angle, ends, H) - true).mean(axis=0)
    assert (err[:MAX_STEPS] < 0.97 * cv[:MAX_STEPS]).all(), (err[:5], cv[:5])


def test_extrapolator_needs_enough_calibration(held_out):
    assert fit_extrapolator(held_out.angle[:60], np.arange(60), H) is None


def test_finetune_stacks_the_extrapolator_on_short_horizons_only(subject_model):
    model = subject_model[0].model
    weight = np.asarray(model.card.extrapolator.share)
    assert weight.shape == (H,) and (weight >= 0).all() and (weight <= 1).all()
    assert weight[0] > 0 and not weight[MAX_STEPS:].any()
    assert model.extrapolator is not None


def test_damaged_extrapolator_block_is_refused(subject_model, tmp_path):
    model = subject_model[0].model
    stem = tmp_path / "subject"
    _, card_path = save_model(stem, model)
    assert load_model(stem).extrapolator is not None
    card = json.loads(card_path.read_text())
    card["extrapolator"]["weight"][0] = 3.0
    card_path.write_text(json.dumps(card))
    with pytest.raises(ModelLoadError, match=r"extrapolator.weight\[0\] = 3: must lie in"):
        load_model(stem)
    card["extrapolator"]["coef"] = card["extrapolator"]["coef"][:-1]
    model_paths(stem)[1].write_text(json.dumps(card))
    with pytest.raises(ModelLoadError, match="extrapolator: ValueError"):
        load_model(stem)
