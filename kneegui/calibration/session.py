"""Writes a calibration run into the current session file under ``/calibration`` (if recording)."""

from __future__ import annotations

import json
from typing import Any

import numpy as np

from kneegui.calibration.protocol import CalibrationProtocol


def write_calibration(writer: Any, protocol: CalibrationProtocol) -> str:
    """Store captured segments, cycles, baseline and results; returns the group name.

    ``writer`` is a ``kneegui.recording.SessionWriter`` (``add_calibration``/``add_model``/
    ``add_event``). Called on accept, reject or cancel; what was captured is kept either way.
    """
    subject = protocol.subject.subject_id if protocol.subject else "unknown"
    name = f"{subject}_{protocol.stage.value}_{id(protocol) % 10000:04d}"
    attrs: dict[str, Any] = {
        "subject": subject,
        "group": protocol.subject.group if protocol.subject else "",
        "notes": protocol.subject.notes if protocol.subject else "",
        "stage": protocol.stage.value,
        "error": protocol.error or "",
        "base_model": str(getattr(protocol.base_model, "model_id", "")),
        "train_cycles_target": protocol.config.train_cycles,
        "sensor_override": protocol.sensor_override,
        "baseline": json.dumps(protocol.baseline),
        "saved_model": protocol.saved_path or "",
    }
    arrays: dict[str, np.ndarray] = {}
    if protocol.capture is not None:
        for k, seg in enumerate(protocol.capture.all_segments()):
            arrays[f"segment{k}_t"] = seg.t
            arrays[f"segment{k}_emg_env"] = seg.emg_env
            arrays[f"segment{k}_angle"] = seg.angle
        cap = protocol.capture
        refs = [("train", c) for c in cap.train] + ([("holdout", cap.holdout)] if cap.holdout
                                                    else [])
        arrays["cycles"] = np.array([[c.segment, c.start, c.end] for _, c in refs], np.int64)
        attrs["cycle_roles"] = json.dumps([r for r, _ in refs])
    if protocol.calibration is not None:
        attrs["data_sha256"] = protocol.calibration.data_hash()
    outcome = protocol.outcome
    if outcome is not None:
        attrs["results"] = json.dumps(outcome.metrics_dict())
        arrays["loss_history"] = np.array(
            [[h.get("epoch", 0), h.get("train_loss", np.nan), h.get("val_loss", np.nan)]
             for h in outcome.history], np.float64)
        if outcome.trace is not None:
            arrays["holdout_t"] = outcome.trace.t
            arrays["holdout_measured"] = outcome.trace.measured
            arrays["holdout_before"] = outcome.trace.before
            arrays["holdout_after"] = outcome.trace.after
    writer.add_calibration(name, arrays, attrs)
    writer.add_event(f"calibration {subject}: {protocol.stage.value}", origin="calibration")
    if protocol.saved_path and protocol.saved_model is not None:
        from kneegui.model.io import card_to_save

        saved = protocol.saved_model
        card = card_to_save(saved)  # the card as written, with its weights hash
        writer.add_model(saved.model_id, json.dumps(card.to_dict(), default=str),
                         str(card.training.get("weights_sha256", "")))
    return name
