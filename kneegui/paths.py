"""Where the shipped data lives: ``resources/`` and ``models/``.

Works the same from a source checkout (or editable install) and from the PyInstaller
bundle built by ``make installer`` (where the data sits under ``sys._MEIPASS``).
Environment variables ``KNEEGUI_RESOURCES_DIR`` / ``KNEEGUI_MODELS_DIR`` override both.
Use these helpers instead of building paths from ``__file__`` in other modules.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path


def is_frozen() -> bool:
    """True when running from a PyInstaller bundle."""
    return bool(getattr(sys, "frozen", False)) and hasattr(sys, "_MEIPASS")


def app_root() -> Path:
    """The folder holding ``resources/`` and ``models/`` (bundle dir or repository root)."""
    if is_frozen():
        return Path(sys._MEIPASS)  # type: ignore[attr-defined]
    return Path(__file__).resolve().parent.parent


def resources_dir() -> Path:
    """The shipped ``resources/`` folder (LSL configs, simulated-lab recording, icon)."""
    override = os.environ.get("KNEEGUI_RESOURCES_DIR")
    return Path(override) if override else app_root() / "resources"


def models_dir() -> Path:
    """The shipped ``models/`` folder (pretrained weights + model cards)."""
    override = os.environ.get("KNEEGUI_MODELS_DIR")
    return Path(override) if override else app_root() / "models"
