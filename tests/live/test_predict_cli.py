"""`kneegui predict`, the headless predictor: real LSL streams in, predictions out, a recording
that closes cleanly on SIGTERM, and a prediction stream a consumer can follow across a restart
with another model (stable source_id); the docs' consumer example runs against it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import numpy as np
import pylsl
import pytest

from kneegui.acquisition import SimulatedLab
from kneegui.live.outlet import STREAM_TYPE, stable_source_id
from kneegui.model import shipped_model_path
from kneegui.recording import open_session

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "docs" / "examples" / "consume_predictions.py"


@pytest.fixture
def lab():
    tag = uuid.uuid4().hex[:8]
    sim = SimulatedLab(source_id_prefix=f"pred-{tag}", name_prefix=f"Pred-{tag}").start()
    try:
        yield sim, tag
    finally:
        sim.stop()


def _predict(sim, name: str, *extra: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "kneegui", "predict", "--emg", sim.emg_source_id, "--angle",
         sim.angle_source_id, "--outlet-name", name, *extra],
        stderr=subprocess.PIPE, text=True, env={**os.environ})


def _inlet(source_id: str, timeout: float = 30.0) -> pylsl.StreamInlet:
    found = pylsl.resolve_byprop("source_id", source_id, minimum=1, timeout=timeout)
    assert found, f"no stream {source_id}"
    inlet = pylsl.StreamInlet(found[0], recover=True)
    inlet.open_stream(timeout=10)
    return inlet


def _pull(inlet: pylsl.StreamInlet, n: int, timeout: float = 20.0) -> list:
    got, deadline = [], time.monotonic() + timeout
    while len(got) < n and time.monotonic() < deadline:
        sample, t = inlet.pull_sample(timeout=0.5)
        if sample is not None:
            got.append((t, sample))
    return got


def test_predict_publishes_records_and_closes_cleanly_on_sigterm(lab, tmp_path):
    sim, tag = lab
    name = f"pred test {tag}"
    proc = _predict(sim, name, "--record", str(tmp_path), "--subject", "S-pred",
                    "--model", str(shipped_model_path("emg+angle")))
    try:
        inlet = _inlet(stable_source_id(name))
        info = inlet.info(timeout=5)
        assert info.type() == STREAM_TYPE and info.channel_count() == 51
        pred = info.desc().child("prediction")
        assert pred.child_value("input_set") == "emg+angle"
        assert len(pred.child_value("weights_sha256")) == 64
        assert info.desc().child_value("horizons_ms").split()[:2] == ["10", "20"]
        rows = _pull(inlet, 50)
        assert len(rows) == 50
        steps = np.diff([t for t, _ in rows])
        np.testing.assert_allclose(steps, 0.01, atol=1e-6)  # every 10 ms model step
        assert all(0 <= s[-1] < 50 for _, s in rows)  # newest_input_ms
        time.sleep(1.2)  # at least one status line
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert "stopped by signal" in err and "predictions" in err and "Traceback" not in err
    assert " | predictions " in err  # the status line
    (path,) = tmp_path.glob("*.h5")
    with open_session(path) as s:
        assert s.complete and s.subject_id == "S-pred"
        assert s.predictions is not None and len(s.predictions.timestamps) > 50


def test_a_consumer_follows_the_stream_across_a_restart_with_another_model(lab, tmp_path):
    """Same host + outlet name = same source_id: a consumer's inlet (recover=True) keeps
    receiving after the predictor restarts with an EMG-only model."""
    sim, tag = lab
    name = f"pred restart {tag}"
    first = _predict(sim, name)
    try:
        inlet = _inlet(stable_source_id(name))
        assert len(_pull(inlet, 20)) == 20
    finally:
        first.send_signal(signal.SIGTERM)
        first.communicate(timeout=30)
    assert first.returncode == 0
    second = _predict(sim, name, "--model", str(shipped_model_path("emg")))
    try:
        after = _pull(inlet, 20, timeout=40.0)  # the same inlet, recovered by source_id
        assert len(after) == 20
        info = inlet.info(timeout=5)
        assert info.source_id() == stable_source_id(name)
        assert info.desc().child("prediction").child_value("input_set") == "emg"
        # The docs' 15-line consumer example, as a lab would run it.
        out = subprocess.run([sys.executable, str(EXAMPLE), stable_source_id(name), "5"],
                             capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, out.stderr
        lines = [line for line in out.stdout.splitlines() if line.startswith("t=")]
        assert len(lines) == 5 and "channels: h10ms" in out.stdout
    finally:
        second.send_signal(signal.SIGTERM)
        second.communicate(timeout=30)
    assert second.returncode == 0


def test_predict_refuses_bad_arguments_with_a_message(tmp_path):
    for args, says in ((["--duration", "nan"], "--duration"),
                       (["--model", str(tmp_path / "nothing")], "no model"),
                       (["--subject", f"nobody-{uuid.uuid4().hex[:6]}"], "calibrate first")):
        r = subprocess.run([sys.executable, "-m", "kneegui", "predict", *args],
                           capture_output=True, text=True, timeout=60,
                           env={**os.environ, "KNEEGUI_SUBJECT_MODELS_DIR": str(tmp_path)})
        assert r.returncode == 2 and says in r.stderr and "Traceback" not in r.stderr, r.stderr


class _LabelledSender:
    """An amplifier whose channels are labelled "EMG 1".."EMG 4" and a two-knee goniometer
    ("Knee L", "Knee R"): labels the model's inputs do not name."""

    def __init__(self, tag: str) -> None:
        import threading

        def outlet(name: str, stype: str, labels: list[str], rate: float):
            info = pylsl.StreamInfo(name, stype, len(labels), rate, pylsl.cf_float32, name)
            chans = info.desc().append_child("channels")
            for label in labels:
                chans.append_child("channel").append_child_value("label", label)
            return pylsl.StreamOutlet(info)

        self.emg_id, self.angle_id = f"lab-emg-{tag}", f"lab-gonio-{tag}"
        self._emg = outlet(self.emg_id, "EMG", [f"EMG {i}" for i in range(1, 5)], 1000.0)
        self._angle = outlet(self.angle_id, "Angle", ["Knee L", "Knee R"], 100.0)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        rng = np.random.default_rng(0)
        t0, k = pylsl.local_clock(), 0
        while not self._stop.is_set():
            k += 1
            t = t0 + k * 0.01
            delay = t - pylsl.local_clock()
            if delay > 0:
                time.sleep(delay)
            self._emg.push_chunk(rng.normal(0, 0.05, (10, 4)).tolist(),
                                 (t - np.arange(9, -1, -1) / 1000.0).tolist())
            angle = 30 + 25 * np.sin(2 * np.pi * t)
            self._angle.push_sample([0.0, float(angle)], t)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5.0)
        del self._emg, self._angle


