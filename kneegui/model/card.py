"""The model card: everything a prediction needs besides the network's tensors, typed and checked.

A card is JSON (``<stem>.json`` next to ``<stem>.safetensors``; layout in ``docs/model.md``).
:meth:`ModelCard.from_dict` validates every field a prediction uses — finite means, positive
standard deviations, shares in [0, 1], lengths that match the network's inputs and horizons, a
memory and extrapolator that fit inside the window — and refuses anything else with a
:class:`CardError` naming the field, so a card that loads predicts finite degrees. Cards are
immutable: derive a new one with :func:`dataclasses.replace`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields
from typing import Any

from kneegui.model.config import (
    EMG_PREFIX,
    INPUT_SETS,
    MODEL_RATE,
    N_HORIZONS,
    KneeNetConfig,
    channel_names,
    uses_angle,
    uses_emg,
)
from kneegui.model.extrapolator import Extrapolator
from kneegui.model.features import SubjectNorm
from kneegui.model.memory import GROUP_KINDS, AnalogParams, memory_group
from kneegui.model.window import rows_needed

CARD_FORMAT = "kneegui-model"
#: 2 added the optional ``analog`` block (calibration memory; its arrays live in the weights
#: file under ``analog.*``), 3 the optional ``extrapolator`` block. Older cards load unchanged.
CARD_VERSION = 3


class CardError(ValueError):
    """A card field is missing or unusable; the message starts with the field's name."""


@dataclass(frozen=True)
class Normalisation:
    """Global input/target standardisation (fitted on the pretraining windows) and the subject
    stage (:class:`SubjectNorm`: the training median, or the calibrated subject's scales)."""

    input_mean: tuple[float, ...]  # [C]
    input_std: tuple[float, ...]  # [C], > 0
    target_mean: tuple[float, ...]  # [H]
    target_std: tuple[float, ...]  # [H], > 0
    subject: SubjectNorm


@dataclass(frozen=True)
class VelocityMix:
    """Pretrained angle models: the network's share per horizon against constant-velocity
    extrapolation (JSON ``norm.cv_weight``)."""

    network_share: tuple[float, ...]  # [H] in [0, 1]


@dataclass(frozen=True)
class MemoryBlend:
    """A subject model's calibration memory: its key parameters, its share per horizon, and
    the hash of its arrays (stored in the weights file under ``analog.*``)."""

    params: AnalogParams
    share: tuple[float, ...]  # [H] in [0, 1]
    sha256: str


@dataclass(frozen=True)
class ExtrapolatorStack:
    """A subject model's extrapolator and its share per horizon on top of network + memory."""

    extrapolator: Extrapolator
    share: tuple[float, ...]  # [H] in [0, 1]


