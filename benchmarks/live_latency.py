"""Sample to prediction: latency and losses of the live path, measured across processes.

A sender process pushes EMG (4 or 16 channels at 2 kHz) and a knee angle (100 Hz or 1 kHz) in
chunks of 1 sample, 10 ms or 50 ms, each sample stamped with its exact time. The predictor runs
headless (`kneegui predict`, its own process) or inside the window (offscreen), with or without
recording. A separate consumer process reads the prediction outlet. Per configuration:

* ``pushed_minus_input_ms``: (prediction pushed, LSL clock) - (stamp of the newest input sample
  the prediction needed), from the predictor;
* ``received_minus_input_ms``: the consumer's receive time - that stamp (carried by the outlet's
  ``newest_input_ms`` channel);
* predictions pushed vs received by the consumer, and rows the predictor skipped.
Targets: median <= chunk period + 5 ms, p99 <= chunk period + 15 ms (chunk period: the longest
time a sample waits in the sender's chunk; 1-sample chunks: one angle sample period), 0 lost.

    .venv/bin/python benchmarks/live_latency.py [--seconds 15] [--quick]

Modes: ``headless`` / ``headless+record`` (`kneegui predict`), ``gui`` / ``gui+record`` (the
window with its predictor process, the default), ``gui-in-process`` (the window and the sample
path in one process: the design the predictor process replaced, for comparison).

Prints JSON (one entry per configuration and mode).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import bench_streams

REPO = Path(__file__).resolve().parent.parent
EMG_RATE = 2000.0
#: Seconds after the first prediction left out of the latency figures (start-up).
WARM_UP_S = 2.0
#: A sender push that leaves this long (s) after its samples' stamps is reported as late: its
#: delay is the sender's (a busy machine), not the live path's.
SENDER_LATE_S = 0.005
KNEEGUI = [sys.executable, "-m", "kneegui"]


# -- sender ---------------------------------------------------------------------------------
def sender_main(tag: str, emg_channels: int, angle_rate: float, chunk: str,
                seconds: float) -> None:
    """Push EMG + angle with exact stamps in the given chunking until ``seconds`` passed."""
    import numpy as np
    import pylsl

    emg_out, ang_out = bench_streams.outlets(tag, emg_channels, EMG_RATE, angle_rate, "lat")
    deadline = time.monotonic() + 90
    while not (emg_out.have_consumers() and ang_out.have_consumers()):
        if time.monotonic() > deadline:
            print(json.dumps({"error": "no consumer within 90 s"}), flush=True)
            return
        time.sleep(0.02)
    period = {"1": None, "10ms": 0.010, "50ms": 0.050}[chunk]
    rng = np.random.default_rng(0)
    t0 = pylsl.local_clock() + 0.2
    n_emg = n_ang = 0
    end = t0 + seconds
    step = 1.0 / EMG_RATE if period is None else period
    due = t0
    late = []  # (stamp, seconds after it) of pushes that left later than SENDER_LATE_S
    while due < end:
        now = pylsl.local_clock()
        if now < due:
            time.sleep(min(due - now, 0.002))
            continue
        want_e = int((due - t0) * EMG_RATE) + 1
        want_a = int((due - t0) * angle_rate) + 1
        if want_e > n_emg:
            ts = t0 + np.arange(n_emg, want_e) / EMG_RATE
            emg_out.push_chunk(bench_streams.emg_samples(ts, emg_channels, rng), ts)
            n_emg = want_e
        if want_a > n_ang:
            ts = t0 + np.arange(n_ang, want_a) / angle_rate
            ang_out.push_chunk(bench_streams.angle_samples(ts), ts)
            n_ang = want_a
        behind = pylsl.local_clock() - due
        if behind > SENDER_LATE_S:
            late.append((due, behind))
        due += step
    time.sleep(1.0)
    print(json.dumps({"emg_sent": n_emg, "angle_sent": n_ang, "t0": t0, "late": late}),
          flush=True)


# -- consumer -------------------------------------------------------------------------------
def consumer_main(source_id: str, stop_file: str, out: str) -> None:
    """Read the prediction outlet until ``stop_file`` exists and nothing came for 1 s; write
    (receive time, stamp, newest input ms) per sample."""
    import pylsl

    found = pylsl.resolve_byprop("source_id", source_id, minimum=1, timeout=60)
    if not found:
        Path(out).write_text(json.dumps({"error": "prediction outlet not found"}))
        return
    inlet = pylsl.StreamInlet(found[0], max_buflen=60, recover=True)
    inlet.open_stream(timeout=10)
    rows: list[tuple[float, float, float]] = []
    last = time.monotonic()
    while not (Path(stop_file).exists() and time.monotonic() - last > 1.0):
        # min_samples=1: return as soon as a prediction is there (a controller's pull)
        chunk, stamps = inlet.pull_chunk(timeout=0.2, min_samples=1)
        now = pylsl.local_clock()
        if stamps:
            last = time.monotonic()
        for sample, t in zip(chunk, stamps, strict=True):
            rows.append((now, t, sample[-1]))
    Path(out).write_text(json.dumps({"rows": rows}))


# -- window (offscreen) as the predictor ----------------------------------------------------
def gui_main(tag: str, outlet_name: str, seconds: float, record: bool, out: str,
             in_process: bool = False) -> None:
    """The main window connected to the sender's streams, predicting and publishing (its
    predictor process, or in the window's process with ``in_process``)."""
    from PySide6 import QtCore

    from kneegui.acquisition.discovery import resolve_source_id
    from kneegui.gui.app import make_app
    from kneegui.gui.demo_runner import default_model_path, lab_assignments
    from kneegui.gui.main_window import MainWindow
    from kneegui.live.remote import RemoteSession
    from kneegui.live.session import LiveSession

    app = make_app()
    tmp = Path(tempfile.mkdtemp(prefix="kneegui_latency_"))
    settings = QtCore.QSettings(str(tmp / "bench.ini"), QtCore.QSettings.IniFormat)
    session = (LiveSession if in_process else RemoteSession)(outlet_name=outlet_name)
    win = MainWindow(session=session, settings=settings)
    win.resize(1920, 1080)
    win.show()
    infos = [resolve_source_id(f"lat-{kind}-{tag}", timeout=30)[0] for kind in ("emg", "angle")]
    assert win.connect_streams(lab_assignments(infos)), win.banners.messages()
    assert win.load_model(str(default_model_path())), win.banners.messages()
    win.set_publishing(True)
    win.session.worker.record_latencies()
    win.window_spin.setValue(10)
    if record:
        assert win.start_recording(str(tmp), "bench", "latency benchmark") is not None
    stats_type = type(win.frame_intervals)
    win.frame_intervals = stats_type(100_000)
    collected: dict = {}
    t_end = time.monotonic() + seconds

    def finish() -> None:
        if time.monotonic() < t_end or collected:
            return
        worker = win.session.worker
        collected["log"] = list(worker.latency_log or [])
        collected["predictions"] = worker.predictions
        collected["skipped"] = worker.skipped
        collected["frames"] = win.frame_intervals.values().tolist()
        if record:
            win.stop_recording()
        app.quit()

    poll = QtCore.QTimer()
    poll.timeout.connect(finish)
    poll.start(100)
    app.exec()
    win.close()
    Path(out).write_text(json.dumps(collected))


