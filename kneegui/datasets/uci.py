"""Reader for the UCI "EMG dataset in Lower Limb" TXT exports (SEMG_DB1, UCI id 278).

Files are found by name (``<number><N|A><mar|pie|sen>.txt``, any depth), never by a fixed list.
Every quirk of the published export is handled (see ``docs/dataset.md``): three header styles,
CRLF or LF, the constant 6th column of style C, EMG-empty padding rows at the end, a missing last
angle, the stray ``7.5V`` token in the padding, the tab-only trailer, duplicated recordings,
inconsistent goniometer sign/offset, and (style B with padding) the 20-row ramp of the 50 Hz angle
towards an unreliable last sample, which is cut.

Angle normalisation (flexion positive, 0 = extended)::

    angle = angle_sign * raw - angle_offset_deg

* sign, ``mar`` (gait): the larger excursion from the median posture is flexion (swing phase).
* sign, ``pie`` (standing knee flexion): the hamstrings (BF, ST) lift the shank, so their EMG
  envelope must correlate positively with flexion.
* sign, ``sen`` (seated knee extension): the quadriceps (RF, VM) extend the knee, so their EMG
  envelope must correlate negatively with flexion.
  If that EMG evidence is weak (|r| < ``EMG_SIGN_MIN_CORR``) the magnitude rule
  (``|max raw| >= |min raw|`` means flexion positive) is used and ``angle_sign_ambiguous`` is set.
* offset: the 1st percentile of the sign-corrected angle (the most extended posture that the
  recording holds for more than a moment) becomes 0 degrees.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Iterable
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
from scipy.signal import butter, sosfiltfilt

__all__ = [
    "EXERCISES",
    "GROUPS",
    "UciFormatError",
    "UciRecording",
    "find_uci_files",
    "load_uci_dataset",
    "read_uci_file",
]

EXERCISES: tuple[str, ...] = ("mar", "pie", "sen")
GROUPS: tuple[str, ...] = ("N", "A")
FS = 1000.0
N_EMG = 4
#: Below this |correlation| the EMG does not decide the sign of a pie/sen recording.
EMG_SIGN_MIN_CORR = 0.2
#: Percentile of the sign-corrected angle that is taken as full extension (0 degrees).
EXTENSION_PERCENTILE = 1.0

FILE_NAME_RE = re.compile(r"^(\d+)([NA])(mar|pie|sen)\.txt$", re.IGNORECASE)
_CHANNEL_RE = re.compile(
    r"^Channel\s+\S+:\s*'(?P<label>[^']*)',\s*(?P<count>\d+)\s+values,"
    r"\s*engineering units:\s*(?P<unit>[^,]*),(?P<rest>.*)$"
)
_NUMBER_RE = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")
_LETTER_RE = re.compile(r"[A-DF-Za-df-z]")  # any letter except the exponent e/E
_RESAMPLED_RE = re.compile(r"extrapolated from\s+(\d+(?:\.\d+)?)\s+to\s+(\d+(?:\.\d+)?)")


class UciFormatError(ValueError):
    """A UCI TXT file does not follow the known format; the message names file and line."""


@dataclass(frozen=True)
class UciRecording:
    """One UCI recording, trimmed to the rows that hold EMG, angle normalised to flexion."""

    path: Path
    subject: str  # e.g. "3A" (number + group letter)
    subject_number: int
    group: str  # "N" normal | "A" abnormal knee
    exercise: str  # "mar" gait | "pie" standing | "sen" sitting
    emg: np.ndarray  # float32 [n, 4] mV, columns RF, BF, VM, ST
    angle: np.ndarray  # float32 [n] degrees, flexion positive, 0 = extended
    fs: float
    flags: frozenset[str]
    header_style: str  # "A" | "B" | "C"
    duplicate_of: str | None
    channel_labels: tuple[str, ...] = ("RF", "BF", "VM", "ST")
    angle_sign: int = 1  # angle = angle_sign * raw - angle_offset_deg
    angle_offset_deg: float = 0.0
    angle_native_fs: float = FS  # 50.0 when the goniometer was resampled 50 -> 1000 Hz
    content_hash: str = ""  # sha256 of the parsed raw samples (detects duplicated recordings)

    @property
    def name(self) -> str:
        """Recording name, e.g. ``"3Amar"``."""
        return f"{self.subject}{self.exercise}"

    @property
    def n_samples(self) -> int:
        return int(self.emg.shape[0])

    @property
    def duration_s(self) -> float:
        return self.n_samples / self.fs


def _fail(path: Path, line_no: int | None, message: str) -> UciFormatError:
    where = f"{path}" if line_no is None else f"{path}, line {line_no}"
    return UciFormatError(f"{where}: {message}")


def _looks_like_data(line: str) -> bool:
    head = line[:1]
    return bool(head) and (head.isdigit() or head in "-+.")


@dataclass(frozen=True)
class _Header:
    style: str
    n_cols: int
    counts: tuple[int, ...]  # header "values" count per channel (RF, BF, VM, ST, FX)
    angle_native_fs: float


def _parse_header(path: Path, lines: list[str]) -> _Header:
    channels = []
    digital = False
    for line in lines:
        m = _CHANNEL_RE.match(line.strip())
        if m:
            channels.append(m)
        elif line.lower().startswith("digitals combined"):
            digital = True
    if len(channels) != N_EMG + 1:
        raise _fail(
            path,
            len(lines) + 1,
            f"expected 5 'Channel' header lines (RF, BF, VM, ST, knee angle) before the data, "
            f"found {len(channels)}; is this a UCI 'EMG dataset in Lower Limb' TXT export?",
        )
    units = [m["unit"].strip() for m in channels]
    if [u.lower() for u in units] != ["mv"] * N_EMG + ["deg"]:
        raise _fail(path, None, f"unexpected channel units {units}; expected 4 x mV then deg")
    resampled = _RESAMPLED_RE.search(channels[-1]["rest"])
    if digital:
        style = "C"
    elif resampled:
        style = "B"
    else:
        style = "A"
    native_fs = float(resampled.group(1)) if resampled else FS
    return _Header(
        style=style,
        n_cols=6 if digital else 5,
        counts=tuple(int(m["count"]) for m in channels),
        angle_native_fs=native_fs,
    )


def _parse_body_slow(path: Path, body: list[str], first_line_no: int, n_cols: int):
    """Line-by-line parse; tolerates bad numbers only in EMG-empty rows (flagged later)."""
    values = np.full((len(body), n_cols), np.nan)
    stray_rows: list[int] = []
    for i, line in enumerate(body):
        fields = line.split("\t")
        emg_empty = all(not f.strip() for f in fields[:N_EMG])
        for j, tok in enumerate(fields):
            tok = tok.strip()
            if not tok:
                continue
            if _NUMBER_RE.match(tok):
                values[i, j] = float(tok)
            else:
                if emg_empty:
                    stray_rows.append(i)
                    continue
                raise _fail(
                    path,
                    first_line_no + i,
                    f"column {j + 1} holds {tok!r}, which is not a number; fix or remove that line",
                )
    return values, stray_rows


def _parse_body(path: Path, body: list[str], first_line_no: int, n_cols: int):
    """Parse tab-separated data lines into float64 ``[n, n_cols]`` (NaN for empty fields)."""
    tabs = n_cols - 1
    for i, line in enumerate(body):
        if line.count("\t") != tabs:
            if not line.strip():
                raise _fail(
                    path,
                    first_line_no + i,
                    "empty line inside the data; the rows after it would be shifted in time",
                )
            raise _fail(
                path,
                first_line_no + i,
                f"expected {n_cols} tab-separated columns, found {line.count(chr(9)) + 1}",
            )
    nan = math.nan
    joined = "\t".join(body)
    if _LETTER_RE.search(joined):  # "7.5V", but also "nan"/"inf" that float() would accept
        return _parse_body_slow(path, body, first_line_no, n_cols)
    try:
        flat = [float(t) if t else nan for t in joined.split("\t")]
    except ValueError:
        return _parse_body_slow(path, body, first_line_no, n_cols)
    return np.asarray(flat, dtype=np.float64).reshape(len(body), n_cols), []


def _emg_envelope(emg: np.ndarray, fs: float) -> np.ndarray:
    """Zero-phase EMG envelope (band-pass, rectify, 2 Hz low-pass) for sign checks only."""
    nyq = fs / 2.0
    band = butter(4, [20.0, min(450.0, 0.9 * nyq)], "bandpass", fs=fs, output="sos")
    low = butter(2, 2.0, "lowpass", fs=fs, output="sos")
    return sosfiltfilt(low, np.abs(sosfiltfilt(band, emg, axis=0)), axis=0)


def _corr(a: np.ndarray, b: np.ndarray) -> float:
    a = a - a.mean()
    b = b - b.mean()
    den = math.sqrt(float(a @ a) * float(b @ b))
    return float(a @ b) / den if den > 0 else 0.0


def _angle_sign(raw: np.ndarray, emg: np.ndarray, exercise: str, fs: float):
    """Return ``(sign, flags)`` so that ``sign * raw`` is flexion-positive (module docstring)."""
    flags: set[str] = set()
    magnitude_sign = 1 if abs(float(raw.max())) >= abs(float(raw.min())) else -1
    if exercise == "mar":
        p_lo, med, p_hi = np.percentile(raw, [1.0, 50.0, 99.0])
        flags.add("angle_sign_from_excursion")
        return (1 if (p_hi - med) >= (med - p_lo) else -1), flags
    cols = (1, 3) if exercise == "pie" else (0, 2)  # hamstrings | quadriceps
    expected = 1.0 if exercise == "pie" else -1.0  # sign of corr(envelope, flexion)
    step = max(1, int(fs // 100))
    env = _emg_envelope(emg[:, cols].astype(np.float64), fs)[::step]
    r = float(np.mean([_corr(env[:, k], raw[::step]) for k in range(env.shape[1])]))
    if abs(r) < EMG_SIGN_MIN_CORR:
        flags.update({"angle_sign_ambiguous", "angle_sign_from_magnitude"})
        return magnitude_sign, flags
    sign = 1 if r * expected > 0 else -1
    flags.add("angle_sign_from_emg")
    if sign != magnitude_sign:
        flags.add("angle_sign_disagrees_with_magnitude")
    return sign, flags


def _identity(path: Path) -> tuple[int, str, str]:
    m = FILE_NAME_RE.match(path.name)
    if not m:
        raise UciFormatError(
            f"{path}: file name does not match <number><N|A><mar|pie|sen>.txt (e.g. 3Amar.txt)"
        )
    return int(m.group(1)), m.group(2).upper(), m.group(3).lower()


def read_uci_file(path: str | Path) -> UciRecording:
    """Read one UCI TXT file. Raises :class:`UciFormatError` naming file and line."""
    path = Path(path)
    number, group, exercise = _identity(path)
    try:
        text = path.read_bytes().decode("latin-1")
    except OSError as exc:
        raise UciFormatError(f"{path}: cannot read file ({exc.strerror})") from exc
    lines = text.splitlines()
    start = next((i for i, line in enumerate(lines) if _looks_like_data(line)), None)
    if start is None:
        raise _fail(path, None, "no data rows found (no line starts with a number)")
    header = _parse_header(path, lines[:start])
    end = len(lines)
    while end > start and not lines[end - 1].strip():
        end -= 1  # tab-only trailer / empty lines at EOF
    values, stray_rows = _parse_body(path, lines[start:end], start + 1, header.n_cols)
    return _build_recording(path, number, group, exercise, header, values, stray_rows, start + 1)


def _trim_resampled_end_ramp(header: _Header, n: int, flags: set[str]) -> int:
    """Drop the rows that interpolate towards the unreliable last goniometer sample.

    In style-B files with EMG-empty padding the 50 Hz angle ends with a 20-row ramp towards
    its last sample, which is then held in the padding. That last sample is often implausible
    (6Nmar jumps 49 deg in 20 ms, 2450 deg/s), so the rows after the second-to-last real
    angle sample are cut (at most 20 ms of EMG).
    """
    if header.angle_native_fs >= FS:
        return n
    factor = int(round(FS / header.angle_native_fs))
    cut = factor * (header.counts[N_EMG] - 2) + 1
    if 0 < cut < n:
        flags.add("angle_end_ramp_trimmed")
        return cut
    return n


def _build_recording(path, number, group, exercise, header, values, stray_rows, first_line_no):
    flags: set[str] = set()
    emg_nan = np.isnan(values[:, :N_EMG])
    emg_present = ~emg_nan.any(axis=1)
    partial = emg_nan.any(axis=1) & ~emg_nan.all(axis=1)
    if partial.any():
        i = int(np.argmax(partial))
        raise _fail(path, first_line_no + i, "some but not all 4 EMG columns are empty")
    if not emg_present.any():
        raise _fail(path, None, "no row holds EMG values")
    n = int(np.flatnonzero(emg_present)[-1]) + 1
    if not emg_present[:n].all():
        i = int(np.argmin(emg_present[:n]))
        raise _fail(path, first_line_no + i, "EMG is empty in the middle of the recording")
    n_emg_rows = n
    if n < len(values):
        flags.add("emg_empty_rows_trimmed")
        n = _trim_resampled_end_ramp(header, n, flags)
    if stray_rows:
        flags.add("stray_token_in_padding")
    raw = values[:n, N_EMG].copy()
    missing_angle = np.isnan(raw)
    if missing_angle.any():
        bad = np.flatnonzero(missing_angle)
        if bad[0] != n - 1 or n < 2:
            raise _fail(path, first_line_no + int(bad[0]), "knee-angle column is empty")
        raw[-1] = raw[-2]
        flags.add("angle_last_sample_held")
    if header.n_cols == 6:
        flags.add("digital_column_dropped")
    if header.angle_native_fs != FS:
        flags.add(f"angle_resampled_{int(round(header.angle_native_fs))}hz")
    if header.counts[0] != n_emg_rows:
        flags.add("row_count_mismatch")
    emg = values[:n, :N_EMG]
    content_hash = hashlib.sha256(
        np.ascontiguousarray(emg).tobytes() + np.ascontiguousarray(raw).tobytes()
    ).hexdigest()
    sign, sign_flags = _angle_sign(raw, emg, exercise, FS)
    flags |= sign_flags
    if sign < 0:
        flags.add("sign_flipped")
    flexion = sign * raw
    offset = float(np.percentile(flexion, EXTENSION_PERCENTILE))
    return UciRecording(
        path=path,
        subject=f"{number}{group}",
        subject_number=number,
        group=group,
        exercise=exercise,
        emg=emg.astype(np.float32),
        angle=(flexion - offset).astype(np.float32),
        fs=FS,
        flags=frozenset(flags),
        header_style=header.style,
        duplicate_of=None,
        angle_sign=sign,
        angle_offset_deg=round(offset, 6),
        angle_native_fs=header.angle_native_fs,
        content_hash=content_hash,
    )


def _check_choice(values: Iterable[str] | None, allowed: tuple[str, ...], what: str):
    if values is None:
        return set(allowed)
    if isinstance(values, str):
        values = (values,)
    chosen = set(values)
    unknown = chosen - set(allowed)
    if unknown:
        raise ValueError(f"unknown {what} {sorted(unknown)}; choose from {list(allowed)}")
    return chosen


def find_uci_files(
    root: str | Path,
    exercises: Iterable[str] | None = None,
    groups: Iterable[str] | None = None,
) -> list[Path]:
    """All files under ``root`` (any depth) named ``<number><N|A><mar|pie|sen>.txt``.

    Sorted by group (N first), subject number, exercise.
    """
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"UCI data folder not found: {root}")
    ex = _check_choice(exercises, EXERCISES, "exercise")
    gr = _check_choice(groups, GROUPS, "group")
    found = []
    for path in root.rglob("*"):
        m = FILE_NAME_RE.match(path.name)
        if m and path.is_file() and m.group(2).upper() in gr and m.group(3).lower() in ex:
            key = (GROUPS.index(m.group(2).upper()), int(m.group(1)), m.group(3).lower(), str(path))
            found.append((key, path))
    return [p for _, p in sorted(found)]


def mark_duplicates(recordings: list[UciRecording]) -> list[UciRecording]:
    """Set ``duplicate_of`` on every recording whose samples equal an earlier one's."""
    first: dict[str, str] = {}
    out = []
    for rec in recordings:
        original = first.setdefault(rec.content_hash, rec.name)
        out.append(rec if original == rec.name else replace(rec, duplicate_of=original))
    return out


