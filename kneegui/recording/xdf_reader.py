"""A strict, single-pass XDF reader that says what it could not read and where.

XDF (the file format of LabRecorder) is a sequence of chunks ``[NumLengthBytes][Length][Tag]
[Content]``: tag 1 file header, 2 stream header, 3 samples, 4 clock offset, 5 boundary,
6 stream footer. This reader walks them once (memory-mapped) and checks every chunk against its
declared length: a samples chunk must decode to exactly its length, XML must parse, stream ids
must have been declared. A damaged chunk is recorded as :class:`Damage` (byte range, reason,
samples lost where countable) and reading resumes at the next place where two consecutive
plausible chunks start (LabRecorder's boundary chunks help, they are not required). A file
that ends inside a chunk is reported as truncated. XDF has no checksums: a flipped bit inside a
sample *value* cannot be detected by any reader.

Clock synchronisation (clock-reset handling, robust line fit per clock segment) is pyxdf's own
code (``pyxdf.pyxdf._clock_sync``, pinned version), applied to what this reader decoded.
"""

from __future__ import annotations

import logging
import mmap
import struct
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

BOUNDARY = bytes([0x43, 0xA5, 0x46, 0xDC, 0xCB, 0xF5, 0x41, 0x0F,
                  0xB3, 0x0E, 0xD5, 0x46, 0x73, 0x83, 0xCB, 0xE4])
FILE_HEADER, STREAM_HEADER, SAMPLES, CLOCK_OFFSET, BOUNDARY_TAG, STREAM_FOOTER = 1, 2, 3, 4, 5, 6
_STREAM_TAGS = (STREAM_HEADER, SAMPLES, CLOCK_OFFSET, STREAM_FOOTER)
_DTYPES = {"int8": "i1", "int16": "<i2", "int32": "<i4", "int64": "<i8", "float32": "<f4",
           "double64": "<f8"}
#: Largest channel count accepted in a stream header (anything bigger is damage).
MAX_CHANNELS = 1 << 16


class XdfFormatError(ValueError):
    """The file is not XDF or holds nothing readable; the message says why."""


class _BadChunkError(Exception):
    """A chunk that does not decode (internal)."""


class _PastEndError(_BadChunkError):
    """A chunk whose frame runs past the end of the file (cut off, or a damaged length)."""


@dataclass
class XdfStream:
    """One stream: its header (pyxdf's dict-of-lists form), samples, clock offsets, footer."""

    stream_id: int
    header: dict[str, Any]
    channel_count: int
    channel_format: str
    nominal_srate: float
    stamps: list[np.ndarray] = field(default_factory=list)
    values: list[Any] = field(default_factory=list)
    clock_times: list[float] = field(default_factory=list)
    clock_values: list[float] = field(default_factory=list)
    footer: dict[str, Any] | None = None
    last_timestamp: float = 0.0
    n_samples: int = 0

    @property
    def info(self) -> dict[str, Any]:
        return self.header.get("info", {}) if isinstance(self.header, dict) else {}

    @property
    def name(self) -> str:
        return _first(self.info, "name") or f"stream {self.stream_id}"

    @property
    def is_string(self) -> bool:
        return self.channel_format == "string"

    @property
    def footer_count(self) -> int | None:
        """``sample_count`` from the footer (None without a footer or field)."""
        info = (self.footer or {}).get("info")
        if not isinstance(info, dict):
            return None
        try:
            return int(_first(info, "sample_count"))
        except ValueError:
            return None

    def raw_stamps(self) -> np.ndarray:
        return np.concatenate(self.stamps) if self.stamps else np.zeros(0)

    def data(self) -> Any:
        """[n, channels] numpy array (list of lists of str for string streams)."""
        if self.is_string:
            return [row for block in self.values for row in block]
        if not self.values:
            return np.zeros((0, self.channel_count), dtype=_DTYPES[self.channel_format])
        native = np.dtype(_DTYPES[self.channel_format]).newbyteorder("=")
        return np.concatenate(self.values).astype(native)


@dataclass
class Damage:
    """A byte range that could not be read, and what was known about it."""

    start: int  # byte offset of the first unreadable chunk
    end: int  # byte offset where reading resumed (file size when it never did)
    reason: str
    stream_id: int | None = None  # the stream of the first bad chunk, when readable
    lost_samples: int | None = None  # samples in that chunk, when its count was readable
    counts_before: dict[int, int] = field(default_factory=dict)  # samples read per stream
    truncated: bool = False  # the file ends inside this range


@dataclass
class XdfFile:
    """Everything read from one file, in order of appearance."""

    path: Path
    size: int
    header: dict[str, Any] | None
    streams: dict[int, XdfStream]
    damage: list[Damage]


