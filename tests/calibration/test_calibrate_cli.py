"""`kneegui calibrate` as a subprocess against the simulated lab on LSL loopback."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid

import pytest
from calibration_helpers import pretrained_without

from kneegui.calibration import SubjectModelStore


@pytest.fixture(scope="session")
def base_model(uci_dir, tmp_path_factory):
    return pretrained_without(uci_dir, tmp_path_factory.getbasetemp())


def _calibrate(base_stem, lab, tmp_path, *extra):
    cmd = [sys.executable, "-m", "kneegui", "calibrate", "--subject", "T-cli",
           "--model", str(base_stem), "--emg", lab.emg_source_id, "--angle", lab.angle_source_id,
           "--out", str(tmp_path / "models"), "--json", str(tmp_path / "result.json"),
           "--sensor-check", "1.5", *extra]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def test_cli_calibrates_an_unseen_subject(base_model, tmp_path):
    """Live LSL streams of a subject the base model never saw: the subject model beats the base
    model on the held-back cycle; saved, active, JSON written, progress shown."""
    from kneegui.acquisition import SimulatedLab

    base, target = base_model
    prefix = f"calib-cli-{uuid.uuid4().hex[:8]}"
    with SimulatedLab(source=target.path, source_id_prefix=prefix, name_prefix=prefix) as lab:
        proc = _calibrate(base.path, lab, tmp_path, "--timeout", "120")
        out, err = proc.communicate(timeout=240)
    err = err.decode()
    assert proc.returncode == 0, err[-3000:]
    assert "Gait cycle 6 " in err and "fine-tuning" in err and "better than before" in err
    result = json.loads((tmp_path / "result.json").read_text())
    assert result["status"] == "saved" and result["improved"] and result["activated"]
    held = result["held_back"]
    assert held["after"]["mean_nmae"] < held["before"]["mean_nmae"]  # the product's criterion
    assert held["after"]["nmae_last"] < held["before"]["nmae_last"]
    # The memory takes a fixed 75 % of every horizon (docs/model.md); at 1 step (10 ms), where
    # it is weaker than the network, the held-back error may rise a little, never a lot.
    assert held["after"]["nmae_1"] < 1.25 * held["before"]["nmae_1"]
    assert result["train_cycles"] == 5 and result["epochs"] > 0
    store = SubjectModelStore(root=tmp_path / "models", shipped_dir=tmp_path / "none")
    assert out.decode().strip() == result["saved"]
    assert str(store.active_path()) == result["saved"]
    card = store.load(result["saved"]).card
    assert card.subject == "T-cli" and card.training["calibration"]["data_sha256"]
    assert target.subject not in card.training.get("subjects", [])


def test_cli_no_gait_exits_3_and_saves_nothing(base_model, uci_dir, tmp_path):
    from kneegui.acquisition import SimulatedLab
    from kneegui.datasets.uci import load_uci_dataset
    from kneegui.dsp.gait import GaitSegmenter

    base, _ = base_model
    still = next(r for r in load_uci_dataset(uci_dir, exercises=("sen", "pie"))
                 if not GaitSegmenter(r.fs).segment(r.angle))
    prefix = f"calib-nogait-{uuid.uuid4().hex[:8]}"
    with SimulatedLab(source=still.path, source_id_prefix=prefix, name_prefix=prefix) as lab:
        proc = _calibrate(base.path, lab, tmp_path, "--timeout", "4")
        _, err = proc.communicate(timeout=60)
    assert proc.returncode == 3, err.decode()[-2000:]
    assert "nothing was saved" in err.decode()
    assert json.loads((tmp_path / "result.json").read_text())["status"] == "no_gait"
    assert not (tmp_path / "models").exists()


def test_cli_explains_bad_arguments(tmp_path):
    run = subprocess.run(
        [sys.executable, "-m", "kneegui", "calibrate", "--subject", "../x",
         "--out", str(tmp_path)], capture_output=True, text=True, timeout=60)
    assert run.returncode == 2 and "subject id '../x' is not valid" in run.stderr
    assert "Traceback" not in run.stderr
