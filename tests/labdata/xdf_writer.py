"""A small XDF writer for the tests (format: https://github.com/sccn/xdf/wiki/Specifications).

A file is the magic ``XDF:`` followed by chunks ``[NumLengthBytes][Length][Tag u16][Content]``:
FileHeader (1), StreamHeader (2: stream id u32 + XML), Samples (3: stream id u32, varlen count,
then per sample a time-stamp flag byte (8 = stamped), the float64 stamp and the values),
ClockOffset (4: stream id u32, collection time f64, offset f64) and StreamFooter (6). Only what
LabRecorder writes for numeric streams is implemented; tests read the files back with pyxdf.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from xml.sax.saxutils import escape

import numpy as np

_FORMATS = {"float32": "<f4", "double64": "<f8", "int16": "<i2", "int32": "<i4"}


@dataclass
class XdfStream:
    """A stream to write: samples ``[n, ch]`` stamped ``t [n]`` on the sender's clock, and the
    recorder's clock offset measurements ``(time, offset)`` (local = sender + offset)."""

    name: str
    type: str
    rate: float
    data: np.ndarray
    t: np.ndarray
    labels: Sequence[str] = ()
    units: Sequence[str] = ()
    channel_format: str = "float32"
    source_id: str = ""
    clock_offsets: Sequence[tuple[float, float]] = field(default_factory=list)


def _varlen(n: int) -> bytes:
    if n < 256:
        return struct.pack("<BB", 1, n)
    if n < 2**32:
        return struct.pack("<BI", 4, n)
    return struct.pack("<BQ", 8, n)


def _chunk(tag: int, content: bytes) -> bytes:
    body = struct.pack("<H", tag) + content
    return _varlen(len(body)) + body


def _header_xml(s: XdfStream, stream_id: int) -> str:
    channels = "".join(
        f"<channel><label>{escape(str(lab))}</label><unit>{escape(str(unit))}</unit>"
        f"<type>{escape(s.type)}</type></channel>"
        for lab, unit in zip(s.labels, list(s.units) + [""] * len(s.labels), strict=False))
    return (f'<?xml version="1.0"?><info><name>{escape(s.name)}</name><type>{escape(s.type)}'
            f"</type><channel_count>{s.data.shape[1]}</channel_count><nominal_srate>{s.rate!r}"
            f"</nominal_srate><channel_format>{s.channel_format}</channel_format><source_id>"
            f"{escape(s.source_id)}</source_id><version>1.1</version><created_at>0</created_at>"
            f"<uid>xdf-writer-{stream_id}</uid><session_id>default</session_id><hostname>test"
            f"</hostname><desc><channels>{channels}</channels></desc></info>")


def _footer_xml(s: XdfStream) -> str:
    offsets = "".join(f"<offset><time>{t!r}</time><value>{v!r}</value></offset>"
                      for t, v in s.clock_offsets)
    first = float(s.t[0]) if len(s.t) else 0.0
    last = float(s.t[-1]) if len(s.t) else 0.0
    return (f'<?xml version="1.0"?><info><first_timestamp>{first!r}</first_timestamp>'
            f"<last_timestamp>{last!r}</last_timestamp><sample_count>{len(s.t)}</sample_count>"
            f"<clock_offsets>{offsets}</clock_offsets></info>")


def _samples(sid: int, data: np.ndarray, t: np.ndarray, dtype: str) -> bytes:
    out = [struct.pack("<I", sid), _varlen(len(t))]
    values = np.ascontiguousarray(data, dtype=dtype)
    for k in range(len(t)):
        out.append(struct.pack("<Bd", 8, float(t[k])))
        out.append(values[k].tobytes())
    return b"".join(out)


def write_xdf(path: str | Path, streams: Sequence[XdfStream], chunk: int = 256) -> Path:
    """Write ``streams`` to ``path`` as LabRecorder does: headers, interleaved sample chunks
    (by time), each stream's clock offsets among them, then the footers."""
    path = Path(path)
    parts = [b"XDF:", _chunk(1, b'<?xml version="1.0"?><info><version>1.0</version>'
                                b"<datetime>2026-12-01T10:00:00+0000</datetime></info>")]
    for sid, s in enumerate(streams, start=1):
        parts.append(_chunk(2, struct.pack("<I", sid) + _header_xml(s, sid).encode()))
    pieces = []  # (first stamp, bytes) so sample chunks come in time order
    for sid, s in enumerate(streams, start=1):
        dtype = _FORMATS[s.channel_format]
        for a in range(0, len(s.t), chunk):
            b = min(a + chunk, len(s.t))
            pieces.append((float(s.t[a]), _chunk(3, _samples(sid, s.data[a:b], s.t[a:b], dtype))))
        for when, value in s.clock_offsets:
            pieces.append((when, _chunk(4, struct.pack("<Idd", sid, when, value))))
    parts += [p for _, p in sorted(pieces, key=lambda x: x[0])]
    for sid, s in enumerate(streams, start=1):
        parts.append(_chunk(6, struct.pack("<I", sid) + _footer_xml(s).encode()))
    path.write_bytes(b"".join(parts))
    return path
