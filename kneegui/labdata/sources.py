"""Reading a :class:`LabRecording` from a UCI text file, a KneeGUI session (``.h5``) or an XDF
file (``.xdf``, LabRecorder).

Sessions and XDF files hold streams; which stream is the EMG, the knee angle, other kinematics
or force is chosen by name, source_id or LSL type (:class:`StreamChoice`), and a channel of a
multi-channel stream by the channel map (``"Knee R" = "angle"``). Nothing is guessed when there
is a choice: several candidates give a message listing them and saying how to choose.
Time stamps: sessions hold the recording machine's LSL clock after clock correction (as
recorded); XDF files are synchronised by pyxdf (clock offsets applied, clock resets handled,
regular streams dejittered), the same treatment the live reader gives a stream.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from kneegui.labdata.recording import LabRecording, RecordingError, Signal
from kneegui.model.layout import ANGLE_INPUT

#: LSL types taken for each role when the stream is not named (case-insensitive).
EMG_TYPES = ("emg",)
ANGLE_TYPES = ("angle", "kneeangle", "knee_angle", "goniometer", "jointangle")
KINEMATICS_TYPES = ("kinematics", "mocap", "imu")
FORCE_TYPES = ("force", "interactionforce")
#: Stream types never used as inputs (KneeGUI's own prediction outlet).
IGNORED_TYPES = ("kneeangleprediction",)
SESSION_SUFFIXES = (".h5", ".hdf5")
XDF_SUFFIXES = (".xdf", ".xdfz")
TEXT_SUFFIXES = (".txt",)
RECORDING_SUFFIXES = TEXT_SUFFIXES + SESSION_SUFFIXES + XDF_SUFFIXES


@dataclass(frozen=True)
class StreamChoice:
    """Which stream does which job: a stream name, source_id or LSL type each (None: the only
    stream of the role's usual types)."""

    emg: str | None = None
    angle: str | None = None
    kinematics: str | None = None
    force: str | None = None


@dataclass(frozen=True)
class _Stream:
    """A numeric stream of a session or XDF file."""

    name: str
    type: str
    source_id: str
    labels: tuple[str, ...]
    units: tuple[str, ...]
    rate: float
    data: np.ndarray
    t: np.ndarray

    def describe(self) -> str:
        rate = f"{self.rate:g} Hz" if self.rate > 0 else "irregular"
        return (f"'{self.name}' (type {self.type or '?'}, {self.data.shape[1]} ch, {rate}, "
                f"{len(self.t)} samples)")

    def signal(self, picks: list[int] | None = None) -> Signal:
        picks = list(range(self.data.shape[1])) if picks is None else picks
        return Signal(np.asarray(self.data[:, picks], np.float64), self.t,
                      tuple(self.labels[i] for i in picks), tuple(self.units[i] for i in picks),
                      self.rate, self.name)


def read_recording(
    path: str | Path,
    *,
    subject: str | None = None,
    group: str | None = None,
    activity: str | None = None,
    channel_map: Mapping[str, str] | None = None,
    streams: StreamChoice | None = None,
    start_s: float | None = None,
    end_s: float | None = None,
    angle_sign: float = 1.0,
) -> LabRecording:
    """The recording in ``path`` (UCI ``.txt``, KneeGUI ``.h5``, ``.xdf``); given fields
    replace what the file says. :class:`RecordingError` says why a file cannot be used."""
    path = Path(path)
    if not path.is_file():
        raise RecordingError(f"{path} does not exist or is not a file")
    suffix = path.suffix.lower()
    channel_map = dict(channel_map or {})
    choice = streams or StreamChoice()
    if suffix in TEXT_SUFFIXES:
        rec = _from_uci(path)
    elif suffix in SESSION_SUFFIXES:
        rec = _from_streams(path, "session", *_session_streams(path), channel_map, choice)
    elif suffix in XDF_SUFFIXES:
        rec = _from_streams(path, "xdf", *_xdf_streams(path), channel_map, choice)
    else:
        raise RecordingError(
            f"{path.name} is not a recording KneeGUI reads: use UCI .txt files, KneeGUI sessions "
            "(.h5, from `kneegui record` or the app) or LabRecorder .xdf files")
    from dataclasses import replace

    if angle_sign not in (1, -1, 1.0, -1.0):
        raise RecordingError(f"angle sign must be 1 or -1, got {angle_sign!r}")
    angle = rec.angle
    if angle is not None and angle_sign < 0:
        angle = replace(angle, data=-angle.data)
    return replace(
        rec, subject=subject or rec.subject, group=group if group is not None else rec.group,
        activity=activity if activity is not None else rec.activity, angle=angle,
        channel_map=channel_map, start_s=start_s, end_s=end_s)


# -- UCI text files ------------------------------------------------------------------------------
def _from_uci(path: Path) -> LabRecording:
    from kneegui.datasets.uci import UciFormatError, read_uci_file

    try:
        rec = read_uci_file(path)
    except UciFormatError as exc:
        raise RecordingError(str(exc)) from exc
    except ValueError as exc:
        raise RecordingError(
            f"{path.name} is not a UCI 'EMG dataset in Lower Limb' text file ({exc}); text files "
            "must be named like 3Amar.txt and hold the UCI columns") from exc
    return recording_from_uci(rec)


def recording_from_uci(uci, path: Path | None = None) -> LabRecording:
    """A :class:`kneegui.datasets.uci.UciRecording` as a :class:`LabRecording` (EMG and angle
    on the file's one sample clock, t = 0 at the first sample)."""
    t = np.arange(uci.n_samples) / uci.fs
    emg = Signal(np.asarray(uci.emg), t, tuple(uci.channel_labels), ("mV",) * uci.emg.shape[1],
                 uci.fs, uci.path.name)
    angle = Signal(np.asarray(uci.angle, np.float64)[:, None], t, ("knee_flexion",), ("deg",),
                   uci.fs, uci.path.name)
    return LabRecording(name=uci.name, path=path or uci.path, source="uci", subject=uci.subject,
                        group=uci.group, activity=uci.exercise, emg=emg, angle=angle,
                        one_clock=True, flags=frozenset(uci.flags))


# -- sessions and XDF files ----------------------------------------------------------------------
def _session_streams(path: Path) -> tuple[list[_Stream], str]:
    from kneegui.recording import SessionFormatError, open_session

    try:
        session = open_session(path)
    except SessionFormatError as exc:
        raise RecordingError(str(exc)) from exc
    out = []
    with session:
        for name, st in session.streams.items():
            if st.is_string or st.length == 0:
                continue
            labels = _labels(st.channel_labels, st.channel_count)
            units = tuple(st.channel_units) + ("",) * (st.channel_count - len(st.channel_units))
            out.append(_Stream(st.attrs.get("name", name) or name, st.type, st.source_id, labels,
                               units[: st.channel_count], st.nominal_srate,
                               np.asarray(st.data, np.float64), np.asarray(st.timestamps,
                                                                           np.float64)))
        subject = session.subject_id
    return out, subject


def _xdf_streams(path: Path) -> tuple[list[_Stream], str]:
    import pyxdf

    logging.getLogger("pyxdf.pyxdf").setLevel(logging.ERROR)
    try:
        raw, _ = pyxdf.load_xdf(str(path), synchronize_clocks=True, handle_clock_resets=True,
                                dejitter_timestamps=True)
    except Exception as exc:  # noqa: BLE001 - pyxdf raises many kinds on foreign/damaged input
        raise RecordingError(f"{path.name} could not be read as XDF ({type(exc).__name__}: "
                             f"{exc}); is it a LabRecorder .xdf file?") from exc
    out = []
    for stream in raw:
        info = stream["info"]
        fmt = _first(info, "channel_format", "float32")
        ts = np.asarray(stream["time_stamps"], np.float64).reshape(-1)
        if fmt == "string" or ts.size == 0:
            continue
        n_ch = int(_first(info, "channel_count", "1") or 1)
        labels, units = _xdf_channels(info, n_ch)
        out.append(_Stream(_first(info, "name"), _first(info, "type"), _first(info, "source_id"),
                           labels, units, float(_first(info, "nominal_srate", "0") or 0.0),
                           np.asarray(stream["time_series"], np.float64).reshape(len(ts), n_ch),
                           ts))
    return out, ""


def _first(info: dict, key: str, default: str = "") -> str:
    value = info.get(key)
    if isinstance(value, list):
        value = value[0] if value else default
    return default if value is None else str(value)


def _xdf_channels(info: dict, n_ch: int) -> tuple[tuple[str, ...], tuple[str, ...]]:
    labels, units = [], []
    try:
        channels = info["desc"][0]["channels"][0]["channel"]
    except (KeyError, IndexError, TypeError):
        channels = []
    for ch in channels[:n_ch]:
        ch = ch or {}
        labels.append(_first(ch, "label"))
        units.append(_first(ch, "unit"))
    return _labels(labels, n_ch), tuple(units + [""] * (n_ch - len(units)))


def _labels(labels, n_ch: int) -> tuple[str, ...]:
    """Channel labels; an unlabelled channel is ``ch<index>``, as the app names it
    (``StreamInfoView.label``)."""
    given = list(labels)[:n_ch] + [""] * max(0, n_ch - len(labels))
    return tuple(lab if str(lab).strip() else f"ch{i}" for i, lab in enumerate(given))


def _listing(streams: list[_Stream]) -> str:
    return "; ".join(s.describe() for s in streams) or "none"


def _pick(streams: list[_Stream], wanted: str | None, types: tuple[str, ...], role: str,
          key: str, path: Path, required: bool) -> _Stream | None:
    """The stream named ``wanted`` (name, source_id or type), else the only one of ``types``."""
    if wanted:
        hits = [s for s in streams if wanted in (s.name, s.source_id)]
        hits = hits or [s for s in streams if s.type.lower() == wanted.lower()]
        if not hits:
            raise RecordingError(
                f"{path.name}: no stream named, with source_id or of type {wanted!r} for the "
                f"{role}; its streams: {_listing(streams)}")
        if len(hits) > 1:
            raise RecordingError(
                f"{path.name}: {len(hits)} streams match {wanted!r} for the {role} "
                f"({_listing(hits)}); name one of them ({key} = \"<stream name>\")")
        return hits[0]
    hits = [s for s in streams if s.type.lower() in types]
    if len(hits) == 1:
        return hits[0]
    if len(hits) > 1:
        raise RecordingError(
            f"{path.name}: {len(hits)} streams could be the {role} ({_listing(hits)}); choose "
            f"one by name (manifest [streams] {key} = \"<stream name>\", or --{key} NAME)")
    if required:
        raise RecordingError(
            f"{path.name}: no {role} stream (LSL type {' / '.join(types)}); its streams: "
            f"{_listing(streams)}. Name it (manifest [streams] {key} = \"<stream name>\", or "
            f"--{key} NAME)")
    return None


def _angle_signal(streams: list[_Stream], choice: StreamChoice, channel_map: Mapping[str, str],
                  path: Path) -> Signal | None:
    """The knee-angle channel: the one the channel map calls "angle", else the only channel of
    the angle stream."""
    mapped = {lab.strip().casefold() for lab, target in channel_map.items()
              if target.strip().casefold() == ANGLE_INPUT}
    if choice.angle is None and mapped:
        holders = [s for s in streams if any(lab.casefold() in mapped for lab in s.labels)]
        if len(holders) > 1:
            raise RecordingError(
                f"{path.name}: the channel mapped to the angle is in several streams "
                f"({_listing(holders)}); name the angle stream ([streams] angle = \"...\")")
        stream = holders[0] if holders else None
    else:
        stream = _pick(streams, choice.angle, ANGLE_TYPES, "knee-angle", "angle", path, False)
    if stream is None:
        return None
    picks = [i for i, lab in enumerate(stream.labels) if lab.casefold() in mapped]
    if not picks and stream.data.shape[1] == 1:
        picks = [0]
    if len(picks) != 1:
        raise RecordingError(
            f"{path.name}: knee-angle stream {stream.describe()} has the channels "
            f"{', '.join(stream.labels)}; map the one that holds the knee angle (manifest "
            f"[channels] \"<channel>\" = \"angle\", or --channel-map \"<channel>=angle\")")
    return stream.signal(picks)


def _from_streams(path: Path, source: str, streams: list[_Stream], subject: str,
                  channel_map: Mapping[str, str], choice: StreamChoice) -> LabRecording:
    streams = [s for s in streams if s.type.lower() not in IGNORED_TYPES]
    for s in streams:
        if s.t.size > 1 and not (np.diff(s.t) >= 0).all():
            raise RecordingError(f"{path.name}: the time stamps of stream '{s.name}' go "
                                 "backwards; the file's clock data are damaged")
    if not streams:
        raise RecordingError(f"{path.name} holds no numeric stream with samples (nothing to "
                             "train or calibrate on)")
    emg_stream = _pick(streams, choice.emg, EMG_TYPES, "EMG", "emg", path, False)
    emg = None if emg_stream is None else emg_stream.signal()
    angle = _angle_signal(streams, choice, channel_map, path)
    if emg is None and angle is None:
        raise RecordingError(
            f"{path.name} has neither an EMG nor a knee-angle stream; its streams: "
            f"{_listing(streams)}. Name them (manifest [streams] emg = \"...\", angle = \"...\")")
    kin = _pick(streams, choice.kinematics, KINEMATICS_TYPES, "kinematics", "kinematics", path,
                False)
    force = _pick(streams, choice.force, FORCE_TYPES, "force", "force", path, False)
    return LabRecording(
        name=path.stem, path=path, source=source, subject=subject or path.stem, group="",
        activity="", emg=emg, angle=angle,
        kinematics=None if kin is None or angle is not None and kin.name == angle.stream
        else kin.signal(),
        force=None if force is None else force.signal(),
        streams_found=tuple(s.describe() + " channels " + ", ".join(s.labels) for s in streams))
