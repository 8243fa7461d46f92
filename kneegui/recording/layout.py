"""Names, versions and type mappings of the KneeGUI session file layout.

See ``docs/session-format.md`` for the full description. Everything that decides what an HDF5
path or attribute is called lives here so the writer, the reader and the importers agree.
"""

from __future__ import annotations

import re

import numpy as np

FORMAT_NAME = "kneegui-session"
#: 1.1 added timestamps_raw, clock_measurements, /events/duration, filter settings on derived
#: EMG and compression; a 1.0 file reads as before (missing parts read as empty/NaN/0).
FORMAT_VERSION = "1.1"
#: Major versions this reader understands.
SUPPORTED_MAJOR = (1,)

STREAMS = "streams"
DERIVED = "derived"
PREDICTIONS = "derived/predictions"
EVENTS = "events"
CALIBRATION = "calibration"
MODELS = "models"
#: dataset names inside /streams/<name>
RAW_STAMPS = "timestamps_raw"
CLOCK_OFFSETS = "clock_offsets"
CLOCK_MEASUREMENTS = "clock_measurements"
#: name of the raw stamps in 1.0 XDF imports
LEGACY_XDF_STAMPS = "timestamps_original"

#: LSL channel format name -> numpy dtype stored in HDF5 (strings: variable-length UTF-8).
_LSL_DTYPES: dict[str, str] = {
    "float32": "float32",
    "double64": "float64",
    "float64": "float64",
    "int8": "int8",
    "int16": "int16",
    "int32": "int32",
    "int64": "int64",
}
STRING_FORMAT = "string"

_UNSAFE = re.compile(r"[^A-Za-z0-9_.\-]+")


def string_dtype() -> np.dtype:
    """The HDF5 variable-length UTF-8 string dtype used for markers, labels and ids."""
    import h5py

    return h5py.string_dtype("utf-8")


#: Bytes of the fixed-size root attribute ``writer_error`` (written in place after a failure).
ERROR_ATTR_BYTES = 1024


def error_attr_dtype() -> np.dtype:
    """Fixed-length UTF-8 string dtype of ``writer_error`` (needs no new space to update)."""
    import h5py

    return h5py.string_dtype("utf-8", ERROR_ATTR_BYTES)


def storage_dtype(channel_format: str) -> np.dtype:
    """The dtype a stream with this LSL ``channel_format`` is stored with."""
    fmt = (channel_format or "").strip().lower()
    if fmt == STRING_FORMAT:
        return string_dtype()
    if fmt not in _LSL_DTYPES:
        known = ", ".join([*_LSL_DTYPES, STRING_FORMAT])
        raise ValueError(f"unknown LSL channel format {channel_format!r}; expected one of {known}")
    return np.dtype(_LSL_DTYPES[fmt])


def is_string_format(channel_format: str) -> bool:
    """True for LSL string (marker) streams."""
    return (channel_format or "").strip().lower() == STRING_FORMAT


def sanitize_name(name: str, fallback: str = "stream") -> str:
    """An HDF5-safe group name: letters, digits, ``_ . -`` only, never empty or dots only."""
    cleaned = _UNSAFE.sub("_", (name or "").strip()).strip("_.")
    return cleaned if any(c.isalnum() for c in cleaned) else fallback


def unique_name(base: str, taken: set[str] | frozenset[str]) -> str:
    """``base`` if free, else ``base_2``, ``base_3``, ... (first free)."""
    if base not in taken:
        return base
    counter = 2
    while f"{base}_{counter}" in taken:
        counter += 1
    return f"{base}_{counter}"


def default_horizons_ms(n_steps: int, step_ms: float = 10.0) -> np.ndarray:
    """Horizons of an ``n_steps`` trajectory predicted at ``1000 / step_ms`` Hz (10, 20, ... ms)."""
    return (np.arange(1, n_steps + 1, dtype=np.float64) * step_ms).astype(np.float64)
