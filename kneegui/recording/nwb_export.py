"""Export a session to NWB (Neurodata Without Borders) with pynwb.

Layout of the NWB file (times in seconds from ``timestamps_reference_time``, the session start
or the first sample if one came earlier):

* ``/acquisition``: every EMG stream with a voltage unit as an ``ElectricalSeries`` (unit volts,
  data as recorded, ``conversion`` = volts per stored unit) linked to its rows of the
  ``electrodes`` table (one row per channel: channel label, muscle name as ``location``, one
  ``ElectrodeGroup`` + ``Device`` per stream); the knee angle as a ``TimeSeries`` in degrees;
  other numeric streams as ``TimeSeries``. Streams whose time stamps are regular to 1 us are
  written with ``starting_time`` + ``rate``, others with their ``timestamps``.
* ``/events``: every session event in the ``EventsTable`` "events" (timestamp, duration (NaN
  for an instant), label, origin); each marker (string) stream as an ``EventsTable`` of its own
  (``annotation`` = the marker text). Events that mark lost data (gaps, outages, damaged
  input) are also ``invalid_times`` intervals.
* ``/processing/ecephys``: the live filtered EMG and envelope (``ElectricalSeries`` with the
  filter settings in ``filtering``).
* ``/processing/behavior``: predicted knee angle [n, horizons] in degrees and a ``model_use``
  interval table (model id, weights hash); the model cards are in ``/scratch/model_cards``.
* subject (id, species, sex, age when given), experimenter, devices, keywords.

Large datasets are streamed from the session file chunk by chunk and written with gzip.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

import kneegui
from kneegui.recording import export_meta as meta
from kneegui.recording.reader import RecordedStream, Session

#: Streams larger than this are copied chunk by chunk instead of read whole.
_STREAM_BYTES = 64 * 1024 * 1024
#: Stamps within this of a straight line are written as starting_time + rate.
REGULAR_TOLERANCE_S = 1e-6
_ORIGINS_WITH_LOSS = ("acquisition", "recorder", "xdf")
_LOSS_WORDS = ("gap", "missing", "lost", "disconnected", "unreadable", "cut off", "overwritten")


class NwbExportError(ValueError):
    """The session cannot be exported to NWB as asked; the message says what to do."""


@dataclass
class NwbOptions:
    """Metadata NWB wants that a KneeGUI session does not hold."""

    species: str = "Homo sapiens"
    sex: str = "U"  # M | F | U | O
    age: str = ""  # ISO 8601 duration, e.g. "P34Y"
    institution: str = ""
    lab: str = ""
    experimenter: list[str] = field(default_factory=list)
    session_start: dt.datetime | None = None  # for sessions that have no start date


def _output_path(session: Session, out: Path) -> Path:
    target = out / f"{session.path.stem}.nwb" if out.suffix.lower() != ".nwb" else out
    if target.exists():
        raise FileExistsError(f"{target} already exists; NWB export never overwrites a file")
    target.parent.mkdir(parents=True, exist_ok=True)
    return target


def _wrap(data: Any) -> Any:
    from hdmf.backends.hdf5 import H5DataIO

    return H5DataIO(data, compression="gzip", compression_opts=4, shuffle=True)


def _column(stream: RecordedStream, dataset: str, n_rows: int, transform=None) -> Any:
    """The stream's ``dataset`` (rows ``:n_rows``), whole or as a chunk iterator."""
    ds = stream.group[dataset]
    if ds.size * ds.dtype.itemsize <= _STREAM_BYTES or n_rows == 0:
        values = ds[:n_rows]
        return _wrap(transform(values) if transform else values)
    from hdmf.data_utils import GenericDataChunkIterator

    class _Rows(GenericDataChunkIterator):
        def __init__(self) -> None:
            super().__init__(buffer_gb=0.05, chunk_mb=1.0, display_progress=False)

        def _get_data(self, selection: tuple) -> np.ndarray:
            values = ds[selection]
            return transform(values) if transform else values

        def _get_maxshape(self) -> tuple:
            return (n_rows, *ds.shape[1:])

        def _get_dtype(self) -> np.dtype:
            return np.dtype("f8") if transform else ds.dtype

    return _wrap(_Rows())


def regular_rate(ts: np.ndarray) -> tuple[float, float] | None:
    """(first time, rate) when ``ts`` lie on ``t0 + k / rate`` within 1 us, else None."""
    n = len(ts)
    if n < 3 or not np.all(np.isfinite(ts)) or not ts[-1] > ts[0]:
        return None
    rate = (n - 1) / float(ts[-1] - ts[0])
    line = ts[0] + np.arange(n) / rate
    if float(np.max(np.abs(ts - line))) > REGULAR_TOLERANCE_S:
        return None
    return float(ts[0]), float(rate)


