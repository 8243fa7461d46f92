"""Choosing the LSL streams a headless command works with (`kneegui predict`, `kneegui calibrate`):
by name or source_id when given, else the only stream of the role's type on the network."""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

#: LSL stream types (lower case) each role is looked up by.
ROLE_TYPES = {"EMG": ("emg",), "KNEE_ANGLE": ("angle", "kneeangle")}


class StreamChoiceError(Exception):
    """No stream, or more than one, fits; the message lists what was found and what to pass."""


@dataclass(frozen=True)
class StreamChoice:
    """A stream and the role it plays (what ``LiveSession.connect`` takes)."""

    info: Any  # kneegui.acquisition.StreamInfoView
    role: str  # kneegui.acquisition.Role member name
    channels: tuple[int, ...] | None = None
    channel_map: dict[str, str] | None = None  # EMG: stream label -> model input


def pick(streams: list[Any], wanted: str | None, kind: str, option: str) -> Any:
    """The stream named or with source_id ``wanted``, else the only one in ``streams``."""
    names = ", ".join(f"{s.name} ({s.source_id})" for s in streams) or "none"
    if wanted:
        hits = [s for s in streams if wanted in (s.name, s.source_id)]
        if not hits:
            raise StreamChoiceError(f"no {kind} stream named or with source_id {wanted!r}; "
                                    f"found: {names}")
        return hits[0]
    if len(streams) != 1:
        raise StreamChoiceError(f"{len(streams)} {kind} streams found ({names}); choose one "
                                f"with {option}")
    return streams[0]


def find_stream(wanted: str | None, types: tuple[str, ...], kind: str, option: str,
                timeout: float, discovered: Callable[[], list]) -> Any:
    """The stream given by source_id or name (fast), else the only one of its type among
    ``discovered()`` (one network-wide discovery shared by every role)."""
    from kneegui.acquisition import resolve_name, resolve_source_id

    if wanted:
        hits = resolve_source_id(wanted, timeout=timeout) or resolve_name(wanted, timeout=0.5)
        if hits:
            return hits[0]
    streams = [s for s in discovered() if s.type.lower() in types]
    return pick(streams, wanted, kind, option)


def choose_streams(emg: str | None, angle: str | None, timeout: float,
                   need_angle: bool = True) -> list[StreamChoice]:
    """The EMG and knee-angle streams (``--emg`` / ``--angle`` or the only one of each type).
    Without ``need_angle`` a missing angle stream is left out instead of an error."""
    from kneegui.acquisition import discover

    discovered = functools.cache(lambda: discover(timeout=timeout))
    out = [StreamChoice(find_stream(emg, ROLE_TYPES["EMG"], "EMG", "--emg", timeout,
                                    discovered), "EMG")]
    try:
        knee = find_stream(angle, ROLE_TYPES["KNEE_ANGLE"], "knee-angle", "--angle", timeout,
                           discovered)
    except StreamChoiceError:
        if need_angle or angle:
            raise
        return out
    out.append(StreamChoice(knee, "KNEE_ANGLE"))
    return out


def split_channel_map(channel_map: Mapping[str, str],
                      angle_labels: Sequence[str]) -> tuple[dict[str, str], list[str]]:
    """``--channel-map`` entries for the EMG stream (label -> model input) and the labels of the
    knee-angle stream's channels mapped to the angle input (``"Knee R=angle"``)."""
    from kneegui.model.layout import ANGLE_INPUT

    angle = [label for label, target in channel_map.items()
             if target.casefold() == ANGLE_INPUT and label in angle_labels]
    return {k: v for k, v in channel_map.items() if k not in angle}, angle


def with_channel_map(choices: list[StreamChoice],
                     channel_map: Mapping[str, str]) -> list[StreamChoice]:
    """``choices`` with a ``--channel-map`` applied: the EMG choice carries its part of the map
    (matched against the model's inputs when connecting), the knee-angle choice the channel
    mapped to the angle input."""
    if not channel_map:
        return choices
    angle_info = next((c.info for c in choices if c.role == "KNEE_ANGLE"), None)
    angle_labels = list(angle_info.channel_labels) if angle_info is not None else []
    emg_map, angle = split_channel_map(channel_map, angle_labels)
    out = []
    for choice in choices:
        if choice.role == "EMG":
            choice = replace(choice, channel_map=emg_map or None)
        elif choice.role == "KNEE_ANGLE" and angle:
            choice = replace(choice, channels=tuple(angle))
        out.append(choice)
    return out
