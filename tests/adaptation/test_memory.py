"""Calibration memory: forecasts from the subject's own cycles, the product's blend, storage in
the subject model, other shares assembled from the same fine-tuning (the research path)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from safetensors.numpy import load_file, save_file

from kneegui.adaptation import CalibrationData, FinetuneSettings, assemble, finetune
from kneegui.adaptation.blend import DEFAULT_BLEND, default_blend, memory_share_profile
from kneegui.adaptation.memory import DEFAULT_PARAMS, fit_memory
from kneegui.adaptation.metrics import future_matrix
from kneegui.model import LoadedModel, ModelInputs, Predictor, load_model, save_model
from kneegui.model.io import ModelLoadError, model_paths
from kneegui.model.memory import AnalogParams, memory_group
from kneegui.research.splits import gait_cycles, plan_split

H = 50


def _nmae(pred, true, rng):
    return np.abs(pred - true).mean(axis=0) / rng


@pytest.mark.parametrize("group", ["angle", "emg+angle", "emg"])
def test_memory_of_three_cycles_forecasts_the_later_cycles(held_out, group):
    """Memory from the first 3 cycles vs the later cycles of the same recording (after a purge
    gap): clearly better than the calibration mean angle at every horizon."""
    split = plan_split(gait_cycles(held_out.angle, 100.0), len(held_out), 100, H, 3)
    c_end = split.calib_end
    memory = fit_memory(DEFAULT_PARAMS[group], held_out.emg_env[:c_end],
                        held_out.angle[:c_end], np.arange(c_end), H)
    ends = split.test_ends
    true = future_matrix(held_out.angle, ends, H)
    rng = float(np.ptp(held_out.angle[ends[0] : ends[-1] + H + 1]))
    pred = memory.predict(held_out.emg_env, held_out.angle, ends)
    mean_angle = float(held_out.angle[:c_end].mean())
    baseline = _nmae(np.full_like(true, mean_angle), true, rng)
    nmae = _nmae(pred, true, rng)
    assert (nmae < 0.75 * baseline).all(), (nmae[[0, 49]], baseline[[0, 49]])
    if group != "emg":
        assert nmae[0] < 0.03  # the angle key pins the present


def test_memory_refuses_too_little_data_and_missing_streams(held_out):
    params = AnalogParams("angle", history=50, neighbours=5)
    assert fit_memory(params, None, held_out.angle[:80], np.arange(80), H) is None
    with pytest.raises(ValueError, match="EMG envelopes"):
        fit_memory(DEFAULT_PARAMS["emg"], None, held_out.angle, np.arange(500), H)
    with pytest.raises(ValueError, match="history"):
        AnalogParams("angle", history=0)


def test_finetune_builds_a_memory_blended_at_the_product_share(subject_model):
    result, end = subject_model
    model = result.model
    assert model.memory is not None
    assert model.memory.params.history <= model.card.window
    share, ramp = DEFAULT_BLEND[memory_group(model.card.input_set)]  # the product's rule
    np.testing.assert_array_equal(model.card.memory.share, memory_share_profile(share, ramp, H))
    # The held-back score reported is the subject model's; the network alone is kept too.
    assert set(result.after) == set(model.card.metrics["held_back_after_network_only"])
    assert model.card.metrics["held_back_after"] == result.after


def test_memory_share_profile_rises_over_the_ramp_then_stays():
    w = memory_share_profile(0.8, 4, 10)
    np.testing.assert_allclose(w[:5], [0.2, 0.4, 0.6, 0.8, 0.8])
    assert (w[3:] == 0.8).all()
    np.testing.assert_array_equal(memory_share_profile(0.8, 1, 10), np.full(10, 0.8))
    with pytest.raises(ValueError, match="at least 1"):
        memory_share_profile(0.8, 0, 10)


def test_other_shares_are_assembled_from_the_same_finetuning(subject_model, held_out):
    """What the evaluation's research options do: the same tuned network and memory with
    another memory share. The product's share reproduces the product's model exactly."""
    result, end = subject_model
    parts = result.parts
    product, _ = assemble(parts, memory_share_profile(*default_blend("emg+angle"), H))
    other, _ = assemble(parts, memory_share_profile(1.0, 20, H))
    assert other.net is result.model.net and other.memory is result.model.memory
    inputs = ModelInputs.of(held_out)
    ends = np.arange(end + 100, end + 400)
    stages = Predictor(result.model).stages(inputs, ends)
    same = [Predictor(m).combine(stages) for m in (result.model, product)]
    np.testing.assert_array_equal(*same)
    np.testing.assert_array_equal(same[0], Predictor(result.model).predict(inputs, ends))
    assert np.abs(Predictor(other).combine(stages) - same[0]).max() > 1e-3


def test_subject_model_with_memory_round_trips(subject_model, held_out, tmp_path):
    result, end = subject_model
    model = result.model
    stem = tmp_path / "subject"
    save_model(stem, model)
    loaded = load_model(stem)
    assert loaded.memory is not None and loaded.card.memory.sha256 == model.memory.digest()
    assert loaded.extrapolator is not None
    inputs = ModelInputs.of(held_out)
    ends = np.arange(end + 150, end + 450, 7)
    a = Predictor(model).predict(inputs, ends)
    np.testing.assert_array_equal(a, Predictor(loaded).predict(inputs, ends))
    net_only = Predictor(loaded, calibration_parts=False).predict(inputs, ends)
    assert max(model.card.memory.share) > 0
    assert not np.allclose(a, net_only)


def test_damaged_or_missing_memory_is_refused(subject_model, tmp_path):
    model = subject_model[0].model
    with pytest.raises(ValueError, match="memory"):
        dataclasses.replace(model, memory=None)  # the card promises a memory: never dropped
    stem = tmp_path / "subject"
    weights, _ = save_model(stem, model)
    tensors = load_file(str(weights))
    tensors["analog.futures"] = tensors["analog.futures"] + 1.0
    save_file(tensors, str(weights))
    with pytest.raises(ModelLoadError, match="calibration memory hash"):
        load_model(stem)
    del tensors["analog.keys"]
    save_file(tensors, str(model_paths(stem)[0]))
    with pytest.raises(ModelLoadError, match="calibration memory unusable"):
        load_model(stem)


def test_a_subject_model_can_be_calibrated_again(subject_model, held_out, tmp_path):
    """Re-calibrating a subject model builds a new memory from the new cycles only."""
    cycles = gait_cycles(held_out.angle, 100.0)[4:7]
    lo, hi = cycles[0][0], cycles[-1][1]
    calib = CalibrationData(held_out.emg_env[lo:hi], held_out.angle[lo:hi],
                            [(s - lo, e - lo) for s, e in cycles], subject="again")
    again = finetune(subject_model[0].model, calib, settings=FinetuneSettings(max_epochs=2))
    model = again.model
    assert model.memory is not None
    assert len(model.memory.keys) < hi - lo  # this calibration only, not the inherited memory
    assert model.card.name.startswith("again-") and model.card.subject == "again"
    save_model(tmp_path / "again", model)
    assert load_model(tmp_path / "again").memory.digest() == model.memory.digest()


def test_models_info_describes_the_memory(subject_model, tmp_path, capsys):
    from kneegui.cli import main

    model = subject_model[0].model
    save_model(tmp_path / "subject", model)
    assert main(["models", "info", str(tmp_path / "subject")]) == 0
    out = capsys.readouterr().out
    kind = model.memory.params.kind
    assert f"memory:     {len(model.memory.keys)} calibration windows, {kind} keys" in out
    assert "extrapol.:  20 lags; share" in out
    assert f"needs:      {model.card.window + 1} aligned rows" in out


def test_a_card_that_loses_its_memory_cannot_be_built():
    with pytest.raises(ValueError, match="memory"):
        LoadedModel(net=None, card=_card_with_memory(), memory=None)


def _card_with_memory():
    from kneegui.model import read_card, shipped_model_path
    from kneegui.model.card import MemoryBlend

    card = read_card(shipped_model_path("emg+angle"))
    return dataclasses.replace(card, memory=MemoryBlend(DEFAULT_PARAMS["emg+angle"],
                                                        (0.5,) * 50, "0" * 64))