class _Builder:
    def __init__(self, session: Session, options: NwbOptions) -> None:
        from pynwb import NWBFile
        from pynwb.file import Subject

        self.session = session
        self.options = options
        self.time = meta.TimeBase.of(session)
        start = session.start_datetime or options.session_start
        if start is None:
            raise NwbExportError(
                f"{session.path} has no session start date (an XDF file without one?); NWB "
                "needs it: give --session-start, e.g. --session-start 2025-01-31T09:00:00Z")
        start = start.astimezone(dt.UTC)
        reference = start + dt.timedelta(seconds=self.time.reference_lsl - self.time.start_lsl)
        notes = session.notes or ""
        if not session.complete:
            notes += (" [session file marked incomplete: the recording was interrupted or the "
                      "imported file was damaged; see the events]")
        self.nwb = NWBFile(
            session_description=f"KneeGUI session {session.path.name}: EMG and knee angle"
                                + (f" of subject {session.subject_id}" if session.subject_id
                                   else ""),
            identifier=str(uuid.uuid4()),
            session_start_time=start,
            timestamps_reference_time=reference,
            experimenter=options.experimenter or ([session.operator] if session.operator
                                                  else None),
            institution=options.institution or None,
            lab=options.lab or None,
            keywords=["EMG", "knee angle", "gait", "Lab Streaming Layer", "KneeGUI"],
            experiment_description="EMG and knee angle streamed over Lab Streaming Layer and "
                                   "recorded by KneeGUI, which predicts the knee angle 10-500 ms "
                                   "ahead from EMG",
            notes=notes.strip() or None,
            source_script=f"KneeGUI {kneegui.__version__} (kneegui export --format nwb), "
                          f"session format {session.format_version}",
            source_script_file_name=session.path.name,
            session_id=session.path.stem,
        )
        self.nwb.subject = Subject(
            subject_id=session.subject_id or "unknown", species=options.species,
            sex=options.sex, age=options.age or None,
            description="participant of a KneeGUI recording")
        self.empty: list[str] = []  # streams without samples (devices only)
        self.electrode_rows: dict[str, dict[str, int]] = {}  # stream -> label -> row
        self.units: dict[str, tuple[str, ...]] = {}

    # -- streams -------------------------------------------------------------------------
    def add_streams(self, progress: Callable[[str], None] | None) -> None:
        for name, stream in self.session.streams.items():
            role = meta.classify(stream)
            if not stream.length:  # NWB has no empty series: the device keeps its metadata
                self._device(name, stream, "; it delivered no samples in this session")
                self.empty.append(name)
            elif role == meta.MARKERS:
                self._markers(name, stream)
            elif role == meta.EMG and self._emg_volts(stream) is not None:
                self._emg(name, stream)
            else:
                self._timeseries(name, stream, role)
            if progress is not None:
                progress(name)

    def _device(self, name: str, stream: RecordedStream, note: str = "") -> Any:
        a = stream.attrs
        maker = meta.manufacturer(stream)
        description = (f"LSL stream {a.get('name', name)!r} (type {stream.type or 'n/a'}, "
                       f"source_id {stream.source_id or 'n/a'}, host "
                       f"{a.get('hostname', '') or 'n/a'}, {stream.nominal_srate:g} Hz)"
                       + (f", manufacturer {maker}" if maker else "") + note)
        return self.nwb.create_device(name=f"{name}_device", description=description)

    @staticmethod
    def _emg_volts(stream: RecordedStream) -> float | None:
        unit = meta.uniform_unit(stream.channel_units)
        return meta.volts_per_unit(unit)

    def _emg(self, name: str, stream: RecordedStream) -> None:
        from pynwb.ecephys import ElectricalSeries

        nwb = self.nwb
        if nwb.electrodes is None or "channel_label" not in nwb.electrodes.colnames:
            nwb.add_electrode_column("channel_label", "channel label of the LSL stream")
            nwb.add_electrode_column("stream", "recorded stream the channel belongs to")
        group = nwb.create_electrode_group(
            name=f"{name}_electrodes", device=self._device(name, stream),
            description=f"surface EMG electrodes of stream {name} (one channel each; location "
                        "is the muscle named by the channel label)",
            location="lower limb (surface EMG)")
        rows: dict[str, int] = {}
        first = len(nwb.electrodes) if nwb.electrodes is not None else 0
        for i, label in enumerate(stream.channel_labels):
            nwb.add_electrode(group=group, location=meta.muscle_name(label) or "unknown",
                              channel_label=label, stream=name)
            rows[label] = first + i
        self.electrode_rows[name] = rows
        self.units[name] = stream.channel_units
        region = nwb.create_electrode_table_region(
            list(range(first, first + stream.channel_count)), f"EMG channels of {name}")
        n = stream.length
        nwb.add_acquisition(ElectricalSeries(
            name=name, data=_column(stream, "data", n), electrodes=region,
            conversion=self._emg_volts(stream), **self._timing(stream),
            filtering="none (raw samples as the amplifier sent them)",
            description=f"raw EMG of stream {stream.attrs.get('name', name)!r}, stored in "
                        f"{meta.uniform_unit(stream.channel_units)} (conversion to volts)",
            comments=self._stream_comments(stream)))

    def _timing(self, stream: RecordedStream) -> dict[str, Any]:
        """``timestamps=`` (irregular) or ``starting_time=`` + ``rate=`` (regular) kwargs."""
        n = stream.length
        if n and stream.nominal_srate > 0:
            regular = regular_rate(self.time.relative(stream.timestamps))
            if regular is not None:
                return {"starting_time": regular[0], "rate": regular[1]}
        return {"timestamps": _column(stream, "timestamps", n, self.time.relative)}

    def _stream_comments(self, stream: RecordedStream) -> str:
        return json.dumps({"lsl_source_id": stream.source_id,
                           "nominal_srate": stream.nominal_srate,
                           "channel_labels": list(stream.channel_labels),
                           "channel_units": list(stream.channel_units),
                           "time_zero_lsl": self.time.reference_lsl})

    def _timeseries(self, name: str, stream: RecordedStream, role: str) -> None:
        from pynwb import TimeSeries

        self._device(name, stream)
        unit = meta.uniform_unit(stream.channel_units)
        n = stream.length
        if role == meta.ANGLE:
            unit = "degrees"
            description = ("knee flexion angle in degrees (flexion positive, 0 = extended), "
                           f"stream {stream.attrs.get('name', name)!r}")
        else:
            description = (f"{role} stream {stream.attrs.get('name', name)!r} "
                           f"(type {stream.type or 'n/a'}; channels "
                           f"{', '.join(stream.channel_labels) or 'unlabelled'})")
            if not unit and any(stream.channel_units):
                description += f"; channel units {', '.join(stream.channel_units)}"
        self.nwb.add_acquisition(TimeSeries(
            name=name, data=_column(stream, "data", n), unit=unit or "n/a",
            **self._timing(stream),
            description=description, comments=self._stream_comments(stream),
            continuity="continuous" if stream.nominal_srate > 0 else "instantaneous"))

    def _markers(self, name: str, stream: RecordedStream) -> None:
        self._device(name, stream)
        table = self.nwb.create_events_table(
            name=name, description=f"marker stream {stream.attrs.get('name', name)!r} "
                                   f"(type {stream.type or 'n/a'})")
        for t, row in zip(self.time.relative(stream.timestamps), stream.data.tolist(),
                          strict=True):
            table.add_row(timestamp=float(t), annotation=" | ".join(row))

    # -- derived, predictions, events ----------------------------------------------------
    def add_derived(self) -> None:
        from pynwb import TimeSeries
        from pynwb.ecephys import ElectricalSeries

        derived = self.session.derived
        if not derived:
            return
        module = self.nwb.create_processing_module(
            "ecephys", "EMG filtered live by KneeGUI (causal filters, as shown and recorded)")
        for path, series in derived.items():
            a = series.attrs
            source = str(a.get("source", ""))
            key = source if source in self.electrode_rows else \
                next((k for k in self.electrode_rows if path.endswith("/" + k)), None)
            labels = tuple(a.get("channel_labels", ()))
            units = tuple(a.get("channel_units", ()))
            filtering = str(a.get("filter_description", "") or "filter settings not recorded")
            if a.get("filter_history"):
                filtering += f"; history: {a['filter_history']}"
            name = path.replace("/", "_")
            regular = regular_rate(self.time.relative(series.timestamps))
            ts = ({"starting_time": regular[0], "rate": regular[1]} if regular else
                  {"timestamps": _wrap(self.time.relative(series.timestamps))})
            volts = meta.volts_per_unit(meta.uniform_unit(units))
            if key is not None and volts is not None and all(
                    lab in self.electrode_rows[key] for lab in labels):
                region = self.nwb.create_electrode_table_region(
                    [self.electrode_rows[key][lab] for lab in labels], f"channels of {name}")
                module.add(ElectricalSeries(
                    name=name, data=_wrap(series.data), electrodes=region, conversion=volts,
                    filtering=filtering, **ts,
                    description=str(a.get("description", "") or path)))
            else:
                module.add(TimeSeries(
                    name=name, data=_wrap(series.data), unit=meta.uniform_unit(units) or "n/a",
                    **ts, description=f"{a.get('description', '') or path}; "
                                               f"filtering: {filtering}"))

    def add_predictions(self) -> None:
        from pynwb import TimeSeries
        from pynwb.epoch import TimeIntervals

        pred = self.session.predictions
        if pred is None or not len(pred.timestamps):
            return
        module = self.nwb.create_processing_module(
            "behavior", "knee angle predicted live by KneeGUI's model")
        horizons = [float(h) for h in pred.horizons_ms]
        rel = self.time.relative(pred.timestamps)
        regular = regular_rate(rel)
        timing = ({"starting_time": regular[0], "rate": regular[1]} if regular
                  else {"timestamps": _wrap(rel)})
        module.add(TimeSeries(
            name="predicted_knee_angle", data=_wrap(pred.values), unit="degrees", **timing,
            description="row i, column j = knee angle expected at timestamps[i] + "
                        "horizons_ms[j] / 1000 (flexion positive)",
            comments=json.dumps({"horizons_ms": horizons})))
        table = TimeIntervals(name="model_use", description="which model made the predictions")
        table.add_column("model_id", "model id")
        table.add_column("sha256", "SHA-256 of the model weights (empty if unknown)")
        models = self.session.models
        ids = pred.model_id.astype(str)
        change = np.flatnonzero(np.r_[True, ids[1:] != ids[:-1]])
        for i, start in enumerate(change):
            stop = change[i + 1] - 1 if i + 1 < len(change) else len(ids) - 1
            entry = models.get(ids[start])
            stop_time = float(rel[stop]) if stop > start else float(rel[start]) + 1e-3
            table.add_row(start_time=float(rel[start]), stop_time=stop_time,
                          model_id=ids[start], sha256=entry.sha256 if entry else "")
        module.add(table)
        if models:
            self.nwb.add_scratch(
                json.dumps({k: v.card for k, v in models.items()}), name="model_cards",
                description="KneeGUI model cards (JSON) of the models used, by model id")

    def add_events(self) -> None:
        ev = self.session.events
        if not len(ev):
            return
        table = self.nwb.create_events_table(
            name="events", description="KneeGUI session events: operator markers, acquisition "
                                       "and recorder events, import notes")
        table.add_column("label", "what happened")
        table.add_column("origin", "who logged it (operator, acquisition, recorder, "
                                   "calibration, model, xdf, xdf:<marker stream>)")
        order = np.argsort(ev.timestamp, kind="stable")
        rel = self.time.relative(ev.timestamp)
        lost = []
        for i in order:
            start, duration = float(rel[i]), max(0.0, float(ev.duration[i]))
            label, origin = str(ev.label[i]), str(ev.origin[i])
            table.add_row(timestamp=start, duration=duration if duration > 0 else float("nan"),
                          label=label, origin=origin)
            if (duration > 0 and origin in _ORIGINS_WITH_LOSS
                    and any(w in label for w in _LOSS_WORDS)):
                lost.append((start, start + duration, label))
        if lost:
            self.nwb.add_invalid_times_column("reason", "event that reported the lost data")
            for start, stop, label in lost:
                self.nwb.add_invalid_time_interval(start_time=start, stop_time=stop,
                                                   reason=label)


