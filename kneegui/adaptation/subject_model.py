"""A subject model from what fine-tuning learnt: the tuned network with the subject's scales,
the calibration memory blended in at a share per horizon, the subject extrapolator stacked on
top; and the subject model's card metadata, written here and nowhere else."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np

from kneegui.adaptation.blend import least_squares_weight
from kneegui.adaptation.metrics import held_back_metrics
from kneegui.model.card import ExtrapolatorStack, MemoryBlend, ModelCard
from kneegui.model.extrapolator import Extrapolator
from kneegui.model.features import SubjectNorm
from kneegui.model.io import LoadedModel
from kneegui.model.memory import AnalogMemory
from kneegui.model.mixing import mix


@dataclass(frozen=True)
class SubjectParts:
    """What fine-tuning learnt about one subject, before the parts are weighed.

    ``*_val`` are forecasts ``[n, H]`` (degrees) of the held-back calibration windows: the tuned
    network's, the memory's (one built on the calibration before the held-back part), the
    extrapolator's (likewise); ``true_val`` is what the knee did.
    """

    base: LoadedModel
    net: Any  # the tuned KneeNet
    norm: SubjectNorm
    subject: str | None
    memory: AnalogMemory | None
    memory_val: np.ndarray | None
    extrapolator: Extrapolator | None
    extrapolator_val: np.ndarray | None
    extrapolator_usable: np.ndarray | None  # [H] horizons both extrapolators could fit
    network_val: np.ndarray
    true_val: np.ndarray
    val_range: float  # max - min of the held-back angle (the NMAE denominator)
    metrics: dict[str, Any]  # blend-independent held-back metrics and fine-tuning facts


def assemble(parts: SubjectParts, memory_share: np.ndarray | None,
             created: str | None = None) -> tuple[LoadedModel, np.ndarray]:
    """(subject model, its held-back forecast): the memory blended in at ``memory_share`` per
    horizon (None or no memory: none), then the extrapolator stacked on top with least-squares
    shares on the held-back windows."""
    pred, memory_block, memory = parts.network_val, None, None
    if parts.memory is not None and memory_share is not None:
        share = np.asarray(memory_share, np.float64)
        pred = mix(pred, parts.memory_val, share)
        memory = parts.memory
        memory_block = MemoryBlend(memory.params, tuple(share.tolist()), memory.digest())
    extrapolator_block = None
    if parts.extrapolator is not None:
        stack = least_squares_weight(pred, parts.extrapolator_val, parts.true_val,
                                     parts.extrapolator_usable)
        pred = mix(pred, parts.extrapolator_val, stack)
        extrapolator_block = ExtrapolatorStack(parts.extrapolator, tuple(stack.tolist()))
    metrics = {**parts.metrics,
                "held_back_after": held_back_metrics(pred, parts.true_val, parts.val_range)}
    card = subject_card(parts.base, parts.norm, parts.subject, memory_block, extrapolator_block,
                        metrics, created)
    return LoadedModel(net=parts.net, card=card, memory=memory), pred


def subject_card(base: LoadedModel, norm: SubjectNorm, subject: str | None,
                 memory: MemoryBlend | None, extrapolator: ExtrapolatorStack | None,
                 metrics: dict[str, Any], created: str | None = None) -> ModelCard:
    """The card of a subject model adapted from ``base``: named ``<subject>-<base name>``,
    dated, linked to the base model's id, the base's training description kept (its weights
    hash is replaced when the model is saved)."""
    card = base.card
    training = {k: v for k, v in card.training.items()
                if k not in ("weights_sha256", "calibration")}
    return dataclasses.replace(
        card,
        name=f"{subject}-{card.name}" if subject else f"subject-{card.name}",
        subject=subject,
        created=created or now_text(),
        base_model=base.model_id,
        norm=dataclasses.replace(card.norm, subject=norm),
        memory=memory,
        extrapolator=extrapolator,
        training=training,
        metrics=dict(metrics),
    )


def with_calibration_record(model: LoadedModel, record: dict[str, Any],
                            holdout: dict[str, Any]) -> LoadedModel:
    """``model`` with the calibration's provenance (``training.calibration``: subject, data
    hash, cycles, …) and its held-back result (``metrics.calibration_holdout``) on its card."""
    card = model.card
    card = dataclasses.replace(
        card, training={**card.training, "calibration": dict(record)},
        metrics={**card.metrics, "calibration_holdout": dict(holdout)},
    )
    return dataclasses.replace(model, card=card)


def now_text() -> str:
    """The current UTC time as stored on cards (``2026-12-04T15:03:39Z``)."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
