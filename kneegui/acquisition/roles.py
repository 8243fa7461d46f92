"""What a stream is used for, and whether its shape and format fit that use."""

from __future__ import annotations

from collections.abc import Sequence
from enum import Enum

from kneegui.acquisition.discovery import StreamInfoView


class Role(Enum):
    """The job a stream does in KneeGUI."""

    EMG = "emg"
    KNEE_ANGLE = "knee_angle"
    KINEMATICS = "kinematics"
    FORCE = "force"
    MARKERS = "markers"


class RoleError(ValueError):
    """A stream does not fit the role it was assigned; the message says what to do."""


def resolve_channels(info: StreamInfoView, channels: Sequence[int | str] | None) -> list[int]:
    """Turn channel picks (indices or labels) into indices, checking every one exists."""
    if channels is None:
        return list(range(info.channel_count))
    picks: list[int] = []
    for ch in channels:
        if isinstance(ch, str):
            if ch not in info.channel_labels:
                known = ", ".join(info.label(i) for i in range(info.channel_count))
                raise RoleError(
                    f"stream {info.describe()} has no channel labelled '{ch}'; "
                    f"its channels are: {known}"
                )
            picks.append(info.channel_labels.index(ch))
        else:
            k = int(ch)
            if not 0 <= k < info.channel_count:
                raise RoleError(
                    f"channel index {k} does not exist in stream {info.describe()}; "
                    f"pick an index from 0 to {info.channel_count - 1}"
                )
            picks.append(k)
    if len(set(picks)) != len(picks):
        raise RoleError(f"channel picks {list(channels)} for {info.describe()} repeat a channel")
    return picks


def check_role(
    info: StreamInfoView, role: Role, channels: Sequence[int | str] | None = None
) -> list[int]:
    """Refuse a stream whose format or channel count does not fit ``role``.

    Returns the channel indices the role uses. Raises :class:`RoleError` with a message that
    names the stream and says what to change.
    """
    if info.channel_format == "string" and role is not Role.MARKERS:
        raise RoleError(
            f"stream {info.describe()} carries text; a text stream can only be used as "
            f"MARKERS, not as {role.name}. Pick a numeric stream for {role.name}."
        )
    if role is Role.MARKERS:
        return resolve_channels(info, channels)
    if not info.is_numeric:
        raise RoleError(
            f"stream {info.describe()} has an unsupported channel format; use float32, "
            "double64, int8, int16, int32 or int64"
        )
    if info.channel_count < 1:
        raise RoleError(f"stream {info.describe()} has no channels")
    picks = resolve_channels(info, channels)
    if role is Role.EMG and not info.is_regular:
        raise RoleError(
            f"EMG stream {info.describe()} declares an irregular rate; EMG filters need the "
            "sampling rate. Set nominal_srate on the sender."
        )
    if role is Role.KNEE_ANGLE:
        if channels is None and info.channel_count != 1:
            raise RoleError(
                f"knee-angle stream {info.describe()} has {info.channel_count} channels; "
                "choose the one that holds the knee angle (by index or label)"
            )
        if len(picks) != 1:
            raise RoleError(
                f"the knee angle is one channel, but {len(picks)} were picked from "
                f"{info.describe()}; pick exactly one"
            )
    return picks


def check_emg_picks(info: StreamInfoView, channels: Sequence[int | str] | None) -> list[int]:
    """The EMG channels the hub filters and aligns (default: every channel of the stream).

    Which of them feed a model, and in which order, is the model's channel layout
    (:func:`kneegui.model.layout.match_channels`): whoever assigns EMG for a model passes the
    matched channels here. Nothing here assumes what a channel carries.
    """
    return check_role(info, Role.EMG, channels)
