"""`kneegui evaluate`: subject-wise evaluation of the predictor (paper-style table).

DATA is a folder of recordings (UCI text files, KneeGUI sessions, XDF files) or a manifest
(docs/datasets.md); walking is found by the gait detector. Per gait recording of every subject:
calibrate on the first K gait cycles (K reduced per recording so that >= 2 cycles remain for
testing), purge gap of one input window, test on the rest. Networks are pretrained
leave-one-subject-out (``--loso``) or loaded with ``--weights``
(only subjects not in those weights' training data are evaluated). By default every subject
model is the one the app builds for a new subject (``--choice product``); ``--choice per-subject``
is a research option that picks the calibration memory's parameters and blend for each test
subject on the other subjects' recordings. Writes results.json, results.md (table) and PNG plots
to --out. Same seed(s) -> same numbers.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

from kneegui.commands.data_options import add_data_options, load_series_or_report


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("evaluate", help="evaluate the predictor on a dataset",
                              description=__doc__,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    add_data_options(p, activities=False)
    mode = p.add_mutually_exclusive_group(required=True)
    mode.add_argument("--weights", type=Path, nargs="+",
                      help="pretrained model stem(s), one per input set")
    mode.add_argument("--loso", action="store_true",
                      help="pretrain leave-one-subject-out on DATA (all exercises)")
    p.add_argument("--folds", type=int, default=None,
                   help="with --loso: subject-grouped N-fold instead of one fold per subject "
                   "(cheaper; linked subjects stay together)")
    p.add_argument("--val-windows", type=int, default=None,
                   help="validation windows per pretraining epoch (default 8000)")
    p.add_argument("--cycles", type=int, default=3, help="calibration gait cycles K (default 3)")
    p.add_argument("--seeds", type=int, default=1, help="number of seeds 0..N-1 (default 1)")
    p.add_argument("--input-sets", default="emg,emg+angle,angle",
                   help="comma list for --loso (default emg,emg+angle,angle)")
    p.add_argument("--pretrain-activities", "--pretrain-exercises", dest="pretrain_exercises",
                   default="mar", help="activities used for --loso pretraining (default mar: "
                   "walking, see `kneegui train --activities`)")
    p.add_argument("--subjects", type=int, default=None,
                   help="evaluate only the first N subjects (quick runs)")
    p.add_argument("--epochs", type=int, default=None, help="pretraining epochs (--loso)")
    p.add_argument("--windows-per-epoch", type=int, default=None)
    p.add_argument("--finetune-epochs", type=int, default=None,
                   help="maximum fine-tuning epochs per layer set (default 40)")
    p.add_argument("--choice", choices=("product", "per-subject"), default="product",
                   help="product (default): score the subject model the app builds (memory "
                   "parameters and share of the product's rule); per-subject (research option): "
                   "choose the memory parameters and blend for each test subject on the other "
                   "subjects' recordings")
    p.add_argument("--memory-weight", default=None, metavar="W|fitted",
                   help="research option: calibration memory share in [0, 1] for every recording, "
                   "or 'fitted' (per horizon on the held-back cycle), instead of the blend rule")
    p.add_argument("--memory-ramp", type=int, default=None, metavar="N",
                   help="with --memory-weight W: the share rises linearly over the first N steps "
                   "(default 1: the same share at every horizon)")
    p.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    p.add_argument("--jobs", type=int, default=1,
                   help="run seeds in N parallel processes (same numbers as --jobs 1)")
    p.add_argument("--dev", action="store_true",
                   help="development run: calibrate on K-1 cycles and score inside cycle K, "
                   "never on the test windows (compare methods with this, report the normal run)")
    p.add_argument("--cache", type=Path, default=None, metavar="DIR",
                   help="keep the --loso pretrained networks in DIR and reuse them when the "
                   "settings and data match (same numbers, no retraining)")
    p.add_argument("--out", type=Path, default=Path("evaluation"), help="output folder")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from kneegui.commands.research_gate import missing_research

    problem = missing_research("evaluate", ("matplotlib",))
    if problem:
        print(f"error: {problem}", file=sys.stderr)
        return 2
    from tqdm import tqdm

    from kneegui.adaptation.finetune import FinetuneSettings
    from kneegui.labdata import is_walking, linked_subjects
    from kneegui.model.config import uses_emg
    from kneegui.model.io import ModelLoadError, load_model
    from kneegui.research.data import subjects_of
    from kneegui.research.evaluation import EvalSettings, run_evaluation
    from kneegui.research.report import markdown_table, write_results
    from kneegui.research.training import TrainSettings

    if args.cycles < 1 or args.seeds < 1:
        print("error: --cycles and --seeds must be >= 1", file=sys.stderr)
        return 2
    ft_over: dict = {"max_epochs": args.finetune_epochs} if args.finetune_epochs else {}
    share: tuple[float, int] | str | None = None
    if args.memory_weight is not None:
        try:
            weight = _memory_weight(args.memory_weight)
        except ValueError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        share = "fitted" if weight is None else (weight, 1)
    if args.memory_ramp is not None:
        if not isinstance(share, tuple) or args.memory_ramp < 1:
            print("error: --memory-ramp N needs --memory-weight W (a number) and N >= 1",
                  file=sys.stderr)
            return 2
        share = (share[0], args.memory_ramp)
    weights = None
    if args.weights:
        try:
            loaded = [load_model(w) for w in args.weights]
        except ModelLoadError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        weights = {m.card.input_set: m for m in loaded}
        input_sets = tuple(weights)
    else:
        input_sets = tuple(s.strip() for s in args.input_sets.split(",") if s.strip())
        bad = [s for s in input_sets if s not in ("emg", "emg+angle", "angle")]
        if bad:
            print(f"error: unsupported input set(s) {bad}; use emg, emg+angle, angle",
                  file=sys.stderr)
            return 2
    exercises = tuple(e.strip() for e in args.pretrain_exercises.split(",") if e.strip())
    muscles = None
    if weights is not None:
        layouts = {m.card.emg_inputs for m in weights.values() if m.card.emg_inputs}
        if len(layouts) > 1:
            print("error: the --weights models have different EMG inputs ("
                  + "; ".join(", ".join(lay) for lay in sorted(layouts)) + "); evaluate them "
                  "one at a time", file=sys.stderr)
            return 2
        muscles = list(layouts.pop()) if layouts else None
        asked = [m.strip() for m in (args.muscles or "").split(",") if m.strip()]
        if asked and muscles and [m.casefold() for m in asked] != [m.casefold() for m in muscles]:
            print(f"error: --muscles {','.join(asked)} differs from the model's EMG inputs "
                  f"{','.join(muscles)}; a model is evaluated on the inputs it was trained on",
                  file=sys.stderr)
            return 2
    data = load_series_or_report(args, use_emg=any(uses_emg(s) for s in input_sets),
                                 with_td=True, muscles=muscles,
                                 activities=sorted(set(exercises) | {"walk"}))
    if data is None:
        return 2
    series = data.series
    links = linked_subjects(data.spec)
    train_over = {k: v for k, v in {"epochs": args.epochs, "val_windows": args.val_windows,
                                    "windows_per_epoch": args.windows_per_epoch}.items()
                  if v is not None}
    settings = EvalSettings(
        input_sets=input_sets, cycles=args.cycles, seeds=tuple(range(args.seeds)),
        pretrain_exercises=exercises, max_subjects=args.subjects, folds=args.folds, dev=args.dev,
        choice=args.choice, memory_share=share,
        train=TrainSettings(threads=args.threads, **train_over),
        finetune=FinetuneSettings(threads=args.threads, **ft_over),
    )
    gait = [s for s in series if is_walking(s.exercise)]
    n_recordings = len(gait) if not args.subjects else sum(
        1 for s in gait if s.subject in subjects_of(gait)[: args.subjects])
    parallel = args.jobs > 1 and args.seeds > 1
    total = args.seeds if parallel else n_recordings * args.seeds
    bar = tqdm(total=total, desc="evaluate", unit="seed" if parallel else "recording",
               file=sys.stderr)

    def progress(msg: str) -> None:
        bar.update(1)
        bar.set_postfix_str(msg)

    t0 = time.perf_counter()
    results = run_evaluation(series, settings, weights=weights, links=links, progress=progress,
                             jobs=args.jobs, cache_dir=args.cache)
    bar.close()
    results["command"] = "kneegui evaluate " + " ".join(sys.argv[2:])
    results["data"] = {"description": data.description, "emg_inputs": list(data.muscles),
                       "uci": all(e.path.suffix.lower() == ".txt" for e in data.spec.entries),
                       "duplicates_left_out": data.duplicates,
                       "not_walking": [msg for _, msg in data.unused]}
    results["seconds"] = time.perf_counter() - t0
    if weights is not None:
        results["weights"] = {k: str(v.path) for k, v in weights.items()}
    if not results["recordings"]:
        print("error: nothing evaluated: " + "; ".join(f"{k}: {v}" for k, v in
                                                      results["skipped"].items()), file=sys.stderr)
        return 3
    paths = write_results(results, args.out)
    print(markdown_table(results))
    print("wrote " + ", ".join(str(p) for p in paths))
    return 0


def _memory_weight(text: str) -> float | None:
    """``--memory-weight``: None for "fitted", else a share in [0, 1] (ValueError otherwise)."""
    if text == "fitted":
        return None
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"--memory-weight must be a number in [0, 1] or 'fitted', got {text!r}")
    return value
