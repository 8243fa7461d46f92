"""Calibration-time product code: adapting a pretrained model to one subject from a few gait
cycles (fine-tuning loop, calibration memory, extrapolator, blend, the subject model's card).

Qt-free; imported by ``kneegui.calibration`` (wizard, ``kneegui calibrate``) and by research
code, never by ``kneegui.model`` (what runs when the app predicts).
"""

from kneegui.adaptation.blend import DEFAULT_BLEND, memory_share_profile
from kneegui.adaptation.finetune import (
    CalibrationData,
    FinetuneError,
    FinetuneResult,
    FinetuneSettings,
    finetune,
)
from kneegui.adaptation.memory import DEFAULT_PARAMS
from kneegui.adaptation.subject_model import assemble, with_calibration_record

__all__ = [
    "DEFAULT_BLEND",
    "DEFAULT_PARAMS",
    "CalibrationData",
    "FinetuneError",
    "FinetuneResult",
    "FinetuneSettings",
    "assemble",
    "finetune",
    "memory_share_profile",
    "with_calibration_record",
]