def test_predict_takes_a_channel_map_for_an_amplifier_with_its_own_labels():
    sender = _LabelledSender(uuid.uuid4().hex[:8])
    base = [sys.executable, "-m", "kneegui", "predict", "--emg", sender.emg_id, "--angle",
            sender.angle_id, "--model", str(shipped_model_path("emg+angle")),
            "--duration", "4", "--quiet"]
    try:
        refused = subprocess.run(base, capture_output=True, text=True, timeout=60)
        assert refused.returncode == 2 and "Traceback" not in refused.stderr, refused.stderr
        assert "RF" in refused.stderr and "map" in refused.stderr  # says what to map
        bad = subprocess.run([*base, "--channel-map", "EMG 1"], capture_output=True,
                             text=True, timeout=60)
        assert bad.returncode == 2 and "--channel-map" in bad.stderr, bad.stderr
        name = f"pred map {uuid.uuid4().hex[:8]}"
        ok = subprocess.Popen([*base[:-3], "--outlet-name", name, "--channel-map",
                               "EMG 3=VM, EMG 1=RF, EMG 2=BF, EMG 4=ST, Knee R=angle"],
                              stderr=subprocess.PIPE, text=True)
        try:
            rows = _pull(_inlet(stable_source_id(name)), 100)
        finally:
            ok.send_signal(signal.SIGTERM)
            _, err = ok.communicate(timeout=30)
        assert ok.returncode == 0 and "Traceback" not in err, err
        assert len(rows) == 100
        # the angle input is "Knee R" (30 +- 25 deg), not "Knee L" (always 0)
        assert 5.0 < float(np.mean([s[0] for _, s in rows])) < 55.0
    finally:
        sender.close()
