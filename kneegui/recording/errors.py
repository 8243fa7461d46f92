"""Exceptions raised by the recording package (each message says what to do)."""

from __future__ import annotations


class SessionFormatError(ValueError):
    """A file is not a KneeGUI session, or it is damaged beyond reading."""


class OutputExistsError(FileExistsError):
    """The requested recording file already exists; recordings are never overwritten."""


class RecordingError(RuntimeError):
    """The writer cannot accept data (not started, stopped, or failed)."""


class OutputNotWritableError(OSError):
    """A recording, export or import target cannot be created or written (read-only drive,
    no permission, disk full, name too long...). The message says what to do."""


#: errno -> what the user should do about it.
_HINTS = {
    "EROFS": "the drive is read-only; choose a folder on a writable drive",
    "EACCES": "there is no permission to write there; choose a folder you can write to",
    "EPERM": "there is no permission to write there; choose a folder you can write to",
    "ENOSPC": "the drive is full; free disk space or choose another drive",
    "EDQUOT": "the disk quota is used up; free space or choose another drive",
    "EFBIG": "the file system or a file-size limit (ulimit -f) forbids a larger file; "
             "raise the limit or choose another drive",
    "ENAMETOOLONG": "the file name is too long for the file system; choose a shorter name",
    "ENOTDIR": "a part of the path is a file, not a folder; check the path",
    "EISDIR": "the path is a folder; give a file name or pass the folder as the target",
    "EIO": "the drive reported an I/O error (removed or failing?); check it and choose "
           "another drive",
}


def os_error_hint(exc: BaseException) -> tuple[str, str]:
    """(reason, what to do) for an ``OSError`` (h5py's errors carry the errno too)."""
    import errno
    import os

    code = getattr(exc, "errno", None)
    reason = os.strerror(code) if isinstance(code, int) else (str(exc) or type(exc).__name__)
    name = errno.errorcode.get(code, "") if isinstance(code, int) else ""
    return reason, _HINTS.get(name, "check the drive and its permissions")


def not_writable(exc: BaseException, path: object, action: str) -> OutputNotWritableError:
    """An :class:`OutputNotWritableError` saying that ``action`` on ``path`` failed and why."""
    reason, hint = os_error_hint(exc)
    err = OutputNotWritableError(f"cannot {action} {path} ({reason}): {hint}")
    err.errno = getattr(exc, "errno", None)
    return err
