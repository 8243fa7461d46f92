"""Predictor speed: single-prediction latency (1 thread) and K=5-cycle fine-tune duration.

Latency is measured for the shipped (pretrained) models and for the subject models the K=5
fine-tune produces (network + calibration memory: the extra nearest-neighbour lookup), with
torch (`Predictor.predict_latest`, keys ``latency_ms_*``) and with ONNX Runtime running the
exported predictor (`kneegui models export`; keys ``onnx_latency_ms_*``: laying out the window
+ ``session.run``, 1 intra-op thread, one window; ``max_diff_deg`` against the Predictor).

Prints JSON. Targets: latency median <= 1 ms, p99 <= 3 ms; fine-tune (K=5 cycles) <= 20 s.
Uses the shipped models and the shared UCI data (KNEEGUI_UCI_DIR overrides its location).
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
UCI = Path(os.environ.get("KNEEGUI_UCI_DIR", REPO.parent / "shared/data/uci_lower_limb_emg"))


def main() -> None:
    import torch

    from kneegui.adaptation import CalibrationData, finetune
    from kneegui.model import ModelInputs, Predictor, load_model
    from kneegui.paths import models_dir
    from kneegui.research.data import load_series
    from kneegui.research.splits import gait_cycles

    series = max(load_series(UCI, exercises=("mar",)), key=len)
    out: dict = {"recording": series.name, "torch_threads_inference": 1}

    def rows(k: int):
        i = 300 + (k % 2000)
        return ModelInputs(series.emg_env[i - 150 : i + 1], series.angle[i - 150 : i + 1])

    def summary(times: list[float]) -> dict:
        ms = np.asarray(times[200:]) * 1000
        return {"median": round(float(np.median(ms)), 4),
                "p99": round(float(np.percentile(ms, 99)), 4), "n": len(ms)}

    def latency(loaded) -> dict:
        predictor = Predictor(loaded, threads=1)
        times = []
        for k in range(2200):
            r = rows(k)
            t0 = time.perf_counter()
            predictor.predict_latest(r)
            times.append(time.perf_counter() - t0)
        return summary(times)

    def onnx_latency(loaded, torch_ms: dict) -> dict:
        import onnxruntime as ort

        from kneegui.portable import INPUT, OUTPUT, build, windows

        card = loaded.card
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        session = ort.InferenceSession(build(loaded).SerializeToString(), options,
                                       providers=["CPUExecutionProvider"])
        predictor = Predictor(loaded, threads=1)
        times, worst = [], 0.0
        for k in range(2200):
            r = rows(k)
            t0 = time.perf_counter()
            w = windows(card, r, [len(r) - 1])
            out = session.run([OUTPUT], {INPUT: w})[0][0]
            times.append(time.perf_counter() - t0)
            if k % 100 == 0:
                worst = max(worst, float(np.abs(out - predictor.predict_latest(r)).max()))
        res = summary(times)
        return {**res, "median_vs_torch": round(res["median"] / torch_ms["median"], 3),
                "max_diff_deg": float(f"{worst:.3g}"), "onnxruntime": ort.__version__}

    for card_path in sorted(models_dir().glob("kneenet_*.json")):
        loaded = load_model(card_path)
        out[f"latency_ms_{loaded.card.input_set}"] = latency(loaded)
        out[f"onnx_latency_ms_{loaded.card.input_set}"] = onnx_latency(
            loaded, out[f"latency_ms_{loaded.card.input_set}"])
        if loaded.card.input_set in ("emg", "emg+angle"):
            cycles = gait_cycles(series.angle, 100.0)[:5]
            end = cycles[-1][1]
            calib = CalibrationData(series.emg_env[:end], series.angle[:end], cycles)
            t0 = time.perf_counter()
            res = finetune(loaded, calib)
            out[f"finetune_s_k5_{loaded.card.input_set}"] = {
                "seconds": round(time.perf_counter() - t0, 2), "epochs": len(res.history) - 1,
                "recipe": res.recipe, "train_windows": res.n_train_windows,
                "threads": torch.get_num_threads()}
            memory = res.model.memory
            out[f"latency_ms_{loaded.card.input_set}_subject_model"] = {
                **latency(res.model),
                "memory_keys": 0 if memory is None else len(memory.keys)}
            out[f"onnx_latency_ms_{loaded.card.input_set}_subject_model"] = onnx_latency(
                res.model, out[f"latency_ms_{loaded.card.input_set}_subject_model"])
    out["targets"] = {"latency_median_ms": 1.0, "latency_p99_ms": 3.0, "finetune_k5_s": 20.0}
    out["cpu_count"] = os.cpu_count()
    out["loadavg_1min"] = os.getloadavg()[0]
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
