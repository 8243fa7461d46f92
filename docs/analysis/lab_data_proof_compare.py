"""Compare the #18 proof's evaluations cell by cell (docs/lab-data.md, "Proof that nothing is
lost on the way"): NMAE at 10 / 50 / 500 ms of every column of the paper-style table, per group.

    python docs/analysis/lab_data_proof_compare.py PROOF_DIR

PROOF_DIR holds the `kneegui evaluate --out` folders eval_sessions, eval_uci, eval_sessions_s1,
eval_uci_s1, eval_sessions_uciweights and eval_sessions_with_bad_7N.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

COLUMNS = ("emg:finetuned", "emg+angle:finetuned", "angle:finetuned", "ridge_td",
           "emg:pretrained", "emg+angle:pretrained", "emg:network", "emg+angle:network",
           "calibration_mean", "persistence", "constant_velocity")
STEPS = (1, 5, 50)


def cells(results: list[dict]) -> dict[tuple[str, str, int], float]:
    """NMAE per (group, method, step), averaged over ``results`` (one per seed)."""
    out = {}
    for group in ("N", "A", "all"):
        for method in COLUMNS:
            vals = [r["summary"][group][method]["nmae"] for r in results
                    if method in r["summary"][group]]
            if vals:
                mean = np.mean(vals, axis=0)
                for step in STEPS:
                    out[(group, method, step)] = float(mean[step - 1])
    return out


def compare(name: str, a: list[dict], b: list[dict]) -> None:
    ca, cb = cells(a), cells(b)
    rel = {k: abs(ca[k] - cb[k]) / cb[k] for k in ca}
    over = sorted((k for k, r in rel.items() if r > 0.10), key=lambda k: -rel[k])
    print(f"{name}: {len(rel)} cells, {len(rel) - len(over)} within 10 %; max "
          f"{100 * max(rel.values()):.1f} %, median {100 * np.median(list(rel.values())):.2f} %")
    for k in over:
        print(f"    {k[0]:3s} {k[1]:22s} {10 * k[2]:3d} ms: {100 * ca[k]:6.2f} vs "
              f"{100 * cb[k]:6.2f} % ({100 * rel[k]:.1f} %)")


def main(root: Path) -> None:
    def load(name: str) -> dict:
        return json.loads((root / name / "results.json").read_text())

    s0, u0, s1, u1 = (load(n) for n in ("eval_sessions", "eval_uci", "eval_sessions_s1",
                                        "eval_uci_s1"))
    compare("A seed 0, trained and evaluated on sessions vs on files", [s0], [u0])
    compare("B seed 1, trained and evaluated on sessions vs on files", [s1], [u1])
    compare("C mean of seeds 0 and 1, sessions vs files", [s0, s1], [u0, u1])
    compare("D the same networks (trained on files, seed 0) on sessions vs on files",
            [load("eval_sessions_uciweights")], [u0])
    compare("E reference: files, seed 1 vs seed 0", [u1], [u0])
    compare("F reference: sessions, seed 1 vs seed 0", [s1], [s0])
    compare("G as A, with the 7N session whose EMG the recorder shifted by -37.9 ms",
            [load("eval_sessions_with_bad_7N")], [u0])


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "."))
