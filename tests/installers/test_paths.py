"""kneegui.paths finds the shipped data from the checkout, a bundle layout, and overrides."""

from __future__ import annotations

import sys
from pathlib import Path

from kneegui import paths

REPO = Path(__file__).resolve().parents[2]


def test_source_checkout_points_at_repository_folders() -> None:
    assert paths.resources_dir() == REPO / "resources"
    assert paths.models_dir() == REPO / "models"
    assert (paths.resources_dir() / "lsl_machine_only.cfg").is_file()
    assert not paths.is_frozen()


def test_bundle_layout_uses_meipass(monkeypatch, tmp_path: Path) -> None:
    monkeypatch.setattr(sys, "frozen", True, raising=False)
    monkeypatch.setattr(sys, "_MEIPASS", str(tmp_path), raising=False)
    assert paths.is_frozen()
    assert paths.resources_dir() == tmp_path / "resources"
    assert paths.models_dir() == tmp_path / "models"


def test_environment_overrides_win(monkeypatch, tmp_path: Path) -> None:
    monkeypatch.setenv("KNEEGUI_RESOURCES_DIR", str(tmp_path / "r"))
    monkeypatch.setenv("KNEEGUI_MODELS_DIR", str(tmp_path / "m"))
    assert paths.resources_dir() == tmp_path / "r"
    assert paths.models_dir() == tmp_path / "m"
