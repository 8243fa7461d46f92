"""A model with more inputs than the shipped four muscles (8 EMG channels + knee angle), trained
with `kneegui train` on lab-layout sessions, used live end to end: the live pipeline
(``kneegui.live.LiveSession``: readers, hub, prediction worker) takes a live 8-channel stream whose
labels the channel map ties to the card's layout, and every prediction equals the offline
Predictor's on the same recording converted by the dataset code. Streams whose layout does not
match a model are refused with a message saying which channels to map."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass

import numpy as np
import pylsl
import pytest
from lab_helpers import LAB_EMG_MAP, LAB_INPUTS, lab_outlets

from kneegui.acquisition import resolve_source_id
from kneegui.model.layout import LayoutError

TOLERANCE_DEG = 1e-3  # batched offline vs single-window live float32 products


@dataclass(frozen=True)
class _Assign:
    """What the streams panel hands the live session (plus a channel map)."""

    info: object
    role: str
    channels: tuple[int, ...] | None = None
    channel_map: dict | None = None


@pytest.fixture(scope="module")
def eight_channel_model(lab_sessions, tmp_path_factory):
    sessions, manifest = lab_sessions
    stem = tmp_path_factory.mktemp("m8") / "kneenet_lab8"
    r = subprocess.run([sys.executable, "-m", "kneegui", "train", "--data", str(manifest),
                        "--input-set", "emg+angle", "--out", str(stem), "--epochs", "1",
                        "--windows-per-epoch", "512", "--window", "40"],
                       capture_output=True, text=True, timeout=280)
    assert r.returncode == 0, r.stderr
    return stem


def test_the_card_records_the_layout(eight_channel_model):
    card = json.loads(eight_channel_model.with_suffix(".json").read_text())
    assert card["channels"] == [f"emg_{m}" for m in LAB_INPUTS] + ["angle", "angle_velocity"]
    assert card["training"]["emg_inputs"] == list(LAB_INPUTS)
    assert len(card["norm"]["subject"]["emg_scale"]) == 8


def test_an_8_channel_model_predicts_live(eight_channel_model, uci_dir):
    from kneegui.datasets.uci import find_uci_files, read_uci_file
    from kneegui.labdata import LabRecording, Signal, to_model_rate
    from kneegui.live.session import LiveSession
    from kneegui.model import Predictor
    from kneegui.research.uci_sessions import make_outlet, replay

    (path,) = [p for p in find_uci_files(uci_dir) if p.stem == "7Nmar"]  # not trained on
    uci = read_uci_file(path)
    tag = f"live8-{uuid.uuid4().hex[:8]}"
    specs = lab_outlets(uci, tag)
    outlets = [make_outlet(s) for s in specs]
    emg_view = resolve_source_id(specs[0].source_id, timeout=8.0)[0]
    gonio_view = resolve_source_id(specs[1].source_id, timeout=8.0)[0]
    session = LiveSession()
    sender = None
    try:
        session.load_model(eight_channel_model)
        session.connect([_Assign(emg_view, "EMG", None, LAB_EMG_MAP),
                         _Assign(gonio_view, "KNEE_ANGLE", (0,))])
        emg = session.stream("EMG")
        assert list(emg.channels) == [list(LAB_EMG_MAP).index(lab) for lab in
                                      ("EMG 3", "EMG 1", "EMG 4", "EMG 2", "EMG 5", "EMG 6",
                                       "EMG 7", "EMG 8")]  # the card's order RF, BF, VM, ...
        for reader in session.hub.readers:
            assert reader.wait_until_open(8.0), reader.status()
        # in the past: no stamp of the 3x replay may lie in the future when it arrives
        t0 = np.ceil((pylsl.local_clock() - uci.duration_s * (1 - 1 / 3.0) - 1.0) * 100.0) / 100.0
        sender = threading.Thread(target=replay, args=(specs, outlets, t0, 3.0))
        sender.start()
        sender.join(60.0)
        worker = session.worker
        n_rows = int(uci.duration_s * 100)
        deadline = time.monotonic() + 20.0
        while time.monotonic() < deadline:
            last = worker.history.last_timestamp()
            if last is not None and last - t0 > (n_rows - 5) / 100.0:
                break
            time.sleep(0.1)
        time.sleep(0.3)
        live, t = worker.history.latest(worker.history.total_written)
        assert worker.errors == 0, worker.last_error
    finally:
        session.close()
        if sender is not None:
            sender.join(5.0)
        del outlets
    assert len(t) > 0.5 * (n_rows - 41)  # (a busy machine can make the hub skip a few rows)
    # Offline: the same streams (same stamps) as a recording, through the dataset code.
    signals = []
    for spec in specs:
        stamps = t0 + spec.stamp_offset + np.arange(len(spec.data)) / spec.rate
        signals.append(Signal(np.asarray(spec.data, np.float64), stamps, tuple(spec.labels),
                              (spec.unit,) * len(spec.labels), spec.rate, spec.name))
    rec = LabRecording("7N-lab", path, "xdf", "7N", "N", "walk",
                       emg=signals[0], angle=signals[1].columns([0]),
                       channel_map=dict(LAB_EMG_MAP))
    # the stream sends microvolts: the hub and the dataset code both convert them to millivolts
    rows = to_model_rate(rec, LAB_INPUTS)
    predictor = Predictor(session.loaded)
    ends = np.round((t - rows.t[0]) * 100.0).astype(np.int64)
    # The end edge: live, the row after the offline series' last may complete (CI saw one); it
    # may only be the very last prediction. Every other row is compared.
    beyond = ends >= len(rows.t)
    assert beyond.sum() <= 1 and (not beyond.any() or beyond[-1]), ends[beyond]
    live, t, ends = live[~beyond], t[~beyond], ends[~beyond]
    np.testing.assert_allclose(rows.t[ends], t, atol=1e-6)
    offline = predictor.predict(rows, ends)
    diff = np.abs(live - offline)
    print(f"{len(t)} live predictions of the 8-channel model, max |live - offline| "
          f"{diff.max():.2e} deg")
    assert diff.max() <= TOLERANCE_DEG


def test_a_stream_layout_that_does_not_match_is_refused(make_outlet_for_layout,
                                                        eight_channel_model):
    from kneegui.live.session import LiveSession
    from kneegui.model import shipped_model_path

    emg16, knee = make_outlet_for_layout
    session = LiveSession()
    try:
        session.load_model(shipped_model_path("emg+angle"))  # RF, BF, VM, ST
        with pytest.raises(LayoutError) as err:
            session.connect([_Assign(emg16, "EMG"), _Assign(knee, "KNEE_ANGLE")])
        msg = str(err.value)
        assert "no channel for RF, BF, VM, ST" in msg and "ch0, ch1" in msg and "ch15" in msg
        assert "--channel-map" in msg and not session.connected
        session.connect([_Assign(emg16, "EMG", None, {"ch5": "RF", "ch2": "BF", "ch9": "VM",
                                                      "ch0": "ST"}),
                         _Assign(knee, "KNEE_ANGLE")])
        assert list(session.stream("EMG").channels) == [5, 2, 9, 0]
        # a model whose layout the connected stream does not provide: refused, previous kept
        with pytest.raises(LayoutError, match=r"no channel for VL, TA, GM, SOL"):
            session.load_model(eight_channel_model)
        assert session.loaded.card.emg_inputs == ("RF", "BF", "VM", "ST")
        assert list(session.stream("EMG").channels) == [5, 2, 9, 0]
    finally:
        session.close()


@pytest.fixture
def make_outlet_for_layout():
    """A 16-channel EMG stream without labels and a knee-angle stream (unique ids)."""
    tag = uuid.uuid4().hex[:8]
    emg = pylsl.StreamOutlet(pylsl.StreamInfo(f"amp16-{tag}", "EMG", 16, 2000.0,
                                              pylsl.cf_float32, f"amp16-{tag}"))
    knee = pylsl.StreamOutlet(pylsl.StreamInfo(f"knee-{tag}", "Angle", 1, 100.0,
                                               pylsl.cf_float32, f"knee-{tag}"))
    views = [resolve_source_id(f"{n}-{tag}", timeout=8.0)[0] for n in ("amp16", "knee")]
    yield views
    del emg, knee
