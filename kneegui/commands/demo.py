"""`kneegui demo`: the simulated lab and the main window, the shipped model predicting.

Without a display (no DISPLAY / WAYLAND_DISPLAY) it runs offscreen and tells the story in
about a minute: a simulated subject the shipped model never saw walks, the shipped model
predicts, the calibration wizard adapts it on the first gait cycles, the adapted model takes
over, and the summary compares the live 10 / 50 / 500 ms error before and after on walking the
calibration did not see. It records the session into ``--out`` and saves demo_before.png,
demo_calibration.png (the wizard's results) and demo_after.png. ``--duration S`` instead runs
a plain S-second demo (no calibration) and saves demo.png. With a display it opens the app and
the calibration wizard for the simulated subject.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "demo",
        help="simulated lab + live window with the shipped model (headless: PNG + summary)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--duration", type=float, default=None, metavar="S",
                   help="headless: a plain S-second run with the shipped model, no calibration "
                        "(default: the calibration story, about a minute)")
    p.add_argument("--out", type=Path, default=Path("demo_out"), metavar="DIR",
                   help="folder for the session, the PNGs, subject models and summary.json "
                        "(default ./demo_out)")
    p.add_argument("--model", type=Path, default=None, metavar="PATH",
                   help="model weights (.safetensors with its .json card); default: the shipped "
                        "emg+angle model")
    p.add_argument("--headless", action="store_true",
                   help="timed run with session, demo.png and summary even when a display "
                        "exists (e.g. under xvfb-run for a real X11 screenshot)")
    p.set_defaults(run=run)


def has_display() -> bool:
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def prepare_environment() -> bool:
    """Keep LSL on this machine and pick the Qt platform; returns True when headless.

    Must run before pylsl or Qt initialise."""
    from kneegui.paths import resources_dir

    if not os.environ.get("LSLAPICFG"):
        os.environ["LSLAPICFG"] = str(resources_dir() / "lsl_machine_only.cfg")
    headless = not has_display()
    if headless:
        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    return headless or os.environ.get("QT_QPA_PLATFORM") == "offscreen"


def run(args) -> int:
    if args.duration is not None and args.duration <= 0:
        print("kneegui demo: --duration must be > 0 seconds", file=sys.stderr)
        return 2
    if args.model is not None and not Path(args.model).exists():
        print(f"kneegui demo: model file {args.model} not found; pass an existing "
              ".safetensors file or leave --model out to use the shipped one", file=sys.stderr)
        return 2
    headless = prepare_environment() or args.headless
    from kneegui.gui.demo_runner import DemoError, run_demo
    from kneegui.gui.platform_check import QtPlatformError

    try:
        return run_demo(args.duration, args.out, args.model, headless=headless)
    except (DemoError, QtPlatformError) as exc:
        print(f"kneegui demo: {exc}", file=sys.stderr)
        return 1
    except ImportError as exc:
        print(f"kneegui demo: a core part is missing from this installation ({exc}); "
              "reinstall kneegui", file=sys.stderr)
        return 1
