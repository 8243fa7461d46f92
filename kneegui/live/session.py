"""Everything the main window drives, wired from the core packages: stream readers + hub
(acquisition), model + inference worker, recorder, prediction outlet.

Qt-free on purpose: the window calls these methods from the GUI thread and reads snapshots
at its refresh rate; nothing here blocks for long (readers, hub, writer and inference all
run in their own threads).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from kneegui.live.worker import PredictionWorker

DISPLAY_MODES = ("raw", "filtered", "envelope")


@dataclass
class ConnectedStream:
    info: object  # StreamInfoView
    role: str  # Role member name
    reader: object  # StreamReader
    channels: tuple[int, ...] | None = None


@dataclass
class SessionState:
    """What is connected/loaded/recording (for the status bar and the demo summary)."""

    streams: list[ConnectedStream] = field(default_factory=list)
    model_path: Path | None = None
    model_name: str = ""
    input_set: str = ""
    recording_path: Path | None = None


#: Interpreter-lock switch interval (s) of a process that runs the sample path. Python's default
#: (5 ms) lets a thread that holds the lock (the recorder's HDF5 commits: 10-30 ms of h5py calls
#: every 0.5 s) keep a waiting sample-path thread out for 5 ms at a time.
SAMPLE_PATH_SWITCH_INTERVAL = 0.001


def favour_sample_path() -> None:
    """Call once in a process whose job is the sample path (``kneegui predict``, the window's
    predictor process): threads waiting for the interpreter lock get it within ~1 ms."""
    import sys

    sys.setswitchinterval(SAMPLE_PATH_SWITCH_INTERVAL)


class LiveSession:
    """Owns readers, hub, inference worker, recorder and outlet for one window."""

    def __init__(self, model_rate: float = 100.0, buffer_seconds: float = 60.0, *,
                 arena=None, outlet_name: str | None = None) -> None:
        self.model_rate = model_rate
        self.buffer_seconds = buffer_seconds
        self.arena = arena  # kneegui.acquisition.shared.Arena: buffers the window reads
        self.outlet_name = outlet_name
        self.state = SessionState()
        self.hub = None
        self.loaded = None  # kneegui.model LoadedModel
        self.worker: PredictionWorker | None = None
        self.writer = None
        self.outlet = None
        self.filter_settings = None  # kneegui.dsp.FilterSettings
        self.model_id = ""
        self._quality: tuple | None = None  # (reader, QualityMonitor, last timestamp)
        self._assignments: list = []
        self._finishing: list = []  # stopped writers still compressing their file
        self.weights_sha256 = ""

    # -- streams -------------------------------------------------------------------------
    @property
    def connected(self) -> bool:
        return self.hub is not None

    def connect(self, assignments) -> None:
        """Open a reader per assigned stream, assign roles in a new hub and start them.

        Raises ``RoleError`` / ``ValueError`` with the acquisition package's message when a
        stream does not fit its role (nothing stays half-connected)."""
        from kneegui.acquisition.hub import Hub
        from kneegui.acquisition.reader import StreamReader
        from kneegui.acquisition.roles import Role

        self.disconnect()
        hub = Hub(
            model_rate=self.model_rate,
            feature_settings=self._feature_settings(),
            filter_settings=self.filter_settings,
            arena=self.arena,
        )
        streams: list[ConnectedStream] = []
        try:
            for a in assignments:
                role = Role[a.role]
                channels = list(a.channels) if a.channels else None
                if role is Role.EMG:
                    channels = self._model_emg_channels(a, channels)
                reader = StreamReader(a.info, buffer_seconds=self.buffer_seconds, role=role,
                                      channels=channels, arena=self.arena)
                assigned = hub.assign(role, reader, channels=channels)
                streams.append(ConnectedStream(a.info, a.role, reader, tuple(assigned.channels)))
            hub.start()  # starts the readers too
        except Exception:
            hub.stop()
            for s in streams:
                s.reader.stop()
            raise
        self.hub = hub
        self.state.streams = streams
        self._assignments = list(assignments)
        self._quality = None
        self._restart_worker()

    def _model_emg_channels(self, assignment, picks: list[int] | None) -> list[int] | None:
        """The EMG channels that feed the loaded model, in its input order, matched by label
        or by the assignment's ``channel_map`` (label -> input) among ``picks``
        (:func:`kneegui.model.layout.model_emg_channels`; ``LayoutError`` says which channels
        to map). Without a model (or an EMG-free one): ``picks`` (None = every channel)."""
        from kneegui.model.layout import model_emg_channels

        if self.loaded is None:
            return picks
        info = assignment.info
        labels = [info.label(i) for i in range(info.channel_count)]
        matched = model_emg_channels(self.loaded.card, labels, info.nominal_srate, picks=picks,
                                     channel_map=getattr(assignment, "channel_map", None),
                                     source=f"EMG stream {info.describe()}")
        return picks if matched is None else matched

    def _feature_settings(self):
        """The EMG feature settings the loaded model was trained with (default otherwise)."""
        from kneegui.dsp import FilterSettings

        stored = dict(self.loaded.card.dsp_settings) if self.loaded is not None else {}
        known = set(FilterSettings.__dataclass_fields__)
        return FilterSettings(**{k: v for k, v in stored.items() if k in known})

    def disconnect(self) -> None:
        if self.writer is not None:
            self.stop_recording()
        self._stop_worker()
        if self.hub is not None:
            self.hub.stop()
        for s in self.state.streams:
            s.reader.stop()
        self.hub = None
        self.state.streams = []
        self._quality = None

    def stream(self, role: str) -> ConnectedStream | None:
        return next((s for s in self.state.streams if s.role == role), None)

    def reader_rows(self) -> list[tuple[str, str, object, float | None]]:
        """(name, role, ReaderStatus, nominal rate) per connected stream."""
        return [
            (s.info.name, s.role.replace("_", " ").lower(), s.reader.status(),
             s.info.nominal_srate)
            for s in self.state.streams
        ]

    def drain_events(self) -> list:
        """Acquisition events (gaps, outages, reconnects) since the last call."""
        events = []
        for s in self.state.streams:
            events.extend(s.reader.events())
        return events

    # -- snapshots for the plots ---------------------------------------------------------
    def emg_snapshot(self, mode: str, seconds: float) -> tuple[np.ndarray, np.ndarray, int]:
        """(data [n, ch], timestamps [n], absolute index of data[0]) of the EMG stream: raw =
        every channel the amplifier sends (from the reader); filtered / envelope = the model
        channels through the hub's live filter chain."""
        emg = self.stream("EMG")
        if emg is None or self.hub is None:
            return np.empty((0, 0)), np.empty(0), 0
        buf = emg.reader.buffer if mode == "raw" else self.hub.emg_buffer(mode)
        total = buf.total_written
        data, ts = buf.latest_seconds(seconds)
        return data, ts, total - data.shape[0]

    def emg_channels(self, mode: str) -> list[int]:
        """Stream channel indices shown in ``mode`` (all for raw, the model picks otherwise)."""
        emg = self.stream("EMG")
        if emg is None:
            return []
        if mode == "raw" or not emg.channels:
            return list(range(emg.info.channel_count))
        return list(emg.channels)

    def emg_labels(self, mode: str = "filtered") -> tuple[list[str], str]:
        """Labels of the EMG channels shown in ``mode`` and their unit."""
        emg = self.stream("EMG")
        if emg is None:
            return [], ""
        picks = self.emg_channels(mode)
        units = [emg.info.channel_units[i] for i in picks if i < len(emg.info.channel_units)]
        return [emg.info.label(i) for i in picks], next((u for u in units if u), "")

    def angle_snapshot(self, seconds: float) -> tuple[np.ndarray, np.ndarray]:
        """(angle [n] degrees, timestamps [n]) of the knee-angle stream."""
        knee = self.stream("KNEE_ANGLE")
        if knee is None:
            return np.empty(0), np.empty(0)
        data, ts = knee.reader.latest(seconds)
        col = knee.channels[0] if knee.channels else 0
        return data[:, col].astype(np.float64) if data.size else np.empty(0), ts

    def prediction_snapshot(self, seconds: float) -> tuple[np.ndarray, np.ndarray]:
        """(prediction times [m], trajectories [m, H]) of the last ``seconds``."""
        if self.worker is None:
            return np.empty(0), np.empty((0, 50))
        preds, ts = self.worker.history.latest_seconds(seconds)
        return ts, preds

    def emg_quality(self, mode: str = "filtered") -> list | None:
        """``kneegui.dsp.ChannelQuality`` per EMG channel shown in ``mode``: the raw data
        since the last call go through a ``dsp.QualityMonitor`` (cheap, called at 2 Hz)."""
        emg = self.stream("EMG")
        if emg is None:
            return None
        if self._quality is None or self._quality[0] is not emg.reader:
            from kneegui.dsp import QualityMonitor

            mains = None if self.filter_settings is None else self.filter_settings.mains
            monitor = QualityMonitor(emg.info.nominal_srate or 1000.0, emg.info.channel_count,
                                     window_s=1.0, mains=mains or 50.0)
            self._quality = (emg.reader, monitor, None)
        reader, monitor, last_t = self._quality
        data, ts = reader.latest(1.0) if last_t is None else reader.since(last_t)
        if len(ts):
            monitor.update(np.asarray(data, dtype=np.float64))
            self._quality = (reader, monitor, float(ts[-1]))
        metrics = monitor.metrics()
        return [metrics[i] for i in self.emg_channels(mode)]

    # -- filters -------------------------------------------------------------------------
    def set_filter(self, values: dict) -> None:
        """Apply filter settings (``kneegui.dsp.FilterSettings`` fields) to the live chain."""
        from kneegui.dsp import FilterSettings

        settings = FilterSettings(**{k: v for k, v in values.items()
                                     if k in FilterSettings.__dataclass_fields__})
        if self.hub is not None:
            self.hub.set_filter_settings(settings)
        self.filter_settings = settings

    # -- model ---------------------------------------------------------------------------
    def load_model(self, path: str | Path) -> None:
        """Load weights + card (raises ``ModelLoadError`` with its message) and predict with
        them from now on."""
        from kneegui.model import load_model
        from kneegui.model.io import weights_digest

        loaded = load_model(path)
        previous, self.loaded = self.loaded, loaded
        rebuild = self.hub is not None and self.hub.feature_settings != self._feature_settings()
        emg = next((a for a in self._assignments if a.role == "EMG"), None)
        if self.hub is not None and emg is not None:
            try:  # the model's channel layout against the connected EMG stream
                wanted = self._model_emg_channels(
                    emg, list(emg.channels) if emg.channels else None)
            except ValueError:
                self.loaded = previous
                raise
            current = self.stream("EMG")
            rebuild |= current is not None and list(current.channels or ()) != list(
                wanted if wanted is not None else range(emg.info.channel_count))
        if rebuild and self.writer is not None:
            self.loaded = previous
            raise RuntimeError(
                "this model uses other EMG feature settings or EMG channels than the running "
                "one; stop the recording before switching to it"
            )
        self.weights_sha256 = weights_digest(loaded.net)
        self.model_id = f"{loaded.card.name}@{self.weights_sha256[:12]}"
        self.state.model_path = Path(path)
        self.state.model_name = loaded.card.name
        self.state.input_set = loaded.card.input_set
        if rebuild:
            self.connect(self._assignments)  # the model wants other EMG features
        else:
            self._restart_worker()
        self._announce_model()

    def _announce_model(self) -> None:
        """A model switch goes to the outlet's marker stream and into the recording."""
        from kneegui.live.outlet import model_description

        if self.loaded is None:
            return
        description = model_description(self.loaded)
        if self.outlet is not None and self.outlet.model.get("model_id") != self.model_id:
            marker = self.outlet.announce_model(description)
            if self.writer is not None:
                self.writer.add_event(marker, origin="model")

    def model_card(self) -> dict | None:
        """The loaded model's card as a plain dict (None without a model): what the window
        shows about the model (pretrained or calibrated to whom)."""
        return None if self.loaded is None else self.loaded.card.to_dict()

    def _restart_worker(self) -> None:
        from kneegui.model import Predictor

        self._stop_worker()
        if self.hub is None or self.loaded is None:
            return
        predictor = Predictor(self.loaded, threads=1)
        predictor.warm_up()
        worker = PredictionWorker(self.hub, predictor, model_id=self.model_id, arena=self.arena)
        worker.writer = self.writer
        if self.outlet is not None and self.outlet.n_horizons != worker.n_horizons:
            self.set_publishing(False)  # another trajectory length: a new stream (same id)
            self.set_publishing(True)
        worker.outlet = self.outlet
        self.worker = worker
        worker.start()

    def _stop_worker(self) -> None:
        if self.worker is not None:
            self.worker.stop()
            self.worker = None

    # -- LSL prediction outlet -----------------------------------------------------------
    def set_publishing(self, on: bool) -> None:
        """Publish predictions as an LSL stream (stable source_id) or stop publishing."""
        from kneegui.live.outlet import DEFAULT_NAME, PredictionOutlet, model_description

        if on:
            if self.outlet is not None:
                return
            card = self.loaded.card if self.loaded is not None else None
            self.outlet = PredictionOutlet(
                n_horizons=card.horizons if card else 50,
                model_rate=card.model_rate if card else self.model_rate,
                name=self.outlet_name or DEFAULT_NAME,
                model=model_description(self.loaded) if self.loaded is not None else None,
            )
        else:
            if self.outlet is not None:
                self.outlet.close()
            self.outlet = None
        if self.worker is not None:
            self.worker.outlet = self.outlet

    # -- recording -----------------------------------------------------------------------
    def start_recording(self, out_dir: str | Path, subject: str, notes: str) -> Path:
        """Start a session file in ``out_dir`` (never overwrites); returns its path."""
        import json

        from kneegui.model.io import card_to_save
        from kneegui.recording import SessionWriter

        if self.hub is None:
            raise RuntimeError("Connect the streams before recording.")
        if self.writer is not None:
            return self.writer.path
        metadata = {"subject_id": subject, "notes": notes, "app": "kneegui gui"}
        writer = SessionWriter(out_dir, metadata, self.hub)
        writer.start()
        if self.loaded is not None:
            card = card_to_save(self.loaded)
            writer.add_model(self.model_id, json.dumps(card.to_dict()), self.weights_sha256)
        self.writer = writer
        if self.worker is not None:
            self.worker.writer = writer
        self.state.recording_path = Path(writer.path)
        return Path(writer.path)

    def stop_recording(self) -> Path | None:
        """Close the session file (complete at return); its compression goes on in the
        background (:meth:`close` waits for it)."""
        writer = self.writer
        if writer is None:
            return None
        if self.worker is not None:
            self.worker.writer = None
        self.writer = None
        writer.stop(wait=False)
        self._finishing.append(writer)
        return Path(writer.path)

    def add_marker(self, label: str) -> bool:
        """Write an operator marker to /events; False when not recording."""
        if self.writer is None:
            return False
        return bool(self.writer.add_event(label, origin="operator"))

    def recording_status(self):
        return None if self.writer is None else self.writer.status()

    # -- shutdown ------------------------------------------------------------------------
    def close(self) -> None:
        """Stop everything; returns once every session file is closed and compressed."""
        self.disconnect()
        self.set_publishing(False)
        for writer in self._finishing:
            writer.wait_compressed()
        self._finishing.clear()
