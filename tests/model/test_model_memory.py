"""Calibration memory (kneegui.model.analog): forecasts from the subject's own cycles, the
blend chosen on the held-back cycle, storage in the subject model, live == offline."""

from __future__ import annotations

import numpy as np
import pytest
from safetensors.numpy import load_file, save_file

from kneegui.model import InferenceEngine, load_model
from kneegui.model.analog import DEFAULT_PARAMS, AnalogMemory, AnalogParams, memory_group
from kneegui.model.features import subject_norm
from kneegui.model.finetune import CalibrationData, FinetuneSettings, finetune
from kneegui.model.io import ModelLoadError, model_paths, save_model
from kneegui.model.metrics import future_matrix
from kneegui.model.predict import model_inputs, predict_windows
from kneegui.model.splits import gait_cycles, plan_split
from kneegui.model.subject_parts import DEFAULT_BLEND, blend_label, memory_weight_profile

H = 50


def _nmae(pred, true, rng):
    return np.abs(pred - true).mean(axis=0) / rng


@pytest.mark.parametrize("group", ["angle", "emg+angle", "emg"])
def test_memory_of_three_cycles_forecasts_the_later_cycles(held_out, group):
    """Memory from the first 3 cycles vs the later cycles of the same recording (after a purge
    gap): clearly better than the calibration mean angle at every horizon."""
    split = plan_split(gait_cycles(held_out.angle, 100.0), len(held_out), 100, H, 3)
    c_end = split.calib_end
    memory = AnalogMemory.fit(DEFAULT_PARAMS[group], held_out.emg_env[:c_end],
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
    assert AnalogMemory.fit(params, None, held_out.angle[:80], np.arange(80), H) is None
    with pytest.raises(ValueError, match="EMG envelopes"):
        AnalogMemory.fit(DEFAULT_PARAMS["emg"], None, held_out.angle, np.arange(500), H)


def test_finetune_builds_a_memory_and_a_blend_weight_per_horizon(subject_model):
    result, end = subject_model
    model = result.model
    assert model.memory is not None
    assert model.memory.params.history <= model.card.window
    weight = np.asarray(model.card.analog["weight"])
    share, ramp = DEFAULT_BLEND[memory_group(model.card.input_set)]  # the default rule
    np.testing.assert_array_equal(weight, memory_weight_profile(share, ramp, H))
    # The held-back score reported is the blend's; the network alone is kept for comparison.
    assert set(result.after) == set(model.card.metrics["held_back_after_network_only"])


def test_memory_weight_profile_rises_over_the_ramp_then_stays():
    w = memory_weight_profile(0.8, 4, 10)
    np.testing.assert_allclose(w[:5], [0.2, 0.4, 0.6, 0.8, 0.8])
    assert (w[3:] == 0.8).all()
    np.testing.assert_array_equal(memory_weight_profile(0.8, 1, 10), np.full(10, 0.8))
    with pytest.raises(ValueError, match="at least 1"):
        memory_weight_profile(0.8, 0, 10)


def test_memory_ramp_setting_reaches_the_subject_model(small_model, held_out):
    cycles = gait_cycles(held_out.angle, 100.0)[:3]
    end = cycles[-1][1]
    calib = CalibrationData(held_out.emg_env[:end], held_out.angle[:end], cycles)
    model = finetune(small_model.model, calib,
                     settings=FinetuneSettings(max_epochs=1, memory_weight=0.6,
                                               memory_ramp=10)).model
    weight = np.asarray(model.card.analog["weight"])
    np.testing.assert_allclose(weight, memory_weight_profile(0.6, 10, H))
    assert weight[0] < weight[9] == weight[-1]


def test_finetune_builds_alternative_blends_sharing_network_and_memory(small_model, held_out):
    cycles = gait_cycles(held_out.angle, 100.0)[:3]
    end = cycles[-1][1]
    calib = CalibrationData(held_out.emg_env[:end], held_out.angle[:end], cycles)
    result = finetune(small_model.model, calib, settings=FinetuneSettings(
        max_epochs=1, memory_weight=0.5, memory_ramp=5,
        alternatives=((0.0, 1), (0.5, 5), (1.0, 20))))
    assert list(result.alternatives) == ["w0-r1", "w0.5-r5", "w1-r20"]
    blends = ((0.0, 1), (0.5, 5), (1.0, 20))
    for label, (share, ramp) in zip(result.alternatives, blends, strict=True):
        alt = result.alternatives[label]
        assert alt.net is result.model.net and alt.memory is result.model.memory
        np.testing.assert_allclose(alt.card.analog["weight"], memory_weight_profile(share, ramp, H))
    # The alternative with the model's own blend predicts exactly what the model does.
    x = model_inputs(result.model.card, held_out.emg_env, held_out.angle)
    ends = np.arange(end + 100, end + 400)
    same = [predict_windows(m, x, held_out.angle, ends, emg_env=held_out.emg_env)
            for m in (result.model, result.alternatives["w0.5-r5"])]
    np.testing.assert_array_equal(*same)
    other = predict_windows(result.alternatives["w1-r20"], x, held_out.angle, ends,
                            emg_env=held_out.emg_env)
    assert np.abs(other - same[0]).max() > 1e-3
    assert "alternatives" not in result.summary()


def test_memory_weight_fitted_on_the_held_back_cycle_on_request(small_model, held_out):
    cycles = gait_cycles(held_out.angle, 100.0)[:3]
    end = cycles[-1][1]
    calib = CalibrationData(held_out.emg_env[:end], held_out.angle[:end], cycles)
    fitted = finetune(small_model.model, calib,
                      settings=FinetuneSettings(max_epochs=2, memory_fit=True)).model
    weight = np.asarray(fitted.card.analog["weight"])
    assert weight.shape == (H,) and (weight >= 0).all() and (weight <= 1).all()
    assert np.ptp(weight) > 0  # one per horizon, from the held-back cycle


def test_subject_model_with_memory_round_trips_and_live_matches_offline(
    subject_model, held_out, tmp_path
):
    result, end = subject_model
    model = result.model
    stem = tmp_path / "subject"
    save_model(stem, model.net, model.card, memory=model.memory)
    loaded = load_model(stem)
    assert loaded.memory is not None and loaded.card.analog["sha256"] == model.memory.digest()
    assert loaded.extrapolator is not None  # live == offline below covers it too
    norm = subject_norm(held_out.emg_env[:end], held_out.angle[:end])
    x = model_inputs(model.card, held_out.emg_env, held_out.angle, norm=norm)
    ends = np.arange(end + 150, end + 450, 7)
    a = predict_windows(model, x, held_out.angle, ends, norm, emg_env=held_out.emg_env)
    b = predict_windows(loaded, x, held_out.angle, ends, norm, emg_env=held_out.emg_env)
    np.testing.assert_array_equal(a, b)
    net_only = predict_windows(loaded, x, held_out.angle, ends, norm, calibration_parts=False)
    # On this long recording the held-back cycle gives the memory a say: it takes part.
    assert np.asarray(model.card.analog["weight"]).max() > 0
    assert not np.allclose(a, net_only)
    engine = InferenceEngine(loaded, threads=1)
    i = int(ends[3])
    live = engine.predict(emg_env=held_out.emg_env[i - 200 : i + 1],
                          angle=held_out.angle[i - 200 : i + 1])
    np.testing.assert_allclose(live, a[3], rtol=1e-5, atol=1e-3)


def test_damaged_or_missing_memory_is_refused(subject_model, tmp_path):
    model = subject_model[0].model
    stem = tmp_path / "subject"
    with pytest.raises(ValueError, match="memory"):
        save_model(stem, model.net, model.card)  # card promises a memory: refuse to drop it
    weights, _ = save_model(stem, model.net, model.card, memory=model.memory)
    tensors = load_file(str(weights))
    tensors["analog.futures"] = tensors["analog.futures"] + 1.0
    save_file(tensors, str(weights))
    with pytest.raises(ModelLoadError, match="calibration memory hash"):
        load_model(stem)
    del tensors["analog.keys"]
    save_file(tensors, str(model_paths(stem)[0]))
    with pytest.raises(ModelLoadError, match="calibration memory incomplete"):
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
    save_model(tmp_path / "again", model.net, model.card, memory=model.memory)
    assert load_model(tmp_path / "again").memory.digest() == model.memory.digest()


def test_models_info_describes_the_memory(subject_model, tmp_path, capsys):
    from kneegui.cli import main

    model = subject_model[0].model
    save_model(tmp_path / "subject", model.net, model.card, memory=model.memory)
    assert main(["models", "info", str(tmp_path / "subject")]) == 0
    out = capsys.readouterr().out
    kind = model.memory.params.kind
    assert f"memory:     {len(model.memory.keys)} calibration windows, {kind} keys" in out
    assert "extrapol.:  20 lags; share" in out


def test_default_memory_params_are_the_selection_on_all_gait_recordings(gait_series):
    """The live defaults are not hand-picked: they are what the evaluation's selection rule
    (used per fold on the pretraining subjects) picks on every UCI gait recording."""
    from kneegui.model.selection import select_memory_params

    for group, params in DEFAULT_PARAMS.items():
        assert select_memory_params(gait_series, group, 100, H, 3) == params.to_dict()


def test_default_blends_are_the_best_blends_of_the_shipped_budget_evaluation():
    """DEFAULT_BLEND is copied from the reported evaluation (docs/model_eval_loso_full): the
    blend with the lowest mean NMAE over horizons on all recordings, per input set."""
    import json
    from pathlib import Path

    results = Path(__file__).parents[2] / "docs" / "model_eval_loso_full" / "results.json"
    blends = json.loads(results.read_text())["blends"]
    for input_set, entry in blends.items():
        assert blend_label(*DEFAULT_BLEND[memory_group(input_set)]) == entry["best_on_all"]
