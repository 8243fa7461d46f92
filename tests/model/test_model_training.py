"""Real training on UCI gait data (small budget): learning, fine-tuning, determinism, engine."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest
import torch

from kneegui.model import CalibrationData, InferenceEngine, finetune
from kneegui.model.baselines import persistence
from kneegui.model.features import subject_norm, window_ends
from kneegui.model.finetune import FinetuneSettings
from kneegui.model.io import LoadedModel
from kneegui.model.metrics import future_matrix, horizon_metrics
from kneegui.model.network import KneeNet
from kneegui.model.predict import model_inputs, predict_windows
from kneegui.model.splits import gait_cycles, plan_split
from kneegui.model.training import TrainSettings, train_model


def _mean_nmae(loaded, series, ends, norm=None):
    x = model_inputs(loaded.card, series.emg_env, series.angle, norm=norm)
    pred = predict_windows(loaded, x, series.angle, ends, norm, emg_env=series.emg_env)
    true = future_matrix(series.angle, ends, 50)
    return float(np.mean(horizon_metrics(pred, true, np.ptp(series.angle))["nmae"]))


def test_training_learns_and_beats_untrained_and_persistence(small_model, held_out):
    history = small_model.history
    assert history[-1]["train_loss"] < history[0]["train_loss"]
    loaded = small_model.model
    ends = window_ends(len(held_out), loaded.card.window, 50, stride=3)
    trained = _mean_nmae(loaded, held_out, ends)
    torch.manual_seed(123)
    untrained = LoadedModel(KneeNet(loaded.card.network_config()).eval(), loaded.card)
    assert trained < 0.8 * _mean_nmae(untrained, held_out, ends)
    true = future_matrix(held_out.angle, ends, 50)
    pers = horizon_metrics(persistence(held_out.angle, ends, 50), true, np.ptp(held_out.angle))
    assert trained < 0.8 * float(np.mean(pers["nmae"]))
    assert loaded.card.training["subjects"] and held_out.subject not in loaded.card.training[
        "subjects"]


def test_finetune_on_three_cycles_beats_pretrained_on_later_cycles(small_model, held_out):
    loaded = small_model.model
    cycles = gait_cycles(held_out.angle, 100.0)
    split = plan_split(cycles, len(held_out), loaded.card.window, 50, 3)
    assert split is not None and split.k_used == 3
    c_end = split.calib_end
    calib = CalibrationData(held_out.emg_env[:c_end], held_out.angle[:c_end], split.cycles,
                            subject=held_out.subject)
    epochs = []
    result = finetune(loaded, calib, progress=lambda e, tl, vl: epochs.append((e, tl, vl)),
                      settings=FinetuneSettings(threads=1))
    assert epochs and not result.cancelled
    assert result.after["nmae_mean"] <= result.before["nmae_mean"]
    ends = split.test_ends[::3]
    norm = subject_norm(held_out.emg_env[:c_end], held_out.angle[:c_end])
    before = _mean_nmae(loaded, held_out, ends, norm)
    after = _mean_nmae(result.model, held_out, ends, norm)
    assert after < before, (before, after, result.recipe)
    assert result.model.card.subject == held_out.subject
    assert result.model.card.base_model == loaded.model_id
    assert loaded.card.subject is None  # the pretrained model is untouched


def test_finetune_cancels_quickly_and_reports_it(small_model, held_out):
    cycles = gait_cycles(held_out.angle, 100.0)[:5]
    end = cycles[-1][1]
    calib = CalibrationData(held_out.emg_env[:end], held_out.angle[:end], cycles)
    cancel = threading.Event()
    stamps: list[float] = []

    def progress(epoch, train_loss, val_loss):
        if epoch == 2:
            stamps.append(time.perf_counter())
            cancel.set()

    result = finetune(small_model.model, calib, progress=progress, cancel=cancel)
    assert result.cancelled
    assert time.perf_counter() - stamps[0] < 1.0
    assert max(h["epoch"] for h in result.history) == 2


def test_training_is_deterministic_with_a_seed(gait_series, held_out):
    train = [s for s in gait_series if s.subject != held_out.subject][:4]
    settings = TrainSettings(input_set="emg", window=40, epochs=1, windows_per_epoch=512,
                             seed=7, threads=1)
    a = train_model(train, settings).model.net.state_dict()
    b = train_model(train, settings).model.net.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_engine_matches_offline_prediction(small_model, held_out):
    loaded = small_model.model
    engine = InferenceEngine(loaded, threads=1)
    i = 700
    live = engine.predict(emg_env=held_out.emg_env[i - 200 : i + 1],
                          angle=held_out.angle[i - 200 : i + 1])
    x = model_inputs(loaded.card, held_out.emg_env, held_out.angle)
    offline = predict_windows(loaded, x, held_out.angle, np.array([i]))[0]
    np.testing.assert_allclose(live, offline, rtol=1e-5, atol=1e-4)
    assert engine.predict(emg_env=held_out.emg_env[:5], angle=held_out.angle[:5]).shape == (50,)
    gap = held_out.angle[i - 200 : i + 1].copy()
    gap[-3] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        engine.predict(emg_env=held_out.emg_env[i - 200 : i + 1], angle=gap)
    with pytest.raises(ValueError, match="needs the knee angle"):
        engine.predict(emg_env=held_out.emg_env[i - 200 : i + 1])


def test_engine_accepts_a_hub_aligned_frame(small_model, held_out):
    from kneegui.acquisition.hub import AlignedFrame

    engine = InferenceEngine(small_model.model, threads=1)
    i = 650
    rows = slice(i - 100, i + 1)
    frame = AlignedFrame(t=np.arange(101) / 100.0, emg_env=held_out.emg_env[rows],
                         angle=held_out.angle[rows], kinematics=None, force=None)
    by_frame = engine.predict(frame)
    by_arrays = engine.predict(emg_env=held_out.emg_env[rows], angle=held_out.angle[rows])
    np.testing.assert_array_equal(by_frame, by_arrays)


def test_finetune_is_deterministic_with_a_seed(small_model, held_out):
    cycles = gait_cycles(held_out.angle, 100.0)[:3]
    end = cycles[-1][1]
    calib = CalibrationData(held_out.emg_env[:end], held_out.angle[:end], cycles)
    settings = FinetuneSettings(max_epochs=3, seed=5)
    a = finetune(small_model.model, calib, settings=settings).model.net.state_dict()
    b = finetune(small_model.model, calib, settings=settings).model.net.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
