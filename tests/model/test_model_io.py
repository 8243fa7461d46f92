"""Weights + card round trip, clear errors for corrupt/foreign files and cards that would
predict NaN, shipped models."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from kneegui.model import (
    LoadedModel,
    ModelInputs,
    ModelLoadError,
    Predictor,
    load_model,
    save_model,
)
from kneegui.model.card import Normalisation
from kneegui.model.config import KneeNetConfig, channel_names, uses_angle
from kneegui.model.features import subject_norm
from kneegui.model.io import ModelCard, read_card
from kneegui.model.network import KneeNet, count_parameters
from kneegui.paths import models_dir


def _tiny_model(input_set: str = "emg+angle", window: int = 30):
    torch.manual_seed(1)
    channels = channel_names(input_set)
    config = KneeNetConfig(n_inputs=len(channels), window=window, residual=uses_angle(input_set))
    net = KneeNet(config).eval()
    norm = Normalisation(
        input_mean=(0.1,) * len(channels), input_std=(1.5,) * len(channels),
        target_mean=(0.0,) * 50, target_std=(0.2,) * 50,
        subject=subject_norm(np.ones((10, 4)), np.arange(10.0)),
    )
    card = ModelCard(name="tiny", input_set=input_set, config=config, norm=norm,
                     window=window, channels=tuple(channels))
    return net, card


def save(stem, net, card):
    return save_model(stem, LoadedModel(net, card))


def test_round_trip_gives_identical_tensors_and_predictions(tmp_path):
    net, card = _tiny_model()
    before = card.to_dict()
    w, c = save(tmp_path / "m", net, card)
    assert card.to_dict() == before  # saving never changes the card it is given
    assert w.name == "m.safetensors" and c.name == "m.json"
    loaded = load_model(tmp_path / "m.json")
    for (k1, v1), (k2, v2) in zip(net.state_dict().items(), loaded.net.state_dict().items(),
                                  strict=True):
        assert k1 == k2 and torch.equal(v1, v2)
    x = torch.randn(3, 30, len(card.channels))
    with torch.inference_mode():
        assert torch.equal(net(x), loaded.net(x))
    assert loaded.card.input_set == "emg+angle"
    assert loaded.card.training["weights_sha256"]


def test_network_is_lightweight():
    net, _ = _tiny_model()
    assert count_parameters(net) <= 100_000


@pytest.mark.parametrize("damage", ["truncate", "garbage", "missing"])
def test_corrupt_weights_raise_clear_error(tmp_path, damage):
    net, card = _tiny_model()
    w, _ = save(tmp_path / "m", net, card)
    if damage == "truncate":
        w.write_bytes(w.read_bytes()[:200])
    elif damage == "garbage":
        w.write_bytes(b"\x00not a safetensors file" * 10)
    else:
        w.unlink()
    with pytest.raises(ModelLoadError) as err:
        load_model(tmp_path / "m")
    msg = str(err.value)
    assert "m.safetensors" in msg
    assert "retrain" in msg or "not found" in msg


def test_foreign_or_broken_card_raises_clear_error(tmp_path):
    net, card = _tiny_model()
    _, c = save(tmp_path / "m", net, card)
    c.write_text(json.dumps({"some": "other tool's json"}))
    with pytest.raises(ModelLoadError, match="not a KneeGUI model card"):
        load_model(tmp_path / "m")
    c.write_text("{ not json")
    with pytest.raises(ModelLoadError, match="not a readable JSON model card"):
        read_card(c)


def test_weights_from_another_network_are_rejected(tmp_path):
    net, card = _tiny_model("emg+angle")
    other, other_card = _tiny_model("emg")
    save(tmp_path / "a", net, card)
    save(tmp_path / "b", other, other_card)
    (tmp_path / "a.safetensors").write_bytes((tmp_path / "b.safetensors").read_bytes())
    with pytest.raises(ModelLoadError, match="do not match|hash"):
        load_model(tmp_path / "a")


def test_tampered_weights_fail_the_hash_check(tmp_path):
    from safetensors.torch import load_file, save_file

    net, card = _tiny_model()
    w, _ = save(tmp_path / "m", net, card)
    state = load_file(str(w))
    state["skip.bias"] = state["skip.bias"] + 1.0
    save_file(state, str(w))
    with pytest.raises(ModelLoadError, match="hash differs"):
        load_model(tmp_path / "m")


def _shipped_cards():
    return sorted(p for p in models_dir().glob("kneenet_*.json"))


def test_shipped_models_exist_for_both_input_sets():
    sets = {read_card(p).input_set for p in _shipped_cards()}
    assert {"emg", "emg+angle"} <= sets
    for p in _shipped_cards():
        assert p.with_suffix(".safetensors").stat().st_size < 1_000_000


def test_shipped_models_load_and_predict_on_real_gait(held_out):
    for card_path in _shipped_cards():
        loaded = load_model(card_path)
        i = 600
        out = Predictor(loaded).predict_latest(
            ModelInputs(emg_env=held_out.emg_env[: i + 1], angle=held_out.angle[: i + 1]))
        assert out.shape == (50,) and np.all(np.isfinite(out))
        true = held_out.angle[i + 1 : i + 51]
        assert np.mean(np.abs(out - true)) < 30.0  # degrees: sane, not a broken scale
        if loaded.card.input_set == "emg+angle":
            assert abs(out[0] - true[0]) < 3.0  # 10 ms ahead stays near the measured angle


def _card_json(tmp_path):
    net, card = _tiny_model()
    _, c = save(tmp_path / "m", net, card)
    return c, json.loads(c.read_text())


@pytest.mark.parametrize(("field", "change", "named"), [
    ("norm.input_mean", lambda d: d["norm"]["input_mean"].__setitem__(2, float("nan")),
     "norm.input_mean[2]"),
    ("norm.input_std", lambda d: d["norm"]["input_std"].__setitem__(0, 0.0), "norm.input_std[0]"),
    ("norm.target_std", lambda d: d["norm"]["target_std"].pop(), "norm.target_std: 49 values"),
    ("norm.subject.angle_std", lambda d: d["norm"]["subject"].__setitem__("angle_std", -1.0),
     "norm.subject.angle_std"),
    ("norm.subject.emg_scale", lambda d: d["norm"]["subject"]["emg_scale"].__setitem__(1, 0),
     "norm.subject.emg_scale[1]"),
    ("norm.cv_weight", lambda d: d["norm"].__setitem__("cv_weight", [1.5] * 50),
     "norm.cv_weight[0]"),
    ("channels", lambda d: d["channels"].pop(), "channels: 5 listed"),
    ("window", lambda d: d.__setitem__("window", 40), "config: network window"),
    ("model_rate", lambda d: d.__setitem__("model_rate", 0.0), "model_rate"),
    ("extrapolator", lambda d: d.__setitem__("extrapolator", {
        "lags": 40, "coef": [[0.0] * 50] * 40, "fitted": [True] * 50, "weight": [0.5] * 50}),
     "extrapolator.lags"),
    ("analog", lambda d: d.__setitem__("analog", {
        "params": {"kind": "emg", "history": 10}, "weight": [0.5] * 50, "sha256": "x"}),
     "analog.params.kind"),
])
def test_a_card_that_would_not_predict_finite_degrees_is_refused(tmp_path, field, change, named):
    """NaN means, zero or negative scales, wrong lengths, shares outside [0, 1], parts that
    reach beyond the window: refused on load, with a message naming the field."""
    c, data = _card_json(tmp_path)
    change(data)
    c.write_text(json.dumps(data))
    with pytest.raises(ModelLoadError) as err:
        load_model(tmp_path / "m")
    assert named in str(err.value), str(err.value)
    assert "refused" in str(err.value)


def test_nan_weights_are_refused(tmp_path):
    from safetensors.torch import load_file, save_file

    net, card = _tiny_model()
    w, c = save(tmp_path / "m", net, card)
    state = load_file(str(w))
    state["skip.bias"][3] = float("nan")
    save_file(state, str(w))
    data = json.loads(c.read_text())
    data["training"].pop("weights_sha256")  # even without a hash to compare
    c.write_text(json.dumps(data))
    with pytest.raises(ModelLoadError, match="skip.bias holds NaN"):
        load_model(tmp_path / "m")


def test_a_deeply_nested_card_is_refused_not_a_crash(tmp_path):
    """A JSON bomb in a model folder: a clear error, never a RecursionError traceback."""
    net, card = _tiny_model()
    _, c = save(tmp_path / "m", net, card)
    c.write_text("[" * 200_000 + "]" * 200_000)
    with pytest.raises(ModelLoadError, match="nested too deeply"):
        read_card(c)


def test_an_invalid_card_is_not_saved(tmp_path):
    import dataclasses

    from kneegui.model import CardError

    net, card = _tiny_model()
    bad = dataclasses.replace(card, norm=dataclasses.replace(card.norm, input_std=(0.0,) * 6))
    with pytest.raises(CardError, match="norm.input_std"):
        save(tmp_path / "m", net, bad)
    assert not list(tmp_path.iterdir())