def _first(info: Any, key: str, default: str = "") -> str:
    value = info.get(key) if isinstance(info, dict) else None
    if isinstance(value, list):
        value = value[0] if value else default
    return default if value is None else str(value)


def xml_to_dict(element: ET.Element) -> dict[str, Any]:
    """pyxdf's dict-of-lists form of an XML element (``{tag: {child: [..]}}`` or text)."""
    children: dict[str, list[Any]] = {}
    for child in element:
        for key, value in xml_to_dict(child).items():
            children.setdefault(key, []).append(value)
    return {element.tag: children or element.text}


def _parse_xml(content: bytes) -> dict[str, Any]:
    try:
        return xml_to_dict(ET.fromstring(content.decode("utf-8", "replace")))
    except ET.ParseError as exc:
        raise _BadChunkError(f"XML does not parse ({exc})") from exc


def _varlen(buf: Any, pos: int, end: int) -> tuple[int, int]:
    """Read an XDF variable-length integer at ``pos``; returns (value, next position)."""
    if pos >= end:
        raise _BadChunkError("ends inside a length field")
    nbytes = buf[pos]
    if nbytes not in (1, 4, 8):
        raise _BadChunkError(f"invalid length marker {nbytes} (must be 1, 4 or 8)")
    if pos + 1 + nbytes > end:
        raise _BadChunkError("ends inside a length field")
    fmt = {1: "<B", 4: "<I", 8: "<Q"}[nbytes]
    return struct.unpack_from(fmt, buf, pos + 1)[0], pos + 1 + nbytes


