"""Export a session as an EMG-BIDS + Motion-BIDS dataset (BIDS 1.11).

::

    DIR/dataset_description.json, README.md, participants.tsv + .json
    DIR/sub-<s>[/ses-<x>]/sub-<s>[_ses-<x>]_scans.tsv          filename, acq_time (UTC, us)
        emg/sub-<s>_task-<t>[_acq-<stream>]_emg.bdf            raw EMG, 24-bit BDF (edfio)
        emg/..._emg.json, ..._channels.tsv, ..._events.tsv + .json
        motion/sub-<s>_task-<t>_tracksys-<stream>_motion.tsv   knee angle (JNTANG) + LATENCY
        motion/..._motion.json, ..._channels.tsv

EDF/BDF and motion.tsv hold regularly sampled data: samples are placed by their sample count
(a step of more than 1.5 periods between time stamps is a gap of ``round(step * rate) - 1``
samples). Gaps are zero-filled in the BDF (EDF has no "missing" value) and ``n/a`` in
motion.tsv; every gap is an event (``trial_type`` ``data_gap``). The BDF is padded with zeros to
a whole data record (also an event). Each file's exact start is its ``acq_time`` in scans.tsv
(the BDF header keeps whole seconds only); the LATENCY channel gives every knee-angle sample's
recorded time. Files in an existing dataset are never overwritten (participants.tsv and
scans.tsv get new rows).
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

import kneegui
from kneegui.recording import export_meta as meta
from kneegui.recording.reader import RecordedStream, Session

BIDS_VERSION = "1.11.0"
GAP_PERIODS = 1.5
_BDF_DIGITAL = (-8388608, 8388607)


class BidsExportError(ValueError):
    """The session cannot be exported to BIDS as asked; the message says what to do."""


@dataclass
class BidsOptions:
    """BIDS entities and the metadata BIDS requires that a session does not hold."""

    subject: str = ""  # default: the session's subject id (letters and digits only)
    task: str = "walking"
    session: str = ""
    run: int | None = None
    dataset_name: str = "KneeGUI recordings"
    power_line: float | None = None  # Hz; default: the mains notch of the recorded filters
    emg_reference: str = "n/a"  # e.g. "Bipolar" for bipolar surface sensors
    placement: str = ""  # EMGPlacementSchemeDescription, e.g. "SENIAM"
    species: str = "homo sapiens"
    sex: str = "n/a"
    age: str = "n/a"
    institution: str = ""
    authors: tuple[str, ...] = ()


def label(text: str) -> str:
    """A BIDS label: letters and digits only."""
    return re.sub(r"[^A-Za-z0-9]", "", text or "")


def _tsv(path: Path, header: list[str], rows: list[list[Any]]) -> None:
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh, delimiter="\t", lineterminator="\n")
        writer.writerow(header)
        writer.writerows([[_cell(v) for v in row] for row in rows])


def _cell(value: Any) -> str:
    if value is None or (isinstance(value, float) and not np.isfinite(value)):
        return "n/a"
    if isinstance(value, float):
        return repr(value)
    return str(value)


def _json(path: Path, content: dict[str, Any]) -> None:
    path.write_text(json.dumps(content, indent=2) + "\n", encoding="utf-8")


def sample_positions(ts: np.ndarray, rate: float) -> np.ndarray:
    """Index of every sample on the regular grid: consecutive unless the stamps jump by more
    than 1.5 periods (a gap of ``round(step * rate) - 1`` samples)."""
    if len(ts) == 0:
        return np.zeros(0, dtype=np.int64)
    steps = np.diff(ts) * rate
    inc = np.where(np.isfinite(steps) & (steps > GAP_PERIODS), np.round(steps), 1.0)
    return np.concatenate([[0], np.cumsum(inc.astype(np.int64))])


def _gaps(positions: np.ndarray) -> list[tuple[int, int]]:
    """(first missing index, number missing) of every hole in ``positions``."""
    jumps = np.flatnonzero(np.diff(positions) > 1)
    return [(int(positions[i]) + 1, int(positions[i + 1] - positions[i] - 1)) for i in jumps]


def _record_duration(rate: float) -> float:
    """A data-record duration holding a whole number of samples (1 s for integer rates)."""
    frac = Fraction(rate).limit_denominator(1000)
    return float(frac.denominator) if abs(float(frac) - rate) < 1e-9 else 1.0


class _Exporter:
    def __init__(self, session: Session, root: Path, options: BidsOptions) -> None:
        self.session = session
        self.root = root
        self.o = options
        self.sub = label(options.subject or session.subject_id)
        if not self.sub:
            raise BidsExportError(
                f"{session.path} has no subject id usable as a BIDS label (letters and digits "
                "only); give one with --subject, e.g. --subject 01")
        self.task = label(options.task)
        if not self.task:
            raise BidsExportError("the task label must contain letters or digits (--task)")
        self.ses = label(options.session)
        self.start = session.start_datetime
        self.start_lsl = session.start_lsl
        if self.start is None or self.start_lsl is None:
            self.start, self.start_lsl = None, meta.TimeBase.of(session).start_lsl
        base = root / f"sub-{self.sub}"
        self.subdir = base / f"ses-{self.ses}" if self.ses else base
        self.written: list[Path] = []
        self.scans: list[tuple[str, str]] = []
        self.warnings: list[str] = []

    # -- naming --------------------------------------------------------------------------
    def stem(self, **extra: str) -> str:
        parts = [f"sub-{self.sub}"]
        if self.ses:
            parts.append(f"ses-{self.ses}")
        parts.append(f"task-{self.task}")
        for key in ("acq", "tracksys"):
            if extra.get(key):
                parts.append(f"{key}-{extra[key]}")
        if self.o.run is not None:
            parts.append(f"run-{self.o.run}")
        return "_".join(parts)

    def acq_time(self, t_lsl: float) -> str:
        if self.start is None:
            return "n/a"
        when = self.start + dt.timedelta(seconds=float(t_lsl) - self.start_lsl)
        return when.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")

    def utc(self, t_lsl: float) -> dt.datetime | None:
        if self.start is None:
            return None
        return self.start + dt.timedelta(seconds=float(t_lsl) - self.start_lsl)

    # -- plan ----------------------------------------------------------------------------
    def plan(self) -> tuple[list[tuple[str, RecordedStream]], list[tuple[str, RecordedStream]]]:
        emg, motion = [], []
        for name, stream in self.session.streams.items():
            role = meta.classify(stream)
            if role == meta.EMG:
                if stream.nominal_srate <= 0 or not stream.length:
                    self.warnings.append(f"EMG stream {name} has no regular samples; skipped")
                elif meta.volts_per_unit(meta.uniform_unit(stream.channel_units)) is None:
                    self.warnings.append(
                        f"EMG stream {name} has no voltage unit ({stream.channel_units}); "
                        "BIDS EMG needs one, so it was skipped")
                else:
                    emg.append((name, stream))
            elif role in (meta.ANGLE, meta.KINEMATICS) and stream.length \
                    and stream.nominal_srate > 0:
                motion.append((name, stream))
        if not emg and not motion:
            raise BidsExportError(
                f"{self.session.path} has no EMG stream with a voltage unit and no knee-angle or "
                "kinematics stream with a regular rate: nothing to export to EMG-/Motion-BIDS")
        return emg, motion

    def targets(self, emg, motion) -> list[Path]:
        paths = []
        multi = len(emg) > 1
        for name, _ in emg:
            stem = self.stem(acq=label(name) if multi else "")
            paths += [self.subdir / "emg" / f"{stem}_{s}" for s in
                      ("emg.bdf", "emg.json", "channels.tsv", "events.tsv", "events.json")]
        for name, _ in motion:
            stem = self.stem(tracksys=label(name))
            paths += [self.subdir / "motion" / f"{stem}_{s}" for s in
                      ("motion.tsv", "motion.json", "channels.tsv", "events.tsv",
                       "events.json")]
        return paths

    # -- EMG -----------------------------------------------------------------------------
    def write_emg(self, name: str, stream: RecordedStream, multi: bool) -> None:
        import edfio

        rate = stream.nominal_srate
        ts = stream.timestamps
        pos = sample_positions(ts, rate)
        record = _record_duration(rate)
        per_record = int(round(rate * record))
        n_grid = int(pos[-1]) + 1
        n_total = -(-n_grid // per_record) * per_record
        unit = meta.uniform_unit(stream.channel_units)
        signals = []
        data = stream.data.astype(np.float64)
        for i, ch_label in enumerate(stream.channel_labels):
            column = np.zeros(n_total)
            column[pos] = data[:, i]
            lo, hi = float(np.min(data[:, i])), float(np.max(data[:, i]))
            if not np.isfinite(lo) or not np.isfinite(hi):
                bad = ~np.isfinite(column)
                self.warnings.append(f"{name} channel {ch_label}: {int(bad.sum())} NaN/inf "
                                     "samples written as 0 in the BDF (EDF/BDF cannot hold them)")
                column[bad] = 0.0
                lo, hi = float(np.min(column)), float(np.max(column))
            lo, hi = min(lo, 0.0), max(hi, 0.0)
            if hi - lo <= 0:
                lo, hi = lo - 1.0, hi + 1.0
            signals.append(edfio.BdfSignal(
                column, rate, label=ch_label[:16], transducer_type="surface EMG electrode",
                physical_dimension=unit, physical_range=(lo, hi), digital_range=_BDF_DIGITAL,
                prefiltering="none"))
        t0 = float(ts[0])
        when = self.utc(t0)
        recording = edfio.Recording(startdate=when.date() if when else None,
                                    equipment_code="KneeGUI")
        bdf = edfio.Bdf(signals, patient=edfio.Patient(code=self.sub),
                        recording=recording, starttime=when.time().replace(microsecond=0)
                        if when else None, data_record_duration=record)
        stem = self.stem(acq=label(name) if multi else "")
        folder = self.subdir / "emg"
        bdf_path = folder / f"{stem}_emg.bdf"
        bdf.write(bdf_path)
        self.written.append(bdf_path)
        self.scans.append((f"emg/{bdf_path.name}", self.acq_time(t0)))
        mains = self.o.power_line if self.o.power_line is not None else self._recorded_mains()
        sidecar = {
            "TaskName": self.o.task,
            "EMGReference": self.o.emg_reference,
            "EMGPlacementScheme": "Other",
            "EMGPlacementSchemeDescription": self.o.placement or (
                "not recorded by KneeGUI; the target muscle of each channel is taken from its "
                "label (channels.tsv target_muscle)"),
            "SamplingFrequency": rate,
            "PowerLineFrequency": mains if mains is not None else "n/a",
            "SoftwareFilters": "n/a",
            "RecordingType": "continuous",
            "EMGChannelCount": stream.channel_count,
            "RecordingDuration": round(n_grid / rate, 6),
            "SoftwareVersions": f"KneeGUI {kneegui.__version__}",
            "Manufacturer": meta.manufacturer(stream) or "n/a",
            "HardwareFilters": "n/a",
            "TaskDescription": f"recorded with KneeGUI from LSL stream "
                               f"{stream.attrs.get('name', name)!r}",
        }
        if self.o.institution:
            sidecar["InstitutionName"] = self.o.institution
        _json(folder / f"{stem}_emg.json", sidecar)
        reference = "bipolar" if self.o.emg_reference.lower() == "bipolar" else "n/a"
        channels = [[ch, "EMG", unit, f"channel {i + 1} of LSL stream {name}", rate, ch,
                     reference, meta.muscle_name(ch) if meta.muscle_name(ch) != ch else "n/a",
                     "good"] for i, ch in enumerate(stream.channel_labels)]
        _tsv(folder / f"{stem}_channels.tsv",
             ["name", "type", "units", "description", "sampling_frequency", "signal_electrode",
              "reference", "target_muscle", "status"], channels)
        self._events(folder, stem, t0, rate, pos, n_total - n_grid, name,
                     "zero-filled in the BDF", "first EMG sample of the BDF file")
        self.written += [folder / f"{stem}_{s}" for s in
                         ("emg.json", "channels.tsv", "events.tsv", "events.json")]

    def _recorded_mains(self) -> float | None:
        for series in self.session.derived.values():
            settings = series.filter_settings
            if settings is not None and settings.mains:
                return float(settings.mains)
        return None

    def _events(self, folder: Path, stem: str, t0: float, rate: float, pos: np.ndarray,
                padding: int, name: str, filled: str, onset_from: str) -> None:
        rows = []
        ev = self.session.events
        for t, lab, origin, duration in zip(ev.timestamp, ev.label, ev.origin, ev.duration,
                                            strict=True):
            rows.append([float(t) - t0, float(duration), str(origin), str(lab)])
        for mname, mstream in self.session.streams.items():
            if meta.classify(mstream) == meta.MARKERS and not any(
                    str(o) == f"xdf:{mstream.attrs.get('name', mname)}" for o in ev.origin):
                for t, row in zip(mstream.timestamps, mstream.data.tolist(), strict=True):
                    rows.append([float(t) - t0, 0.0, f"marker:{mname}", " | ".join(row)])
        for first, missing in _gaps(pos):
            rows.append([first / rate, missing / rate, "data_gap",
                         f"{missing} samples of {name} missing, {filled}"])
        if padding > 0:
            n_grid = int(pos[-1]) + 1
            rows.append([n_grid / rate, padding / rate, "padding",
                         "zeros that complete the last BDF data record (not recorded)"])
        rows.sort(key=lambda r: r[0])
        _tsv(folder / f"{stem}_events.tsv", ["onset", "duration", "trial_type", "label"],
             [[round(r[0], 6), round(r[1], 6), r[2], r[3]] for r in rows])
        _json(folder / f"{stem}_events.json", {
            "onset": {"Description": f"seconds from the {onset_from}", "Units": "s"},
            "duration": {"Description": "0 for an instant", "Units": "s"},
            "trial_type": {"Description": "origin of the event: operator, acquisition, "
                                          "recorder, calibration, model, xdf, xdf:<marker "
                                          "stream>, marker:<stream>, data_gap, padding"},
            "label": {"Description": "what happened (KneeGUI event text or marker value)"},
        })

    # -- motion --------------------------------------------------------------------------
    def write_motion(self, name: str, stream: RecordedStream) -> None:
        rate = stream.nominal_srate
        ts = stream.timestamps
        pos = sample_positions(ts, rate)
        n_grid = int(pos[-1]) + 1
        angle = meta.classify(stream) == meta.ANGLE
        values = np.full((n_grid, stream.channel_count), np.nan)
        values[pos] = stream.data.astype(np.float64)
        latency = np.full(n_grid, np.nan)
        t0 = float(ts[0])
        latency[pos] = ts - t0
        tracksys = label(name)
        stem = self.stem(tracksys=tracksys)
        folder = self.subdir / "motion"
        path = folder / f"{stem}_motion.tsv"
        text_values = np.where(np.isfinite(values), values.astype(np.float32).astype(str), "n/a")
        text_latency = np.where(np.isfinite(latency), np.char.mod("%.6f", latency), "n/a")
        with path.open("w", encoding="utf-8", newline="") as fh:
            for row in np.column_stack([text_values, text_latency]).tolist():
                fh.write("\t".join(row) + "\n")
        self.written.append(path)
        self.scans.append((f"motion/{path.name}", self.acq_time(t0)))
        units = stream.channel_units
        channels = []
        for i, ch in enumerate(stream.channel_labels):
            unit = units[i] if i < len(units) and units[i] else ("deg" if angle else "n/a")
            if angle or meta.is_degrees(unit):
                unit = "deg" if meta.is_degrees(unit) or angle else unit
            kind = "JNTANG" if angle else "MISC"
            channels.append([ch, "n/a", kind, "knee" if angle else label(name) or "n/a", unit,
                             "knee flexion angle, flexion positive, 0 = extended" if angle
                             else f"channel {i + 1} of LSL stream {name}"])
        channels.append(["latency", "n/a", "LATENCY", "n/a", "s",
                         "recorded time of each sample from the first one (LSL clock)"])
        _tsv(folder / f"{stem}_channels.tsv",
             ["name", "component", "type", "tracked_point", "units", "description"], channels)
        duration = float(ts[-1] - ts[0])
        effective = (len(ts) - 1) / duration if duration > 0 else rate
        counts = {f"{kind}ChannelCount": 0 for kind in
                  ("ACCEL", "ANGACCEL", "GYRO", "MAGN", "ORNT", "POS", "VEL")}
        sidecar = {
            **counts,
            "TaskName": self.o.task,
            "SamplingFrequency": rate,
            "SamplingFrequencyEffective": round(effective, 6),
            "TrackingSystemName": str(stream.attrs.get("name", name)),
            "Manufacturer": meta.manufacturer(stream) or "n/a",
            "SoftwareVersions": f"KneeGUI {kneegui.__version__}",
            "MotionChannelCount": stream.channel_count + 1,
            "JNTANGChannelCount": stream.channel_count if angle else 0,
            "MISCChannelCount": 0 if angle else stream.channel_count,
            "LATENCYChannelCount": 1,
            "TrackedPointsCount": 1,
            "MissingValues": "n/a",
            "RecordingDuration": round(n_grid / rate, 6),
            "TaskDescription": f"recorded with KneeGUI from LSL stream "
                               f"{stream.attrs.get('name', name)!r}",
        }
        if self.o.institution:
            sidecar["InstitutionName"] = self.o.institution
        _json(folder / f"{stem}_motion.json", sidecar)
        self._events(folder, stem, t0, rate, pos, 0, name, "n/a in motion.tsv",
                     "first sample of the motion file")
        self.written += [folder / f"{stem}_{s}" for s in
                         ("channels.tsv", "motion.json", "events.tsv", "events.json")]

    # -- dataset files -------------------------------------------------------------------
    def dataset_files(self) -> None:
        desc = self.root / "dataset_description.json"
        if not desc.exists():
            authors = {"Authors": list(self.o.authors)} if self.o.authors else {}
            _json(desc, {
                "Name": self.o.dataset_name, "BIDSVersion": BIDS_VERSION, "DatasetType": "raw",
                **authors,
                "GeneratedBy": [{"Name": "KneeGUI", "Version": kneegui.__version__,
                                 "Description": "kneegui export --format bids"}],
            })
            self.written.append(desc)
        readme = self.root / "README.md"
        if not readme.exists():
            readme.write_text(
                f"# {self.o.dataset_name}\n\nEMG (EMG-BIDS, BDF) and knee angle (Motion-BIDS) "
                "recorded over Lab Streaming Layer with KneeGUI and exported with `kneegui "
                "export --format bids`. Acquisition times in `*_scans.tsv` align the EMG and "
                "motion files to the microsecond; gaps in the recording are `data_gap` events."
                "\n", encoding="utf-8")
            self.written.append(readme)
        participants = self.root / "participants.tsv"
        row = [f"sub-{self.sub}", self.o.species, self.o.age, self.o.sex]
        header = ["participant_id", "species", "age", "sex"]
        self._append_row(participants, header, row, key=row[0])
        pjson = self.root / "participants.json"
        if not pjson.exists():
            _json(pjson, {"species": {"Description": "species of the participant"},
                          "age": {"Description": "age of the participant", "Units": "year"},
                          "sex": {"Description": "sex of the participant",
                                  "Levels": {"M": "male", "F": "female", "O": "other",
                                             "n/a": "not given"}}})
            self.written.append(pjson)
        scans = self.subdir / (f"sub-{self.sub}" + (f"_ses-{self.ses}" if self.ses else "")
                               + "_scans.tsv")
        for filename, acq_time in self.scans:
            self._append_row(scans, ["filename", "acq_time"], [filename, acq_time], filename)

    def _append_row(self, path: Path, header: list[str], row: list[str], key: str) -> None:
        if not path.exists():
            _tsv(path, header, [row])
            self.written.append(path)
            return
        with path.open(encoding="utf-8") as fh:
            existing = list(csv.reader(fh, delimiter="\t"))
        if existing and existing[0][: len(header)] == header and \
                any(r and r[0] == key for r in existing[1:]):
            return
        with path.open("a", encoding="utf-8", newline="") as fh:
            values = {h: v for h, v in zip(header, row, strict=True)}
            cols = existing[0] if existing else header
            fh.write("\t".join(_cell(values.get(c, "n/a")) for c in cols) + "\n")


def export_bids(session: Session, out_dir: str | Path, options: BidsOptions | None = None,
                progress: Callable[[str], None] | None = None) -> tuple[list[Path], list[str]]:
    """Write ``session`` into the BIDS dataset at ``out_dir`` (created or extended).

    Returns the files written and warnings (streams that could not be exported). Raises
    :class:`BidsExportError` / ``FileExistsError`` without writing anything when the export
    cannot be done or a data file of this subject/session/task/run already exists.
    """
    options = options or BidsOptions()
    root = Path(out_dir)
    exporter = _Exporter(session, root, options)
    emg, motion = exporter.plan()
    existing = [p for p in exporter.targets(emg, motion) if p.exists()]
    if existing:
        raise FileExistsError(
            f"{existing[0]} already exists; BIDS export never overwrites: choose another "
            "--session or --run, or another directory")
    for folder in {"emg": emg, "motion": motion}.items():
        if folder[1]:
            (exporter.subdir / folder[0]).mkdir(parents=True, exist_ok=True)
    for name, stream in emg:
        exporter.write_emg(name, stream, len(emg) > 1)
        if progress is not None:
            progress(name)
    for name, stream in motion:
        exporter.write_motion(name, stream)
        if progress is not None:
            progress(name)
    exporter.dataset_files()
    return exporter.written, exporter.warnings
