"""`kneegui train`, `evaluate`, `models` end to end on a tiny real-data budget."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np

from kneegui.datasets.uci import find_uci_files


def _kneegui(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "kneegui", *args], capture_output=True,
                          text=True, timeout=280)


def _two_subject_dir(uci_dir: Path, tmp_path: Path) -> Path:
    """A UCI-format folder with the gait files of two abnormal-group subjects (from the data)."""
    files = find_uci_files(uci_dir, exercises=("mar",), groups=("A",))[:2]
    data = tmp_path / "data" / "A_TXT"
    data.mkdir(parents=True)
    for f in files:
        (data / f.name).symlink_to(f)
    return data.parent


def test_evaluate_loso_writes_results_table_and_plots(uci_dir, tmp_path):
    data = _two_subject_dir(uci_dir, tmp_path)
    out = tmp_path / "eval"
    r = _kneegui("evaluate", "--data", str(data), "--loso", "--seeds", "1", "--epochs", "2",
                 "--windows-per-epoch", "1024", "--finetune-epochs", "3",
                 "--choice", "per-subject", "--out", str(out))
    assert r.returncode == 0, r.stderr
    results = json.loads((out / "results.json").read_text())
    assert len(results["recordings"]) == 2
    rec = next(iter(results["recordings"].values()))
    for method in ("emg:finetuned", "emg+angle:finetuned", "angle:finetuned", "persistence",
                   "constant_velocity", "ridge_td", "calibration_mean", "emg:network",
                   "emg+angle:network"):
        nmae = rec["methods"]["0"][method]["nmae"]
        assert len(nmae) == 50 and all(v >= 0 for v in nmae)
    # Each subject's memory blend is the best one on the *other* subject's recording.
    recs = list(results["recordings"].values())
    for rec, other in ((recs[0], recs[1]), (recs[1], recs[0])):
        for input_set in ("emg", "emg+angle", "angle"):
            mine = rec["methods"]["0"][f"{input_set}:finetuned"]
            theirs = other["methods"]["0"][f"{input_set}:finetuned"]["blend_scores"]
            assert len(theirs) == 17  # (scores are rounded in the JSON: ties possible)
            assert theirs[mine["blend"]] == min(theirs.values()) < max(theirs.values())
            assert mine["memory_weight"] is not None
    assert not [m for rec in recs for m in rec["methods"]["0"] if "@" in m]  # variants dropped
    assert set(results["blends"]) == {"emg", "emg+angle", "angle"}
    table = (out / "results.md").read_text()
    assert "UCI abnormal, 1-step" in table and "UCI abnormal, 50-step" in table
    assert "Calibration-memory blend" in table
    assert "Research option, not what the app runs" in table
    assert list(out.glob("*.png")) and all(p.stat().st_size > 5000 for p in out.glob("*.png"))
    assert "evaluate" in r.stderr  # tqdm progress bar


def test_evaluate_dev_run_reuses_cached_networks_and_stays_in_calibration(uci_dir, tmp_path):
    data = _two_subject_dir(uci_dir, tmp_path)
    cache = tmp_path / "cache"
    common = ["--data", str(data), "--loso", "--seeds", "1", "--epochs", "1",
              "--windows-per-epoch", "512", "--val-windows", "256", "--finetune-epochs", "2",
              "--input-sets", "emg+angle", "--cache", str(cache)]
    r = _kneegui("evaluate", *common, "--out", str(tmp_path / "full"))
    assert r.returncode == 0, r.stderr
    cached = {p: p.stat().st_mtime_ns for p in cache.iterdir()}
    assert len(cached) == 4  # one network per fold (weights + card)
    r = _kneegui("evaluate", *common, "--dev", "--out", str(tmp_path / "dev"))
    assert r.returncode == 0, r.stderr
    assert {p: p.stat().st_mtime_ns for p in cache.iterdir()} == cached  # reused, not retrained
    full = json.loads((tmp_path / "full" / "results.json").read_text())
    dev = json.loads((tmp_path / "dev" / "results.json").read_text())
    assert dev["settings"]["dev"] and not full["settings"]["dev"]
    assert "Development run" in (tmp_path / "dev" / "results.md").read_text()
    assert dev["recordings"]
    for name, rec in dev["recordings"].items():
        real = full["recordings"][name]
        assert rec["k_used"] == real["k_used"] - 1
        # Every scored window (and its 500 ms future) ends before the real calibration does.
        n_windows = rec["n_test_windows"]
        last_end_s = rec["first_test_window_end_s"] + (n_windows - 1) / 100.0
        assert last_end_s + 0.5 < real["calib_end_s"]


def test_train_then_models_info_list_and_evaluate_weights(uci_dir, tmp_path):
    data = _two_subject_dir(uci_dir, tmp_path)
    first, second = sorted(p.name[: -len("mar.txt")] for p in (data / "A_TXT").iterdir())
    stem = tmp_path / "models" / "m_emg"
    r = _kneegui("train", "--data", str(data), "--input-set", "emg", "--out", str(stem),
                 "--epochs", "1", "--windows-per-epoch", "512", "--window", "40",
                 "--exclude-subjects", second)
    assert r.returncode == 0, r.stderr
    info = _kneegui("models", "info", str(stem))
    assert info.returncode == 0 and "input set:  emg" in info.stdout
    assert f"subjects:   {first}" in info.stdout
    listing = _kneegui("models", "list", str(stem.parent))
    assert "m_emg" in listing.stdout
    out = tmp_path / "eval_w"
    r = _kneegui("evaluate", "--data", str(data), "--weights", str(stem), "--finetune-epochs",
                 "2", "--out", str(out))
    assert r.returncode == 0, r.stderr
    results = json.loads((out / "results.json").read_text())
    assert [rec["subject"] for rec in results["recordings"].values()] == [second]
    assert first in results["skipped"]  # in the weights' training data: never tested on
    # By default the score is the subject model the app builds: the product's memory share.
    from kneegui.adaptation.blend import default_blend, memory_share_profile

    rec = next(iter(results["recordings"].values()))["methods"]["0"]["emg:finetuned"]
    assert "blend" not in rec
    np.testing.assert_allclose(rec["memory_weight"],
                               memory_share_profile(*default_blend("emg"), 50), rtol=1e-4)
    assert "Subject models as the app builds them" in (out / "results.md").read_text()
    again = _kneegui("train", "--data", str(data), "--input-set", "emg", "--out", str(stem),
                     "--epochs", "1")
    assert again.returncode == 2 and "exists" in again.stderr and "--force" in again.stderr


def test_evaluate_refuses_a_memory_ramp_without_a_fixed_weight(uci_dir, tmp_path):
    for extra in (["--memory-ramp", "5"], ["--memory-weight", "fitted", "--memory-ramp", "5"],
                  ["--memory-weight", "0.5", "--memory-ramp", "0"], ["--memory-weight", "2"]):
        r = _kneegui("evaluate", "--data", str(uci_dir), "--loso", *extra)
        assert r.returncode == 2 and "error: --memory" in r.stderr, (extra, r.stderr)


def test_bad_model_file_gives_one_line_error(tmp_path):
    (tmp_path / "x.json").write_text("[]")
    r = _kneegui("models", "info", str(tmp_path / "x"))
    assert r.returncode == 2
    assert "not a KneeGUI model card" in r.stderr and "Traceback" not in r.stderr


def test_models_list_shows_a_refused_card_and_survives_a_nested_one(tmp_path):
    """A card that would predict NaN is listed as unusable with the reason; a JSON bomb in the
    folder is not a crash."""
    from kneegui.paths import models_dir

    src = models_dir() / "kneenet_emg.json"
    card = json.loads(src.read_text())
    card["norm"]["input_std"][0] = 0.0
    (tmp_path / "bad.json").write_text(json.dumps(card))
    (tmp_path / "bomb.json").write_text("[" * 100_000 + "]" * 100_000)
    for stem in ("bad", "bomb"):
        (tmp_path / f"{stem}.safetensors").write_bytes(b"x")
    r = _kneegui("models", "list", str(tmp_path))
    assert r.returncode == 0 and "Traceback" not in r.stderr, r.stderr
    assert "bad\tUNUSABLE" in r.stdout and "norm.input_std[0]" in r.stdout


def test_training_a_file_too_short_is_a_clear_error(uci_dir, tmp_path):
    """A 50-row gait file: an error that says why, not a traceback."""
    src = find_uci_files(uci_dir, exercises=("mar",), groups=("A",))[0]
    lines = src.read_text(errors="replace").splitlines()
    data = tmp_path / "d" / "A_TXT"
    data.mkdir(parents=True)
    header = next(i for i, line in enumerate(lines) if _numeric_row(line))
    (data / src.name).write_text("\n".join(lines[: header + 50]) + "\n")
    r = _kneegui("train", "--data", str(data.parent), "--input-set", "emg",
                 "--out", str(tmp_path / "m"), "--epochs", "1")
    assert r.returncode == 2, r.stdout + r.stderr
    assert "Traceback" not in r.stderr and "error:" in r.stderr


def _numeric_row(line: str) -> bool:
    """A data row of a UCI file: five or more numbers."""
    try:
        return len([float(v) for v in line.split()]) >= 5
    except ValueError:
        return False