class _Reader:
    def __init__(self, buf: Any, size: int) -> None:
        self.buf = buf
        self.size = size
        self.header: dict[str, Any] | None = None
        self.streams: dict[int, XdfStream] = {}
        self.damage: list[Damage] = []

    # -- chunk framing ---------------------------------------------------------------------
    def frame(self, pos: int) -> tuple[int, int, int]:
        """(tag, content start, chunk end) of the chunk at ``pos``; raises _BadChunkError."""
        if pos + 1 < self.size and self.buf[pos] in (1, 4, 8) \
                and pos + 1 + self.buf[pos] > self.size:
            raise _PastEndError("the file ends inside a chunk header")
        length, p = _varlen(self.buf, pos, self.size)
        if length < 2:
            raise _BadChunkError(f"chunk length {length} is too small")
        end = p + length
        if end > self.size or p + 2 > self.size:
            raise _PastEndError(f"a chunk of {length} bytes runs past the end of the file")
        tag = struct.unpack_from("<H", self.buf, p)[0]
        if not 1 <= tag <= 6:
            raise _BadChunkError(f"unknown chunk tag {tag}")
        return tag, p + 2, end

    def plausible(self, pos: int, depth: int = 2) -> bool:
        """True if ``depth`` consecutive chunks starting at ``pos`` look valid (resync)."""
        for _ in range(depth):
            if pos == self.size:
                return True
            try:
                tag, start, end = self.frame(pos)
            except _BadChunkError:
                return False
            if tag in _STREAM_TAGS:
                if end - start < 4:
                    return False
                sid = struct.unpack_from("<I", self.buf, start)[0]
                if tag != STREAM_HEADER and sid not in self.streams:
                    return False
                if tag == CLOCK_OFFSET and end - start != 20:
                    return False
                if tag == SAMPLES:
                    try:
                        self.decode_samples(self.streams[sid], start + 4, end, commit=False)
                    except _BadChunkError:
                        return False
            elif tag == BOUNDARY_TAG and bytes(self.buf[start:end]) != BOUNDARY:
                return False
            pos = end
        return True

    def resync(self, pos: int) -> int:
        """The next position after ``pos`` where reading can continue (file size if none)."""
        p = pos + 1
        while p < self.size:
            nxt = self.buf.find(BOUNDARY, p)
            candidates_end = self.size if nxt < 0 else nxt
            while p < candidates_end:
                if self.buf[p] in (1, 4, 8) and self.plausible(p):
                    return p
                p += 1
            if nxt < 0:
                return self.size
            # a boundary chunk's content: the next chunk starts right after it
            after = nxt + len(BOUNDARY)
            if self.plausible(after, depth=1):
                return after
            p = nxt + 1
        return self.size

    # -- chunk contents --------------------------------------------------------------------
    def decode_samples(self, s: XdfStream, pos: int, end: int, commit: bool = True) -> int:
        """Decode a samples chunk body exactly; returns the sample count."""
        n, p = _varlen(self.buf, pos, end)
        if n > (end - p):  # every sample takes at least one byte
            raise _BadChunkError(f"sample count {n} does not fit the chunk")
        if s.is_string:
            stamps, rows, p = self._string_samples(s, n, p, end)
        else:
            stamps, rows, p = self._numeric_samples(s, n, p, end)
        if p != end:
            raise _BadChunkError(f"samples end {end - p} bytes before the chunk does")
        if commit:
            s.stamps.append(stamps)
            s.values.append(rows)
            s.n_samples += n
            if n:
                s.last_timestamp = float(stamps[-1])
        return n

    def _stamp(self, s: XdfStream, p: int, end: int, last: float) -> tuple[float, int]:
        if p >= end:
            raise _BadChunkError("ends inside a sample")
        flag = self.buf[p]
        if flag == 0:
            return last + (1.0 / s.nominal_srate if s.nominal_srate > 0 else 0.0), p + 1
        if flag != 8:
            raise _BadChunkError(f"invalid time-stamp marker {flag} (must be 0 or 8)")
        if p + 9 > end:
            raise _BadChunkError("ends inside a time stamp")
        return struct.unpack_from("<d", self.buf, p + 1)[0], p + 9

    def _numeric_samples(self, s: XdfStream, n: int, p: int, end: int):
        dtype = np.dtype(_DTYPES[s.channel_format])
        width = s.channel_count * dtype.itemsize
        record = 9 + width
        if n and end - p == n * record:  # fast path: every sample carries its stamp
            rec = np.dtype([("flag", "u1"), ("t", "<f8"), ("v", dtype, (s.channel_count,))])
            block = np.frombuffer(self.buf, dtype=rec, count=n, offset=p)
            if np.all(block["flag"] == 8):
                return block["t"].astype(np.float64), block["v"].copy(), end
        stamps = np.empty(n)
        values = np.empty((n, s.channel_count), dtype=dtype)
        last = s.last_timestamp
        for k in range(n):
            last, p = self._stamp(s, p, end, last)
            stamps[k] = last
            if p + width > end:
                raise _BadChunkError("ends inside a sample")
            values[k] = np.frombuffer(self.buf, dtype=dtype, count=s.channel_count, offset=p)
            p += width
        return stamps, values, p

    def _string_samples(self, s: XdfStream, n: int, p: int, end: int):
        stamps = np.empty(n)
        rows: list[list[str]] = []
        last = s.last_timestamp
        for k in range(n):
            last, p = self._stamp(s, p, end, last)
            stamps[k] = last
            row = []
            for _ in range(s.channel_count):
                length, p = _varlen(self.buf, p, end)
                if p + length > end:
                    raise _BadChunkError("ends inside a string value")
                row.append(bytes(self.buf[p:p + length]).decode("utf-8", "replace"))
                p += length
            rows.append(row)
        return stamps, rows, p

    def stream_header(self, sid: int, content: bytes) -> None:
        header = _parse_xml(content)
        info = header.get("info")
        if not isinstance(info, dict):
            raise _BadChunkError("stream header has no <info>")
        fmt = _first(info, "channel_format").strip().lower()
        if fmt not in (*_DTYPES, "string"):
            raise _BadChunkError(f"stream header has an unknown channel_format {fmt!r}")
        try:
            n_ch = int(_first(info, "channel_count"))
            srate = float(_first(info, "nominal_srate", "0") or 0)
        except ValueError as exc:
            raise _BadChunkError(
                f"stream header has a bad channel_count/nominal_srate ({exc})") from exc
        if not 1 <= n_ch <= MAX_CHANNELS or not np.isfinite(srate) or srate < 0:
            raise _BadChunkError(f"stream header declares {n_ch} channels at {srate} Hz")
        if sid in self.streams:
            raise _BadChunkError(f"stream id {sid} is declared twice")
        info["channel_format"] = [fmt]
        self.streams[sid] = XdfStream(sid, header, n_ch, fmt, srate)

    def chunk(self, tag: int, start: int, end: int) -> None:
        """Apply one framed chunk (raises _BadChunkError)."""
        if tag == FILE_HEADER:
            self.header = _parse_xml(bytes(self.buf[start:end]))
            return
        if tag == BOUNDARY_TAG:
            if bytes(self.buf[start:end]) != BOUNDARY:
                raise _BadChunkError("boundary chunk with a wrong signature")
            return
        if end - start < 4:
            raise _BadChunkError("chunk too short for a stream id")
        sid = struct.unpack_from("<I", self.buf, start)[0]
        body = start + 4
        if tag == STREAM_HEADER:
            self.stream_header(sid, bytes(self.buf[body:end]))
            return
        stream = self.streams.get(sid)
        if stream is None:
            raise _BadChunkError(f"chunk of stream id {sid}, which has no header")
        if tag == SAMPLES:
            try:
                self.decode_samples(stream, body, end)
            except _BadChunkError as exc:
                try:
                    count = _varlen(self.buf, body, end)[0]
                except _BadChunkError:
                    count = None
                raise _ChunkLossError(str(exc), sid, count) from exc
        elif tag == CLOCK_OFFSET:
            if end - body != 16:
                raise _BadChunkError(f"clock offset chunk of {end - body} bytes (expected 16)")
            t, v = struct.unpack_from("<dd", self.buf, body)
            stream.clock_times.append(t)
            stream.clock_values.append(v)
        elif tag == STREAM_FOOTER:
            stream.footer = _parse_xml(bytes(self.buf[body:end]))

    # -- main loop -------------------------------------------------------------------------
    def run(self) -> None:
        pos = 4
        while pos < self.size:
            end = None
            try:
                tag, start, end = self.frame(pos)
                self.chunk(tag, start, end)
                pos = end
            except _BadChunkError as exc:
                counts = {sid: s.n_samples for sid, s in self.streams.items()}
                sid = getattr(exc, "stream_id", None)
                lost = getattr(exc, "count", None)
                # a well-framed chunk with bad content is skipped by its length when the next
                # chunk looks right; otherwise the length itself may be damaged: resync
                resume = end if end is not None and self.plausible(end) else self.resync(pos)
                truncated = isinstance(exc, _PastEndError) and resume >= self.size
                self.damage.append(Damage(pos, resume, str(exc), sid, lost, counts, truncated))
                pos = resume


