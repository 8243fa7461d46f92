"""Soak: 16 ch EMG at 2 kHz + knee angle at 100 Hz into `kneegui record`, with faults, for long.

Senders: the shared ``lsl_fault_sender.py`` (channel 0 counts samples; ``--log`` keeps what was
sent). They are stopped (SIGTERM, or SIGKILL with ``--sender-signal KILL``) and restarted every
``--sender-period`` s, each time continuing the counter; one restart comes back with its clock
reset (stamps far from real time that later jump back). The recorder (`kneegui record --out
DIR`, one process) is SIGKILLed at ``--recorder-kills`` random times and restarted at once.
Its RSS is sampled every ``--rss-interval`` s. Afterwards every session file is read and compared
with what the senders sent.

Prints JSON: per sender segment samples sent vs recorded (and missed at its start), per recorder
kill the seconds lost before the kill (data sent before the kill, not in the file) and the
restart gap, reconnect time after sender restarts, time-axis checks (no smeared or NaN stamps,
no false gap events), RSS growth per hour after warm-up per recorder run.

The headless predictor (`kneegui predict`, shipped emg+angle model, EMG channels c1..c4 mapped
to its inputs) runs beside the recorder for the whole soak (not killed) and publishes its
predictions; a consumer inlet in this process receives them. Reported: predictions made (its
--stats), received, the model steps without a prediction outside sender restarts ("lost"), how
long predictions pause at each sender restart, and the predictor's RSS growth per hour.

``--overload-at S`` puts a load beside the soak from S seconds on (``--overload-procs`` spinning
processes for ``--overload-seconds``, or ``--overload-cmd``, e.g. the suite next to odd outlets:
``benchmarks/busy_lab.py``) and reports, for the recorder and the predictor, RSS before, during
and after it: what an overload leaves resident, and whether memory still grows afterwards.

    .venv/bin/python benchmarks/soak.py --duration 1800 [--sender-period 120]
        [--recorder-kills 3] [--no-predict] [--out DIR] [--json FILE]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import shlex
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path

import h5py
import numpy as np
import psutil

REPO = Path(__file__).resolve().parents[1]
FAULT_SENDER = Path(os.environ.get("KNEEGUI_FAULT_SENDER",
                                   REPO.parent / "shared/tools/lsl_fault_sender.py"))


@dataclass
class StreamPlan:
    key: str  # "emg" | "angle"
    name: str
    source_id: str
    stype: str
    channels: int
    rate: float
    chunk: int


@dataclass
class Segment:
    """One run of one sender process."""

    stream: str
    index: int
    first_index: int
    t_start: float  # LSL clock when the process was started
    clock_reset: bool
    log: str
    t_stop: float | None = None
    sent: int | None = None


@dataclass
class Incarnation:
    """One run of the recorder process."""

    index: int
    pid: int
    t_start: float
    t_end: float | None = None
    killed: bool = False
    rss: list[tuple[float, int]] = field(default_factory=list)


def lsl_now() -> float:
    import pylsl

    return float(pylsl.local_clock())


class Soak:
    def __init__(self, args: argparse.Namespace, out: Path):
        self.args = args
        self.out = out
        self.env = dict(os.environ)
        self.env.setdefault("LSLAPICFG", str(REPO / "tests" / "lsl_api.cfg"))
        os.environ.setdefault("LSLAPICFG", self.env["LSLAPICFG"])
        tag = uuid.uuid4().hex[:6]
        self.plans = [
            StreamPlan("emg", f"SoakEMG-{tag}", f"soak-emg-{tag}", "EMG", args.emg_channels,
                       args.emg_rate, max(1, int(args.emg_rate / 100))),
            StreamPlan("angle", f"SoakAngle-{tag}", f"soak-angle-{tag}", "Angle", 1,
                       args.angle_rate, 1),
        ]
        self.segments: list[Segment] = []
        self.senders: dict[str, subprocess.Popen] = {}
        self.incarnations: list[Incarnation] = []
        self.recorder: subprocess.Popen | None = None
        self.predictor: subprocess.Popen | None = None
        self.predictor_rss: list[tuple[float, int]] = []
        self.prediction_stamps: list[float] = []
        self.prediction_outlet = f"Soak prediction {tag}"
        self._lock = threading.Lock()
        self._stop_rss = threading.Event()
        self.hogs: list[subprocess.Popen] = []
        self.overload_window: tuple[float, float] | None = None  # LSL clock, start and end

    # -- senders ---------------------------------------------------------------------------
    def start_sender(self, plan: StreamPlan, clock_reset: bool) -> None:
        previous = [s for s in self.segments if s.stream == plan.key]
        first = 0
        if previous:
            last = previous[-1]
            first = last.first_index + (last.sent or 0) + (
                0 if self.args.sender_signal == "TERM" else int(2 * plan.rate))
        log = str(self.out / f"sender_{plan.key}_{len(previous)}.json")
        cmd = [sys.executable, str(FAULT_SENDER), "--name", plan.name, "--source-id",
               plan.source_id, "--type", plan.stype, "--ch", str(plan.channels), "--rate",
               str(plan.rate), "--chunk", str(plan.chunk), "--duration", "1e9", "--log", log,
               "--start-index", str(first)]
        if clock_reset:  # stamps start far from real time, then jump back
            cmd += ["--ts", "jumpback", "--jump-at", str(self.args.sender_period / 2),
                    "--jump", "50"]
        self.senders[plan.key] = subprocess.Popen(cmd, stdout=subprocess.DEVNULL,
                                                  stderr=subprocess.DEVNULL, env=self.env)
        self.segments.append(Segment(plan.key, len(previous), first, lsl_now(), clock_reset,
                                     log))

    def stop_sender(self, plan: StreamPlan) -> None:
        proc = self.senders.pop(plan.key)
        seg = [s for s in self.segments if s.stream == plan.key][-1]
        seg.t_stop = lsl_now()
        proc.send_signal(signal.SIGTERM if self.args.sender_signal == "TERM"
                         else signal.SIGKILL)
        proc.wait(30)
        try:
            info = json.loads(Path(seg.log).read_text())
            seg.sent = int(info["sent"])
        except (OSError, ValueError, KeyError):
            seg.sent = 0

    # -- recorder --------------------------------------------------------------------------
    def start_recorder(self) -> None:
        n = len(self.incarnations)
        errlog = open(self.out / f"recorder_{n}.log", "w")  # noqa: SIM115 - closed by the child
        self.recorder = subprocess.Popen(
            [sys.executable, "-m", "kneegui", "record", "--out", str(self.out / "sessions"),
             "--subject", f"soak{n:02d}", "--streams", *[p.source_id for p in self.plans],
             "--discover-timeout", "2", "--quiet"],
            stdout=errlog, stderr=errlog, env=self.env)
        with self._lock:
            self.incarnations.append(Incarnation(n, self.recorder.pid, lsl_now()))

    def kill_recorder(self, sig: int = signal.SIGKILL) -> None:
        proc, self.recorder = self.recorder, None
        with self._lock:
            inc = self.incarnations[-1]
            inc.t_end = lsl_now()
            inc.killed = sig == signal.SIGKILL
        proc.send_signal(sig)
        proc.wait(60)

    # -- headless predictor -------------------------------------------------------------------
    def start_predictor(self) -> None:
        emg, angle = self.plans
        self.predictor = subprocess.Popen(
            [sys.executable, "-m", "kneegui", "predict", "--emg", emg.source_id, "--angle",
             angle.source_id, "--channel-map", "c1=RF,c2=BF,c3=VM,c4=ST",
             "--outlet-name", self.prediction_outlet, "--discover-timeout", "5",
             "--stats", str(self.out / "predictor_stats.json"), "--quiet"],
            stdout=open(self.out / "predictor.log", "w"),  # noqa: SIM115 - closed by the child
            stderr=subprocess.STDOUT, env=self.env)
        threading.Thread(target=self._consume, daemon=True).start()

    def stop_predictor(self) -> None:
        if self.predictor is None:
            return
        self.predictor.send_signal(signal.SIGTERM)
        try:
            self.predictor.wait(60)
        except subprocess.TimeoutExpired:
            self.predictor.kill()
            self.predictor.wait()

    def _consume(self) -> None:
        """Receive every prediction (stamps only) as a controller would."""
        import pylsl

        from kneegui.live.outlet import stable_source_id

        sid = stable_source_id(self.prediction_outlet)
        found = []
        while not found and not self._stop_rss.is_set():
            found = pylsl.resolve_byprop("source_id", sid, minimum=1, timeout=2.0)
        if not found:
            return
        inlet = pylsl.StreamInlet(found[0], max_buflen=60, recover=True)
        while not self._stop_rss.is_set():
            _, stamps = inlet.pull_chunk(timeout=0.5, max_samples=4096)
            if stamps:
                with self._lock:
                    self.prediction_stamps.extend(stamps)
        # whatever is still on its way after the predictor stopped
        for _ in range(10):
            _, stamps = inlet.pull_chunk(timeout=0.2, max_samples=4096)
            with self._lock:
                self.prediction_stamps.extend(stamps)

    def _sample_rss(self) -> None:
        while not self._stop_rss.wait(self.args.rss_interval):
            with self._lock:
                inc = self.incarnations[-1] if self.incarnations else None
            if self.predictor is not None and self.predictor.poll() is None:
                with contextlib.suppress(psutil.Error):
                    self.predictor_rss.append(
                        (lsl_now(), psutil.Process(self.predictor.pid).memory_info().rss))
            if inc is None or inc.t_end is not None:
                continue
            try:
                rss = psutil.Process(inc.pid).memory_info().rss
            except psutil.Error:
                continue
            inc.rss.append((lsl_now(), rss))

    # -- overload ----------------------------------------------------------------------------
    def start_overload(self) -> None:
        """The load beside the soak: ``--overload-cmd`` (e.g. the test suite next to odd
        outlets: ``benchmarks/busy_lab.py``), or CPU hogs (one spinning Python process each)."""
        if self.args.overload_cmd:
            self.hogs = [subprocess.Popen(shlex.split(self.args.overload_cmd), cwd=REPO,
                                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                          env=self.env, start_new_session=True)]
        else:
            self.hogs = [subprocess.Popen([sys.executable, "-c", "while True: pass"])
                         for _ in range(self.args.overload_procs)]
        self.overload_window = (lsl_now(), float("inf"))

    def overload_running(self) -> bool:
        return self.overload_window is not None and self.overload_window[1] == float("inf")

    def stop_overload(self) -> None:
        """Stop what is left of the load (a command that ended by itself counts until then)."""
        for hog in self.hogs:
            if hog.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    if self.args.overload_cmd:  # the command and everything it started
                        os.killpg(hog.pid, signal.SIGKILL)
                    else:
                        hog.kill()
            hog.wait()
        self.hogs = []
        if self.overload_running():
            self.overload_window = (self.overload_window[0], lsl_now())

    # -- schedule --------------------------------------------------------------------------
    def run(self) -> None:
        a = self.args
        rng = random.Random(a.seed)
        t0 = time.monotonic()
        kills = sorted(rng.uniform(a.warmup, max(a.warmup + 1, a.duration - 30))
                       for _ in range(a.recorder_kills))
        restarts = [float(x) for x in np.arange(a.sender_period, a.duration - 5, a.sender_period)]
        reset_at = restarts[len(restarts) // 2] if restarts else None
        overload = ((a.overload_at, a.overload_at + a.overload_seconds)
                    if a.overload_at is not None else None)
        for plan in self.plans:
            self.start_sender(plan, clock_reset=False)
        time.sleep(1.0)
        self.start_recorder()
        if a.predict:
            self.start_predictor()
        sampler = threading.Thread(target=self._sample_rss, daemon=True)
        sampler.start()
        try:
            while True:
                now = time.monotonic() - t0
                if now >= a.duration:
                    break
                if (overload and self.overload_window is None
                        and overload[0] <= now < overload[1]):
                    self.start_overload()
                if self.overload_running() and (now >= overload[1] or (
                        self.args.overload_cmd and self.hogs[0].poll() is not None)):
                    self.stop_overload()
                if kills and now >= kills[0]:
                    kills.pop(0)
                    self.kill_recorder()
                    self.start_recorder()
                if restarts and now >= restarts[0]:
                    at = restarts.pop(0)
                    for plan in self.plans:
                        self.stop_sender(plan)
                    time.sleep(a.sender_pause)
                    for plan in self.plans:
                        self.start_sender(plan, clock_reset=(at == reset_at
                                                             and plan.key == "emg"))
                if a.progress:
                    print(f"\rsoak {now:7.0f}/{a.duration:.0f} s", end="", file=sys.stderr)
                time.sleep(0.2)
        finally:
            self.stop_overload()
            self.kill_recorder(signal.SIGINT)  # a clean stop at the end
            self.stop_predictor()
            time.sleep(1.0)  # the consumer takes what is still on its way
            self._stop_rss.set()
            for plan in list(self.plans):
                if plan.key in self.senders:
                    self.stop_sender(plan)
            if a.progress:
                print(file=sys.stderr)


# -- analysis ------------------------------------------------------------------------------
def _files(out: Path) -> list[tuple[float, Path]]:
    found = []
    for path in (out / "sessions").glob("*.h5"):
        try:
            with h5py.File(path, "r") as f:
                found.append((float(f.attrs["session_start_lsl"]), path))
        except OSError:
            continue
    return sorted(found)


def _stream_data(path: Path, name: str) -> tuple[np.ndarray, np.ndarray]:
    from kneegui.recording.layout import sanitize_name

    with h5py.File(path, "r") as f:
        group = f.get(f"streams/{sanitize_name(name)}")
        if group is None:
            return np.zeros(0, np.int64), np.zeros(0)
        n = min(group["data"].shape[0], group["timestamps"].shape[0])
        return (np.rint(group["data"][:n, 0]).astype(np.int64),
                np.asarray(group["timestamps"][:n], dtype=np.float64))


def _events(path: Path) -> list[tuple[float, str]]:
    with h5py.File(path, "r") as f:
        if "events" not in f:
            return []
        ts = f["events/timestamp"][:]
        labels = f["events/label"].asstr()[:]
    return list(zip(ts.tolist(), labels.tolist(), strict=True))


def _slope_mb_per_h(points: list[tuple[float, int]], warmup: float) -> float | None:
    if len(points) < 3:
        return None
    t = np.array([p[0] for p in points])
    rss = np.array([p[1] for p in points], dtype=np.float64) / 1e6
    keep = t >= t[0] + warmup
    if keep.sum() < 3 or np.ptp(t[keep]) < 60:
        return None
    slope = np.polyfit(t[keep] - t[keep][0], rss[keep], 1)[0]
    return float(slope * 3600.0)


def _rss_shape(points: list[tuple[float, int]], warmup: float) -> dict:
    """The RSS curve after warm-up: slope of its first and second half (MB/h; a leak keeps its
    slope, buffers and caches filling up flatten) and the curve every ~60 s (s, MB)."""
    if len(points) < 6:
        return {}
    t = np.array([p[0] for p in points])
    t = t - t[0]
    half = warmup + (t[-1] - warmup) / 2
    first = [p for p, tt in zip(points, t, strict=True) if tt <= half]
    second = [p for p, tt in zip(points, t, strict=True) if tt >= half]
    step = max(1, int(len(points) * 60 / max(t[-1], 1.0)))
    return {"first_half_mb_per_h": _slope_mb_per_h(first, warmup),
            "second_half_mb_per_h": _slope_mb_per_h(second, 0.0),
            "curve_s_mb": [[round(float(tt)), round(p[1] / 1e6, 1)]
                           for p, tt in list(zip(points, t, strict=True))[::step]]}


def _overload_residue(points: list[tuple[float, int]],
                      window: tuple[float, float] | None, settle: float) -> dict | None:
    """RSS before an overload (median of the last 60 s before it), its peak during the load, and
    after it (median from ``settle`` s after its end to the end of the run): what it left
    resident (after - before, MB) and the slope after it (MB/h)."""
    if window is None or len(points) < 6:
        return None
    start, end = window
    t = np.array([p[0] for p in points])
    mb = np.array([p[1] for p in points], dtype=np.float64) / 1e6
    before = mb[(t >= start - 60.0) & (t < start)]
    during = mb[(t >= start) & (t <= end)]
    after_mask = t >= end + settle
    after = mb[after_mask]
    if before.size == 0 or after.size == 0:
        return {"note": "this run does not cover the overload and the time after it"}
    after_points = [p for p, keep in zip(points, after_mask, strict=True) if keep]
    return {"before_mb": float(np.median(before)),
            "peak_during_mb": float(during.max()) if during.size else None,
            "after_mb": float(np.median(after)),
            "left_resident_mb": float(np.median(after) - np.median(before)),
            "after_slope_mb_per_h": _slope_mb_per_h(after_points, 0.0),
            "after_seconds": float(t[-1] - (end + settle))}


def analyse(soak: Soak) -> dict:
    a = soak.args
    files = _files(soak.out)
    result: dict = {"files": len(files)}
    time_axis = {}
    segments_out = []
    for plan in soak.plans:
        counters, stamps, file_idx = [], [], []
        for i, (_, path) in enumerate(files):
            c, t = _stream_data(path, plan.name)
            counters.append(c)
            stamps.append(t)
            file_idx.append(np.full(len(c), i))
            if len(t):
                steps = np.diff(t)
                same_seg = np.diff(c) == 1  # consecutive samples of one sender segment
                time_axis.setdefault(plan.key, {"nan_stamps": 0, "non_increasing": 0,
                                                "smeared_steps": 0})
                ax = time_axis[plan.key]
                ax["nan_stamps"] += int(np.count_nonzero(~np.isfinite(t)))
                ax["non_increasing"] += int(np.count_nonzero(steps <= 0))
                ax["smeared_steps"] += int(np.count_nonzero(
                    same_seg & (steps < 0.5 / plan.rate)))
        c_all = np.concatenate(counters) if counters else np.zeros(0, np.int64)
        t_all = np.concatenate(stamps) if stamps else np.zeros(0)
        for seg in [s for s in soak.segments if s.stream == plan.key]:
            lo, hi = seg.first_index, seg.first_index + (seg.sent or 0)
            inside = (c_all >= lo) & (c_all < hi)
            got = np.unique(c_all[inside])
            first_t = float(t_all[inside].min()) if inside.any() else None
            at_start = int(got.min()) - lo if got.size else 0
            at_end = hi - 1 - int(got.max()) if got.size else 0
            missing = int((seg.sent or 0) - got.size)
            segments_out.append({
                "stream": plan.key, "segment": seg.index, "clock_reset": seg.clock_reset,
                "sent": seg.sent, "recorded": int(got.size),
                "duplicates": int(inside.sum() - got.size),
                "missing": missing,
                "missed_at_start_s": at_start / plan.rate if got.size else None,
                "missed_at_end_s": at_end / plan.rate if got.size else None,
                "missing_inside_s": (missing - at_start - at_end) / plan.rate,
                "reconnect_s": (first_t - seg.t_start) if first_t is not None else None,
            })
    result["segments"] = segments_out
    # recorder kills: data sent before the kill that is not in the killed file
    kills = []
    for inc in soak.incarnations:
        if not inc.killed:
            continue
        own = [(start, path) for start, path in files if inc.t_start <= start < inc.t_end]
        if not own:
            kills.append({"t_kill": inc.t_end, "lost_before_kill_s": {},
                          "restart_gap_s": None, "note": "killed before its file existed"})
            continue
        start, path = own[-1]
        per_stream = {}
        for plan in soak.plans:
            _, t = _stream_data(path, plan.name)
            per_stream[plan.key] = float(inc.t_end - t[-1]) if len(t) else None
        nxt = [s for s, _ in files if s > start]
        kills.append({"t_kill": inc.t_end, "lost_before_kill_s": per_stream,
                      "restart_gap_s": (nxt[0] - inc.t_end) if nxt else None})
    result["recorder_kills"] = kills
    lost = [v for k in kills for v in k["lost_before_kill_s"].values() if v is not None]
    result["lost_per_kill_s_max"] = max(lost) if lost else None
    result["lost_per_kill_s_median"] = float(np.median(lost)) if lost else None
    restarts = [s for s in segments_out if s["segment"] > 0]
    missed = [s["missed_at_start_s"] for s in restarts if s["missed_at_start_s"] is not None]
    result["sender_restarts"] = len(restarts) // max(1, len(soak.plans))
    result["missed_at_sender_restart_s_max"] = max(missed) if missed else None
    result["missed_at_sender_restart_s_median"] = float(np.median(missed)) if missed else None
    reconnect = [s["reconnect_s"] for s in restarts if s["reconnect_s"] is not None]
    result["reconnect_s_median"] = float(np.median(reconnect)) if reconnect else None
    result["reconnect_s_max"] = max(reconnect) if reconnect else None
    result["time_axis"] = time_axis
    # events: gaps reported although the counters show nothing missing inside a segment
    events = [e for _, path in files for e in _events(path)]
    kinds: dict[str, int] = {}
    for _, label in events:
        kind = label.split(":", 1)[0]
        kinds[kind] = kinds.get(kind, 0) + 1
    result["events"] = kinds
    # inside a sender segment, samples are lost only while the recorder restarts after a kill
    gaps = [k["restart_gap_s"] for k in kills if k.get("restart_gap_s") is not None]
    result["missing_inside_segments_s"] = {
        plan.key: sum(s["missing_inside_s"] for s in segments_out if s["stream"] == plan.key)
        for plan in soak.plans}
    result["recorder_restart_gaps_s_total"] = sum(gaps)
    ends = [s["missed_at_end_s"] for s in segments_out if s["missed_at_end_s"] is not None]
    result["missed_at_sender_stop_s_max"] = max(ends) if ends else None
    result["rss"] = [{
        "run": inc.index, "killed": inc.killed,
        "seconds": (inc.t_end or lsl_now()) - inc.t_start,
        "rss_mb_first": inc.rss[0][1] / 1e6 if inc.rss else None,
        "rss_mb_last": inc.rss[-1][1] / 1e6 if inc.rss else None,
        "growth_mb_per_h_after_warmup": _slope_mb_per_h(inc.rss, a.rss_warmup),
        **_rss_shape(inc.rss, a.rss_warmup),
    } for inc in soak.incarnations]
    longest = max(soak.incarnations, key=lambda i: (i.t_end or lsl_now()) - i.t_start)
    result["rss_growth_mb_per_h"] = _slope_mb_per_h(longest.rss, a.rss_warmup)
    result["rss_growth_run_seconds"] = (longest.t_end or lsl_now()) - longest.t_start
    result["predictions"] = _predictions(soak) if a.predict else None
    if soak.overload_window is not None:
        start, end = soak.overload_window
        result["overload"] = {
            "load": a.overload_cmd or f"{a.overload_procs} spinning processes",
            "from_s": a.overload_at,
            "seconds": float(end - start),
            "recorder": _overload_residue(longest.rss, soak.overload_window, a.overload_settle),
            "predictor": (_overload_residue(soak.predictor_rss, soak.overload_window,
                                            a.overload_settle) if a.predict else None)}
    return result


def _predictions(soak: Soak) -> dict:
    """Model steps (10 ms) without a prediction: at sender restarts (expected: the senders are
    away, then the model's window refills) and elsewhere ("lost")."""
    stats_path = soak.out / "predictor_stats.json"
    stats = json.loads(stats_path.read_text()) if stats_path.is_file() else {}
    with soak._lock:
        stamps = np.unique(np.round(np.asarray(soak.prediction_stamps) * 100.0).astype(np.int64))
    out: dict = {"made": stats.get("predictions"), "errors": stats.get("errors"),
                 "skipped": stats.get("skipped"), "received": int(stamps.size),
                 "end_to_end_ms": stats.get("end_to_end_ms"),
                 "rss_growth_mb_per_h": _slope_mb_per_h(soak.predictor_rss, soak.args.rss_warmup),
                 "rss_shape": _rss_shape(soak.predictor_rss, soak.args.rss_warmup),
                 "rss_mb_last": soak.predictor_rss[-1][1] / 1e6 if soak.predictor_rss else None}
    if stamps.size < 2:
        out["note"] = "no predictions received"
        return out
    steps = np.diff(stamps)
    holes = np.flatnonzero(steps > 1)
    # sender restarts: from the stop of one segment to the first prediction after its successor
    stops = sorted({s.t_stop for s in soak.segments if s.t_stop is not None})
    pauses, lost, lost_runs = [], 0, []
    for i in holes.tolist():
        start_t, end_t = stamps[i] / 100.0, stamps[i + 1] / 100.0
        missing = int(steps[i] - 1)
        restart = [t for t in stops if start_t - 1.0 <= t <= end_t]
        if restart:
            pauses.append(end_t - restart[0])
        else:
            lost += missing
            lost_runs.append({"after_s": start_t - stamps[0] / 100.0, "steps": missing})
    out.update({
        "first_to_last_s": float((stamps[-1] - stamps[0]) / 100.0),
        "lost": lost, "lost_runs": lost_runs[:20],
        "pause_at_sender_restart_s_median": float(np.median(pauses)) if pauses else None,
        "pause_at_sender_restart_s_max": max(pauses) if pauses else None,
        "sender_restarts_with_pause": len(pauses),
    })
    return out


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--duration", type=float, default=1800.0, help="seconds (default 1800)")
    p.add_argument("--sender-period", type=float, default=120.0,
                   help="seconds between sender restarts (default 120)")
    p.add_argument("--sender-pause", type=float, default=0.5,
                   help="seconds a stopped sender stays away (default 0.5)")
    p.add_argument("--sender-signal", choices=("TERM", "KILL"), default="TERM",
                   help="how senders are stopped (TERM: their log counts exactly what was sent)")
    p.add_argument("--recorder-kills", type=int, default=3,
                   help="SIGKILLs of the recorder at random times (default 3)")
    p.add_argument("--warmup", type=float, default=60.0,
                   help="no recorder kill in the first S seconds (default 60)")
    p.add_argument("--rss-interval", type=float, default=5.0)
    p.add_argument("--rss-warmup", type=float, default=60.0,
                   help="seconds of each recorder run left out of the RSS slope (default 60)")
    p.add_argument("--emg-rate", type=float, default=2000.0)
    p.add_argument("--emg-channels", type=int, default=16)
    p.add_argument("--angle-rate", type=float, default=100.0)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-predict", dest="predict", action="store_false",
                   help="soak only `kneegui record` (no headless predictor)")
    p.add_argument("--overload-at", type=float, default=None,
                   help="start CPU hogs beside the soak at S seconds (default: none)")
    p.add_argument("--overload-seconds", type=float, default=600.0,
                   help="how long the hogs run (default 600)")
    p.add_argument("--overload-procs", type=int, default=4,
                   help="spinning processes (default 4, twice this machine's cores)")
    p.add_argument("--overload-cmd", default=None,
                   help="run this command as the load instead (ends when it exits or after "
                        "--overload-seconds), e.g. '.venv/bin/python benchmarks/busy_lab.py'")
    p.add_argument("--overload-settle", type=float, default=60.0,
                   help="seconds after the overload left out of 'after' (default 60)")
    p.add_argument("--out", type=Path, help="keep the session files here (default: temp)")
    p.add_argument("--json", type=Path, help="also write the JSON here")
    p.add_argument("--progress", action="store_true", help="show elapsed time on stderr")
    args = p.parse_args()
    if not FAULT_SENDER.is_file():
        print(f"fault sender not found at {FAULT_SENDER}; set KNEEGUI_FAULT_SENDER",
              file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="kneegui-soak-") as tmp:
        out = args.out or Path(tmp)
        out.mkdir(parents=True, exist_ok=True)
        soak = Soak(args, out)
        t0 = time.monotonic()
        soak.run()
        result = {"config": {k: (str(v) if isinstance(v, Path) else v)
                             for k, v in vars(args).items()},
                  "wall_seconds": time.monotonic() - t0, **analyse(soak)}
        result["segments_raw"] = [asdict(s) for s in soak.segments]
    text = json.dumps(result, indent=2,
                      default=lambda v: v.item() if hasattr(v, "item") else str(v))
    print(text)
    if args.json:
        args.json.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
