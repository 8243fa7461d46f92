"""`kneegui train`: pretrain a knee-angle network on a dataset.

The dataset is a folder of recordings (UCI text files, KneeGUI sessions, XDF files) or a
manifest (docs/datasets.md); every recording is put on the model time base with the live path's
DSP, cut into gap-free walking pieces, and its EMG channels mapped to the model's inputs
(--muscles, default the dataset's). Seeded, early stopping on the last 15 % of every piece, tqdm
progress on stderr. Writes ``OUT.safetensors`` + ``OUT.json`` (model card with the channel
layout, the data hash and this command's settings).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from kneegui.commands.data_options import add_data_options, load_series_or_report


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("train", help="pretrain a knee-angle predictor on a dataset",
                              description=__doc__,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    add_data_options(p)
    p.add_argument("--input-set", default="emg+angle",
                   help="emg | emg+angle | angle (default emg+angle)")
    p.add_argument("--out", type=Path, required=True, help="output stem, e.g. models/kneenet_emg")
    p.add_argument("--exclude-subjects", default="", help="comma list, e.g. 3A,1N")
    p.add_argument("--window", type=int, default=None, help="input window in model steps")
    p.add_argument("--epochs", type=int, default=None, help="maximum epochs")
    p.add_argument("--patience", type=int, default=None, help="early-stopping patience (epochs)")
    p.add_argument("--windows-per-epoch", type=int, default=None)
    p.add_argument("--lr", type=float, default=None)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    p.add_argument("--name", default=None, help="model name in the card (default from out)")
    p.add_argument("--force", action="store_true", help="replace an existing model at --out")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from kneegui.commands.research_gate import missing_research

    problem = missing_research("train")
    if problem:
        print(f"error: {problem}", file=sys.stderr)
        return 2
    from tqdm import tqdm

    from kneegui.model.config import INPUT_SETS, uses_emg
    from kneegui.model.io import model_paths, save_model
    from kneegui.research.training import TrainSettings, train_model

    existing = [p for p in model_paths(args.out) if p.exists()]
    if existing and not args.force:
        print(f"error: {existing[0]} exists; choose another --out or pass --force to replace it",
              file=sys.stderr)
        return 2

    if args.input_set not in INPUT_SETS or args.input_set == "emg+kin+force":
        print(f"error: --input-set must be emg, emg+angle or angle (training on kinematics and "
              f"force is not supported yet), got {args.input_set!r}", file=sys.stderr)
        return 2
    data = load_series_or_report(args, use_emg=uses_emg(args.input_set))
    if data is None:
        return 2
    series = data.series
    excluded = set(_csv(args.exclude_subjects))
    series = [s for s in series if s.subject not in excluded]
    if not series:
        print("error: no recordings left after --exclude-subjects", file=sys.stderr)
        return 2
    overrides = {k: v for k, v in {
        "window": args.window, "epochs": args.epochs, "patience": args.patience,
        "windows_per_epoch": args.windows_per_epoch, "lr": args.lr}.items() if v is not None}
    settings = TrainSettings(input_set=args.input_set, seed=args.seed, threads=args.threads,
                             **overrides)
    bar = tqdm(total=settings.epochs, desc=f"train {args.input_set}", unit="epoch",
               file=sys.stderr)

    def progress(epoch: int, train_loss: float, val_loss: float) -> None:
        bar.update(1)
        bar.set_postfix(train=f"{train_loss:.4f}", val=f"{val_loss:.4f}")

    command = "kneegui train " + " ".join(sys.argv[2:]) if len(sys.argv) > 2 else ""
    description = (f"dataset {data.description}, activities {args.activities}, groups "
                   f"{args.groups or 'all'}")
    try:
        result = train_model(series, settings, name=args.name or args.out.name,
                             progress=progress, data_description=description)
    except ValueError as exc:
        bar.close()
        print(f"error: {exc}", file=sys.stderr)
        return 2
    bar.close()
    if result.cancelled:
        print("training cancelled; nothing saved", file=sys.stderr)
        return 130
    from dataclasses import asdict, replace

    from kneegui.dsp import FilterSettings

    card = result.model.card
    card = replace(card, dsp_settings=asdict(FilterSettings()),
                   training={**card.training, "command": command, "history": result.history})
    try:
        weights, card_path = save_model(args.out, replace(result.model, card=card))
    except OSError as exc:
        print(f"error: cannot write the model to {args.out} ({exc.strerror or exc}); choose a "
              "writable --out", file=sys.stderr)
        return 2
    best = card.training["best_epoch"]
    layout = f"EMG inputs {', '.join(card.emg_inputs)}; " if card.emg_inputs else ""
    print(f"saved {weights} and {card_path} ({layout}best epoch {best}, {len(series)} "
          f"recordings, {len({s.subject for s in series})} subjects)")
    return 0


def _csv(text: str) -> list[str]:
    return [t.strip() for t in text.split(",") if t.strip()]
