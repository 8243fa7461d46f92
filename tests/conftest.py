"""Shared test configuration: headless Qt, loopback-only LSL, and the shared UCI data."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
# Both must be set before Qt or liblsl initialise.
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ["LSLAPICFG"] = str(HERE / "lsl_api.cfg")

REPO = HERE.parent
#: Real-data model fixtures (gait_series, held_out, small_model, subject_model).
pytest_plugins = ("model_fixtures",)
#: The shared UCI "EMG dataset in Lower Limb" folder (read-only).
UCI_DIR = Path(os.environ.get("KNEEGUI_UCI_DIR", REPO.parent / "shared/data/uci_lower_limb_emg"))
XDF_DIR = Path(os.environ.get("KNEEGUI_XDF_DIR", REPO.parent / "shared/data/xdf_examples"))


@pytest.fixture(scope="session")
def uci_dir() -> Path:
    """Path of the shared UCI dataset; the tests need the real data."""
    if not (UCI_DIR / "N_TXT").is_dir():
        raise RuntimeError(f"UCI data not found at {UCI_DIR}; set KNEEGUI_UCI_DIR")
    return UCI_DIR


@pytest.fixture(scope="session")
def xdf_dir() -> Path:
    """Path of the shared reference XDF files."""
    if not XDF_DIR.is_dir():
        raise RuntimeError(f"XDF examples not found at {XDF_DIR}; set KNEEGUI_XDF_DIR")
    return XDF_DIR
