"""The portable predictor's input: one window of model-rate rows, columns in a fixed order.

Columns (all from the model card, never from constants): the EMG envelopes in the card's channel
order (``emg_RF, emg_BF, ...``, in the EMG stream's unit, as :mod:`kneegui.dsp` computes them),
then the knee angle in degrees (input sets with the angle), then extra kinematics and force
channels (``emg+kin+force``). Rows are oldest first; the last row is "now". A window holds
:attr:`ModelCard.rows_needed` rows (the window rule, :mod:`kneegui.model.window`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from kneegui.model.card import ModelCard
from kneegui.model.config import uses_angle, uses_emg
from kneegui.model.predictor import ModelInputs

ANGLE_COLUMN = "knee_angle"


class UnsupportedCardError(ValueError):
    """The card's network channels are not in the layout the exporter knows."""


@dataclass(frozen=True)
class Column:
    """One input column: its name, unit and what it holds."""

    name: str
    unit: str
    what: str


@dataclass(frozen=True)
class Layout:
    """Where each group of inputs sits among the window's columns."""

    n_emg: int
    angle: int | None  # column of the knee angle, or None
    n_kinematics: int
    n_force: int

    @property
    def n_columns(self) -> int:
        return self.n_emg + (self.angle is not None) + self.n_kinematics + self.n_force

    @property
    def kinematics_start(self) -> int:
        return self.n_emg + (self.angle is not None)

    @property
    def force_start(self) -> int:
        return self.kinematics_start + self.n_kinematics


def layout(card: ModelCard) -> Layout:
    """The column layout of ``card``'s model; :class:`UnsupportedCardError` when its network
    channels are not "EMG envelopes, angle + velocity, kinematics, force" in that order (the
    order :func:`kneegui.model.features.raw_inputs` feeds)."""
    channels = list(card.channels)
    emg = [c for c in channels if c.startswith("emg_")] if uses_emg(card.input_set) else []
    kin = [c for c in channels if c.startswith("kin_")]
    force = [c for c in channels if c.startswith("force_")]
    angle = ["angle", "angle_velocity"] if uses_angle(card.input_set) else []
    if channels != emg + angle + kin + force:
        raise UnsupportedCardError(
            f"model channels {channels} are not EMG envelopes, angle + velocity, kinematics, "
            "force in that order; the portable export does not know this layout")
    return Layout(len(emg), len(emg) if angle else None, len(kin), len(force))


def input_columns(card: ModelCard) -> list[Column]:
    """The window's columns, in order, with units."""
    lay = layout(card)
    emg_names = [c for c in card.channels if c.startswith("emg_")] if lay.n_emg else []
    cols = [Column(name, "EMG stream unit, mV for UCI",
                   f"EMG envelope of {name.removeprefix('emg_')} (kneegui.dsp features at "
                   f"{card.model_rate:g} Hz)") for name in emg_names]
    if lay.angle is not None:
        cols.append(Column(ANGLE_COLUMN, "degrees", "knee flexion angle, flexion positive, "
                                                    "0 = extended"))
    cols += [Column(c, "stream unit", "extra kinematics channel") for c in card.channels
             if c.startswith("kin_")]
    cols += [Column(c, "stream unit", "force channel") for c in card.channels
             if c.startswith("force_")]
    return cols


def windows(card: ModelCard, inputs: Any, ends: np.ndarray) -> np.ndarray:
    """The portable input ``[len(ends), rows_needed, columns]`` (float32) of the windows of a
    series (``ModelInputs`` or anything with its attributes) ending at rows ``ends``."""
    lay = layout(card)
    i = ModelInputs.of(inputs)
    parts = []
    if lay.n_emg:
        emg = np.asarray(i.emg_env, np.float32)
        if emg.ndim != 2 or emg.shape[1] != lay.n_emg:
            raise ValueError(f"EMG envelopes must be [n, {lay.n_emg}], got {emg.shape}")
        parts.append(emg)
    if lay.angle is not None:
        parts.append(np.asarray(i.angle, np.float32).reshape(-1, 1))
    if lay.n_kinematics:
        parts.append(np.asarray(i.kinematics, np.float32).reshape(len(i), -1))
    if lay.n_force:
        parts.append(np.asarray(i.force, np.float32).reshape(len(i), -1))
    table = np.concatenate(parts, axis=1)
    if table.shape[1] != lay.n_columns:
        raise ValueError(f"inputs give {table.shape[1]} columns, the model takes "
                         f"{lay.n_columns}")
    offsets = np.arange(-card.rows_needed + 1, 1)
    ends = np.asarray(ends, np.int64).reshape(-1)
    if len(ends) and (ends.min() < card.rows_needed - 1 or ends.max() >= len(table)):
        raise ValueError(f"window ends must lie in [{card.rows_needed - 1}, {len(table) - 1}]")
    return np.ascontiguousarray(table[ends[:, None] + offsets[None, :]])
