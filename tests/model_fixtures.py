"""Shared real-data fixtures of the model, adaptation and research tests (small budgets, trained
once per session; registered in tests/conftest.py)."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def gait_series(uci_dir):
    """All gait recordings of the shared UCI folder at the model rate (real dsp path)."""
    from kneegui.research.data import load_series

    return load_series(uci_dir, exercises=("mar",), with_td=False)


@pytest.fixture(scope="session")
def held_out(gait_series):
    """The longest gait recording (most cycles): the test subject, never trained on."""
    return max(gait_series, key=len)


@pytest.fixture(scope="session")
def small_model(gait_series, held_out):
    """An emg+angle network trained briefly on every other subject (seeded)."""
    from kneegui.research.training import TrainSettings, train_model

    train = [s for s in gait_series if s.subject != held_out.subject]
    settings = TrainSettings(input_set="emg+angle", window=50, epochs=6, patience=6,
                             windows_per_epoch=3072, seed=0, threads=1)
    return train_model(train, settings, name="test-small")


@pytest.fixture(scope="session")
def subject_model(small_model, held_out):
    """(fine-tune result of ``small_model`` on the first 3 cycles of ``held_out``, calibration
    end sample)."""
    from kneegui.adaptation import CalibrationData, finetune
    from kneegui.research.splits import gait_cycles

    cycles = gait_cycles(held_out.angle, 100.0)[:3]
    end = cycles[-1][1]
    calib = CalibrationData(held_out.emg_env[:end], held_out.angle[:end], cycles,
                            subject=held_out.subject)
    return finetune(small_model.model, calib), end


def mean_nmae(loaded, series, ends, norm=None) -> float:
    """Mean NMAE over the 50 horizons of ``loaded`` on the windows of ``series`` ending at
    ``ends`` (the Predictor's output; ``norm``: other subject scales)."""
    import numpy as np

    from kneegui.adaptation.metrics import future_matrix, horizon_metrics
    from kneegui.model import ModelInputs, Predictor

    pred = Predictor(loaded, norm=norm).predict(ModelInputs.of(series), ends)
    true = future_matrix(series.angle, ends, 50)
    return float(np.mean(horizon_metrics(pred, true, np.ptp(series.angle))["nmae"]))
