"""Crash-safe HDF5 session recording, reading, replay, CSV export and XDF import.

Layout: ``docs/session-format.md``. Main entry points: :class:`SessionWriter` and
:func:`open_session`.
"""

from kneegui.recording.errors import (
    OutputExistsError,
    OutputNotWritableError,
    RecordingError,
    SessionFormatError,
)
from kneegui.recording.layout import FORMAT_NAME, FORMAT_VERSION
from kneegui.recording.naming import resolve_session_path
from kneegui.recording.reader import (
    DerivedSeries,
    Events,
    ModelEntry,
    Predictions,
    RecordedStream,
    Session,
    open_session,
)
from kneegui.recording.streaminfo import StreamSpec
from kneegui.recording.writer import SessionMetadata, SessionWriter, WriterState, WriterStatus

__all__ = [
    "FORMAT_NAME",
    "FORMAT_VERSION",
    "DerivedSeries",
    "Events",
    "ModelEntry",
    "OutputExistsError",
    "OutputNotWritableError",
    "Predictions",
    "RecordedStream",
    "RecordingError",
    "Session",
    "SessionFormatError",
    "SessionMetadata",
    "SessionWriter",
    "StreamSpec",
    "WriterState",
    "WriterStatus",
    "open_session",
    "resolve_session_path",
]
