"""KneeGUI acquisition: LSL discovery, stream readers, ring buffers, the hub and a simulated lab.

Qt-free. pylsl is imported lazily (inside functions), so importing this package is cheap.
"""

from kneegui.acquisition.discovery import (
    StreamInfoView,
    discover,
    full_info,
    resolve_name,
    resolve_source_id,
)
from kneegui.acquisition.events import AcquisitionEvent, ReaderStatus
from kneegui.acquisition.hub import AlignedFrame, Assignment, Hub, HubStatus
from kneegui.acquisition.reader import StreamReader
from kneegui.acquisition.ringbuffer import CursorRead, RingBuffer
from kneegui.acquisition.roles import Role, RoleError, check_role
from kneegui.acquisition.simulator import SimulatedLab, default_clip

__all__ = [
    "AcquisitionEvent",
    "AlignedFrame",
    "Assignment",
    "Hub",
    "HubStatus",
    "CursorRead",
    "ReaderStatus",
    "RingBuffer",
    "Role",
    "RoleError",
    "SimulatedLab",
    "StreamInfoView",
    "StreamReader",
    "check_role",
    "default_clip",
    "discover",
    "full_info",
    "resolve_name",
    "resolve_source_id",
]
