"""Session writer throughput: 16 ch EMG at 2 kHz + 3 kinematic streams, 10 simulated minutes.

Feeds the SessionWriter as fast as it accepts data, in 50 ms chunks (what the recording pump
delivers at its 50 ms poll interval), with the raw sender stamps (jittered per chunk, as from a
device that stamps on push) and a clock measurement per stream every 5 s, then stops it (final
flush and close included). Prints JSON: speed as a multiple of real time (target >= 100), file
size per hour, peak memory (RSS above the baseline before the writer started), and
producer-side call latency.

The live file is written uncompressed (crash-safe) and compressed when the writer stops
(``kneegui.recording.compact``); ``speed_x_realtime`` includes that step, ``stop_s`` is its
duration and ``live_write_x_realtime`` the speed of the live part alone.

``--data random``: standard-normal float32 (incompressible mantissas: the worst case for
size and compression speed); ``--data emg``: the shipped UCI gait clip (real EMG in mV, 4
channels tiled to 16, and its knee angle for the kinematics). ``--compression off`` writes
without HDF5 filters (the "before" figure). ``--realtime`` paces the chunks at real time (each
0.5 s flush then writes partial chunks, as in a real recording) to check the size per hour of
that pattern; its speed figure is then ~1 by construction.

    .venv/bin/python benchmarks/recording_throughput.py [--minutes 10] [--out DIR]
        [--data random|emg] [--compression on|off] [--realtime]
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import psutil

from kneegui.recording import SessionWriter, StreamSpec, open_session

EMG_RATE, EMG_CH = 2000.0, 16
KIN_RATE, KIN_CH, KIN_STREAMS = 500.0, 3, 3
CHUNK_S = 0.05


def _peak_rss(stop: threading.Event, out: list[int]) -> None:
    proc = psutil.Process()
    while not stop.is_set():
        out[0] = max(out[0], proc.memory_info().rss)
        stop.wait(0.02)


def _blocks(data: str, emg_n: int, kin_n: int, rng) -> tuple[np.ndarray, np.ndarray]:
    """Samples the benchmark cycles through: ``emg_n * 20`` EMG rows, ``kin_n * 20`` kin rows."""
    if data == "random":
        return (rng.standard_normal((emg_n * 20, EMG_CH)).astype(np.float32),
                rng.standard_normal((kin_n * 20, KIN_CH)).astype(np.float32))
    from kneegui.acquisition.simulator import default_clip
    from kneegui.datasets.uci import read_uci_file

    rec = read_uci_file(default_clip())  # 1 kHz; the rows are replayed as 2 kHz samples
    emg = np.tile(rec.emg, (1, EMG_CH // rec.emg.shape[1]))[: emg_n * 20].astype(np.float32)
    angle = rec.angle[:: int(1000 / KIN_RATE)][: kin_n * 20]
    kin = np.column_stack([angle, np.gradient(angle), angle * 0.5]).astype(np.float32)
    return emg, kin


def run(minutes: float, out_dir: Path, data: str = "random", compression: bool = True,
        realtime: bool = False) -> dict:
    rng = np.random.default_rng(0)
    n_chunks = int(round(minutes * 60 / CHUNK_S))
    emg_n, kin_n = int(EMG_RATE * CHUNK_S), int(KIN_RATE * CHUNK_S)
    emg_block, kin_block = _blocks(data, emg_n, kin_n, rng)
    jitter = rng.uniform(-1e-3, 1e-3, n_chunks)  # per-chunk stamping jitter of the sender
    proc = psutil.Process()
    baseline = proc.memory_info().rss
    peak = [baseline]
    stop = threading.Event()
    sampler = threading.Thread(target=_peak_rss, args=(stop, peak), daemon=True)
    sampler.start()

    writer = SessionWriter(out_dir, {"subject_id": "bench"}, compression=compression).start()
    emg = writer.add_stream(StreamSpec("EMG", "EMG", EMG_CH, EMG_RATE, "float32", "bench-emg",
                                       channel_labels=tuple(f"EMG{i}" for i in range(EMG_CH)),
                                       channel_units=("mV",) * EMG_CH))
    kin = [writer.add_stream(StreamSpec(f"kin{i}", "Kinematics", KIN_CH, KIN_RATE, "float32",
                                        f"bench-kin{i}", channel_units=("deg",) * KIN_CH))
           for i in range(KIN_STREAMS)]
    latencies = np.empty(n_chunks * (1 + KIN_STREAMS))
    li = 0
    t0 = time.perf_counter()
    cpu0 = time.process_time()
    for c in range(n_chunks):
        j = c % 20
        e_ts = (c * emg_n + np.arange(emg_n)) / EMG_RATE
        a = time.perf_counter()
        writer.write_samples(emg, emg_block[j * emg_n:(j + 1) * emg_n], e_ts, block=True,
                             raw_timestamps=e_ts + 1234.5 + jitter[c])
        latencies[li] = time.perf_counter() - a
        li += 1
        k_ts = (c * kin_n + np.arange(kin_n)) / KIN_RATE
        for key in kin:
            a = time.perf_counter()
            writer.write_samples(key, kin_block[j * kin_n:(j + 1) * kin_n], k_ts, block=True,
                                 raw_timestamps=k_ts + 987.25 + jitter[c])
            latencies[li] = time.perf_counter() - a
            li += 1
        if c % int(1 / CHUNK_S) == 0:
            writer.add_event(f"second {c * CHUNK_S:.0f}", t=c * CHUNK_S, origin="bench")
        if c % int(5 / CHUNK_S) == 0:
            for key in (emg, *kin):
                writer.add_clock_measurement(key, c * CHUNK_S, -1234.5, 2e-4)
        if realtime:
            time.sleep(max(0.0, t0 + (c + 1) * CHUNK_S - time.perf_counter()))
    t_stop = time.perf_counter()
    status = writer.stop()  # final flush, close and (with compression) compressing the file
    wall = time.perf_counter() - t0
    stop_s = time.perf_counter() - t_stop
    cpu_s = time.process_time() - cpu0
    stop.set()
    sampler.join()
    simulated = n_chunks * CHUNK_S
    size = status.path.stat().st_size
    with open_session(status.path) as s:
        rows_ok = s.streams[emg].length == n_chunks * emg_n
    result = {
        "benchmark": "recording_throughput",
        "setup": {"emg": f"{EMG_CH} ch float32 @ {EMG_RATE:g} Hz",
                  "kinematics": f"{KIN_STREAMS} streams x {KIN_CH} ch float32 @ {KIN_RATE:g} Hz",
                  "chunk_s": CHUNK_S, "simulated_s": simulated, "flush_interval_s": 0.5,
                  "data": data, "paced_at_real_time": realtime,
                  "compression": "shuffle + gzip level 1" if compression else "none",
                  "cpu_count": os.cpu_count()},
        "state": status.state.value,
        "all_samples_written": bool(rows_ok),
        "wall_s": round(wall, 3),
        "speed_x_realtime": round(simulated / wall, 1),
        "target_x_realtime": 100,
        "live_write_x_realtime": round(simulated / (t_stop - t0), 1),
        # CPU seconds of this process (all threads): the load-independent cost
        "cpu_s": round(cpu_s, 3),
        "x_realtime_per_cpu_second": round(simulated / cpu_s, 1),
        "stop_s": round(stop_s, 3),
        "compressed": status.compressed,
        "file_bytes": size,
        "file_mb_per_hour": round(size / simulated * 3600 / 1e6, 1),
        "peak_rss_above_baseline_mb": round((peak[0] - baseline) / 1e6, 1),
        "peak_rss_mb": round(peak[0] / 1e6, 1),
        "write_call_latency_us": {
            "median": round(float(np.median(latencies[:li])) * 1e6, 1),
            "p99": round(float(np.percentile(latencies[:li], 99)) * 1e6, 1),
            "max": round(float(np.max(latencies[:li])) * 1e6, 1),
        },
        "dropped_samples": status.dropped_samples,
    }
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0, help="simulated minutes")
    parser.add_argument("--out", type=Path, help="directory for the file (default: temp)")
    parser.add_argument("--data", choices=("random", "emg"), default="random",
                        help="random (worst case) or the shipped real EMG clip")
    parser.add_argument("--compression", choices=("on", "off"), default="on")
    parser.add_argument("--realtime", action="store_true",
                        help="pace the chunks at real time (size check; use --minutes 1)")
    args = parser.parse_args()
    options = (args.data, args.compression == "on", args.realtime)
    if args.out:
        print(json.dumps(run(args.minutes, args.out, *options), indent=2))
        return
    with tempfile.TemporaryDirectory() as tmp:
        print(json.dumps(run(args.minutes, Path(tmp), *options), indent=2))


if __name__ == "__main__":
    main()
