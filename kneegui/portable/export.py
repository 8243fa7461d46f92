"""``kneegui models export``: write a model's whole predictor as one ONNX file, checked.

:func:`export_onnx` builds the graph (:mod:`kneegui.portable.predictor_graph`), adds the
metadata (:mod:`kneegui.portable.metadata`), runs it with ONNX's own reference evaluator on
synthetic gait-like windows and compares it with :class:`kneegui.model.Predictor` (a graph
that differs by more than :data:`CHECK_TOLERANCE_DEG` is never written), then writes the file
atomically. The tests check the same against ONNX Runtime on real UCI gait windows.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from kneegui.model.io import LoadedModel
from kneegui.model.predictor import ModelInputs, Predictor
from kneegui.portable.columns import UnsupportedCardError, windows
from kneegui.portable.metadata import metadata
from kneegui.portable.network import UnsupportedNetworkError
from kneegui.portable.predictor_graph import INPUT, predictor_model

#: Degrees: the largest difference from the Predictor an exported graph may have.
CHECK_TOLERANCE_DEG = 1e-4

DOC = ("KneeGUI predictor: future knee flexion angles (degrees) from one window of model-rate "
       "EMG envelopes / knee angle rows. Inputs, outputs and units: metadata_props and "
       "docs/portable-predictor.md.")


class ExportError(Exception):
    """The export failed; the one-line message says why and what to do."""


@dataclass(frozen=True)
class ExportResult:
    path: Path
    sha256: str
    size: int
    model_id: str
    parts: str
    checked_windows: int
    max_difference_deg: float


def build(model: LoadedModel) -> Any:
    """The ``onnx.ModelProto`` of ``model``'s predictor, with metadata; ExportError when the
    model is not in a layout the exporter translates."""
    from onnx import checker, helper

    try:
        proto = predictor_model(model, DOC)
    except (UnsupportedCardError, UnsupportedNetworkError) as exc:
        raise ExportError(str(exc)) from exc
    helper.set_model_props(proto, metadata(model))
    checker.check_model(proto, full_check=True)
    return proto


def export_onnx(model: LoadedModel, out: str | Path) -> ExportResult:
    """Build, check (:func:`check`) and write ``model``'s predictor to ``out`` (replaced
    atomically; parent folders are created). The target is opened first, so an unwritable one
    fails at once. ExportError on any problem; no file is left behind then."""
    path = Path(out)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle = tmp.open("wb")
    except OSError as exc:
        raise _write_error(path, exc) from exc
    try:
        proto = build(model)
        n, worst = check(proto, model)
        data = proto.SerializeToString()
        try:
            with handle:
                handle.write(data)
            tmp.replace(path)
        except OSError as exc:
            raise _write_error(path, exc) from exc
    finally:
        handle.close()
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)
    props = {p.key: p.value for p in proto.metadata_props}
    return ExportResult(path, hashlib.sha256(data).hexdigest(), len(data), model.model_id,
                        props["parts"], n, worst)


def check(proto: Any, model: LoadedModel, tolerance: float = CHECK_TOLERANCE_DEG
          ) -> tuple[int, float]:
    """Run ``proto`` with ``onnx.reference`` on :func:`check_inputs` windows and compare with
    the Predictor; returns (windows, largest difference in degrees); ExportError above
    ``tolerance``."""
    from onnx.reference import ReferenceEvaluator

    inputs, ends = check_inputs(model.card)
    expected = Predictor(model).predict(inputs, ends)
    try:
        got = ReferenceEvaluator(proto).run(None, {INPUT: windows(model.card, inputs, ends)})[0]
    except Exception as exc:  # the reference runtime's own failure, whatever its type
        raise ExportError(f"the ONNX reference runtime could not run the exported graph "
                          f"({type(exc).__name__}: {exc}); nothing written. This is a bug in "
                          "kneegui.portable: please report it with the model") from exc
    worst = float(np.max(np.abs(got - expected)))
    if not worst <= tolerance:  # also NaN
        raise ExportError(f"the exported graph differs from the Predictor by {worst:.3g} deg "
                          f"(allowed {tolerance:g}); nothing written. This is a bug in "
                          "kneegui.portable: please report it with the model")
    return len(ends), worst


def check_inputs(card: Any, n_windows: int = 8) -> tuple[ModelInputs, np.ndarray]:
    """Synthetic gait-like rows (a 1.1 s knee cycle around the card's subject angle mean,
    envelopes that rise and fall around its EMG scales) and ``n_windows`` window ends."""
    rows = card.rows_needed + 7 * n_windows
    t = np.arange(rows) / card.model_rate
    phase = 2 * np.pi * t / 1.1
    subject = card.norm.subject
    angle = subject.angle_mean + subject.angle_std * (1.3 * np.sin(phase)
                                                      + 0.3 * np.sin(2 * phase + 0.5))
    n_emg = sum(1 for c in card.channels if c.startswith("emg_"))
    scale = np.asarray(subject.emg_scale[:n_emg] or [1.0], np.float64)
    emg = np.stack([scale[k % len(scale)] * (0.15 + 0.7 * np.sin(phase / 2 + k) ** 2)
                    for k in range(n_emg)], axis=1) if n_emg else None
    extra = {}
    for name, prefix in (("kinematics", "kin_"), ("force", "force_")):
        k = sum(1 for c in card.channels if c.startswith(prefix))
        if k:
            extra[name] = np.stack([np.cos(phase * (j + 1)) for j in range(k)], axis=1)
    inputs = ModelInputs(
        emg_env=None if emg is None else emg.astype(np.float32),
        angle=angle.astype(np.float32), **{k: v.astype(np.float32) for k, v in extra.items()})
    ends = np.arange(card.rows_needed - 1, rows, 7)[:n_windows]
    return inputs, ends


def _write_error(path: Path, exc: OSError) -> ExportError:
    return ExportError(f"cannot write {path}: {_why(path, exc)}; choose a writable --out path")


def _why(path: Path, exc: OSError) -> str:
    """The reason a write failed, in words (a file where a folder is needed, else the OS's)."""
    for parent in path.parents:
        if parent.exists():
            if not parent.is_dir():
                return f"{parent} is a file, not a folder"
            break
    return exc.strerror or str(exc)
