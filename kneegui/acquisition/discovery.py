"""Find the LSL streams on the network and describe them without pylsl objects leaking out."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

#: pylsl channel-format codes -> names (matches pylsl's ``cf_*`` constants).
FORMAT_NAMES: dict[int, str] = {
    0: "undefined",
    1: "float32",
    2: "double64",
    3: "string",
    4: "int32",
    5: "int16",
    6: "int8",
    7: "int64",
}
#: numpy dtypes for the numeric formats.
NUMERIC_DTYPES: dict[str, str] = {
    "float32": "float32",
    "double64": "float64",
    "int32": "int32",
    "int16": "int16",
    "int8": "int8",
    "int64": "int64",
}


@dataclass(frozen=True)
class StreamInfoView:
    """Plain-Python description of one LSL stream (what ``kneegui streams`` lists)."""

    name: str
    type: str
    channel_count: int
    nominal_srate: float
    channel_format: str  # "float32", "double64", "int16", ..., "string"
    source_id: str
    hostname: str
    uid: str
    channel_labels: tuple[str, ...]
    channel_units: tuple[str, ...]
    xml: str = field(default="", repr=False)
    #: the resolved pylsl.StreamInfo, kept so an inlet can be opened without resolving again
    handle: Any = field(default=None, repr=False, compare=False)

    @property
    def is_numeric(self) -> bool:
        return self.channel_format in NUMERIC_DTYPES

    @property
    def is_regular(self) -> bool:
        return self.nominal_srate > 0

    @property
    def problem(self) -> str | None:
        """Why KneeGUI cannot read this stream (None when it can).

        Such streams are listed as unusable and skipped, never fatal: a lab network may carry
        broken or unfinished outlets (0 channels, undefined format, an invalid rate).
        """
        if self.channel_count < 1:
            return "it declares no channels (a broken or unfinished outlet; fix its sender)"
        if self.channel_format not in NUMERIC_DTYPES and self.channel_format != "string":
            return f"its channel format is {self.channel_format!r} (fix its sender)"
        if not math.isfinite(self.nominal_srate) or self.nominal_srate < 0:
            return f"its nominal rate {self.nominal_srate!r} is invalid (fix its sender)"
        return None

    @property
    def usable(self) -> bool:
        """True when the stream can be read (see :attr:`problem`)."""
        return self.problem is None

    @property
    def numpy_dtype(self) -> str:
        """numpy dtype name of the samples (``object`` for string streams)."""
        return NUMERIC_DTYPES.get(self.channel_format, "object")

    def label(self, channel: int) -> str:
        """The label of ``channel`` or ``ch<k>`` when the stream gives none."""
        if channel < len(self.channel_labels) and self.channel_labels[channel]:
            return self.channel_labels[channel]
        return f"ch{channel}"

    def describe(self) -> str:
        """One line: name, type, source_id, shape and rate (for messages)."""
        rate = f"{self.nominal_srate:g} Hz" if self.is_regular else "irregular rate"
        return (
            f"'{self.name}' (type {self.type or '?'}, source_id {self.source_id or '-'}, "
            f"{self.channel_count} ch {self.channel_format}, {rate})"
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (without the XML and the pylsl handle)."""
        out = dataclasses.asdict(dataclasses.replace(self, handle=None))
        out.pop("handle")
        out.pop("xml")
        out["channel_labels"] = list(self.channel_labels)
        out["channel_units"] = list(self.channel_units)
        out["problem"] = self.problem
        return out


def view_from_info(info: Any, full: bool = True) -> StreamInfoView:
    """Build a :class:`StreamInfoView` from a ``pylsl.StreamInfo`` (resolved or from an inlet)."""
    n = int(info.channel_count())
    labels = _channel_field(info, "label", n)
    units = _channel_field(info, "unit", n)
    return StreamInfoView(
        name=info.name(),
        type=info.type(),
        channel_count=n,
        nominal_srate=float(info.nominal_srate()),
        channel_format=FORMAT_NAMES.get(int(info.channel_format()), "undefined"),
        source_id=info.source_id(),
        hostname=info.hostname(),
        uid=info.uid(),
        channel_labels=labels,
        channel_units=units,
        xml=info.as_xml() if full else "",
        handle=info,
    )


def _channel_field(info: Any, name: str, n: int) -> tuple[str, ...]:
    """``desc/channels/channel/<name>`` for every channel ("" where missing)."""
    values: list[str] = []
    ch = info.desc().child("channels").child("channel")
    while not ch.empty() and len(values) < n:
        values.append(ch.child_value(name))
        ch = ch.next_sibling("channel")
    values += [""] * (n - len(values))
    return tuple(values)


def discover(timeout: float = 2.0, stream_type: str | None = None) -> list[StreamInfoView]:
    """All streams visible within ``timeout`` seconds (optionally only one type), sorted.

    Resolving returns each stream's short info; the channel labels and units live in the full
    description, which is then fetched from every usable stream (about 1 ms each on a LAN).
    Unusable streams are listed too (:attr:`StreamInfoView.problem` says why).
    """
    import pylsl

    if not (math.isfinite(timeout) and timeout > 0):
        raise ValueError(f"discovery timeout must be > 0 s, got {timeout}")
    if stream_type:
        infos = pylsl.resolve_byprop("type", stream_type, minimum=0, timeout=timeout)
    else:
        infos = pylsl.resolve_streams(wait_time=timeout)
    views = [_with_full_info(view_from_info(i)) for i in infos]
    unique = {v.uid: v for v in views}
    return sorted(unique.values(), key=lambda v: (v.type, v.name, v.source_id))


def resolve_source_id(source_id: str, timeout: float = 2.0,
                      wait_all: bool = False) -> list[StreamInfoView]:
    """Streams whose source_id equals ``source_id`` (returns as soon as one is found, or with
    ``wait_all`` after the whole ``timeout``, with every stream that answered)."""
    import pylsl

    infos = pylsl.resolve_byprop("source_id", source_id, minimum=1_000_000 if wait_all else 1,
                                 timeout=timeout)
    return [_with_full_info(view_from_info(i)) for i in infos]


def resolve_name(name: str, timeout: float = 2.0) -> list[StreamInfoView]:
    """Streams named ``name`` (returns as soon as one is found)."""
    import pylsl

    infos = pylsl.resolve_byprop("name", name, minimum=1, timeout=timeout)
    return [_with_full_info(view_from_info(i)) for i in infos]


def full_info(view: StreamInfoView, timeout: float = 2.0) -> StreamInfoView:
    """The same stream with its full description (labels, units, desc XML) fetched from it."""
    import pylsl

    if view.handle is None:
        raise ValueError(f"stream {view.describe()} was not resolved on the network")
    inlet = pylsl.StreamInlet(view.handle, max_buflen=1, recover=False)
    try:
        full = view_from_info(inlet.info(timeout=timeout))
    finally:
        del inlet
    # The full info lacks the sender's address (the resolver fills it in), so inlets must
    # still be opened from the resolved handle.
    return dataclasses.replace(full, handle=view.handle)


def _with_full_info(view: StreamInfoView, timeout: float = 1.0) -> StreamInfoView:
    """The full description when the stream answers in time, else the short one."""
    if not view.usable:
        return view
    try:
        return full_info(view, timeout=timeout)
    except Exception:  # the stream vanished or is slow: the short info is still useful
        return view
