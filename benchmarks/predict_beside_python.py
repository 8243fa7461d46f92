"""Prediction latency while other Python threads of the same process are busy.

The live path shares its process with reader, hub and (in the window's predictor process)
request threads. Each time torch releases and re-takes the interpreter lock, a busy Python
thread may hold it for a whole switch interval (1 ms in the sample-path processes). The
Predictor runs the network as one traced graph (``kneegui.model.predictor.one_call_forward``):
one release per prediction. For comparison the same Predictor is timed with the eager module
(one release per torch operation).

Per configuration (``busy`` CPU-bound Python threads beside the predicting thread, switch
interval 1 ms, 1 torch thread): median / p99 / max of ``Predictor.predict_latest`` (ms) and
the largest output difference between the two forwards (must be 0: same kernels).

    .venv/bin/python benchmarks/predict_beside_python.py [--calls 1500] [--busy 0,1,2]

Prints JSON.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time

import numpy as np


def _busy(stop: threading.Event) -> None:
    x = 0
    while not stop.is_set():
        for i in range(1000):
            x += i


def _time_calls(predictor, rows, calls: int, busy: int) -> tuple[dict, np.ndarray]:
    stop = threading.Event()
    threads = [threading.Thread(target=_busy, args=(stop,), daemon=True) for _ in range(busy)]
    for t in threads:
        t.start()
    times, out = [], None
    try:
        for _ in range(calls):
            t0 = time.perf_counter()
            out = predictor.predict_latest(rows)
            times.append(time.perf_counter() - t0)
            time.sleep(0.001)
    finally:
        stop.set()
        for t in threads:
            t.join()
    ms = np.asarray(times[50:]) * 1000
    return ({"median": round(float(np.median(ms)), 3),
             "p99": round(float(np.percentile(ms, 99)), 3),
             "max": round(float(ms.max()), 3), "n": len(ms)}, out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=1500)
    parser.add_argument("--busy", default="0,1,2", help="busy thread counts to run")
    args = parser.parse_args()

    from kneegui.live.session import favour_sample_path
    from kneegui.model import ModelInputs, Predictor, load_model, shipped_model_path

    favour_sample_path()
    loaded = load_model(shipped_model_path("emg+angle"))
    traced = Predictor(loaded, threads=1)
    eager = Predictor(loaded, threads=1)
    eager._forward = loaded.net  # the module itself: one lock release per operation
    rng = np.random.default_rng(0)
    n = traced.rows_needed
    n_emg = sum(1 for c in loaded.card.channels if c.startswith("emg_"))
    rows = ModelInputs(np.abs(rng.normal(size=(n, n_emg))).astype(np.float32),
                       rng.normal(30.0, 10.0, n).astype(np.float32))
    traced.warm_up()
    eager.warm_up()
    results = []
    for busy in (int(b) for b in args.busy.split(",")):
        t_ms, t_out = _time_calls(traced, rows, args.calls, busy)
        e_ms, e_out = _time_calls(eager, rows, args.calls, busy)
        results.append({"busy_python_threads": busy, "traced_ms": t_ms, "eager_ms": e_ms,
                        "median_eager_over_traced": round(e_ms["median"] / t_ms["median"], 2),
                        "max_output_diff_deg": float(np.abs(t_out - e_out).max())})
        print(f"busy {busy}: traced {t_ms}, eager {e_ms}", file=sys.stderr)
    print(json.dumps({"benchmark": "predict_beside_python", "switch_interval_s":
                      sys.getswitchinterval(), "results": results}, indent=1))


if __name__ == "__main__":
    main()
