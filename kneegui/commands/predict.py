"""`kneegui predict`: the headless predictor for controller PCs (no Qt, no window).

Reads the EMG and knee-angle LSL streams, predicts the knee trajectory 10-500 ms ahead from every
new aligned model step, and publishes it as an LSL stream (type KneeAnglePrediction, a stable
source_id per host and --outlet-name; model switches on its marker stream). Optionally records a
session (--record DIR). Prints one status line a second; SIGINT, SIGTERM and SIGHUP close it
cleanly (the recording is completed). The same pipeline code as the window
(kneegui.live.LiveSession).

Model: --model NAME|PATH (a name from `kneegui models list`, or a stem/file path); --subject ID
alone takes that subject's active or newest calibrated model; neither: the active model of the
subject model store, else the shipped emg+angle model.
"""

from __future__ import annotations

import argparse
import json
import math
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any

from kneegui.commands._errors import UserError, run_reporting


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("predict", help="headless predictor: LSL in, predictions out",
                              description=__doc__,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", help="model name (see `kneegui models list`) or stem/file path")
    p.add_argument("--subject", help="subject id: its calibrated model (and recording metadata)")
    p.add_argument("--emg", help="EMG stream: name or source_id (default: the only EMG stream)")
    p.add_argument("--angle", help="knee-angle stream: name or source_id (default: the only "
                   "stream of type Angle; optional for EMG-only models)")
    p.add_argument("--channel-map", default="", metavar="LABEL=INPUT,...",
                   help="which channel carries which model input where the labels do not say "
                   "it, e.g. \"EMG 1=RF,EMG 2=BF,EMG 3=VM,EMG 4=ST,Knee R=angle\"")
    p.add_argument("--record", type=Path, metavar="DIR", help="record a session into DIR")
    p.add_argument("--duration", type=float, default=None, metavar="S",
                   help="stop after S seconds (default: run until interrupted)")
    p.add_argument("--outlet-name", default=None,
                   help="name of the prediction stream (its source_id follows from it and the "
                   "host; default 'KneeGUI knee-angle prediction')")
    p.add_argument("--discover-timeout", type=float, default=3.0, metavar="S",
                   help="seconds to look for the LSL streams (default 3)")
    p.add_argument("--stats", type=Path, metavar="FILE",
                   help="write latency and counts as JSON here when stopping")
    p.add_argument("--stats-log", action="store_true",
                   help="with --stats: also every prediction's timing (benchmarks; the log "
                   "grows by about 50 MB per hour)")
    p.add_argument("--quiet", action="store_true", help="no status line")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    return run_reporting("predict", _run, args)


def _run(args: argparse.Namespace) -> int:
    from kneegui.live.session import LiveSession, favour_sample_path
    from kneegui.live.streams import StreamChoiceError, choose_streams, with_channel_map
    from kneegui.model.io import ModelLoadError
    from kneegui.model.layout import LayoutError, parse_channel_map

    if args.duration is not None and not (math.isfinite(args.duration) and args.duration > 0):
        raise UserError(f"--duration must be a positive number of seconds, got {args.duration}")
    if not (math.isfinite(args.discover_timeout) and args.discover_timeout > 0):
        raise UserError("--discover-timeout must be a positive number of seconds")
    try:
        channel_map = parse_channel_map(args.channel_map)
    except LayoutError as exc:
        raise UserError(f"--channel-map: {exc}") from exc
    model_path = _model_path(args)
    favour_sample_path()
    session = LiveSession(outlet_name=args.outlet_name)
    try:
        session.load_model(model_path)
    except (ModelLoadError, OSError, ValueError) as exc:
        raise UserError(str(exc)) from exc
    card = session.loaded.card
    need_angle = card.input_set != "emg"
    try:
        streams = choose_streams(args.emg, args.angle, args.discover_timeout, need_angle)
        session.connect(with_channel_map(streams, channel_map))
    except (StreamChoiceError, ValueError) as exc:
        session.close()
        raise UserError(str(exc)) from exc
    stop = threading.Event()
    _install_signal_handlers(stop)
    session.set_publishing(True)
    if session.worker is not None and args.stats and args.stats_log:
        session.worker.record_latencies()
    if args.record:
        try:
            path = session.start_recording(args.record, args.subject or "", "kneegui predict")
        except (OSError, RuntimeError, ValueError) as exc:
            session.close()
            raise UserError(f"cannot record into {args.record}: {exc}") from exc
        _say(f"recording to {path}", args.quiet)
    _say(f"predicting with {session.model_id} ({card.input_set}); publishing "
         f"'{session.outlet.name}' source_id {session.outlet.source_id}", args.quiet)
    t0 = time.monotonic()
    status = _Status(session)
    try:
        while not stop.is_set():
            stop.wait(1.0)
            if not args.quiet:
                print(status.line(time.monotonic() - t0), file=sys.stderr, flush=True)
            if args.duration is not None and time.monotonic() - t0 >= args.duration:
                break
    except KeyboardInterrupt:
        pass
    finally:
        stats = _stats(session, time.monotonic() - t0)
        recorded = session.stop_recording()
        session.close()
    if args.stats:
        args.stats.parent.mkdir(parents=True, exist_ok=True)
        args.stats.write_text(json.dumps(stats, indent=1) + "\n")
    why = "stopped by signal" if stop.is_set() else "duration reached"
    _say(f"{why}: {stats['predictions']} predictions"
         + (f", session {recorded}" if recorded else ""), args.quiet)
    return 0


def _model_path(args: argparse.Namespace) -> Path:
    """The model to run (see the module docstring)."""
    from kneegui.calibration import ModelStoreError, SubjectModelStore
    from kneegui.model import shipped_model_path

    store = SubjectModelStore()
    try:
        if args.model:
            entry = store.find(args.model)
            if args.subject and entry.subject not in (None, args.subject):
                raise UserError(f"model {entry.name} is calibrated for subject {entry.subject}, "
                                f"not {args.subject}")
            return entry.path
    except ModelStoreError as exc:
        raise UserError(str(exc)) from exc
    active = store.active_path()
    if args.subject:
        own = [e for e in store.list(kind="subject", subject=args.subject) if e.error is None]
        if not own:
            raise UserError(f"no calibrated model for subject {args.subject}: calibrate first "
                            f"(kneegui calibrate --subject {args.subject}) or pass --model")
        chosen = next((e for e in own if active is not None and e.path == active), own[0])
        return chosen.path
    return active if active is not None else shipped_model_path("emg+angle")


def _install_signal_handlers(stop: threading.Event) -> None:
    """SIGTERM / SIGHUP / SIGINT end the main loop; the session then closes cleanly."""
    def handler(signum, frame) -> None:  # noqa: ARG001
        stop.set()

    for name in ("SIGTERM", "SIGHUP", "SIGINT"):
        if hasattr(signal, name):
            signal.signal(getattr(signal, name), handler)


class _Status:
    """One status line a second: rates, gaps, predictions, latency, recording."""

    def __init__(self, session: Any) -> None:
        self.session = session
        self._last_predictions = 0

    def line(self, elapsed: float) -> str:
        s = self.session
        parts = [f"{elapsed:6.0f} s"]
        for _name, role, st, _ in s.reader_rows():
            state = "" if st.connected else " OUT"
            parts.append(f"{role} {st.effective_rate:.0f} Hz gaps {st.gaps}{state}")
        w = s.worker
        if w is not None:
            made = w.predictions
            parts.append(f"predictions {made} (+{made - self._last_predictions}/s, skipped "
                         f"{w.skipped})")
            self._last_predictions = made
            med, p99 = w.end_to_end_latency.median(), w.end_to_end_latency.percentile(99)
            if med is not None:
                parts.append(f"latency {1000 * med:.1f}/{1000 * p99:.1f} ms (median/p99)")
            if w.last_error:
                parts.append(f"ERROR {w.last_error}")
        rec = s.recording_status()
        if rec is not None:
            parts.append(f"rec {rec.state} {rec.samples_written} samples")
        return " | ".join(parts)


def _stats(session: Any, seconds: float) -> dict:
    import numpy as np

    w = session.worker
    out: dict = {"seconds": seconds, "model_id": session.model_id, "predictions": 0,
                 "source_id": session.outlet.source_id if session.outlet else None}
    if w is None:
        return out
    out.update(predictions=w.predictions, skipped=w.skipped, errors=w.errors,
               last_error=w.last_error)
    log = np.asarray(w.latency_log or [], np.float64).reshape(-1, 3)
    if len(log):
        e2e = 1000 * (log[:, 2] - log[:, 1])
        out["end_to_end_ms"] = {"median": float(np.median(e2e)),
                                "p99": float(np.percentile(e2e, 99)), "max": float(e2e.max()),
                                "n": len(e2e)}
        out["log"] = {"t": log[:, 0].tolist(), "ready": log[:, 1].tolist(),
                      "pushed": log[:, 2].tolist()}
    elif w.end_to_end_latency.median() is not None:  # the recent predictions only
        out["end_to_end_ms"] = {"median": 1000 * w.end_to_end_latency.median(),
                                "p99": 1000 * w.end_to_end_latency.percentile(99),
                                "recent": True}
    inf = w.inference_latency.values()
    if inf.size:
        out["inference_ms"] = {"median": float(1000 * np.median(inf)),
                               "p99": float(1000 * np.percentile(inf, 99))}
    return out


def _say(msg: str, quiet: bool) -> None:
    if not quiet:
        print(msg, file=sys.stderr, flush=True)