@dataclass(frozen=True)
class ModelCard:
    """Everything needed to use a network besides its tensors."""

    name: str
    input_set: str
    config: KneeNetConfig
    norm: Normalisation
    model_rate: float = MODEL_RATE
    window: int = 100
    horizons: int = N_HORIZONS
    channels: tuple[str, ...] = ()
    dsp_settings: dict[str, Any] = field(default_factory=dict)
    training: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    version: int = CARD_VERSION
    base_model: str | None = None
    subject: str | None = None
    created: str | None = None
    velocity_mix: VelocityMix | None = None
    memory: MemoryBlend | None = None
    extrapolator: ExtrapolatorStack | None = None
    format: str = CARD_FORMAT

    @property
    def subject_norm(self) -> SubjectNorm:
        return self.norm.subject

    @property
    def emg_inputs(self) -> tuple[str, ...]:
        """The channel layout the network was trained on: its EMG inputs (muscles), in input
        order (``channels`` entries ``emg_<muscle>``; cards without ``channels`` have the UCI
        layout RF, BF, VM, ST). Empty for a model without EMG inputs."""
        return tuple(c[len(EMG_PREFIX):] for c in self.channels if c.startswith(EMG_PREFIX))

    @property
    def rows_needed(self) -> int:
        """Aligned rows one prediction needs (:func:`kneegui.model.window.rows_needed`)."""
        return rows_needed(self.input_set, self.window)

    @property
    def calibrated(self) -> bool:
        """True for a subject model (made by calibration from a pretrained one)."""
        return self.subject is not None

    def validated(self) -> ModelCard:
        """This card checked like a loaded one (:class:`CardError` otherwise); cards built in
        code are checked before they are saved."""
        return ModelCard.from_dict(self.to_dict())

    # -- JSON ------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """The card's JSON layout (unchanged since card version 3)."""
        norm: dict[str, Any] = {
            "input_mean": list(self.norm.input_mean), "input_std": list(self.norm.input_std),
            "target_mean": list(self.norm.target_mean), "target_std": list(self.norm.target_std),
            "subject": self.norm.subject.to_dict(),
        }
        if self.velocity_mix is not None:
            norm["cv_weight"] = list(self.velocity_mix.network_share)
        analog: dict[str, Any] = {}
        if self.memory is not None:
            analog = {"params": self.memory.params.to_dict(), "weight": list(self.memory.share),
                      "sha256": self.memory.sha256}
        extrapolator: dict[str, Any] = {}
        if self.extrapolator is not None:
            extrapolator = {**self.extrapolator.extrapolator.to_dict(),
                            "weight": list(self.extrapolator.share)}
        return {
            "name": self.name, "input_set": self.input_set, "config": self.config.to_dict(),
            "norm": norm, "model_rate": self.model_rate, "window": self.window,
            "horizons": self.horizons, "channels": list(self.channels),
            "dsp_settings": dict(self.dsp_settings), "training": dict(self.training),
            "metrics": dict(self.metrics), "version": self.version,
            "base_model": self.base_model, "subject": self.subject, "created": self.created,
            "analog": analog, "extrapolator": extrapolator, "format": self.format,
        }

    @classmethod
    def from_dict(cls, data: Any) -> ModelCard:
        """A validated card from its JSON layout; :class:`CardError` names the bad field."""
        if not isinstance(data, dict):
            raise CardError("card: not a JSON object")
        known = {f.name for f in fields(cls)} | {"analog"}
        unknown = sorted(set(data) - known)
        if unknown:
            raise CardError(f"card: unknown field(s) {unknown}")
        input_set = _choice(data, "input_set", INPUT_SETS)
        window = _whole(data.get("window", 100), "window")
        horizons = _whole(data.get("horizons", N_HORIZONS), "horizons")
        config = _config(data.get("config"), window, horizons, input_set)
        channels = tuple(_strings(data.get("channels") or channel_names(input_set), "channels"))
        if len(channels) != config.n_inputs:
            raise CardError(f"channels: {len(channels)} listed, the network has "
                            f"{config.n_inputs} inputs")
        n_emg = sum(1 for c in channels if c.startswith(EMG_PREFIX))
        muscles = [c[len(EMG_PREFIX):] for c in channels if c.startswith(EMG_PREFIX)]
        if any(not m.strip() for m in muscles) or len({m.upper() for m in muscles}) != n_emg:
            raise CardError(f"channels: EMG inputs {muscles} must be named and distinct")
        if uses_emg(input_set) != bool(n_emg):
            raise CardError(f"channels: a {input_set!r} model lists {n_emg} EMG inputs")
        norm_data = _mapping(data.get("norm"), "norm")
        norm = _normalisation(norm_data, config.n_inputs, horizons, n_emg if uses_emg(input_set)
                              else None)
        velocity_mix = None
        if norm_data.get("cv_weight") is not None:
            if not config.residual:
                raise CardError("norm.cv_weight: only a residual (angle input) network mixes in "
                                "constant velocity")
            velocity_mix = VelocityMix(_floats(norm_data["cv_weight"], "norm.cv_weight",
                                               horizons, share=True))
        rate = _number(data.get("model_rate", MODEL_RATE), "model_rate")
        if rate <= 0:
            raise CardError(f"model_rate: {rate} Hz must be > 0")
        version = _whole(data.get("version", CARD_VERSION), "version")
        if version > CARD_VERSION:
            raise CardError(f"version: card version {version} is newer than this KneeGUI "
                            f"supports ({CARD_VERSION}); update KneeGUI")
        fmt = data.get("format", CARD_FORMAT)
        if fmt != CARD_FORMAT:
            raise CardError(f"format: {fmt!r} is not {CARD_FORMAT!r}")
        return cls(
            name=_text(data.get("name"), "name"), input_set=input_set, config=config, norm=norm,
            model_rate=rate, window=window, horizons=horizons, channels=channels,
            dsp_settings=_mapping(data.get("dsp_settings", {}), "dsp_settings"),
            training=_mapping(data.get("training", {}), "training"),
            metrics=_mapping(data.get("metrics", {}), "metrics"), version=version,
            base_model=_optional_text(data.get("base_model"), "base_model"),
            subject=_optional_text(data.get("subject"), "subject"),
            created=_optional_text(data.get("created"), "created"),
            velocity_mix=velocity_mix,
            memory=_memory(data.get("analog") or data.get("memory"), input_set, window, horizons),
            extrapolator=_extrapolator(data.get("extrapolator"), input_set, window, horizons),
            format=CARD_FORMAT,
        )


