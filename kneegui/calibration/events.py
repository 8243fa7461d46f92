"""Stages and progress events of the calibration protocol (plain data, no Qt)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class Stage(StrEnum):
    """Where the protocol is. The order of the non-terminal stages is the wizard's page order."""

    SUBJECT = "subject"
    SENSOR_CHECK = "sensor_check"
    BASELINE = "baseline"  # optional rest / MVC capture
    CAPTURE = "capture"  # walking: collect gait cycles
    FINETUNE = "finetune"  # background fine-tuning
    VALIDATION = "validation"  # before/after on the held-back cycle; operator decides
    ACCEPTED = "accepted"
    REJECTED = "rejected"
    CANCELLED = "cancelled"
    FAILED = "failed"

    @property
    def terminal(self) -> bool:
        return self in _TERMINAL


_TERMINAL = {Stage.ACCEPTED, Stage.REJECTED, Stage.CANCELLED, Stage.FAILED}


class EventKind(StrEnum):
    """What happened. ``ProtocolEvent.data`` holds the kind-specific payload (documented here)."""

    STAGE = "stage"  # entered a stage; data: {"stage": Stage, "previous": Stage}
    QUALITY = "quality"  # data: {"statuses": [str], "reasons": [str], "blocking": bool}
    BASELINE = "baseline"  # data: {"baseline": "rest"|"mvc", "values": [float] per channel}
    CYCLE = "cycle"  # data: {"count", "train", "holdout", "target": int, "duration_s": float}
    NO_GAIT_HINT = "no_gait_hint"  # no cycle for `no_cycle_hint_s` of capture; data: {"seconds"}
    PAUSED = "paused"  # a stream was lost during capture; data: {"reason": str}
    RESUMED = "resumed"  # frames flow again; data: {"paused_s": float}
    CAPTURE_DONE = "capture_done"  # data: {"train_cycles": int, "holdout_cycles": int}
    NO_GAIT = "no_gait"  # capture ended without enough cycles; nothing is saved
    FINETUNE_PROGRESS = "finetune_progress"  # data: {"epoch", "train_loss", "val_loss"}
    VALIDATED = "validated"  # data: {"result": CalibrationOutcome}
    SAVED = "saved"  # data: {"path": str, "activated": bool}
    ERROR = "error"  # data: {"error": str}
    CANCELLED = "cancelled"


@dataclass(frozen=True)
class ProtocolEvent:
    """One progress event. ``message`` is a sentence an operator can read as-is."""

    kind: EventKind
    stage: Stage
    message: str
    data: dict[str, Any] = field(default_factory=dict)
    wall_time: float = field(default_factory=time.time)