class _ChunkLossError(_BadChunkError):
    """A samples chunk of a known stream that does not decode."""

    def __init__(self, reason: str, stream_id: int, count: int | None) -> None:
        super().__init__(reason)
        self.stream_id = stream_id
        self.count = count


def read_xdf(path: str | Path) -> XdfFile:
    """Read every readable chunk of ``path`` (see module docstring).

    Raises :class:`XdfFormatError` when the file is empty, does not start with ``XDF:``, or
    holds no readable stream header at all.
    """
    path = Path(path)
    try:
        size = path.stat().st_size
        fh = path.open("rb")
    except OSError as exc:
        raise XdfFormatError(f"{path} cannot be read ({exc.strerror or exc})") from exc
    with fh:
        if size < 4 or fh.read(4) != b"XDF:":
            raise XdfFormatError(
                f"{path} is not an XDF file (it does not start with the 'XDF:' signature)")
        with mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as mm:
            reader = _Reader(mm, size)
            reader.run()
            # copy out of the map before it closes (numeric blocks are already copies)
            result = XdfFile(path, size, reader.header, reader.streams, reader.damage)
    if not result.streams:
        where = result.damage[0] if result.damage else None
        detail = (f"; it is damaged from byte {where.start} on ({where.reason})"
                  if where else "")
        raise XdfFormatError(f"{path} holds no readable XDF stream{detail}")
    return result


@dataclass
class SyncedStream:
    """A stream after clock synchronisation."""

    stream: XdfStream
    timestamps: np.ndarray  # synchronised (local clock of the recording machine)
    raw_timestamps: np.ndarray  # as stored in the file
    data: Any
    clock_segments: list[tuple[int, int]]


def synchronize(xdf: XdfFile) -> dict[int, SyncedStream]:
    """Clock-synchronise every stream with pyxdf (clock resets handled, no dejitter)."""
    from pyxdf import pyxdf as px

    logging.getLogger("pyxdf.pyxdf").setLevel(logging.ERROR)
    temp: dict[int, Any] = {}
    headers: dict[int, dict[str, Any]] = {}
    for sid, s in xdf.streams.items():
        data = px.StreamData(s.header)
        raw = s.raw_stamps()
        data.time_stamps = raw.copy()
        data.time_series = s.data()
        data.clock_times = list(s.clock_times)
        data.clock_values = list(s.clock_values)
        temp[sid] = data
        headers[sid] = {**s.header, **({"footer": s.footer} if s.footer else {})}
    temp = px._truncate_corrupted_offsets(temp, headers)
    temp = px._clock_sync(temp)
    out: dict[int, SyncedStream] = {}
    for sid, s in xdf.streams.items():
        data = temp[sid]
        n = len(data.time_stamps)
        raw = s.raw_stamps()[:n]
        segments = [tuple(map(int, seg)) for seg in data.clock_segments]
        out[sid] = SyncedStream(s, np.asarray(data.time_stamps, dtype=np.float64), raw,
                                data.time_series[:n], segments)
    return out
