"""Knee-angle predictor: attention CNN-LSTM, weights I/O, fine-tuning, inference, evaluation.

Qt-free. torch is imported lazily by the functions that need it, except in ``network``.
"""

from kneegui.model.config import INPUT_SETS, MODEL_RATE, N_HORIZONS, KneeNetConfig, channel_names
from kneegui.model.features import SubjectNorm, subject_norm
from kneegui.model.finetune import (
    CalibrationData,
    FinetuneError,
    FinetuneResult,
    FinetuneSettings,
    finetune,
)
from kneegui.model.inference import InferenceEngine
from kneegui.model.io import (
    LoadedModel,
    ModelCard,
    ModelLoadError,
    load_model,
    read_card,
    save_model,
)
from kneegui.model.predict import model_inputs, predict_windows
from kneegui.model.training import Series, TrainSettings, train_model

__all__ = [
    "INPUT_SETS",
    "MODEL_RATE",
    "N_HORIZONS",
    "CalibrationData",
    "FinetuneError",
    "FinetuneResult",
    "FinetuneSettings",
    "InferenceEngine",
    "KneeNetConfig",
    "LoadedModel",
    "ModelCard",
    "ModelLoadError",
    "Series",
    "SubjectNorm",
    "TrainSettings",
    "channel_names",
    "finetune",
    "load_model",
    "model_inputs",
    "predict_windows",
    "read_card",
    "save_model",
    "subject_norm",
    "train_model",
]


def shipped_model_path(input_set: str = "emg+angle"):
    """Stem of the shipped pretrained model for ``input_set`` (under ``models_dir()``)."""
    from kneegui.paths import models_dir

    return models_dir() / f"kneenet_{input_set.replace('+', '_')}"
