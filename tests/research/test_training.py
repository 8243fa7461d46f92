"""Real pretraining on UCI gait data (small budget): learning, determinism, the card, and
clear refusals of data that cannot train a model."""

from __future__ import annotations

import numpy as np
import torch
from model_fixtures import mean_nmae

from kneegui.adaptation.metrics import future_matrix, horizon_metrics
from kneegui.model.features import window_ends
from kneegui.model.io import LoadedModel
from kneegui.model.network import KneeNet
from kneegui.research.baselines import persistence
from kneegui.research.training import TrainSettings, train_model


def test_training_learns_and_beats_untrained_and_persistence(small_model, held_out):
    history = small_model.history
    assert history[-1]["train_loss"] < history[0]["train_loss"]
    loaded = small_model.model
    ends = window_ends(len(held_out), loaded.card.rows_needed, 50, stride=3)
    trained = mean_nmae(loaded, held_out, ends)
    torch.manual_seed(123)
    untrained = LoadedModel(KneeNet(loaded.card.config).eval(), loaded.card)
    assert trained < 0.8 * mean_nmae(untrained, held_out, ends)
    true = future_matrix(held_out.angle, ends, 50)
    pers = horizon_metrics(persistence(held_out.angle, ends, 50), true, np.ptp(held_out.angle))
    assert trained < 0.8 * float(np.mean(pers["nmae"]))
    assert loaded.card.training["subjects"] and held_out.subject not in loaded.card.training[
        "subjects"]


def test_training_is_deterministic_with_a_seed(gait_series, held_out):
    train = [s for s in gait_series if s.subject != held_out.subject][:4]
    settings = TrainSettings(input_set="emg", window=40, epochs=1, windows_per_epoch=512,
                             seed=7, threads=1)
    a = train_model(train, settings).model.net.state_dict()
    b = train_model(train, settings).model.net.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)




def test_training_refuses_recordings_without_validation_or_movement(gait_series):
    """One short gait file leaves no validation windows; a constant angle holds no movement:
    both are refused with a message instead of a card whose loss means nothing."""
    import dataclasses

    import pytest

    short = min(gait_series, key=len)
    settings = TrainSettings(input_set="emg+angle", window=100, epochs=1,
                             windows_per_epoch=256, threads=1)
    with pytest.raises(ValueError, match="no validation windows"):
        train_model([short], settings)
    flat = dataclasses.replace(gait_series[0], angle=np.full(len(gait_series[0]), 12.0,
                                                            np.float32))
    with pytest.raises(ValueError, match="does not move"):
        train_model([flat, gait_series[1]], settings)
