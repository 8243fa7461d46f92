"""`kneegui demo` headless: simulated lab -> window -> shipped model -> session + PNG + summary."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np


def test_headless_demo_records_screenshots_and_summarises(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    out = tmp_path / "demo"
    proc = subprocess.run(
        [sys.executable, "-m", "kneegui", "demo", "--duration", "6", "--out", str(out)],
        capture_output=True, text=True, timeout=120, env=env,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    text = proc.stdout
    for needle in ("stream 'KneeGUI-Demo-EMG'", "inference latency: median",
                   "end-to-end latency", "NMAE at 1 step", "NMAE at 50 step", "demo.png"):
        assert needle in text, text
    summary = json.loads((out / "summary.json").read_text())
    assert summary["predictions"] > 200  # ~100 Hz for ~5 s after the first 1 s window
    assert summary["published"] > 200
    assert 0 < summary["nmae"]["1"] < 0.1 and 0 < summary["nmae"]["50"] < 1.0
    assert summary["inference_ms"]["median"] > 0 and summary["end_to_end_ms"]["p99"] > 0
    check = summary["session_check"]
    assert check["complete"] and check["predictions"] > 200
    assert check["markers"][0] == "demo start" and "demo end" in check["markers"]
    assert all(n > 3000 for n in check["streams"].values()), check
    from PySide6 import QtGui

    img = QtGui.QImage(str(out / "demo.png"))
    assert (img.width(), img.height()) == (1920, 1080)
    img = img.convertToFormat(QtGui.QImage.Format_RGB888)
    arr = np.frombuffer(img.constBits(), np.uint8, img.sizeInBytes()).reshape(
        img.height(), img.bytesPerLine())[:, : img.width() * 3].reshape(img.height(), -1, 3)
    assert arr.std() > 20 and len({tuple(c) for c in arr[::9, ::9].reshape(-1, 3)}) > 50


def test_demo_refuses_a_missing_model_with_a_clear_message(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "kneegui", "demo", "--model", str(tmp_path / "nope.safetensors"),
         "--out", str(tmp_path)], capture_output=True, text=True, timeout=60,
    )
    assert proc.returncode == 2
    assert "not found" in proc.stderr and "Traceback" not in proc.stderr
