"""Choose where a new recording goes, never overwriting an existing file.

``--out`` may be a directory (existing, or a path without an ``.h5``/``.hdf5`` suffix, created on
demand): the file name then comes from :data:`DEFAULT_TEMPLATE` (subject, UTC date-time, counter)
and the counter is raised until the name is free. ``--out`` may also be a file path ending in
``.h5``/``.hdf5``: if that file exists it is refused with :class:`OutputExistsError`.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from pathlib import Path

from kneegui.recording.errors import OutputExistsError
from kneegui.recording.layout import sanitize_name

#: File-name template for recordings written into a directory.
DEFAULT_TEMPLATE = "{subject}_{datetime}_{counter:03d}.h5"
SESSION_SUFFIXES = (".h5", ".hdf5")
#: Longest file-name part taken from user text (subject id, stream name), in bytes; file
#: systems allow 255 bytes per name, and the template adds date, counter and suffix.
MAX_NAME_PART_BYTES = 120


def short_name_part(text: str, max_bytes: int = MAX_NAME_PART_BYTES) -> str:
    """``text`` if it fits in ``max_bytes`` (UTF-8), else its start plus a short hash of it
    (so two long names that start alike still get different file names)."""
    raw = text.encode("utf-8")
    if len(raw) <= max_bytes:
        return text
    digest = hashlib.sha1(raw).hexdigest()[:8]
    head = raw[: max_bytes - 9].decode("utf-8", "ignore")
    return f"{head}-{digest}"


def is_file_target(out: Path) -> bool:
    """True when ``out`` names a session file rather than a directory."""
    return not out.is_dir() and out.suffix.lower() in SESSION_SUFFIXES


def name_from_template(
    subject: str, when: dt.datetime, counter: int, template: str = DEFAULT_TEMPLATE
) -> str:
    """Fill the template; the subject is sanitized, the time is UTC ``YYYYmmddTHHMMSSZ``."""
    stamp = when.astimezone(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    return template.format(
        subject=short_name_part(sanitize_name(subject, "subject")), datetime=stamp,
        counter=counter,
    )


def resolve_session_path(
    out: str | Path,
    subject: str = "",
    when: dt.datetime | None = None,
    template: str = DEFAULT_TEMPLATE,
) -> Path:
    """The path a new recording will be written to (its directory is created if needed).

    Raises :class:`OutputExistsError` when ``out`` is an existing file: a recording is never
    overwritten.
    """
    out = Path(out).expanduser()
    if is_file_target(out) or (out.exists() and not out.is_dir()):
        if out.exists():
            raise OutputExistsError(
                f"{out} already exists and KneeGUI never overwrites a recording; "
                "choose another file name or pass a directory to get a fresh name"
            )
        out.parent.mkdir(parents=True, exist_ok=True)
        return out
    out.mkdir(parents=True, exist_ok=True)
    when = when or dt.datetime.now(dt.UTC)
    counter = 1
    while True:
        candidate = out / name_from_template(subject, when, counter, template)
        if not candidate.exists():
            return candidate
        counter += 1
