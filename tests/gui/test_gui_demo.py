"""`kneegui demo` headless: the story (simulated subject new to the shipped model -> shipped
model predicts -> calibration wizard on the first cycles -> adapted model takes over -> live
error before/after on unseen walking, screenshots) and the plain timed run."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np


def _env():
    return {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}


def _pixels(path):
    from PySide6 import QtGui

    img = QtGui.QImage(str(path))
    size = (img.width(), img.height())
    img = img.convertToFormat(QtGui.QImage.Format_RGB888)
    arr = np.frombuffer(img.constBits(), np.uint8, img.sizeInBytes()).reshape(
        img.height(), img.bytesPerLine())[:, : img.width() * 3].reshape(img.height(), -1, 3)
    return size, arr.copy()  # the QImage's buffer goes with it


def _has(arr, hex_colour, n=50):
    from PySide6 import QtGui

    q = QtGui.QColor(hex_colour)
    rgb = np.array([q.red(), q.green(), q.blue()])
    return (np.abs(arr.astype(int) - rgb).sum(axis=2) < 30).sum() > n


def test_demo_tells_the_calibration_story(tmp_path):
    out = tmp_path / "demo"
    proc = subprocess.run([sys.executable, "-m", "kneegui", "demo", "--out", str(out)],
                          capture_output=True, text=True, timeout=240, env=_env())
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    text = proc.stdout
    for needle in ("simulated subject UCI-4A", "pretrained — not calibrated to this subject",
                   "not in the shipped model's training data"):
        assert needle in text, text
    summary = json.loads((out / "summary.json").read_text())
    cal = summary["calibration"]
    check = summary["session_check"]
    assert cal["train_cycles"] == 5
    assert check["complete"] and check["predictions"] > 2000
    assert check["markers"][0] == "demo start: shipped model" and "demo end" in check["markers"]
    # The adapted model takes over only when it was better on the held-back cycle. On this clip
    # that comparison is close (500 ms NMAE ~6.6 % before): two CI runs capturing almost the same
    # cycles (clip 4.7-16.1 s, 4.8-16.1 s) went either way. Each outcome must be told.
    assert cal["activated"] == cal["improved"], cal
    if not cal["activated"]:
        assert "not activated" in text, text
        assert "calibration not activated (not better on the held-back cycle)" in check["markers"]
        assert summary["calibrated_model"] in ("", None, summary["model"])
        return
    for needle in ("accepted and activated", "live error on walking the calibration did not see",
                   "500 ms ahead"):
        assert needle in text, text
    assert summary["calibrated_model"] and summary["calibrated_model"] != summary["model"]
    err = summary["live_error"]
    assert err["seconds_compared"] >= 3.0  # a few gait cycles, the same ones before and after
    lo, hi = cal["captured_clip_s"]
    for a, b in err["clip_spans_s"]:  # none of it inside what the calibration captured
        assert b <= lo or a >= hi + 1.0, (a, b, lo, hi)
    assert set(err["before"]) == set(err["after"]) == {"10", "50", "500"}
    assert err["after"]["500"]["nmae"] < err["before"]["500"]["nmae"]  # calibration helps
    assert all(0 < e["nmae"] < 1 for e in (*err["before"].values(), *err["after"].values()))
    assert err["predictions"]["before"] > 200 and err["predictions"]["after"] > 200
    assert "calibrated model takes over" in check["markers"]
    # the subject model went to the demo's own store, not the user's
    assert list((out / "subject_models").glob("UCI-4A_*.safetensors"))
    shots = summary["screenshots"]
    assert set(shots) == {"before", "calibration", "after"}
    for key in ("before", "after"):
        size, arr = _pixels(shots[key])
        assert size == (1920, 1080) and arr.std() > 20
    _, before = _pixels(shots["before"])
    _, after = _pixels(shots["after"])
    assert _has(before, "#fff3cd", 2000)  # the amber "pretrained" strip
    assert _has(after, "#e2f3e5", 2000) and not _has(after, "#fff3cd", 2000)  # green strip
    size, wizard = _pixels(shots["calibration"])
    assert size[1] >= 600 and _has(wizard, "#D55E00")  # the "after" curve of the results plot


def test_plain_timed_demo_records_and_screenshots(tmp_path):
    out = tmp_path / "demo"
    proc = subprocess.run(
        [sys.executable, "-m", "kneegui", "demo", "--duration", "5", "--out", str(out)],
        capture_output=True, text=True, timeout=120, env=_env(),
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    for needle in ("stream 'KneeGUI-Demo-EMG'", "inference latency: median",
                   "NMAE at 1 step", "NMAE at 50 step", "demo.png", "out-of-sample"):
        assert needle in proc.stdout, proc.stdout
    summary = json.loads((out / "summary.json").read_text())
    assert summary["predictions"] > 150 and summary["published"] > 150
    assert 0 < summary["nmae"]["1"] < 0.1 and 0 < summary["nmae"]["50"] < 1.0
    check = summary["session_check"]
    assert check["complete"] and check["predictions"] > 150
    assert check["markers"][0] == "demo start" and "demo end" in check["markers"]
    size, arr = _pixels(out / "demo.png")
    assert size == (1920, 1080) and arr.std() > 20


def test_demo_refuses_a_missing_model_with_a_clear_message(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "kneegui", "demo", "--model", str(tmp_path / "nope.safetensors"),
         "--out", str(tmp_path)], capture_output=True, text=True, timeout=60,
    )
    assert proc.returncode == 2
    assert "not found" in proc.stderr and "Traceback" not in proc.stderr
