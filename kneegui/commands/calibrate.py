"""`kneegui calibrate`: few-cycle subject calibration against live LSL streams, without a GUI.

Same protocol as the wizard: sensor check, optional rest/MVC, walking capture of K gait cycles
plus one held back, fine-tuning, before/after validation on the held-back cycle. The subject
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

EXIT_OK, EXIT_USAGE, EXIT_NO_GAIT, EXIT_FAILED, EXIT_INTERRUPTED = 0, 2, 3, 4, 130


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "calibrate",
        help="calibrate a subject from a few gait cycles (live LSL streams, headless)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--subject", required=True, help="subject id, e.g. S01")
    p.add_argument("--group", default="", help="subject group (e.g. N or A), stored in the card")
    p.add_argument("--notes", default="", help="free text stored in the card")
    p.add_argument("--cycles", type=int, default=5,
                   help="gait cycles used for adaptation (one more is held back; default 5)")
    p.add_argument("--input-set", default="emg+angle",
                   help="input set of the base model when --model is not given (default emg+angle)")
    p.add_argument("--model", help="base model: stem/file path or name in `kneegui models list` "
                   "(default: the shipped model for --input-set)")
    p.add_argument("--emg", help="EMG stream: name or source_id (default: the only EMG stream)")
    p.add_argument("--angle", help="knee-angle stream: name or source_id (default: the only "
                   "stream of type Angle)")
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


class UserError(Exception):
    """Bad input; the message is printed as-is."""


def run(args: argparse.Namespace) -> int:
    try:
        return _run(args)
    except UserError as exc:
        print(f"kneegui calibrate: {exc}", file=sys.stderr)
        return EXIT_USAGE


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

    if args.cycles < 1:
        raise UserError("--cycles must be at least 1")
    try:
        subject = SubjectInfo(args.subject, args.group, args.notes)
    except ValueError as exc:
        raise UserError(str(exc)) from exc
    store = SubjectModelStore(root=args.out) if args.out else SubjectModelStore()
    try:
        base = _base_model(store, args)
    except ModelStoreError as exc:
        raise UserError(str(exc)) from exc
    hub = _connect(args)
    reporter = _Reporter()
    protocol = CalibrationProtocol(
        base,
        config=CalibrationConfig(train_cycles=args.cycles, capture_timeout_s=args.timeout),
        on_event=reporter.on_event,
    )
    try:
        return _drive(args, protocol, hub, store, subject, reporter, base, Stage, ProtocolError)
    except KeyboardInterrupt:
        protocol.cancel()
        protocol.wait(2.0)
        print("interrupted: nothing saved, previous model kept", file=sys.stderr)
        return EXIT_INTERRUPTED
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
    protocol.update_quality(checks)
    for c in checks:
        print(f"  {c.label}: {c.status}{' - ' + c.reason if c.reason else ''}", file=sys.stderr)
    try:
        protocol.confirm_sensors(override=args.override_sensors)
    except ProtocolError as exc:
        raise UserError(f"{exc} (--override-sensors)") from exc

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
    walking_s = protocol.capture_seconds
    if protocol.stage == Stage.FAILED and protocol.error == "no_gait":
        _write_json(args.json, {"subject": subject.subject_id, "status": "no_gait",
                                "message": reporter.last_message, "saved": None})
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


def _connect(args: argparse.Namespace) -> Any:
    from kneegui.acquisition import Hub, Role, StreamReader
    from kneegui.live.streams import StreamChoiceError, choose_streams

    try:
        emg, angle = choose_streams(args.emg, args.angle, args.discover_timeout)
    except StreamChoiceError as exc:
        raise UserError(str(exc)) from exc
    hub = Hub(model_rate=100.0)
    try:
        hub.assign(Role.EMG, StreamReader(emg.info, role=Role.EMG))
        hub.assign(Role.KNEE_ANGLE, StreamReader(angle.info, role=Role.KNEE_ANGLE))
    except ValueError as exc:
        raise UserError(str(exc)) from exc
    hub.start()
    return hub


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
