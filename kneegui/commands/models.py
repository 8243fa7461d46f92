"""`kneegui models`: list model cards in a folder, or show one model's card.

``kneegui models list [DIR]`` (default: the shipped models folder) and
``kneegui models info PATH`` (stem, .json or .safetensors; loads the weights to verify them).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("models", help="list or inspect model files", description=__doc__,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="models_command", metavar="ACTION")
    ls = sub.add_parser("list", help="list models (cards) in a folder")
    ls.add_argument("folder", nargs="?", type=Path, default=None,
                    help="folder (default: the shipped models folder)")
    info = sub.add_parser("info", help="show a model's card and verify its weights")
    info.add_argument("path", type=Path, help="model stem, .json or .safetensors")
    info.add_argument("--json", action="store_true", help="print the full card as JSON")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from kneegui.model.io import ModelLoadError, NotAModelCardError, load_model, read_card

    if args.models_command == "info":
        try:
            loaded = load_model(args.path)
        except ModelLoadError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        card = loaded.card
        if args.json:
            print(json.dumps(card.to_dict(), indent=1))
            return 0
        n_params = sum(p.numel() for p in loaded.net.parameters())
        print(f"id:         {loaded.model_id}")
        print(f"input set:  {card.input_set}  channels: {', '.join(card.channels)}")
        print(f"window:     {card.window} steps at {card.model_rate:g} Hz; "
              f"horizons 1..{card.horizons}")
        print(f"parameters: {n_params}")
        print(f"subject:    {card.subject or '- (pretrained)'}  "
              f"base model: {card.base_model or '-'}")
        print(f"training:   {card.training.get('description', '')}")
        print(f"subjects:   {', '.join(card.training.get('subjects', []))}")
        print(f"command:    {card.training.get('command', '-')}")
        print(f"needs:      {card.rows_needed} aligned rows per prediction (window rule)")
        memory = loaded.memory
        if memory is not None:
            from kneegui.model.memory import share_text

            print(f"memory:     {len(memory.keys)} calibration windows, {memory.params.kind} keys "
                  f"({memory.params.history} samples, {memory.params.neighbours} neighbours); "
                  f"{share_text(card.memory.share)}")
        if card.extrapolator is not None:
            from kneegui.model.extrapolator import extrapolator_text

            print(f"extrapol.:  {loaded.extrapolator.lags} lags; "
                  f"{extrapolator_text(card.extrapolator.share)}")
        if card.metrics:
            print(f"metrics:    {json.dumps(card.metrics)}")
        return 0
    if args.models_command != "list":
        print("usage: kneegui models list [DIR] | kneegui models info PATH", file=sys.stderr)
        return 2
    from kneegui.paths import models_dir

    folder = args.folder or models_dir()
    if not folder.is_dir():
        print(f"error: folder not found: {folder}", file=sys.stderr)
        return 2
    rows = 0
    for card_path in sorted(folder.glob("*.json")):
        try:
            card = read_card(card_path)
        except NotAModelCardError:
            continue  # another file (e.g. results.json, active.json)
        except ModelLoadError as exc:
            print(f"{card_path.with_suffix('')}\tUNUSABLE\t{exc}")
            rows += 1
            continue
        rows += 1
        print(f"{card_path.with_suffix('')}\t{card.name}\t{card.input_set}\t"
              f"subject={card.subject or '-'}\tcreated={card.created or '-'}")
    if rows == 0:
        print(f"no models in {folder}", file=sys.stderr)
    return 0
