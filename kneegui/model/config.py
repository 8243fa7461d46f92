"""Input sets, rates and the network configuration shared by training, inference and cards."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

#: Model time base (Hz) and prediction horizons (1..50 steps = 10..500 ms at 100 Hz).
MODEL_RATE = 100.0
N_HORIZONS = 50
#: The UCI layout: the EMG inputs of the shipped models (and of cards that name none).
EMG_CHANNELS = ("RF", "BF", "VM", "ST")
#: Network input names of EMG envelopes start with this, followed by the muscle (``emg_RF``).
EMG_PREFIX = "emg_"

#: The input sets a network can be trained on. ``angle`` is the ablation baseline (no EMG).
INPUT_SETS = ("emg", "emg+angle", "emg+kin+force", "angle")


def check_input_set(input_set: str) -> str:
    """Return ``input_set`` or raise a ValueError that lists the valid choices."""
    if input_set not in INPUT_SETS:
        raise ValueError(f"unknown input set {input_set!r}; choose one of {', '.join(INPUT_SETS)}")
    return input_set


def uses_emg(input_set: str) -> bool:
    """True if the input set feeds EMG envelopes."""
    return input_set != "angle"


def uses_angle(input_set: str) -> bool:
    """True if the input set feeds the past knee angle (and its velocity)."""
    return input_set != "emg"


def channel_names(input_set: str, n_kinematics: int = 0, n_force: int = 0,
                  muscles: tuple[str, ...] | list[str] = EMG_CHANNELS) -> list[str]:
    """Names of the network input channels, in order, for ``input_set``; ``muscles`` are the
    EMG inputs (default the UCI layout RF, BF, VM, ST)."""
    check_input_set(input_set)
    names: list[str] = []
    if uses_emg(input_set):
        names += [f"{EMG_PREFIX}{c}" for c in muscles]
    if uses_angle(input_set):
        names += ["angle", "angle_velocity"]
    if input_set == "emg+kin+force":
        names += [f"kin_{i}" for i in range(n_kinematics)]
        names += [f"force_{i}" for i in range(n_force)]
    return names


@dataclass
class KneeNetConfig:
    """Architecture of :class:`kneegui.model.network.KneeNet`.

    ``window`` is the input length in model steps; ``residual`` makes the network predict the
    change from the last measured angle (only for input sets with angle).
    """

    n_inputs: int
    window: int = 100
    horizons: int = N_HORIZONS
    conv_channels: int = 32
    kernel: int = 5
    conv_stride: int = 2
    lstm_hidden: int = 64
    attention_dim: int = 32
    head_hidden: int = 64
    skip_steps: int = 10
    dropout: float = 0.1
    residual: bool = True

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> KneeNetConfig:
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown network config keys: {sorted(unknown)}")
        return cls(**data)
