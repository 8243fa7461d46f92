"""What the recorder needs to know about a stream, and its LSL stream-info XML."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from typing import Any

from kneegui.recording import layout


@dataclass(frozen=True)
class StreamSpec:
    """Stream metadata, field-compatible with ``acquisition.StreamInfoView``."""

    name: str
    type: str = ""
    channel_count: int = 1
    nominal_srate: float = 0.0
    channel_format: str = "float32"
    source_id: str = ""
    hostname: str = ""
    uid: str = ""
    channel_labels: tuple[str, ...] = ()
    channel_units: tuple[str, ...] = ()
    xml: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_info(cls, info: Any) -> StreamSpec:
        """Copy the fields of any object shaped like ``StreamInfoView`` (or a StreamSpec)."""
        if isinstance(info, StreamSpec):
            return info
        get = lambda key, default: getattr(info, key, default)  # noqa: E731
        return cls(
            name=str(get("name", "")),
            type=str(get("type", "") or ""),
            channel_count=int(get("channel_count", 1)),
            nominal_srate=float(get("nominal_srate", 0.0) or 0.0),
            channel_format=str(get("channel_format", "float32")),
            source_id=str(get("source_id", "") or ""),
            hostname=str(get("hostname", "") or ""),
            uid=str(get("uid", "") or ""),
            channel_labels=tuple(str(x) for x in (get("channel_labels", ()) or ())),
            channel_units=tuple(str(x) for x in (get("channel_units", ()) or ())),
            xml=str(get("xml", "") or ""),
        )

    def full_xml(self) -> str:
        """The stream-info XML: the original if known, else one built from the fields."""
        return self.xml or build_info_xml(self)


def build_info_xml(spec: StreamSpec) -> str:
    """A minimal LSL ``<info>`` document with the channel labels/units in ``desc``."""
    root = ET.Element("info")
    for key in ("name", "type", "channel_count", "nominal_srate", "channel_format",
                "source_id", "hostname", "uid"):
        ET.SubElement(root, key).text = str(getattr(spec, key))
    desc = ET.SubElement(root, "desc")
    if spec.channel_labels or spec.channel_units:
        channels = ET.SubElement(desc, "channels")
        for i in range(spec.channel_count):
            ch = ET.SubElement(channels, "channel")
            if i < len(spec.channel_labels):
                ET.SubElement(ch, "label").text = spec.channel_labels[i]
            if i < len(spec.channel_units):
                ET.SubElement(ch, "unit").text = spec.channel_units[i]
            if spec.type:
                ET.SubElement(ch, "type").text = spec.type
    return ET.tostring(root, encoding="unicode")


def parse_desc(xml: str) -> ET.Element | None:
    """The ``<desc>`` element of a stream-info XML document (None if absent or unparsable)."""
    if not xml:
        return None
    try:
        root = ET.fromstring(xml)
    except ET.ParseError:
        return None
    return root.find("desc")


def channels_from_xml(xml: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(labels, units) listed under ``desc/channels/channel`` (empty tuples when absent)."""
    desc = parse_desc(xml)
    if desc is None:
        return (), ()
    labels, units = [], []
    for ch in desc.findall("channels/channel"):
        labels.append((ch.findtext("label") or "").strip())
        units.append((ch.findtext("unit") or "").strip())
    if not any(units):
        units = []
    if not any(labels):
        labels = []
    return tuple(labels), tuple(units)


def stream_attrs(spec: StreamSpec) -> dict[str, Any]:
    """The attributes stored on ``/streams/<name>``."""
    labels = spec.channel_labels
    units = spec.channel_units
    if not labels and spec.xml:
        labels, xml_units = channels_from_xml(spec.xml)
        units = units or xml_units
    n = spec.channel_count
    labels = tuple(labels[:n]) + tuple(f"ch{i + 1}" for i in range(len(labels), n))
    units = tuple(units[:n]) + ("",) * max(0, n - len(units))
    return {
        "name": spec.name,
        "type": spec.type,
        "channel_count": n,
        "nominal_srate": float(spec.nominal_srate),
        "channel_format": spec.channel_format,
        "source_id": spec.source_id,
        "hostname": spec.hostname,
        "uid": spec.uid,
        "channel_labels": list(labels),
        "channel_units": list(units),
        "info_xml": spec.full_xml(),
        "dtype": "string" if layout.is_string_format(spec.channel_format)
        else str(layout.storage_dtype(spec.channel_format)),
        **spec.extra,
    }
