"""What the NWB and BIDS exports need to know about a session's streams.

One place decides which recorded stream is EMG, which is the knee angle, how an EMG unit maps
to volts and which muscle a channel label names, so both exports agree.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import numpy as np

from kneegui.recording.reader import RecordedStream, Session
from kneegui.recording.streaminfo import parse_desc

EMG, ANGLE, KINEMATICS, FORCE, MARKERS, OTHER = (
    "emg", "knee_angle", "kinematics", "force", "markers", "other")

#: Unit text (lower case) -> factor to volts.
_VOLTS = {"v": 1.0, "volt": 1.0, "volts": 1.0, "mv": 1e-3, "millivolt": 1e-3,
          "millivolts": 1e-3, "uv": 1e-6, "µv": 1e-6, "μv": 1e-6, "microvolt": 1e-6,
          "microvolts": 1e-6, "nv": 1e-9}
_DEGREES = {"deg", "degree", "degrees", "°"}

#: Usual EMG channel labels of lower-limb studies -> muscle names.
MUSCLES = {
    "RF": "rectus femoris", "VM": "vastus medialis", "VL": "vastus lateralis",
    "BF": "biceps femoris", "ST": "semitendinosus", "SM": "semimembranosus",
    "TA": "tibialis anterior", "GM": "gastrocnemius medialis",
    "GL": "gastrocnemius lateralis", "GA": "gastrocnemius", "SO": "soleus",
    "SOL": "soleus", "GMAX": "gluteus maximus", "GMED": "gluteus medius",
    "PL": "peroneus longus", "AL": "adductor longus", "TFL": "tensor fasciae latae",
}
_SIDE = re.compile(r"^(?P<side>[LR])[_\-\s]?(?P<m>[A-Za-z]+)$"
                   r"|^(?P<m2>[A-Za-z]+)[_\-\s](?P<s2>[LR])$", re.IGNORECASE)


def volts_per_unit(unit: str) -> float | None:
    """Factor from ``unit`` to volts (None when it is not a voltage unit)."""
    return _VOLTS.get((unit or "").strip().lower())


def is_degrees(unit: str) -> bool:
    return (unit or "").strip().lower() in _DEGREES


def muscle_name(label: str) -> str:
    """The muscle a channel label names (``"L_TA"`` -> ``"left tibialis anterior"``), else
    the label itself."""
    text = (label or "").strip()
    if text.upper() in MUSCLES:
        return MUSCLES[text.upper()]
    match = _SIDE.match(text)
    if match:
        side = match.group("side") or match.group("s2")
        muscle = (match.group("m") or match.group("m2")).upper()
        if muscle in MUSCLES:
            return f"{'left' if side.upper() == 'L' else 'right'} {MUSCLES[muscle]}"
    return text


def classify(stream: RecordedStream) -> str:
    """The role a recorded stream plays in an export (by format, type, name and units)."""
    if stream.is_string:
        return MARKERS
    kind = stream.type.strip().lower()
    name = str(stream.attrs.get("name", stream.name)).lower()
    units = [u for u in stream.channel_units if u]
    if "emg" in kind or (not kind and "emg" in name):
        return EMG
    if stream.channel_count == 1 and (
            kind in ("angle", "kneeangle", "knee angle", "knee_angle", "goniometer",
                     "jointangle", "joint angle")
            or ("knee" in name and (not units or is_degrees(units[0])))):
        return ANGLE
    if kind in ("kinematics", "mocap", "motion", "imu", "angle", "orientation"):
        return KINEMATICS
    if "force" in kind:
        return FORCE
    return OTHER


def uniform_unit(stream_units: tuple[str, ...]) -> str:
    """The unit shared by every channel ("" when unknown or mixed)."""
    units = {u for u in stream_units}
    return units.pop() if len(units) == 1 else ""


def manufacturer(stream: RecordedStream) -> str:
    """``desc/manufacturer`` (or ``desc/acquisition/manufacturer``) of the stream info."""
    desc = parse_desc(stream.info_xml)
    if desc is None:
        return ""
    for path in ("manufacturer", "acquisition/manufacturer"):
        text = (desc.findtext(path) or "").strip()
        if text:
            return text
    return ""


@dataclass
class TimeBase:
    """Maps session LSL times to seconds since a reference and to wall-clock time."""

    start_lsl: float  # LSL time of the session start
    reference_lsl: float  # time zero of exported times (<= the first sample)

    @classmethod
    def of(cls, session: Session) -> TimeBase:
        firsts = [float(s.timestamps[0]) for s in session.streams.values() if s.length]
        if len(session.events):
            firsts.append(float(np.min(session.events.timestamp)))
        start = session.start_lsl
        if start is None:
            start = min(firsts) if firsts else 0.0
        ref = min([start, *[t for t in firsts if np.isfinite(t)]])
        return cls(start, ref)

    def relative(self, t: Any) -> np.ndarray:
        return np.asarray(t, dtype=np.float64) - self.reference_lsl
