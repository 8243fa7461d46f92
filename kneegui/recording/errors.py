"""Exceptions raised by the recording package (each message says what to do)."""

from __future__ import annotations


class SessionFormatError(ValueError):
    """A file is not a KneeGUI session, or it is damaged beyond reading."""


class OutputExistsError(FileExistsError):
    """The requested recording file already exists; recordings are never overwritten."""


class RecordingError(RuntimeError):
    """The writer cannot accept data (not started, stopped, or failed)."""