# -- orchestration --------------------------------------------------------------------------
def _summary(values_ms):
    import numpy as np

    v = np.asarray(values_ms, np.float64)
    if not v.size:
        return None
    return {"median": round(float(np.median(v)), 2), "p99": round(float(np.percentile(v, 99)), 2),
            "max": round(float(v.max()), 2), "n": int(v.size)}


def run_config(emg_channels: int, angle_rate: float, chunk: str, mode: str,
               seconds: float) -> dict:
    import numpy as np

    tag = uuid.uuid4().hex[:8]
    outlet_name = f"latency bench {tag}"
    tmp = Path(tempfile.mkdtemp(prefix="kneegui_lat_"))
    env = {**os.environ, "LSLAPICFG": os.environ.get("LSLAPICFG",
                                                    str(REPO / "tests" / "lsl_api.cfg"))}
    total = seconds + 10.0  # start-up margin for the predictor
    sender = subprocess.Popen([sys.executable, __file__, "--sender", tag, str(emg_channels),
                               str(angle_rate), chunk, str(total)], stdout=subprocess.PIPE,
                              text=True, env=env)
    stats = tmp / "stats.json"
    gui_out = tmp / "gui.json"
    if mode.startswith("headless"):
        cmd = [*KNEEGUI, "predict", "--emg", f"lat-emg-{tag}", "--angle", f"lat-angle-{tag}",
               "--outlet-name", outlet_name, "--duration", str(total - 2.0), "--stats",
               str(stats), "--stats-log", "--quiet"]
        if "record" in mode:
            cmd += ["--record", str(tmp / "rec")]
        predictor = subprocess.Popen(cmd, env=env, stderr=subprocess.PIPE, text=True)
    else:
        predictor = subprocess.Popen(
            [sys.executable, __file__, "--gui", tag, outlet_name, str(total - 2.0),
             ("1" if "record" in mode else "0") + ("p" if "in-process" in mode else ""),
             str(gui_out)],
            env={**env, "QT_QPA_PLATFORM": "offscreen"}, stderr=subprocess.PIPE, text=True)
    from kneegui.live.outlet import stable_source_id

    consumer_out = tmp / "consumer.json"
    stop_file = tmp / "stop"
    consumer = subprocess.Popen([sys.executable, __file__, "--consumer",
                                 stable_source_id(outlet_name), str(stop_file),
                                 str(consumer_out)], env=env)
    predictor_err = predictor.communicate(timeout=total + 120)[1]
    stop_file.touch()
    consumer.wait(timeout=60)
    sent = json.loads(sender.communicate(timeout=60)[0].strip().splitlines()[-1])
    late = sent.pop("late", [])
    result: dict = {"emg": f"{emg_channels} ch @ 2 kHz", "angle_hz": angle_rate,
                    "chunk": chunk, "mode": mode, "samples_sent": sent,
                    # the sender's own delays (a busy machine), counted in the latency figures
                    "sender_late_pushes": {
                        "over_ms": 1000 * SENDER_LATE_S, "count": len(late),
                        "max_ms": round(1000 * max((b for _, b in late), default=0.0), 1)}}
    if mode.startswith("headless"):
        if not stats.is_file():
            result["error"] = predictor_err[-2000:]
            return result
        data = json.loads(stats.read_text())
        log = np.column_stack([data["log"]["t"], data["log"]["ready"], data["log"]["pushed"]])
        pushed, skipped = data["predictions"], data["skipped"]
    else:
        if not gui_out.is_file():
            result["error"] = predictor_err[-2000:]
            return result
        data = json.loads(gui_out.read_text())
        log = np.asarray(data["log"], np.float64).reshape(-1, 3)
        pushed, skipped = data["predictions"], data["skipped"]
        frames = np.asarray(data["frames"]) * 1000
        result["gui_frame_interval_ms"] = _summary(frames)
    consumed = json.loads(consumer_out.read_text())
    rows = np.asarray(consumed.get("rows", []), np.float64).reshape(-1, 3)
    chunk_s = {"1": 1.0 / angle_rate, "10ms": 0.010, "50ms": 0.050}[chunk]
    grid = np.round(log[:, 0] * 100).astype(np.int64) if len(log) else np.zeros(0, int)
    # Steady state: the first WARM_UP_S seconds of predictions (model and LSL start-up) are
    # counted for losses but not for latency.
    steady = log[log[:, 2] >= log[0, 2] + WARM_UP_S] if len(log) else log
    rows_steady = rows[rows[:, 0] >= rows[0, 0] + WARM_UP_S] if len(rows) else rows
    result.update({
        "pushed_minus_input_ms": _summary(1000 * (steady[:, 2] - steady[:, 1])),
        "received_minus_input_ms": _summary(1000 * (rows_steady[:, 0] - rows_steady[:, 1])
                                            - rows_steady[:, 2]) if len(rows_steady) else None,
        "predictions_pushed": int(pushed),
        "predictions_received": int(len(rows)),
        # pushed once the consumer was connected (from its first sample on) and never received
        "predictions_lost": _lost(log, rows, pushed),
        "rows_skipped_by_gaps": int(skipped),
        "rows_missing_between_predictions": int((np.diff(grid) - 1).clip(0).sum()),
        "target_ms": {"median": round(1000 * chunk_s + 5, 1),
                      "p99": round(1000 * chunk_s + 15, 1)},
    })
    return result


