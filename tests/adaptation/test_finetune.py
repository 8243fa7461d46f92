"""Fine-tuning on real UCI gait cycles: better on later cycles, cancel, determinism."""

from __future__ import annotations

import threading
import time

import torch
from model_fixtures import mean_nmae

from kneegui.adaptation import CalibrationData, finetune
from kneegui.adaptation.finetune import FinetuneSettings
from kneegui.model.features import subject_norm
from kneegui.research.splits import gait_cycles, plan_split


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
    before = mean_nmae(loaded, held_out, ends, norm)
    after = mean_nmae(result.model, held_out, ends, norm)
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


def test_finetune_is_deterministic_with_a_seed(small_model, held_out):
    cycles = gait_cycles(held_out.angle, 100.0)[:3]
    end = cycles[-1][1]
    calib = CalibrationData(held_out.emg_env[:end], held_out.angle[:end], cycles)
    settings = FinetuneSettings(max_epochs=3, seed=5)
    a = finetune(small_model.model, calib, settings=settings).model.net.state_dict()
    b = finetune(small_model.model, calib, settings=settings).model.net.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