def missing_metadata(options: NwbOptions) -> list[str]:
    """Warnings for metadata NWB archives require but the export was not given."""
    if options.age:
        return []
    return ["no subject age given (--age): NWB archives such as DANDI require it (the NWB "
            "Inspector reports it as critical); the file is otherwise complete"]


def export_nwb(session: Session, out: str | Path, options: NwbOptions | None = None,
               progress: Callable[[str], None] | None = None) -> Path:
    """Write ``session`` as one NWB file (``out``: a ``.nwb`` path or a directory).

    Subject age/sex/species default to the session's ``meta_subject_age`` /
    ``meta_subject_sex`` / ``meta_species`` attributes when the options leave them unset.
    """
    from pynwb import NWBHDF5IO

    options = options or NwbOptions()
    attrs = session.attrs
    if not options.age and attrs.get("meta_subject_age"):
        options.age = str(attrs["meta_subject_age"])
    if options.sex == "U" and attrs.get("meta_subject_sex") in ("M", "F", "O"):
        options.sex = str(attrs["meta_subject_sex"])
    if options.sex not in ("M", "F", "U", "O"):
        raise NwbExportError(f"subject sex must be M, F, U or O, got {options.sex!r}")
    target = _output_path(session, Path(out))
    builder = _Builder(session, options)
    builder.add_streams(progress)
    builder.add_derived()
    builder.add_predictions()
    builder.add_events()
    try:
        with NWBHDF5IO(str(target), "w") as io:
            io.write(builder.nwb)
    except BaseException:
        target.unlink(missing_ok=True)
        raise
    return target
