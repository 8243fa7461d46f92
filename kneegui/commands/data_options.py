"""Dataset options shared by `kneegui dataset info`, `train` and `evaluate`: a folder or a
manifest, selected by activity and group, with the EMG inputs (muscles) to use."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

DATA_HELP = ("dataset: a folder of recordings (UCI .txt files, KneeGUI .h5 sessions, .xdf "
             "files) or a manifest (.toml / .csv, see docs/datasets.md)")
ACTIVITY_HELP = ("comma list of activities; 'walk' (default) takes walking activities (UCI mar, "
                 "walk, gait...) and recordings without an activity, whose walking the gait "
                 "detector finds; other names take that activity (UCI pie, sen)")


def add_data_options(p: argparse.ArgumentParser, *, activities: bool = True) -> None:
    """``--data``, ``--activities`` (alias ``--exercises``), ``--groups``, ``--muscles``."""
    p.add_argument("--data", type=Path, required=True, help=DATA_HELP)
    if activities:
        p.add_argument("--activities", "--exercises", dest="activities", default="walk",
                       help=ACTIVITY_HELP)
    p.add_argument("--groups", default=None,
                   help="comma list of groups to use (default all; UCI: N,A)")
    p.add_argument("--muscles", default=None,
                   help="comma list of the EMG inputs, in model input order (default: the "
                   "manifest's channel map, or the recordings' EMG labels, e.g. RF,BF,VM,ST)")


def csv_list(text: str | None) -> list[str] | None:
    """``"a, b"`` -> ``["a", "b"]``; None or empty -> None."""
    if text is None:
        return None
    items = [t.strip() for t in text.split(",") if t.strip()]
    return items or None


def print_problems(title: str, problems: list[tuple[str, str]]) -> None:
    print(f"error: {title}:", file=sys.stderr)
    for _, message in problems:
        print(f"  - {message}", file=sys.stderr)


def load_series_or_report(args: Any, *, use_emg: bool, with_td: bool = False,
                          muscles: list[str] | None = None, activities: list[str] | None = None,
                          progress_desc: str = "reading"):
    """The dataset's model-rate series (``kneegui.research.data.load_dataset_series``), or None
    after printing why it cannot be used (every problem file, with what to change)."""
    from tqdm import tqdm

    from kneegui.labdata import DatasetError
    from kneegui.research.data import load_dataset_series

    bar = tqdm(desc=progress_desc, unit="file", file=sys.stderr, leave=False)

    def progress(done: int, total: int, path: Path) -> None:
        bar.total = total
        bar.update(done - bar.n)

    try:
        data = load_dataset_series(
            args.data, activities or csv_list(getattr(args, "activities", None)),
            csv_list(args.groups),
            muscles or csv_list(args.muscles), use_emg=use_emg, with_td=with_td,
            progress=progress)
    except (DatasetError, ValueError) as exc:
        bar.close()
        print(f"error: {exc}", file=sys.stderr)
        return None
    bar.close()
    if data.problems:
        print_problems(f"{len(data.problems)} recording(s) of {args.data} cannot be used; fix "
                       "them (or leave them out of the manifest)", data.problems)
        return None
    if not data.series:
        reasons = data.unused or [("", "no recording matches --activities / --groups")]
        print_problems(f"nothing to use in {args.data}", reasons)
        return None
    return data
