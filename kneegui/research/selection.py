"""Research options of the evaluation, not what the app runs: the choices it can make for a test
subject on the *other* subjects' recordings (``kneegui evaluate --choice per-subject``): the
calibration-memory parameters among :data:`CANDIDATES` (memory alone,
:func:`select_memory_params`) and the memory blend among :data:`BLEND_CANDIDATES`
(:func:`choose_blends`); and the memory share fitted per horizon on the held-back cycle
(:func:`fit_blend_weight`, ``--memory-weight fitted``). The product's rule is
:data:`kneegui.adaptation.memory.DEFAULT_PARAMS` and :data:`kneegui.adaptation.blend.DEFAULT_BLEND`,
chosen with these tools on all UCI gait recordings."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from kneegui.adaptation.memory import fit_memory
from kneegui.adaptation.metrics import future_matrix
from kneegui.model.memory import AnalogParams
from kneegui.model.mixing import mix
from kneegui.research.splits import recording_split
from kneegui.research.training import Series

_ANGLE = [AnalogParams("angle", h, 1, k) for h in (30, 50, 80) for k in (3, 5, 10)]
_ANGLE_EMG = [AnalogParams("angle+emg", h, 5, k, w) for h in (30, 50) for k in (5, 10)
              for w in (2.0, 5.0, 10.0)]
#: Memory candidates per memory group (:func:`kneegui.model.memory.memory_group`), tried by
#: :func:`select_memory_params`.
CANDIDATES = {
    "angle": _ANGLE,
    "emg+angle": _ANGLE + _ANGLE_EMG,
    "emg": [AnalogParams("emg", h, 5, k) for h in (50, 100) for k in (3, 5, 10)],
}

#: Memory blends (share, ramp in steps; :func:`kneegui.adaptation.blend.memory_share_profile`)
#: among which each test subject's is chosen on the other subjects' recordings
#: (:func:`choose_blends`).
BLEND_CANDIDATES = ((0.0, 1),) + tuple((w, r) for w in (0.25, 0.5, 0.75, 1.0)
                                        for r in (1, 5, 20, 50))


def blend_label(share: float, ramp: int) -> str:
    """Name of a memory blend, e.g. "w0.75-r5" (share 0.75 reached at 5 steps)."""
    return f"w{share:g}-r{ramp}"


def fit_blend_weight(net_pred: np.ndarray, analog_pred: np.ndarray, true: np.ndarray,
                     smooth: int = 9) -> np.ndarray:
    """Per-horizon memory share in [0, 1] minimising the absolute error on held-back windows
    (grid of 0.1), smoothed over ``smooth`` neighbouring horizons."""
    grid = np.linspace(0.0, 1.0, 11)
    errs = np.stack([np.abs(mix(net_pred, analog_pred, np.full(true.shape[1], g)) - true)
                     .mean(axis=0) for g in grid])  # [grid, H]
    w = grid[errs.argmin(axis=0)]
    if smooth > 1 and len(w) >= smooth:
        pad = smooth // 2
        padded = np.concatenate([np.repeat(w[:1], pad), w, np.repeat(w[-1:], pad)])
        w = np.convolve(padded, np.ones(smooth) / smooth, mode="valid")
    return np.clip(w, 0.0, 1.0)


def memory_scores(
    gait: Sequence[Series], candidates: Sequence, window: int, horizons: int, cycles: int,
    dev: bool = False,
) -> dict[str, np.ndarray]:
    """Per gait recording, the mean NMAE over horizons of every calibration-memory candidate
    (``AnalogParams``), the recording split like a test recording (memory from its calibration
    cycles, scored on its test windows); NaN where the calibration is too short for that
    candidate. Recordings that cannot be split are left out. ``dev``: the development split
    (:func:`kneegui.research.splits.dev_split`)."""
    out: dict[str, np.ndarray] = {}
    for s in gait:
        split = recording_split(s, window, horizons, cycles, dev)
        if split is None:
            continue
        c_end, ends = split.calib_end, split.test_ends
        true = future_matrix(s.angle, ends, horizons)
        rng = max(float(np.ptp(s.angle[ends[0] : ends[-1] + horizons + 1])), 1e-9)
        row = []
        for params in candidates:
            mem = fit_memory(params, None if s.emg_env is None else s.emg_env[:c_end],
                                   s.angle[:c_end], np.arange(c_end), horizons)
            if mem is None:
                row.append(np.nan)
                continue
            pred = mem.predict(s.emg_env, s.angle, ends)
            row.append(float(np.mean(np.abs(pred - true).mean(axis=0) / rng)))
        out[s.name] = np.asarray(row)
    return out


def best_memory_params(candidates: Sequence, scores: Sequence[np.ndarray]) -> dict:
    """The candidate with the lowest mean score over ``scores`` (rows of :func:`memory_scores`
    for ``candidates``, NaN ignored); the first candidate when none could be scored."""
    best = lowest_mean_column(scores, len(candidates))
    return candidates[0 if best is None else best].to_dict()


def lowest_mean_column(rows: Sequence, n_columns: int) -> int | None:
    """Index of the column with the lowest mean over ``rows`` (NaN ignored; ties: the first),
    or None when no column has a value. The one rule behind every choice made on the other
    subjects (memory parameters, memory blend)."""
    table = np.asarray(rows, np.float64).reshape(-1, n_columns)
    counts = (~np.isnan(table)).sum(axis=0)
    if not counts.any():
        return None
    means = np.where(counts > 0, np.nansum(table, axis=0) / np.maximum(counts, 1), np.inf)
    return int(np.argmin(means))


def select_memory_params(
    gait: Sequence[Series], group: str, window: int, horizons: int, cycles: int
) -> dict:
    """The calibration-memory parameters of ``group`` (:data:`CANDIDATES`)
    with the lowest mean NMAE over horizons on ``gait`` recordings (the pretraining subjects;
    see :func:`memory_scores`)."""
    candidates = CANDIDATES[group]
    scores = memory_scores(gait, candidates, window, horizons, cycles)
    return best_memory_params(candidates, list(scores.values()))


def choose_blends(records: dict[str, dict], predictions: dict[str, dict],
                  excluded_of: dict[str, set[str]]) -> None:
    """Per recording and input set, make ``X:finetuned`` (and ``X:no_extrapolator``) the memory
    blend with the lowest mean NMAE over horizons on the *other* subjects' recordings (never the
    recording's own subject or those linked to it), then drop the ``@LABEL`` variants. The
    chosen label is kept as ``blend``; every variant's own score as ``blend_scores`` (for the
    choice over all recordings). Without other recordings the fixed weight stays."""
    # {recording: {"X:finetuned": {label: mean NMAE over horizons}}}, computed once
    scores = {name: _variant_scores(rec["methods"]) for name, rec in records.items()}
    for name, rec in records.items():
        methods = rec["methods"]
        others = [scores[n] for n, r in records.items()
                  if r["subject"] not in excluded_of.get(name, {rec["subject"]})]
        for key, own in scores[name].items():
            labels = list(own)
            best = lowest_mean_column(
                [[o.get(key, {}).get(lab, np.nan) for lab in labels] for o in others],
                len(labels))
            if best is None:
                continue
            label = labels[best]
            methods[key] = {**methods[f"{key}@{label}"], "blend": label, "blend_scores": own}
            ablation = key.replace(":finetuned", ":no_extrapolator")
            if f"{ablation}@{label}" in methods:
                methods[ablation] = methods[f"{ablation}@{label}"]
            if f"{key}@{label}" in predictions.get(name, {}):
                predictions[name][key] = predictions[name][f"{key}@{label}"]
    for name, rec in records.items():
        for k in [k for k in rec["methods"] if "@" in k]:
            del rec["methods"][k]
        for k in [k for k in predictions.get(name, {}) if "@" in k]:
            del predictions[name][k]


def _variant_scores(methods: dict) -> dict[str, dict[str, float]]:
    """``{"X:finetuned": {label: mean NMAE over horizons}}`` of the ``X:finetuned@label``
    variants among ``methods``."""
    out: dict[str, dict[str, float]] = {}
    for k, m in methods.items():
        key, sep, label = k.partition("@")
        if sep and key.endswith(":finetuned"):
            out.setdefault(key, {})[label] = float(np.mean(m["nmae"]))
    return out


def blend_summary(records: dict[str, dict]) -> dict[str, dict]:
    """Per input set: how often each memory blend was chosen (recordings x seeds,
    :func:`choose_blends`), each blend's mean NMAE over horizons on all recordings, and the best
    of those (what a subject model outside the evaluation should use)."""
    out: dict[str, dict] = {}
    for rec in records.values():
        for seed_methods in rec["methods"].values():
            for key, m in seed_methods.items():
                if not key.endswith(":finetuned") or "blend" not in m:
                    continue
                entry = out.setdefault(key.split(":")[0], {"chosen": {}, "scores": {}})
                entry["chosen"][m["blend"]] = entry["chosen"].get(m["blend"], 0) + 1
                for label, value in m["blend_scores"].items():
                    entry["scores"].setdefault(label, []).append(value)
    for entry in out.values():
        entry["scores"] = {k: float(np.nanmean(v)) for k, v in entry["scores"].items()}
        entry["best_on_all"] = min(entry["scores"], key=entry["scores"].__getitem__)
    return out
