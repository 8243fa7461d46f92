"""Few-cycle subject calibration: the protocol state machine, walking capture, fine-tune +
validation, and the subject model store. Qt-free; used by the wizard and `kneegui calibrate`."""

from kneegui.calibration.capture import CalibrationCapture, CycleRef, Segment, WalkingCapture
from kneegui.calibration.events import EventKind, ProtocolEvent, Stage
from kneegui.calibration.protocol import (
    CalibrationConfig,
    CalibrationProtocol,
    ChannelCheck,
    ProtocolError,
    SubjectInfo,
)
from kneegui.calibration.store import ModelEntry, ModelStoreError, SubjectModelStore
from kneegui.calibration.tuning import CalibrationOutcome, HoldoutMetrics, TuningCancelled

__all__ = [
    "CalibrationConfig",
    "CalibrationCapture",
    "CalibrationOutcome",
    "CalibrationProtocol",
    "ChannelCheck",
    "CycleRef",
    "EventKind",
    "HoldoutMetrics",
    "ModelEntry",
    "ModelStoreError",
    "ProtocolError",
    "ProtocolEvent",
    "Segment",
    "Stage",
    "SubjectInfo",
    "SubjectModelStore",
    "TuningCancelled",
    "WalkingCapture",
]