def linked_by_duplicates(recordings: list[UciRecording]) -> dict[str, set[str]]:
    """Subjects that share a duplicated recording (``duplicate_of`` set, e.g. 1N/2N), each with
    the set of its linked subjects (itself included): never split them across folds."""
    by_name = {r.name: r.subject for r in recordings}
    links: dict[str, set[str]] = {}
    for r in recordings:
        if r.duplicate_of and by_name.get(r.duplicate_of, r.subject) != r.subject:
            other = by_name[r.duplicate_of]
            links.setdefault(r.subject, {r.subject}).add(other)
            links.setdefault(other, {other}).add(r.subject)
    return links


def load_uci_dataset(
    root: str | Path,
    exercises: Iterable[str] | None = ("mar",),
    groups: Iterable[str] | None = ("N", "A"),
    drop_duplicates: bool = True,
    progress=None,
) -> list[UciRecording]:
    """Read every matching recording under ``root``.

    Duplicated recordings (same samples, e.g. ``2Npie`` == ``1Npie``) are detected by content
    and dropped unless ``drop_duplicates=False`` (then they carry ``duplicate_of``).
    Duplicates are searched among the selected files only. ``progress`` is an optional callable
    ``progress(done, total, path)``.
    """
    paths = find_uci_files(root, exercises, groups)
    if not paths:
        raise FileNotFoundError(
            f"no UCI TXT files (named like 3Amar.txt) for exercises={exercises} groups={groups} "
            f"under {root}"
        )
    recordings = []
    for i, path in enumerate(paths):
        recordings.append(read_uci_file(path))
        if progress is not None:
            progress(i + 1, len(paths), path)
    recordings = mark_duplicates(recordings)
    if drop_duplicates:
        recordings = [r for r in recordings if r.duplicate_of is None]
    return recordings
