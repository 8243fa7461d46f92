"""`kneegui calibrate`: few-cycle subject calibration, without a GUI, from live LSL streams or
from a recording (``--from SESSION.h5|FILE.xdf [--start S --end S]``, after the subject left).

Same protocol as the wizard: sensor check, optional rest/MVC (live only), walking capture of K
gait cycles plus one held back, fine-tuning, before/after validation on the held-back cycle. A
recording is put on the model time base with the live path's DSP and alignment code and fed to
the protocol row by row as the hub would (a hole pauses the capture as an outage does). The
EMG channels that feed the model are those whose labels name its inputs (the card's channel
layout), or those a ``--channel-map "EMG 1=RF,..."`` maps; a stream or recording without them
is refused with a message saying which channels to map (never "the first four"). The subject
model (weights + card) goes to the subject model store (or ``--out``); it is activated only if
it beats the base model on the held-back cycle (``--activate always|never`` overrides).

Exit codes: 0 saved (see "improved"/"activated" in the JSON), 2 bad arguments or streams,
3 no gait detected (nothing saved), 4 fine-tuning failed, 130 interrupted (nothing saved).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from kneegui.commands._errors import UserError, run_reporting

EXIT_OK, EXIT_USAGE, EXIT_NO_GAIT, EXIT_FAILED, EXIT_INTERRUPTED = 0, 2, 3, 4, 130


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "calibrate",
        help="calibrate a subject from a few gait cycles (live LSL streams, headless)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--subject", help="subject id, e.g. S01 (required for live streams; with "
                   "--from: default the recording's subject)")
    p.add_argument("--group", default="", help="subject group (e.g. N or A), stored in the card")
    p.add_argument("--notes", default="", help="free text stored in the card")
    p.add_argument("--cycles", type=int, default=5,
                   help="gait cycles used for adaptation (one more is held back; default 5)")
    p.add_argument("--input-set", default="emg+angle",
                   help="input set of the base model when --model is not given (default emg+angle)")
    p.add_argument("--model", help="base model: stem/file path or name in `kneegui models list` "
                   "(default: the shipped model for --input-set)")
    p.add_argument("--from", dest="source", type=Path, metavar="RECORDING",
                   help="calibrate from a recording instead of live streams: a KneeGUI session "
                   "(.h5) or an XDF file (.xdf)")
    p.add_argument("--start", type=float, default=None, metavar="S",
                   help="with --from: start this many seconds after the recording's start")
    p.add_argument("--end", type=float, default=None, metavar="S",
                   help="with --from: end this many seconds after the recording's start")
    p.add_argument("--emg", help="EMG stream: name or source_id (with --from also the LSL type; "
                   "default: the only EMG stream)")
    p.add_argument("--angle", help="knee-angle stream: name or source_id (with --from also the "
                   "LSL type; default: the only stream of type Angle)")
    p.add_argument("--channel-map", default="", metavar="LABEL=INPUT,...",
                   help="which channel carries which model input where the labels do not say "
                   "it, e.g. \"EMG 1=RF,EMG 2=BF,EMG 3=VM,EMG 4=ST,Knee R=angle\"")
    p.add_argument("--out", type=Path, help="folder for the subject model (default: the "
                   "per-user subject model store)")
    p.add_argument("--json", type=Path, help="write before/after metrics and paths to this file")
    p.add_argument("--timeout", type=float, default=180.0,
                   help="seconds of (unpaused) walking before giving up with 'no gait'")
    p.add_argument("--sensor-check", type=float, default=2.0, metavar="S",
                   help="seconds of EMG quality check before the capture (default 2)")
    p.add_argument("--override-sensors", action="store_true",
                   help="continue even if a channel is flat or saturated")
    p.add_argument("--rest", type=float, default=0.0, metavar="S",
                   help="record a rest baseline of S seconds before walking")
    p.add_argument("--mvc", type=float, default=0.0, metavar="S",
                   help="record a maximum voluntary contraction of S seconds before walking")
    p.add_argument("--activate", choices=("auto", "always", "never"), default="auto",
                   help="activate the subject model: auto = only if better (default)")
    p.add_argument("--discover-timeout", type=float, default=3.0,
                   help="seconds to look for the LSL streams (default 3)")
    p.set_defaults(run=run)


def _interrupted(protocol: Any) -> int:
    """Ctrl-C: cancel the protocol (nothing saved, the previous model stays)."""
    protocol.cancel()
    protocol.wait(2.0)
    print("interrupted: nothing saved, previous model kept", file=sys.stderr)
    return EXIT_INTERRUPTED


def run(args: argparse.Namespace) -> int:
    return run_reporting("calibrate", _run, args, EXIT_USAGE)


def _run(args: argparse.Namespace) -> int:
    from kneegui.calibration import (
        CalibrationConfig,
        CalibrationProtocol,
        ModelStoreError,
        ProtocolError,
        Stage,
        SubjectInfo,
        SubjectModelStore,
    )
    from kneegui.model.layout import LayoutError, parse_channel_map

    if args.cycles < 1:
        raise UserError("--cycles must be at least 1")
    if args.source is None and (args.start is not None or args.end is not None):
        raise UserError("--start and --end select a part of a recording: use them with --from")
    if args.source is None and not args.subject:
        raise UserError("--subject is required (the id of the subject on the streams, e.g. S01)")
    try:
        args.channel_map = parse_channel_map(args.channel_map)
    except LayoutError as exc:
        raise UserError(f"--channel-map: {exc}") from exc
    store = SubjectModelStore(root=args.out) if args.out else SubjectModelStore()
    try:
        base = _base_model(store, args)
    except ModelStoreError as exc:
        raise UserError(str(exc)) from exc
    if args.source is not None:
        return _from_recording(args, store, base)
    try:
        subject = SubjectInfo(args.subject, args.group, args.notes)
    except ValueError as exc:
        raise UserError(str(exc)) from exc
    hub = _connect(args, base)
    reporter = _Reporter()
    protocol = CalibrationProtocol(
        base,
        config=CalibrationConfig(train_cycles=args.cycles, capture_timeout_s=args.timeout),
        on_event=reporter.on_event,
    )
    try:
        return _drive(args, protocol, hub, store, subject, reporter, base, Stage, ProtocolError)
    except KeyboardInterrupt:
        return _interrupted(protocol)
    finally:
        reporter.close()
        hub.stop()


def _drive(args, protocol, hub, store, subject, reporter, base, Stage, ProtocolError) -> int:
    from kneegui.calibration.feeder import CapturePump, HubFrameSource
    from kneegui.calibration.sensors import HubSensorCheck

    protocol.start(subject)
    sensors = HubSensorCheck(hub)
    deadline = time.monotonic() + max(args.sensor_check, 0.5)
    checks = []
    while time.monotonic() < deadline or not checks:
        checks = sensors.poll()
        if time.monotonic() > deadline + 5.0:
            raise UserError("no EMG samples arrived for the sensor check; is the sender running?")
        time.sleep(0.1)
    _confirm_sensors(args, protocol, checks, ProtocolError)

    pump = CapturePump(HubFrameSource(hub), protocol)
    for kind, seconds in (("rest", args.rest), ("mvc", args.mvc)):
        if seconds > 0:
            print(f"{kind}: {'relax' if kind == 'rest' else 'contract maximally'} for "
                  f"{seconds:g} s", file=sys.stderr)
            protocol.begin_baseline(kind)
            end = time.monotonic() + seconds
            while time.monotonic() < end:
                pump.poll()
                time.sleep(0.03)
            try:
                protocol.end_baseline()
            except ProtocolError as exc:
                raise UserError(str(exc)) from exc
    protocol.start_capture()
    reporter.start_capture(protocol.capture_target)
    while protocol.stage == Stage.CAPTURE:
        pump.poll()
        time.sleep(0.03)
    return _finish(args, protocol, store, subject, reporter, base, Stage, {})


def _confirm_sensors(args, protocol, checks, ProtocolError) -> None:
    protocol.update_quality(checks)
    for c in checks:
        print(f"  {c.label}: {c.status}{' - ' + c.reason if c.reason else ''}", file=sys.stderr)
    try:
        protocol.confirm_sensors(override=args.override_sensors)
    except ProtocolError as exc:
        raise UserError(f"{exc} (--override-sensors)") from exc


def _finish(args, protocol, store, subject, reporter, base, Stage, extra: dict) -> int:
    """After the capture (live or recorded): no gait, or fine-tune, validate, save, report."""
    walking_s = protocol.capture_seconds
    if protocol.stage == Stage.FAILED and protocol.error == "no_gait":
        _write_json(args.json, {"subject": subject.subject_id, "status": "no_gait",
                                "message": reporter.last_message, "saved": None, **extra})
        return EXIT_NO_GAIT
    reporter.start_finetune()
    while protocol.stage == Stage.FINETUNE:
        protocol.wait(0.1)
    if protocol.stage != Stage.VALIDATION or protocol.outcome is None:
        print(f"kneegui calibrate: {protocol.error or 'fine-tuning did not finish'}; "
              "nothing saved", file=sys.stderr)
        return EXIT_FAILED
    outcome = protocol.outcome
    activate = {"auto": None, "always": True, "never": False}[args.activate]
    path = protocol.accept(store, activate=activate)
    activated = store.active_path() is not None and store.active_path() == Path(path).resolve()
    print(outcome.summary(), file=sys.stderr)
    print(f"saved {path} ({'active' if activated else 'not activated'})", file=sys.stderr)
    _write_json(args.json, {
        "subject": subject.subject_id,
        "status": "saved",
        "saved": str(path),
        "activated": activated,
        "improved": outcome.improved,
        "base_model": getattr(base, "model_id", base.card.name),
        "train_cycles": len(protocol.calibration.train_cycles),
        "walking_seconds": walking_s,
        "finetune_seconds": outcome.seconds,
        "epochs": outcome.epochs,
        "held_back": outcome.metrics_dict(),
        "data_sha256": protocol.calibration.data_hash(),
        **extra,
    })
    print(str(path))
    return EXIT_OK


def _base_model(store: Any, args: argparse.Namespace) -> Any:
    from kneegui.model.io import ModelLoadError

    if args.model:
        entry = store.find(args.model)
    else:
        wanted = [e for e in store.list(kind="shipped")
                  if e.input_set == args.input_set and e.error is None]
        if not wanted:
            raise UserError(f"no shipped model for input set {args.input_set!r} in "
                            f"{store.shipped_dir}; pass --model PATH")
        entry = wanted[0]
    try:
        return store.load(entry)
    except ModelLoadError as exc:
        raise UserError(str(exc)) from exc


def _connect(args: argparse.Namespace, base: Any) -> Any:
    """Readers + hub on the chosen streams; the EMG channels are the base model's inputs in its
    order (its card's channel layout, matched by label or ``--channel-map``)."""
    from kneegui.acquisition import Hub, Role, StreamReader
    from kneegui.dsp import FilterSettings
    from kneegui.live.streams import StreamChoiceError, choose_streams, split_channel_map
    from kneegui.model.layout import model_emg_channels

    try:
        emg_choice, angle_choice = choose_streams(args.emg, args.angle, args.discover_timeout)
    except StreamChoiceError as exc:
        raise UserError(str(exc)) from exc
    emg, angle = emg_choice.info, angle_choice.info
    known = set(FilterSettings.__dataclass_fields__)
    features = FilterSettings(**{k: v for k, v in base.card.dsp_settings.items() if k in known})
    hub = Hub(model_rate=100.0, feature_settings=features)
    emg_map, mapped = split_channel_map(args.channel_map, list(angle.channel_labels))
    try:
        picks = model_emg_channels(
            base.card, [emg.label(i) for i in range(emg.channel_count)], emg.nominal_srate,
            channel_map=emg_map, source=f"EMG stream {emg.describe()}")
        hub.assign(Role.EMG, StreamReader(emg, role=Role.EMG, channels=picks), channels=picks)
        hub.assign(Role.KNEE_ANGLE, StreamReader(angle, role=Role.KNEE_ANGLE,
                                                 channels=mapped or None),
                   channels=mapped or None)
    except ValueError as exc:
        raise UserError(str(exc)) from exc
    hub.start()
    return hub


def _from_recording(args: argparse.Namespace, store: Any, base: Any) -> int:
    """The protocol fed from a recording: its rows on the model grid, in hub-sized chunks."""
    from kneegui.calibration import (
        CalibrationConfig,
        CalibrationProtocol,
        ProtocolError,
        Stage,
        SubjectInfo,
    )
    from kneegui.calibration.feeder import RecordedFrames
    from kneegui.calibration.sensors import checks_from_quality
    from kneegui.dsp import FilterSettings, QualityMonitor
    from kneegui.labdata import (
        RecordingError,
        StreamChoice,
        emg_inputs,
        read_recording,
        require_angle,
    )
    from kneegui.labdata import to_model_rate as on_model_grid

    if args.rest > 0 or args.mvc > 0:
        raise UserError("--rest / --mvc record a baseline live; they do not apply to --from")
    if args.source.suffix.lower() not in (".h5", ".hdf5", ".xdf", ".xdfz"):
        raise UserError(f"--from {args.source}: give a KneeGUI session (.h5) or an XDF file "
                        "(.xdf)")
    card = base.card
    known = set(FilterSettings.__dataclass_fields__)
    settings = FilterSettings(**{k: v for k, v in card.dsp_settings.items() if k in known})
    try:
        rec = read_recording(args.source, channel_map=args.channel_map, start_s=args.start,
                             end_s=args.end, streams=StreamChoice(emg=args.emg, angle=args.angle))
        require_angle(rec)
        if card.emg_inputs and rec.emg is None:
            raise RecordingError(f"{args.source.name}: no EMG stream; name it with --emg")
        rows = on_model_grid(rec, card.emg_inputs or None, model_rate=card.model_rate,
                             settings=settings, emg=bool(card.emg_inputs))
        raw = emg_inputs(rec, card.emg_inputs) if card.emg_inputs else None
    except ValueError as exc:  # RecordingError, LayoutError
        raise UserError(str(exc)) from exc
    try:
        subject = SubjectInfo(args.subject or rec.subject, args.group, args.notes)
    except ValueError as exc:
        raise UserError(f"{exc}; pass --subject") from exc
    emg_env = rows.emg_env if rows.emg_env is not None else np.zeros((len(rows), 0), np.float32)
    frames = RecordedFrames(rows.t, emg_env, rows.angle, chunk=max(1, int(card.model_rate / 10)))
    reporter = _Reporter()
    protocol = CalibrationProtocol(
        base, config=CalibrationConfig(train_cycles=args.cycles, capture_timeout_s=None),
        on_event=reporter.on_event, clock=frames.clock)
    start = rows.offset_s
    used = "" if raw is None else ", EMG " + ", ".join(
        f"{lab}={m}" for m, lab in zip(card.emg_inputs, raw.labels, strict=True))
    print(f"calibrating {subject.subject_id} from {args.source.name}: {start:.1f}-"
          f"{start + len(rows) / card.model_rate:.1f} s of the recording{used}", file=sys.stderr)
    try:
        protocol.start(subject)
        checks = []
        if raw is not None:  # the sensor check on the raw EMG the capture starts with
            monitor = QualityMonitor(raw.rate, raw.n_channels, window_s=1.0,
                                     mains=settings.mains or 50.0)
            t0 = float(rows.t[0]) if len(rows) else float(raw.t[0])
            keep = (raw.t >= t0) & (raw.t < t0 + max(args.sensor_check, 1.0))
            monitor.update(np.asarray(raw.data[keep], np.float64))
            checks = checks_from_quality(monitor.metrics(), list(raw.labels))
        _confirm_sensors(args, protocol, checks, ProtocolError)
        protocol.start_capture()
        reporter.start_capture(protocol.capture_target)
        while protocol.stage == Stage.CAPTURE and not frames.exhausted:
            t, emg, angle = frames.read_new()
            protocol.feed(t, emg, angle)
            protocol.tick()
        if protocol.stage == Stage.CAPTURE:
            protocol.finish_capture()  # the recording ended: not enough gait
        extra = {"source": str(args.source), "start_s": round(start, 3),
                 "end_s": round(start + len(rows) / card.model_rate, 3)}
        return _finish(args, protocol, store, subject, reporter, base, Stage, extra)
    except KeyboardInterrupt:
        return _interrupted(protocol)
    finally:
        reporter.close()


def _write_json(path: Path | None, data: dict) -> None:
    if path is None:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=1) + "\n")


