"""Throughput of the live EMG chain: 16 channels at 2 kHz, fed in 10 ms chunks, on one core.

Per chunk it runs what the acquisition hub runs for one EMG stream: ``FilterChain`` (filtered +
envelope for display/recording), ``EmgFeatureExtractor.process_with_times`` (model features with
timestamps) and ``QualityMonitor.update``. Prints JSON: real-time factor (signal seconds per
wall-clock second, median over repeats), per-chunk latency percentiles, and per-stage factors.

    .venv/bin/python benchmarks/dsp_throughput.py [--seconds 20] [--repeats 7]
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402
import scipy  # noqa: E402

from kneegui.dsp import (  # noqa: E402
    EmgFeatureExtractor,
    FilterChain,
    FilterSettings,
    QualityMonitor,
)

FS = 2000.0
CHANNELS = 16
CHUNK = 20  # 10 ms at 2 kHz


def _pin_one_core() -> int | None:
    if hasattr(os, "sched_setaffinity"):
        cpu = sorted(os.sched_getaffinity(0))[-1]
        os.sched_setaffinity(0, {cpu})
        return cpu
    return None


def _run(signal: np.ndarray, stages: tuple[str, ...]) -> tuple[float, np.ndarray]:
    settings = FilterSettings()
    chain = FilterChain(FS, CHANNELS, settings)
    extractor = EmgFeatureExtractor(FS, CHANNELS, 100.0, settings)
    quality = QualityMonitor(FS, CHANNELS, window_s=1.0)
    t = 1000.0 + np.arange(len(signal)) / FS
    per_chunk = np.empty(len(signal) // CHUNK)
    clock = time.perf_counter
    start = clock()
    for k in range(len(per_chunk)):
        s = slice(k * CHUNK, (k + 1) * CHUNK)
        t0 = clock()
        x = signal[s]
        if "chain" in stages:
            chain.process(x)
        if "features" in stages:
            extractor.process_with_times(x, t[s])
        if "quality" in stages:
            quality.update(x)
        per_chunk[k] = clock() - t0
    return clock() - start, per_chunk


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0, help="signal length per repeat")
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    cpu = _pin_one_core()
    rng = np.random.default_rng(0)
    signal = rng.normal(0.0, 0.1, (int(args.seconds * FS), CHANNELS)).astype(np.float32)
    seconds = len(signal) / FS
    full = ("chain", "features", "quality")
    results = {}
    for name, stages in (
        ("full", full),
        ("chain_only", ("chain",)),
        ("features_only", ("features",)),
        ("quality_only", ("quality",)),
    ):
        _run(signal[: int(FS)], stages)  # warm-up
        factors, chunks = [], []
        for _ in range(args.repeats if name == "full" else max(3, args.repeats // 2)):
            elapsed, per_chunk = _run(signal, stages)
            factors.append(seconds / elapsed)
            chunks.append(per_chunk)
        all_chunks = np.concatenate(chunks) * 1e6
        results[name] = {
            "realtime_factor_median": round(float(np.median(factors)), 1),
            "realtime_factor_min": round(float(np.min(factors)), 1),
            "chunk_us_median": round(float(np.median(all_chunks)), 1),
            "chunk_us_p99": round(float(np.percentile(all_chunks, 99)), 1),
        }
    report = {
        "benchmark": "dsp_throughput",
        "what": "FilterChain + EmgFeatureExtractor.process_with_times + QualityMonitor.update",
        "fs_hz": FS,
        "channels": CHANNELS,
        "chunk_samples": CHUNK,
        "chunk_ms": CHUNK / FS * 1000,
        "signal_seconds_per_repeat": seconds,
        "repeats": args.repeats,
        "pinned_cpu": cpu,
        "realtime_factor": results["full"]["realtime_factor_median"],
        "target_realtime_factor": 100.0,
        "meets_target": results["full"]["realtime_factor_median"] >= 100.0,
        "stages": results,
        "python": sys.version.split()[0],
        "numpy": np.__version__,
        "scipy": scipy.__version__,
        "machine": platform.machine(),
        "load_avg_1min": round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None,
    }
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