def _lost(log, rows, pushed: int) -> int:
    """Predictions the predictor logged (from the consumer's first sample on) that the
    consumer never received, matched by their grid time."""
    import numpy as np

    if not len(rows):
        return int(pushed)
    sent = set(np.round(log[:, 0] * 100).astype(np.int64).tolist())
    got = set(np.round(rows[:, 1] * 100).astype(np.int64).tolist())
    first = min(got)
    return len({k for k in sent if k >= first} - got)


CONFIGS = [(e, a, c) for e in (4, 16) for a in (100.0, 1000.0) for c in ("1", "10ms", "50ms")]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=15.0)
    ap.add_argument("--quick", action="store_true",
                    help="one configuration per mode (16 ch, angle 100 Hz, 10 ms chunks)")
    ap.add_argument("--modes", default="headless,headless+record,gui,gui+record")
    ap.add_argument("--angle-rates", default="100,1000",
                    help="knee-angle rates (Hz) to run (default: all: 100,1000)")
    ap.add_argument("--chunks", default="1,10ms,50ms",
                    help="sender chunkings to run (default: all: 1,10ms,50ms)")
    ap.add_argument("--sender", nargs=5)
    ap.add_argument("--consumer", nargs=3)
    ap.add_argument("--gui", nargs=5)
    args = ap.parse_args()
    if args.sender:
        tag, e, a, c, s = args.sender
        sender_main(tag, int(e), float(a), c, float(s))
        return
    if args.consumer:
        sid, s, out = args.consumer
        consumer_main(sid, s, out)
        return
    if args.gui:
        tag, name, s, rec, out = args.gui
        gui_main(tag, name, float(s), rec.startswith("1"), out, in_process=rec.endswith("p"))
        return
    modes = [m for m in args.modes.split(",") if m]
    results = []
    for mode in modes:
        configs = CONFIGS
        if args.quick:
            configs = [(16, 100.0, "10ms")]
        elif mode.startswith("gui"):  # the window on the heaviest EMG, every chunking
            configs = [(16, a, c) for a in (100.0, 1000.0) for c in ("1", "10ms", "50ms")]
        for e, a, c in configs:
            if c not in args.chunks.split(",") or a not in [
                    float(r) for r in args.angle_rates.split(",")]:
                continue
            t0 = time.monotonic()
            res = run_config(e, a, c, mode, args.seconds)
            res["wall_s"] = round(time.monotonic() - t0, 1)
            print(json.dumps(res), file=sys.stderr, flush=True)
            results.append(res)
    print(json.dumps({"benchmark": "live_latency", "seconds_per_run": args.seconds,
                      "machine_cores": os.cpu_count(),
                      "load_average_1min": round(os.getloadavg()[0], 2),
                      "results": results}, indent=1))


if __name__ == "__main__":
    main()