class _Reporter:
    """Progress on stderr: a tqdm bar of gait cycles, then of fine-tuning epochs."""

    def __init__(self) -> None:
        self.bar: Any = None
        self.last_message = ""

    def start_capture(self, target: int) -> None:
        from tqdm import tqdm

        self.close()
        self.bar = tqdm(total=target, desc="gait cycles", unit="cycle", file=sys.stderr)

    def start_finetune(self) -> None:
        from tqdm import tqdm

        self.close()
        self.bar = tqdm(desc="fine-tuning", unit="epoch", file=sys.stderr)

    def on_event(self, ev: Any) -> None:
        from kneegui.calibration import EventKind

        self.last_message = ev.message
        if ev.kind == EventKind.CYCLE and self.bar is not None:
            self.bar.n = min(ev.data["train"] + ev.data["holdout"], self.bar.total)
            self.bar.refresh()
            self.bar.write(ev.message, file=sys.stderr)
        elif ev.kind == EventKind.FINETUNE_PROGRESS and self.bar is not None:
            self.bar.update(1)
            self.bar.set_postfix(train=f"{ev.data['train_loss']:.4f}",
                                 val=f"{ev.data['val_loss']:.4f}")
        elif ev.kind in (EventKind.PAUSED, EventKind.RESUMED, EventKind.NO_GAIT_HINT,
                         EventKind.NO_GAIT, EventKind.ERROR):
            _stderr(ev.message, self.bar)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def _stderr(msg: str, bar: Any = None) -> None:
    if bar is not None:
        bar.write(msg, file=sys.stderr)
    else:
        print(msg, file=sys.stderr)
