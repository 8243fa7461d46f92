"""Is there predictive information in the EMG beyond the past knee angle, and does a faster
envelope (less filter lag) carry more?

Linear forecasts (ridge, λ = 1e-3·n) of the angle change 50 / 100 / 200 / 500 ms ahead from the
last 20 angle changes, with and without the log EMG envelopes (lags 0..400 ms every 50 ms),
leave-one-subject-out, for several envelope low-pass cut-offs (the live 2nd-order envelope at
6 Hz delays the envelope by ~38 ms, the 40 Hz anti-alias filter by ~20 ms more). Prints JSON:
NMAE (%) per horizon of the angle-only and angle+EMG forecasts and the gain (%) from EMG.

Usage: ``python docs/analysis/emg_information.py [UCI_DIR] [EXERCISES]`` (default: ``mar``, the
gait recordings; ``sen,pie`` uses only the exercises the evaluation never tests on).
"""

from __future__ import annotations

import json
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np

from kneegui import dsp
from kneegui.datasets.uci import load_uci_dataset
from kneegui.research.data import angle_at_model_rate

HORIZONS = (5, 10, 20, 50)  # steps at 100 Hz
ANGLE_LAGS = 20
EMG_LAGS = np.arange(0, 41, 5)
CUTOFFS = (6.0, 10.0, 15.0, 25.0)


def _design(env: np.ndarray, angle: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(angle features, EMG features, targets) for every usable time step."""
    t = np.arange(max(ANGLE_LAGS, int(EMG_LAGS[-1])), len(angle) - max(HORIZONS))
    now = angle[t]
    a = np.stack([angle[t - j] - now for j in range(1, ANGLE_LAGS + 1)], axis=1)
    logs = np.log(np.maximum(env, 0.0) + 0.05 * np.median(env, axis=0))
    logs = (logs - logs.mean(axis=0)) / logs.std(axis=0)
    e = np.concatenate([logs[t - j] for j in EMG_LAGS], axis=1)
    y = np.stack([angle[t + h] - now for h in HORIZONS], axis=1)
    return a, e, y


def _ridge(x: np.ndarray, y: np.ndarray, lam: float = 1e-3):
    xm, ym = x.mean(axis=0), y.mean(axis=0)
    xc = x - xm
    w = np.linalg.solve(xc.T @ xc + lam * len(x) * np.eye(x.shape[1]), xc.T @ (y - ym))
    return lambda z: (z - xm) @ w + ym


def main() -> int:
    root = Path(sys.argv[1] if len(sys.argv) > 1 else "../shared/data/uci_lower_limb_emg")
    exercises = tuple((sys.argv[2] if len(sys.argv) > 2 else "mar").split(","))
    recs = load_uci_dataset(root, exercises=exercises, groups=("N", "A"))
    out: dict = {"exercises": list(exercises), "horizons_ms": [10 * h for h in HORIZONS]}
    for cutoff in CUTOFFS:
        settings = replace(dsp.FilterSettings(), envelope_cutoff=cutoff)
        by_subject: dict[str, list] = {}
        for r in recs:
            env = dsp.emg_features_offline(r.emg, r.fs, 100.0, settings).astype(np.float64)
            angle = angle_at_model_rate(r.angle, r.fs, 100.0, len(env)).astype(np.float64)
            by_subject.setdefault(r.subject, []).append((*_design(env, angle), np.ptp(angle)))
        errs: dict[str, list] = {"angle": [], "angle+emg": []}
        for held in sorted(by_subject):
            train = [d for s, ds in by_subject.items() if s != held for d in ds]
            a, e, y = (np.concatenate([d[i] for d in train]) for i in range(3))
            angle_only = _ridge(a, y)
            with_emg = _ridge(np.concatenate([a, e], axis=1), y)
            for a2, e2, y2, rng in by_subject[held]:
                errs["angle"].append(np.abs(angle_only(a2) - y2).mean(axis=0) / rng)
                errs["angle+emg"].append(
                    np.abs(with_emg(np.concatenate([a2, e2], axis=1)) - y2).mean(axis=0) / rng)
        a_nmae, ae_nmae = (np.mean(errs[k], axis=0) for k in ("angle", "angle+emg"))
        out[f"{cutoff:g} Hz"] = {
            "nmae_angle": [round(100 * v, 2) for v in a_nmae],
            "nmae_angle_emg": [round(100 * v, 2) for v in ae_nmae],
            "gain_from_emg": [round(100 * (1 - b / a), 1) for a, b in zip(a_nmae, ae_nmae,
                                                                           strict=True)],
        }
    print(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
