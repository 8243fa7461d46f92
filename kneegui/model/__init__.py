"""What runs when the app predicts: the network, its card, weights I/O, the window rule and the
:class:`Predictor` that turns input windows into future knee angles.

Qt-free. torch is imported lazily by the functions that need it, except in ``network``.
Calibration-time code lives in :mod:`kneegui.adaptation`, research code (pretraining,
evaluation) in :mod:`kneegui.research`; neither is imported from here.
"""

from kneegui.model.card import CardError, ModelCard
from kneegui.model.config import INPUT_SETS, MODEL_RATE, N_HORIZONS, KneeNetConfig, channel_names
from kneegui.model.features import SubjectNorm, subject_norm
from kneegui.model.io import LoadedModel, ModelLoadError, load_model, read_card, save_model
from kneegui.model.predictor import ModelInputs, Predictor, Stages
from kneegui.model.window import rows_needed

__all__ = [
    "INPUT_SETS",
    "MODEL_RATE",
    "N_HORIZONS",
    "CardError",
    "KneeNetConfig",
    "LoadedModel",
    "ModelCard",
    "ModelInputs",
    "ModelLoadError",
    "Predictor",
    "Stages",
    "SubjectNorm",
    "channel_names",
    "load_model",
    "read_card",
    "rows_needed",
    "save_model",
    "shipped_model_path",
    "subject_norm",
]


def shipped_model_path(input_set: str = "emg+angle"):
    """Stem of the shipped pretrained model for ``input_set`` (under ``models_dir()``)."""
    from kneegui.paths import models_dir

    return models_dir() / f"kneenet_{input_set.replace('+', '_')}"
