"""`kneegui calibrate --from SESSION.h5|FILE.xdf [--start S --end S]`: the live protocol and its
acceptance report, from a recording made while the subject was there."""

from __future__ import annotations

import json
import subprocess
import sys

from lab_helpers import LAB_CHANNEL_MAP

from kneegui.calibration import SubjectModelStore


def _calibrate(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "kneegui", "calibrate", *args],
                          capture_output=True, text=True, timeout=280)


def test_calibrate_from_a_recorded_session(recorded_sessions, tmp_path):
    sessions, _ = recorded_sessions
    path, uci = sessions["2Amar"]
    r = _calibrate("--from", str(path), "--cycles", "3", "--out", str(tmp_path / "models"),
                   "--json", str(tmp_path / "r.json"), "--activate", "always")
    assert r.returncode == 0, r.stderr[-3000:]
    assert "Gait cycle 4 " in r.stderr and "Held-back cycle NMAE" in r.stderr
    result = json.loads((tmp_path / "r.json").read_text())
    assert result["status"] == "saved" and result["subject"] == uci.subject  # from the session
    assert result["source"] == str(path) and result["train_cycles"] == 3
    held = result["held_back"]
    assert held["before"]["windows"] == held["after"]["windows"] > 0
    # walking time is recorded time (not how fast the file was read): 4 cycles and more
    assert 3.0 < result["walking_seconds"] < uci.duration_s
    store = SubjectModelStore(root=tmp_path / "models", shipped_dir=tmp_path / "none")
    card = store.load(result["saved"]).card
    assert card.subject == uci.subject and card.emg_inputs == ("RF", "BF", "VM", "ST")
    assert str(store.active_path()) == result["saved"]


def test_calibrate_from_xdf_needs_the_channel_map_and_honours_start_end(lab_xdf_file, tmp_path):
    path, uci = lab_xdf_file
    common = ["--from", str(path), "--subject", "P07", "--cycles", "3",
              "--out", str(tmp_path / "models"), "--json", str(tmp_path / "r.json")]
    r = _calibrate(*common, "--channel-map", "knee_R=angle")
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert "no channel for RF, BF, VM, ST" in r.stderr and "EMG 1, EMG 2" in r.stderr
    assert "--channel-map" in r.stderr
    mapping = ",".join(f"{k}={v}" for k, v in LAB_CHANNEL_MAP.items())
    r = _calibrate(*common, "--channel-map", mapping, "--end", "3")
    assert r.returncode == 3, r.stderr[-2000:]  # 3 s hold fewer than 4 gait cycles
    assert json.loads((tmp_path / "r.json").read_text())["status"] == "no_gait"
    assert not (tmp_path / "models").exists() or not list((tmp_path / "models").rglob("*.json"))
    r = _calibrate(*common, "--channel-map", mapping, "--start", "0.5")
    assert r.returncode == 0, r.stderr[-3000:]
    assert "EMG EMG 3=RF, EMG 1=BF, EMG 4=VM, EMG 2=ST" in r.stderr
    result = json.loads((tmp_path / "r.json").read_text())
    assert result["status"] == "saved" and result["start_s"] >= 0.5
    assert result["held_back"]["after"]["windows"] > 0


def test_live_calibrate_refuses_an_unlabelled_amplifier_and_says_what_to_map(tmp_path):
    """Live streams: a 16-channel amplifier without labels is not taken as "the first four
    channels are RF, BF, VM, ST"; the message lists its channels and the option to map them."""
    import uuid

    import pylsl

    tag = uuid.uuid4().hex[:8]
    emg = pylsl.StreamOutlet(pylsl.StreamInfo(f"amp16-{tag}", "EMG", 16, 2000.0,
                                              pylsl.cf_float32, f"amp16-{tag}"))
    knee = pylsl.StreamOutlet(pylsl.StreamInfo(f"knee-{tag}", "Angle", 1, 100.0,
                                               pylsl.cf_float32, f"knee-{tag}"))
    try:
        r = _calibrate("--subject", "S1", "--emg", f"amp16-{tag}", "--angle", f"knee-{tag}",
                       "--out", str(tmp_path / "models"), "--discover-timeout", "5")
    finally:
        del emg, knee
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert "no channel for RF, BF, VM, ST" in r.stderr and "ch0, ch1" in r.stderr
    assert "ch15" in r.stderr and "--channel-map" in r.stderr
