"""The card records the channel layout a model was trained on; old cards keep loading with the
UCI layout; a card's layout is validated; the Predictor takes as many EMG columns as the card."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from kneegui.model import LoadedModel, ModelInputs, Predictor, load_model, save_model
from kneegui.model.card import CardError, ModelCard, Normalisation
from kneegui.model.config import KneeNetConfig, channel_names
from kneegui.model.features import subject_norm
from kneegui.model.network import KneeNet
from kneegui.paths import models_dir

MUSCLES = ("RF", "BF", "VM", "ST", "VL", "TA", "GM", "SOL")


def _model(muscles=MUSCLES, window: int = 20) -> LoadedModel:
    torch.manual_seed(0)
    channels = channel_names("emg+angle", muscles=muscles)
    config = KneeNetConfig(n_inputs=len(channels), window=window)
    norm = Normalisation((0.0,) * len(channels), (1.0,) * len(channels), (0.0,) * 50,
                         (0.1,) * 50, subject_norm(np.ones((10, len(muscles))), np.arange(10.0)))
    card = ModelCard("lab8", "emg+angle", config, norm, window=window, channels=tuple(channels))
    return LoadedModel(KneeNet(config).eval(), card)


def test_shipped_cards_have_the_uci_layout_and_json_unchanged():
    for name in ("kneenet_emg", "kneenet_emg_angle", "kneenet_angle"):
        path = models_dir() / f"{name}.json"
        data = json.loads(path.read_text())
        card = ModelCard.from_dict(data)
        assert card.to_dict() == {**data, "analog": data.get("analog", {}),
                                  "extrapolator": data.get("extrapolator", {})}
        assert card.emg_inputs == (() if name == "kneenet_angle" else ("RF", "BF", "VM", "ST"))


def test_a_card_without_channels_gets_the_uci_layout():
    data = _model(("RF", "BF", "VM", "ST")).card.to_dict()
    del data["channels"]
    assert ModelCard.from_dict(data).emg_inputs == ("RF", "BF", "VM", "ST")


def test_an_8_channel_model_round_trips_and_predicts(tmp_path):
    model = _model()
    save_model(tmp_path / "m", model)
    loaded = load_model(tmp_path / "m")
    assert loaded.card.emg_inputs == MUSCLES
    rng = np.random.default_rng(0)
    inputs = ModelInputs(np.abs(rng.normal(size=(60, 8))).astype(np.float32),
                         rng.normal(size=60).astype(np.float32))
    out = Predictor(loaded).predict(inputs)
    assert out.shape == (60 - 21 + 1, 50) and np.isfinite(out).all()
    with pytest.raises(ValueError, match=r"EMG envelopes must be \[n, 8\]"):
        Predictor(loaded).predict(ModelInputs(inputs.emg_env[:, :4], inputs.angle))


def test_a_card_layout_that_does_not_add_up_is_refused():
    data = _model().card.to_dict()
    bad = {**data, "channels": ["emg_RF", "emg_rf", *data["channels"][2:]]}
    with pytest.raises(CardError, match="must be named and distinct"):
        ModelCard.from_dict(bad)
    bad = {**data, "norm": {**data["norm"], "subject": {**data["norm"]["subject"],
                                                         "emg_scale": [1.0] * 4}}}
    with pytest.raises(CardError, match="4 values for 8 EMG inputs"):
        ModelCard.from_dict(bad)
