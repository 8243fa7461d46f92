"""The evaluation protocol behind `kneegui evaluate` (subject-wise and time-wise splits).

For every gait recording (a walking activity: UCI ``mar``, or walking found by the gait detector)
of a test subject: calibration = the first K gait cycles
(K reduced per recording so that >= 2 complete cycles remain for testing), purge gap = one
input window, test = every window after the gap. Networks are pretrained without the test
subject (leave-one-subject-out, linked subjects such as 1N/2N held out together) or loaded from
weights whose card does not list the test subject. Fine-tuning uses only the calibration part.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np

from kneegui.adaptation.blend import memory_share_profile
from kneegui.adaptation.finetune import (
    CalibrationData,
    FinetuneResult,
    FinetuneSettings,
    finetune,
)
from kneegui.adaptation.memory import DEFAULT_PARAMS
from kneegui.adaptation.metrics import future_matrix, horizon_metrics
from kneegui.adaptation.subject_model import assemble
from kneegui.labdata import is_walking, wants_activity
from kneegui.model.features import subject_norm, window_ends
from kneegui.model.io import LoadedModel
from kneegui.model.memory import memory_group
from kneegui.model.predictor import ModelInputs, Predictor
from kneegui.research.baselines import (
    RidgeBaseline,
    calibration_mean,
    constant_velocity,
    persistence,
)
from kneegui.research.selection import (
    BLEND_CANDIDATES,
    CANDIDATES,
    best_memory_params,
    blend_label,
    blend_summary,
    choose_blends,
    fit_blend_weight,
    memory_scores,
)
from kneegui.research.splits import MIN_DEV_WINDOWS, MIN_TEST_CYCLES, Split, recording_split
from kneegui.research.training import Series, TrainSettings, train_model

#: How subject models are made: as the app makes them, or chosen per test subject (research).
CHOICES = ("product", "per-subject")
#: Horizons (steps) reported in tables: 1 (10 ms), 5 (50 ms), 50 (500 ms).
TABLE_STEPS = (1, 5, 50)


@dataclass
class EvalSettings:
    input_sets: tuple[str, ...] = ("emg", "emg+angle", "angle")
    cycles: int = 3
    seeds: tuple[int, ...] = (0,)
    pretrain_exercises: tuple[str, ...] = ("mar", "pie", "sen")
    train: TrainSettings = field(default_factory=TrainSettings)
    finetune: FinetuneSettings = field(default_factory=FinetuneSettings)
    max_subjects: int | None = None
    folds: int | None = None  # None: leave-one-subject-out; N: subject-grouped N-fold
    #: Development mode: score inside each recording's calibration
    #: (:func:`kneegui.research.splits.dev_split`), never on its test windows; for choosing
    #: methods before the one evaluation run that is reported.
    dev: bool = False
    #: "product": every subject model is the one the app builds for a new subject (memory
    #: parameters ``DEFAULT_PARAMS``, memory share ``DEFAULT_BLEND``). "per-subject" (research
    #: option): memory parameters among :data:`CANDIDATES` and the memory blend among
    #: ``blends`` chosen per test subject on the other subjects' recordings.
    choice: str = "product"
    blends: tuple[tuple[float, int], ...] = BLEND_CANDIDATES
    #: Research option: one memory share for every recording instead of the blend rule:
    #: ``(share, ramp)`` or ``"fitted"`` (per horizon on the held-back calibration cycle).
    memory_share: tuple[float, int] | str | None = None

    def __post_init__(self) -> None:
        if self.choice not in CHOICES:
            raise ValueError(f"choice must be one of {CHOICES}, got {self.choice!r}")

    def to_dict(self) -> dict:
        return asdict(self)


def _metrics_at(pred: np.ndarray, true: np.ndarray, rng: float) -> dict:
    return horizon_metrics(pred, true, rng)


def evaluate_recording(
    test: Series,
    models: dict[str, LoadedModel],
    split: Split,
    ft_settings: FinetuneSettings,
    ridge_ok: bool = True,
    memory_params: dict[str, dict] | None = None,
    blends: Sequence[tuple[float, int]] = (),
    memory_share: tuple[float, int] | str | None = None,
) -> dict[str, dict]:
    """Metrics of every method on the test windows of one recording (one seed's models).

    ``X:finetuned`` is the subject model (fine-tuned network + calibration memory + subject
    extrapolator for angle input sets), as the app builds it unless ``memory_params`` (per memory
    group, :func:`kneegui.model.memory.memory_group`) or ``memory_share`` say otherwise;
    ``X:network`` and ``X:memory`` are parts of it alone, ``X:no_extrapolator`` is it without
    the subject extrapolator. With ``blends``, the subject model is also scored with each of
    these memory blends (``X:finetuned@LABEL``, ``X:no_extrapolator@LABEL``) for
    :func:`choose_blends`. Every prediction comes from :class:`kneegui.model.Predictor`."""
    H = next(iter(models.values())).card.horizons if models else 50
    ends = split.test_ends
    true = future_matrix(test.angle, ends, H)
    seg = test.angle[ends[0] : ends[-1] + H + 1]
    rng = float(np.ptp(seg))
    c_end = split.calib_end
    calib_norm = subject_norm(test.emg_env[:c_end] if test.emg_env is not None else None,
                              test.angle[:c_end])
    inputs = ModelInputs.of(test)
    out: dict[str, dict] = {}
    for input_set, loaded in models.items():
        out[f"{input_set}:pretrained"] = _metrics_at(
            Predictor(loaded, norm=calib_norm).predict(inputs, ends), true, rng)
        out[f"{input_set}:uncalibrated"] = _metrics_at(
            Predictor(loaded).predict(inputs, ends), true, rng)
        calib = CalibrationData(
            emg_env=None if test.emg_env is None else test.emg_env[:c_end],
            angle=test.angle[:c_end], cycles=split.cycles, subject=test.subject,
        )
        params = (memory_params or {}).get(memory_group(input_set))
        result = finetune(loaded, calib, settings=replace(ft_settings, memory_params=params))
        tuned = _with_share(result, memory_share)
        variants = {"": tuned, **{
            f"@{blend_label(w, ramp)}": assemble(result.parts, memory_share_profile(w, ramp, H))[0]
            for w, ramp in blends}}
        stages = Predictor(tuned).stages(inputs, ends)
        for suffix, model in variants.items():
            predictor = Predictor(model)
            pred = predictor.combine(stages)
            m = _metrics_at(pred, true, rng)
            m["recipe"] = result.recipe
            m["memory_weight"] = None if model.card.memory is None else list(
                model.card.memory.share)
            m["_pred"] = pred  # kept for plots, stripped before JSON
            out[f"{input_set}:finetuned{suffix}"] = m
            if model.extrapolator is not None:  # the subject model without its extrapolator
                out[f"{input_set}:no_extrapolator{suffix}"] = _metrics_at(
                    predictor.combine(stages, extrapolator=False), true, rng)
        out[f"{input_set}:network"] = _metrics_at(stages.network, true, rng)
        if stages.memory is not None:
            out[f"{input_set}:memory"] = _metrics_at(stages.memory, true, rng)
    out["persistence"] = _metrics_at(persistence(test.angle, ends, H), true, rng)
    out["constant_velocity"] = _metrics_at(constant_velocity(test.angle, ends, H), true, rng)
    out["calibration_mean"] = _metrics_at(
        calibration_mean(float(test.angle[:c_end].mean()), len(ends), H), true, rng)
    if ridge_ok and test.td is not None:
        cal_ends = window_ends(c_end, 1, H, lo=int(round(0.25 * 100)))
        if len(cal_ends) >= 10:
            ridge = RidgeBaseline().fit(test.td[cal_ends], future_matrix(test.angle, cal_ends, H))
            out["ridge_td"] = _metrics_at(ridge.predict(test.td[ends]), true, rng)
    out["_info"] = {"angle_range": rng, "n_test_windows": int(len(ends)),
                    "calib_norm": calib_norm.to_dict()}
    return out


def _with_share(result: FinetuneResult, memory_share: tuple[float, int] | str | None
                ) -> LoadedModel:
    """The subject model of ``result`` with the memory share ``memory_share`` (see
    :attr:`EvalSettings.memory_share`; None: as fine-tuning built it)."""
    parts = result.parts
    if memory_share is None or parts is None or parts.memory is None:
        return result.model
    H = result.model.card.horizons
    if memory_share == "fitted":
        share = fit_blend_weight(parts.network_val, parts.memory_val, parts.true_val)
    else:
        share = memory_share_profile(float(memory_share[0]), int(memory_share[1]), H)
    return assemble(parts, share)[0]


def fold_plan(
    subjects: Sequence[str], links: dict[str, set[str]], n_folds: int | None = None
) -> list[set[str]]:
    """Test-subject sets per fold. Linked subjects (e.g. 1N/2N) always share a fold.

    ``n_folds=None``: leave-one-subject-out (one fold per linked group). Otherwise the groups are
    dealt round-robin, in the given order, to ``n_folds`` folds.
    """
    groups: list[set[str]] = []
    for s in subjects:
        if any(s in g for g in groups):
            continue
        groups.append({s} | (set(links.get(s, set())) & set(subjects)))
    if n_folds is None or n_folds >= len(groups):
        return groups
    folds: list[set[str]] = [set() for _ in range(max(1, n_folds))]
    for i, g in enumerate(groups):
        folds[i % len(folds)] |= g
    return folds


def summarise(records: dict[str, dict], methods: Sequence[str], seeds: Sequence[int]) -> dict:
    """Per-group means over recordings (seed-averaged) and spread (std over seeds of the mean)."""
    groups: dict[str, dict] = {}
    for group in sorted({r["group"] for r in records.values()}) + ["all"]:
        recs = [r for r in records.values() if group in ("all", r["group"])]
        gsum: dict[str, dict] = {}
        for method in methods:
            per_seed = []
            for seed in seeds:
                vals = [r["methods"][str(seed)][method]["nmae"] for r in recs
                        if method in r["methods"].get(str(seed), {})]
                if vals:
                    per_seed.append(np.mean(vals, axis=0))
            if not per_seed:
                continue
            arr = np.asarray(per_seed)
            entry: dict = {"nmae": arr.mean(0).tolist(), "nmae_seed_std": arr.std(0).tolist()}
            for key in ("nrmse", "mae_deg", "r2"):
                vals = [np.mean([r["methods"][str(s)][method][key] for s in seeds
                                 if method in r["methods"].get(str(s), {})], axis=0) for r in recs
                        if any(method in r["methods"].get(str(s), {}) for s in seeds)]
                entry[key] = np.mean(vals, axis=0).tolist()
            entry["n_recordings"] = len(recs)
            gsum[method] = entry
        groups[group] = gsum
    return groups


def pretrained(pool: Sequence[Series], settings: TrainSettings, cache_dir: Path | None = None,
               cancel: threading.Event | None = None) -> LoadedModel:
    """The network ``train_model`` makes of ``pool`` with ``settings``; with ``cache_dir``, kept
    there under a hash of the settings and the data (:func:`kneegui.research.training.data_hash`)
    and loaded instead of retrained next time (same weights, so the same numbers)."""
    from kneegui.model.io import ModelLoadError, load_model, model_paths, save_model
    from kneegui.research.training import data_hash

    if cache_dir is None:
        return train_model(pool, settings, cancel=cancel).model
    key = hashlib.sha256(json.dumps({"train": settings.to_dict(), "data": data_hash(pool)},
                                    sort_keys=True).encode()).hexdigest()[:20]
    stem = Path(cache_dir) / f"{settings.input_set.replace('+', '_')}-{settings.seed}-{key}"
    if model_paths(stem)[0].exists():
        try:
            return load_model(stem)
        except ModelLoadError:  # an interrupted write: train again
            pass
    result = train_model(pool, settings, cancel=cancel)
    if not result.cancelled:
        Path(cache_dir).mkdir(parents=True, exist_ok=True)
        save_model(stem, result.model)
    return result.model


def _seed_results(
    series: Sequence[Series],
    settings: EvalSettings,
    seed: int,
    weights: dict[str, LoadedModel] | None,
    links: dict[str, set[str]],
    progress: Callable[[str], None] | None = None,
    cancel: threading.Event | None = None,
    cache_dir: Path | None = None,
) -> dict:
    """One seed over every test subject: {"records", "skipped", "predictions"}."""
    from kneegui.research.data import subjects_of

    gait = [s for s in series if is_walking(s.exercise)]
    subjects = subjects_of(gait)[: settings.max_subjects or None]
    records: dict[str, dict] = {}
    skipped: dict[str, str] = {}
    predictions: dict[str, dict] = {}
    score_tables: dict[tuple, tuple] = {}  # (candidates, scores per recording), once per run
    excluded_of: dict[str, set[str]] = {}  # recording -> subjects of its fold and linked ones
    for fold in fold_plan(subjects, links, settings.folds):
        if weights is not None:
            trained_on = {s for m in weights.values() for s in m.card.training.get("subjects", [])}
            for subject in sorted(fold & trained_on):
                skipped[subject] = "subject is in the given weights' training data"
            fold = fold - trained_on
            if not fold:
                continue
        # The fold's subjects and those linked to them: never pretrained on, never used to
        # choose memory parameters.
        excluded = set().union(*(links.get(s, {s}) for s in fold)) | fold
        if weights is not None:
            models = dict(weights)
        else:
            pool = [s for s in series if s.subject not in excluded
                    and wants_activity(s.exercise, settings.pretrain_exercises)]
            models = {}
            for input_set in settings.input_sets:
                ts = TrainSettings(**{**settings.train.to_dict(), "input_set": input_set,
                                      "seed": seed})
                models[input_set] = pretrained(pool, ts, cache_dir, cancel)
        ft = FinetuneSettings(**{**asdict(settings.finetune), "seed": seed})
        window = max(m.card.window for m in models.values())
        H = next(iter(models.values())).card.horizons
        # Memory parameters chosen on the other subjects' gait recordings, never the test ones.
        per_subject = settings.choice == "per-subject"
        groups = sorted({memory_group(i) for i in models}) if ft.memory and per_subject else []
        key = (tuple(groups), window, H)
        if groups and key not in score_tables:  # every candidate scored once per run
            candidates = list(dict.fromkeys(c for g in groups for c in CANDIDATES[g]))
            score_tables[key] = (candidates, memory_scores(gait, candidates, window, H,
                                                           settings.cycles, settings.dev))
        # The product's memory parameters unless chosen per test subject (recorded either way).
        memory_params = {g: DEFAULT_PARAMS[g].to_dict() for g in
                         sorted({memory_group(i) for i in models})} if ft.memory else {}
        for group in groups:
            candidates, table = score_tables[key]
            cols = [candidates.index(c) for c in CANDIDATES[group]]
            memory_params[group] = best_memory_params(
                CANDIDATES[group], [table[s.name][cols] for s in gait
                                    if s.subject not in excluded and s.name in table])
        for test in [s for s in gait if s.subject in fold]:
            split = recording_split(test, window, H, settings.cycles, settings.dev)
            if split is None:
                skipped[test.name] = _skip_reason(test, window, H, settings)
                if progress is not None:  # a skipped recording counts as done
                    progress(f"{test.name} skipped")
                continue
            blends = settings.blends if per_subject and settings.memory_share is None else ()
            res = evaluate_recording(test, models, split, ft, memory_params=memory_params,
                                     blends=blends, memory_share=settings.memory_share)
            excluded_of[test.name] = excluded
            info = res.pop("_info")
            for name, m in res.items():
                pred = m.pop("_pred", None)
                if pred is not None:
                    entry = predictions.setdefault(test.name, {})
                    entry[name] = pred
                    entry["_ends"], entry["_angle"] = split.test_ends, test.angle
            records[test.name] = {
                "subject": test.subject, "group": test.group, "k_used": split.k_used,
                "calib_end_s": split.calib_end / 100.0, "n_test_cycles": split.n_test_cycles,
                "first_test_window_end_s": int(split.test_ends[0]) / 100.0,
                "duration_s": len(test) / 100.0, "flags": sorted(test.flags),
                "memory_params": memory_params,
                "methods": res, **info}
            if progress is not None:
                progress(f"{test.name} seed {seed}")
    choose_blends(records, predictions, excluded_of)
    return {"records": records, "skipped": skipped, "predictions": predictions}


def _skip_reason(s: Series, window: int, horizons: int, settings: EvalSettings) -> str:
    """Why :func:`recording_split` found no split for ``s``."""
    split = recording_split(s, window, horizons, settings.cycles)
    if split is None:
        return (f"fewer than {MIN_TEST_CYCLES} whole test cycles after one calibration cycle "
                "and the purge gap")
    if split.k_used < 2:
        return "development split: only one calibration cycle (K = 1)"
    return (f"development split: fewer than {MIN_DEV_WINDOWS} scored windows in calibration "
            f"cycle {split.k_used}")


def _seed_job(args: tuple) -> dict:
    import torch

    torch.set_num_threads(1)
    series, settings, seed, weights, links, cache_dir = args
    return _seed_results(series, settings, seed, weights, links, cache_dir=cache_dir)


def run_evaluation(
    series: Sequence[Series],
    settings: EvalSettings,
    *,
    weights: dict[str, LoadedModel] | None = None,
    links: dict[str, set[str]] | None = None,
    progress: Callable[[str], None] | None = None,
    cancel: threading.Event | None = None,
    jobs: int = 1,
    cache_dir: Path | None = None,
) -> dict:
    """Run the protocol for every seed; returns the dict written to ``results.json``.

    ``jobs > 1`` runs seeds in parallel processes (results are identical to ``jobs=1``).
    ``cache_dir`` keeps the pretrained networks (:func:`pretrained`).
    """
    links = links or {}
    per_seed: dict[int, dict] = {}
    if jobs > 1 and len(settings.seeds) > 1:
        import multiprocessing as mp
        from concurrent.futures import ProcessPoolExecutor, as_completed

        ctx = mp.get_context("spawn")
        with ProcessPoolExecutor(max_workers=jobs, mp_context=ctx) as pool:
            futures = {pool.submit(_seed_job, (list(series), settings, seed, weights, links,
                                               cache_dir)): seed
                       for seed in settings.seeds}
            for fut in as_completed(futures):
                per_seed[futures[fut]] = fut.result()
                if progress is not None:
                    progress(f"seed {futures[fut]} done")
    else:
        for seed in settings.seeds:
            per_seed[seed] = _seed_results(series, settings, seed, weights, links, progress,
                                           cancel, cache_dir)
    records: dict[str, dict] = {}
    skipped: dict[str, str] = {}
    methods: set[str] = set()
    for seed in settings.seeds:
        part = per_seed[seed]
        skipped.update(part["skipped"])
        for name, rec in part["records"].items():
            entry = records.setdefault(name, {**rec, "methods": {}})
            entry["methods"][str(seed)] = rec["methods"]
            methods.update(rec["methods"])
    records = dict(sorted(records.items(), key=lambda kv: (kv[1]["group"] != "N",
                                                           _subject_key(kv[1]["subject"]))))
    ordered = sorted(methods)
    return {
        "settings": settings.to_dict(),
        "mode": "weights" if weights is not None else "loso",
        "recordings": records,
        "skipped": skipped,
        "summary": summarise(records, ordered, settings.seeds),
        "blends": blend_summary(records),
        "methods": ordered,
        "_predictions": per_seed[settings.seeds[0]]["predictions"],
    }


def _subject_key(subject: str) -> int:
    digits = "".join(ch for ch in subject if ch.isdigit())
    return int(digits or 0)