# -- field checks ----------------------------------------------------------------------------
def _mapping(value: Any, name: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise CardError(f"{name}: expected a JSON object, got {type(value).__name__}")
    return dict(value)


def _text(value: Any, name: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise CardError(f"{name}: expected a non-empty text")
    return value


def _optional_text(value: Any, name: str) -> str | None:
    return None if value is None else _text(value, name)


def _strings(value: Any, name: str) -> list[str]:
    if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
        raise CardError(f"{name}: expected a list of texts")
    return list(value)


def _choice(data: dict[str, Any], name: str, allowed: tuple[str, ...]) -> str:
    value = data.get(name)
    if value not in allowed:
        raise CardError(f"{name}: {value!r} is not one of {', '.join(allowed)}")
    return value


def _number(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise CardError(f"{name}: expected a finite number, got {value!r}")
    return float(value)


def _whole(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise CardError(f"{name}: expected a whole number >= 1, got {value!r}")
    return value


def _floats(value: Any, name: str, n: int, *, positive: bool = False,
            share: bool = False) -> tuple[float, ...]:
    """``n`` finite floats (> 0 with ``positive``; in [0, 1] with ``share``)."""
    if not isinstance(value, list | tuple):
        raise CardError(f"{name}: expected a list of {n} numbers")
    if len(value) != n:
        raise CardError(f"{name}: {len(value)} values, expected {n}")
    out = []
    for i, v in enumerate(value):
        f = _number(v, f"{name}[{i}]")
        if positive and f <= 0:
            raise CardError(f"{name}[{i}] = {f:g}: must be > 0")
        if share and not 0.0 <= f <= 1.0:
            raise CardError(f"{name}[{i}] = {f:g}: must lie in [0, 1]")
        out.append(f)
    return tuple(out)


def _config(value: Any, window: int, horizons: int, input_set: str) -> KneeNetConfig:
    data = _mapping(value, "config")
    try:
        config = KneeNetConfig.from_dict(data)
    except (TypeError, ValueError) as exc:
        raise CardError(f"config: {exc}") from exc
    for name in ("n_inputs", "window", "horizons", "conv_channels", "kernel", "conv_stride",
                 "lstm_hidden", "attention_dim", "head_hidden", "skip_steps"):
        _whole(getattr(config, name), f"config.{name}")
    if config.window != window or config.horizons != horizons:
        raise CardError(f"config: network window/horizons {config.window}/{config.horizons} "
                        f"differ from the card's {window}/{horizons}")
    if config.skip_steps > window:
        raise CardError(f"config.skip_steps: {config.skip_steps} exceeds the window {window}")
    if config.residual and not uses_angle(input_set):
        raise CardError(f"config.residual: a {input_set!r} network has no angle to add to")
    return config


def _normalisation(data: dict[str, Any], n_inputs: int, horizons: int,
                   n_emg: int | None) -> Normalisation:
    for key in ("input_mean", "input_std", "target_mean", "target_std", "subject"):
        if key not in data:
            raise CardError(f"norm.{key}: missing")
    subject = _mapping(data["subject"], "norm.subject")
    try:
        scale = subject["emg_scale"]
        sn = SubjectNorm(emg_scale=list(_floats(scale, "norm.subject.emg_scale",
                                                len(scale) if isinstance(scale, list) else -1,
                                                positive=True)),
                         angle_mean=_number(subject["angle_mean"], "norm.subject.angle_mean"),
                         angle_std=_number(subject["angle_std"], "norm.subject.angle_std"))
    except KeyError as exc:
        raise CardError(f"norm.subject.{exc.args[0]}: missing") from exc
    if sn.angle_std <= 0:
        raise CardError(f"norm.subject.angle_std = {sn.angle_std:g}: must be > 0")
    if n_emg is not None and len(sn.emg_scale) != n_emg:
        raise CardError(f"norm.subject.emg_scale: {len(sn.emg_scale)} values for {n_emg} EMG "
                        "inputs")
    return Normalisation(
        input_mean=_floats(data["input_mean"], "norm.input_mean", n_inputs),
        input_std=_floats(data["input_std"], "norm.input_std", n_inputs, positive=True),
        target_mean=_floats(data["target_mean"], "norm.target_mean", horizons),
        target_std=_floats(data["target_std"], "norm.target_std", horizons, positive=True),
        subject=sn,
    )


def _memory(value: Any, input_set: str, window: int, horizons: int) -> MemoryBlend | None:
    if not value:
        return None
    data = _mapping(value, "analog")
    try:
        params = AnalogParams(**_mapping(data.get("params"), "analog.params"))
    except (TypeError, ValueError) as exc:
        raise CardError(f"analog.params: {exc}") from exc
    allowed = GROUP_KINDS[memory_group(input_set)]
    if params.kind not in allowed:
        raise CardError(f"analog.params.kind: a {input_set!r} model takes {list(allowed)} keys, "
                        f"not {params.kind!r}")
    if params.history > window:
        raise CardError(f"analog.params.history: {params.history} rows reach beyond the "
                        f"{window}-row window")
    share = _floats(data.get("weight"), "analog.weight", horizons, share=True)
    return MemoryBlend(params, share, _text(data.get("sha256"), "analog.sha256"))


def _extrapolator(value: Any, input_set: str, window: int,
                  horizons: int) -> ExtrapolatorStack | None:
    if not value:
        return None
    data = _mapping(value, "extrapolator")
    if not uses_angle(input_set):
        raise CardError(f"extrapolator: a {input_set!r} model has no angle to extrapolate")
    try:
        extrapolator = Extrapolator.from_dict(data)
    except (KeyError, TypeError, ValueError) as exc:
        raise CardError(f"extrapolator: {exc!r}") from exc
    if extrapolator.horizons != horizons:
        raise CardError(f"extrapolator.coef: {extrapolator.horizons} horizons, the card has "
                        f"{horizons}")
    if extrapolator.lags + 1 > rows_needed(input_set, window):
        raise CardError(f"extrapolator.lags: {extrapolator.lags} lags reach beyond the "
                        f"{window}-row window")
    share = _floats(data.get("weight"), "extrapolator.weight", horizons, share=True)
    return ExtrapolatorStack(extrapolator, share)
