"""Sessions recorded the way a lab records them (UCI files replayed through LSL, recorded by
`kneegui record`) are the UCI recordings again on the model time base, and `kneegui dataset
info`, `train` and `evaluate` use them like the text files."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np

from kneegui.labdata import read_recording, to_model_rate, usable_pieces


def _kneegui(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "kneegui", *args], capture_output=True,
                          text=True, timeout=280)


def test_a_recorded_session_is_the_replayed_file_on_the_model_grid(recorded_sessions):
    """Every sample arrives; on the model grid the session's rows are the file's rows
    interpolated at the grid times (the hub's rule), EMG envelopes included."""
    from kneegui.research.data import series_from_recording

    sessions, _ = recorded_sessions
    for name, (path, uci) in sessions.items():
        rec = read_recording(path)
        assert rec.source == "session" and rec.subject == uci.subject
        assert rec.emg.n_samples == uci.n_samples == rec.angle.n_samples
        np.testing.assert_array_equal(rec.emg.data, np.asarray(uci.emg, np.float64))
        np.testing.assert_allclose(np.diff(rec.emg.t), 1e-3, atol=1e-6)  # the file's rate
        rows = to_model_rate(rec)
        ref = series_from_recording(uci)
        position = (rows.t - rec.emg.t[0]) * 100.0  # in UCI model rows
        assert -1e-3 <= position[0] < 1.0 and len(rows) >= len(ref) - 2
        angle = np.interp((rows.t - rec.angle.t[0]) * uci.fs, np.arange(uci.n_samples),
                          uci.angle)
        np.testing.assert_allclose(rows.angle, angle, atol=2e-3)
        for c in range(4):
            env = np.interp(position, np.arange(len(ref)), ref.emg_env[:, c])
            scale = float(np.abs(ref.emg_env[:, c]).max())
            np.testing.assert_allclose(rows.emg_env[:, c], env, atol=1e-4 * scale,
                                       err_msg=f"{name} channel {c}")
        pieces, report = usable_pieces(rows)
        assert len(pieces) == 1 and report.hole_rows == 0 and report.gait_cycles >= 3


def test_dataset_info_train_and_evaluate_on_recorded_sessions(recorded_sessions, tmp_path):
    sessions, manifest = recorded_sessions
    r = _kneegui("dataset", "info", str(manifest), "--json")
    assert r.returncode == 0, r.stderr
    info = {row["name"]: row for row in json.loads(r.stdout)["recordings"]}
    assert set(info) == set(sessions)
    for name, (_, uci) in sessions.items():
        row = info[name]
        assert (row["subject"], row["group"], row["activity"]) == (uci.subject, uci.group, "mar")
        assert row["source"] == "session" and row["emg_inputs"] == ["RF", "BF", "VM", "ST"]
        assert row["emg"]["rate_hz"] == 1000.0 and row["hole_rows"] == 0
        assert row["gait_cycles"] >= 3 and abs(row["walking_s"] - uci.duration_s) < 0.1
    r = _kneegui("dataset", "info", str(manifest), "--muscles", "RF,BF,VL")
    assert r.returncode == 1 and "no channel for VL" in r.stdout and "--channel-map" in r.stdout

    # the same files as UCI text files, next to the sessions
    uci_dir = tmp_path / "uci"
    uci_dir.mkdir()
    for _, uci in sessions.values():
        (uci_dir / uci.path.name).symlink_to(uci.path)
    test = "2A"
    stem = tmp_path / "m_sessions"
    r = _kneegui("train", "--data", str(manifest), "--input-set", "emg+angle", "--out",
                 str(stem), "--epochs", "1", "--windows-per-epoch", "512", "--window", "40",
                 "--exclude-subjects", test)
    assert r.returncode == 0, r.stderr
    assert "EMG inputs RF, BF, VM, ST" in r.stdout
    tables = {}
    for label, data in (("sessions", manifest), ("uci", uci_dir)):
        out = tmp_path / f"eval_{label}"
        r = _kneegui("evaluate", "--data", str(data), "--weights", str(stem),
                     "--finetune-epochs", "2", "--cycles", "2", "--out", str(out))
        assert r.returncode == 0, r.stderr
        results = json.loads((out / "results.json").read_text())
        assert [rec["subject"] for rec in results["recordings"].values()] == [test]
        tables[label] = results["summary"]["all"]
    # Same weights, same protocol: the data path changes nothing that matters (cell by cell
    # within 10 %; the session grid sits up to 10 ms off the file's samples).
    cells = {(m, step): (tables["sessions"][m]["nmae"][step - 1],
                         tables["uci"][m]["nmae"][step - 1])
             for m in ("emg+angle:finetuned", "emg+angle:pretrained", "persistence",
                       "constant_velocity") for step in (1, 5, 50)}
    print(cells)
    for key, (a, b) in cells.items():
        assert abs(a - b) <= 0.10 * b, (key, a, b)


def test_a_session_folder_is_a_dataset_too(recorded_sessions, tmp_path):
    """No manifest: subjects from the sessions, activity unknown, walking found by the gait
    detector."""
    from kneegui.research.data import load_dataset_series

    sessions, _ = recorded_sessions
    folder = tmp_path / "folder"
    folder.mkdir()
    for path, _ in sessions.values():
        (folder / Path(path).name).symlink_to(path)
    data = load_dataset_series(folder, ["walk"])
    assert not data.problems and len(data.series) == len(sessions)
    assert {s.subject for s in data.series} == {u.subject for _, u in sessions.values()}
    assert all(s.exercise == "walk" and "walking_detected" in s.flags for s in data.series)
