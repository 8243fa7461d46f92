"""How many lags the subject extrapolator uses: scored on held-back *calibration* cycles only.

For every UCI gait recording whose evaluation split keeps K >= 2 calibration cycles, the
extrapolator is fitted on the calibration data before the last calibration cycle and scored on
that cycle (never on the evaluation's test windows). Prints JSON: mean 1..5-step NMAE (%) of
constant velocity and of each lag count.

Usage: ``python docs/analysis/extrapolator_lags.py [UCI_DIR]``
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

from kneegui.adaptation.extrapolator import fit_extrapolator
from kneegui.adaptation.metrics import future_matrix
from kneegui.research.baselines import constant_velocity
from kneegui.research.data import load_series
from kneegui.research.splits import gait_cycles, plan_split

STEPS = 5
LAG_COUNTS = (5, 10, 15, 20, 30)


def main() -> int:
    root = Path(sys.argv[1] if len(sys.argv) > 1 else "../shared/data/uci_lower_limb_emg")
    scores: dict[str, list[np.ndarray]] = {"constant_velocity": []}
    used = []
    for s in load_series(root, exercises=("mar",)):
        split = plan_split(gait_cycles(s.angle, 100.0), len(s), 100, 50, 3)
        if split is None or split.k_used < 2:
            continue
        angle = s.angle.astype(np.float64)[: split.calib_end]
        held = int(split.cycles[-1][0])
        ends = np.arange(held, len(angle) - STEPS - 1)
        true = future_matrix(angle, ends, STEPS)
        rng = float(np.ptp(angle[held:]))
        used.append(s.name)
        scores["constant_velocity"].append(
            np.abs(constant_velocity(angle, ends, STEPS) - true).mean(0) / rng)
        for lags in LAG_COUNTS:
            ex = fit_extrapolator(angle[: held + 1], np.arange(held + 1), STEPS, lags=lags)
            err = np.abs(ex.predict(angle, ends) - true).mean(0) / rng
            scores.setdefault(f"lags_{lags}", []).append(err)
    out = {"recordings": used, "nmae_percent_steps_1_to_5": {
        k: np.round(100 * np.mean(v, axis=0), 3).tolist() for k, v in scores.items()}}
    print(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
