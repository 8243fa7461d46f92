"""`kneegui models`: list model cards in a folder, show one model's card, or export a model.

``kneegui models list [DIR]`` (default: the shipped models folder),
``kneegui models info PATH`` (stem, .json or .safetensors; loads the weights to verify them) and
``kneegui models export NAME --format onnx --out FILE`` (the whole predictor as one ONNX file for
controllers outside Python; see docs/portable-predictor.md).
"""

from __future__ import annotations

import argparse
import json
import os
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
    ex = sub.add_parser("export", help="write a model's whole predictor (network, "
                        "normalisation, memory, extrapolator, blends) as one ONNX file")
    ex.add_argument("name", help="model: stem/file path or name in `kneegui models list` "
                    "(shipped or subject model store)")
    ex.add_argument("--format", choices=["onnx"], default="onnx", help="file format (onnx)")
    ex.add_argument("--out", required=True,
                    help="file to write (a folder, existing or ending in '/': "
                    "<folder>/<model stem>.onnx)")
    ex.add_argument("--force", action="store_true", help="replace an existing file")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from kneegui.model.io import ModelLoadError, NotAModelCardError, load_model, read_card

    if args.models_command == "export":
        return _export(args)
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
        print("usage: kneegui models list [DIR] | kneegui models info PATH | "
              "kneegui models export NAME --out FILE", file=sys.stderr)
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


def _export(args: argparse.Namespace) -> int:
    """`kneegui models export`: find the model like `kneegui calibrate --model`, export it."""
    from kneegui.calibration.store import ModelStoreError, SubjectModelStore
    from kneegui.model.io import ModelLoadError

    def fail(message: str) -> int:
        print(f"error: {message}", file=sys.stderr)
        return 2

    try:
        import onnx  # noqa: F401  (a dependency; checked here for a clear message)

        from kneegui.portable import ExportError, export_onnx, input_columns
    except ImportError as exc:
        return fail(f"the ONNX export needs the onnx package ({exc.name} is missing); "
                    "reinstall KneeGUI with its dependencies")
    store = SubjectModelStore()
    try:
        entry = store.find(args.name)
    except ModelStoreError as exc:
        return fail(str(exc))
    if entry.error:
        return fail(entry.error)
    out = Path(args.out).expanduser()
    if out.is_dir() or args.out.endswith(("/", os.sep)):
        out = out / f"{entry.path.name}.onnx"
    if out.exists() and not args.force:
        return fail(f"{out} exists; pass --force to replace it")
    try:
        model = store.load(entry)
    except ModelLoadError as exc:
        return fail(str(exc))
    try:
        result = export_onnx(model, out)
    except ExportError as exc:
        return fail(str(exc))
    card = model.card
    cols = input_columns(card)
    step_ms = 1000.0 / card.model_rate
    print(f"exported {result.model_id} ({result.parts.replace(',', ', ')}) to {result.path}")
    print(f"  {result.size / 1000:.0f} kB, sha256 {result.sha256}")
    groups: list[tuple[str, list[str]]] = []
    for c in cols:
        if groups and groups[-1][0] == c.unit:
            groups[-1][1].append(c.name)
        else:
            groups.append((c.unit, [c.name]))
    print(f"  input  window [batch, {card.rows_needed}, {len(cols)}] float32, oldest row first: "
          + "; ".join(f"{', '.join(names)} ({unit})" for unit, names in groups))
    print(f"  output trajectory_deg [batch, {card.horizons}] float32: knee angle in degrees "
          f"{step_ms:g}..{card.horizons * step_ms:g} ms ahead")
    print(f"  checked against the Predictor on {result.checked_windows} windows (onnx reference "
          f"runtime): max difference {result.max_difference_deg:.1e} deg")
    return 0
