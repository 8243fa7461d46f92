"""The live forecast is the evaluated one: a real UCI gait file replayed through LSL into the live
pipeline (readers, hub, one prediction worker per model; no Qt) gives, for every prediction it
makes, the trajectory the offline :class:`kneegui.model.Predictor` computes for the same window
from the same file. Checked for each shipped model and for a subject model calibrated on the
file's first cycles; windows the live path cannot fill give no prediction."""

from __future__ import annotations

import math
import threading
import time
import uuid

import numpy as np
import pylsl
import pytest

from kneegui.acquisition import Hub, Role, StreamReader, resolve_source_id
from kneegui.adaptation import CalibrationData, FinetuneSettings, finetune
from kneegui.datasets.uci import find_uci_files, read_uci_file
from kneegui.dsp import FilterSettings
from kneegui.live.worker import PredictionWorker
from kneegui.model import ModelInputs, Predictor, load_model, save_model, shipped_model_path
from kneegui.research.data import series_from_recording
from kneegui.research.splits import gait_cycles

#: Degrees. Offline predictions are batched, live ones single windows: float32 matrix products
#: in another order differ by ~1e-5 deg; the window contents are identical.
TOLERANCE_DEG = 1e-3
#: The replay runs this much faster than real time (stamps stay at the file's 1000 Hz).
SPEED = 3.0
CHUNK = 10  # samples per push (10 ms)


def _test_recording(uci_dir):
    """A real gait recording that is not the demo clip's subject: the shortest abnormal-group
    walk with the goniometer at 1000 Hz, 10-20 s and at least 6 gait cycles."""
    from kneegui.acquisition.simulator import DEFAULT_CLIP

    demo_subject = DEFAULT_CLIP.stem.removesuffix("mar")
    candidates = []
    for path in find_uci_files(uci_dir, exercises=("mar",), groups=("A",)):
        rec = read_uci_file(path)
        if (rec.subject != demo_subject and rec.angle_native_fs == rec.fs
                and 10.0 <= rec.duration_s <= 20.0):
            candidates.append(rec)
    candidates.sort(key=lambda r: r.duration_s)
    for rec in candidates:
        series = series_from_recording(rec)
        if len(gait_cycles(series.angle, 100.0)) >= 6:
            return rec, series
    raise AssertionError("no suitable gait recording in the shared UCI data")


def _outlet(name: str, stype: str, labels: list[str], unit: str, source_id: str):
    info = pylsl.StreamInfo(name, stype, len(labels), 1000.0, pylsl.cf_float32, source_id)
    channels = info.desc().append_child("channels")
    for label in labels:
        ch = channels.append_child("channel")
        ch.append_child_value("label", label)
        ch.append_child_value("unit", unit)
    return pylsl.StreamOutlet(info, chunk_size=CHUNK)


def _replay(outlets, arrays, t0: float) -> None:
    """Push the file's samples in 10 ms chunks, sample k stamped t0 + k / 1000."""
    n = len(arrays[0])
    start = time.monotonic()
    for a in range(0, n, CHUNK):
        b = min(a + CHUNK, n)
        stamps = (t0 + np.arange(a, b) / 1000.0).tolist()
        for outlet, arr in zip(outlets, arrays, strict=True):
            outlet.push_chunk(arr[a:b].tolist(), stamps)
        lag = start + b / 1000.0 / SPEED - time.monotonic()
        if lag > 0:
            time.sleep(lag)


@pytest.fixture(scope="module")
def subject_model_path(uci_dir, tmp_path_factory):
    """The shipped emg+angle model calibrated on the test file's first 3 gait cycles, saved
    and loaded back like the app does."""
    rec, series = _test_recording(uci_dir)
    cycles = gait_cycles(series.angle, 100.0)[:3]
    end = cycles[-1][1]
    calib = CalibrationData(series.emg_env[:end], series.angle[:end], cycles,
                            subject=rec.subject)
    result = finetune(load_model(shipped_model_path("emg+angle")), calib,
                      settings=FinetuneSettings(max_epochs=3))
    assert result.model.memory is not None and result.model.extrapolator is not None
    stem = tmp_path_factory.mktemp("subject") / f"{rec.subject}-live"
    save_model(stem, result.model)
    return stem


def test_every_live_prediction_equals_the_offline_predictor(uci_dir, subject_model_path):
    rec, series = _test_recording(uci_dir)
    models = {s: load_model(shipped_model_path(s)) for s in ("emg", "emg+angle", "angle")}
    models["subject"] = load_model(subject_model_path)
    settings = {tuple(sorted(m.card.dsp_settings.items())) for m in models.values()}
    assert len(settings) == 1  # one feature path for all of them
    uid = uuid.uuid4().hex[:10]
    emg_out = _outlet(f"live-eq-emg-{uid}", "EMG", list(rec.channel_labels), "mV",
                      f"live-eq-emg-{uid}")
    angle_out = _outlet(f"live-eq-angle-{uid}", "Angle", ["knee_flexion"], "degrees",
                        f"live-eq-angle-{uid}")
    emg_view = resolve_source_id(f"live-eq-emg-{uid}", timeout=8.0)[0]
    angle_view = resolve_source_id(f"live-eq-angle-{uid}", timeout=8.0)[0]
    hub = Hub(model_rate=100.0, feature_settings=FilterSettings(**dict(next(iter(settings)))),
              max_wait=5.0)  # a busy test machine must not turn a slow thread into a gap
    hub.assign(Role.EMG, StreamReader(emg_view, 60.0, Role.EMG))
    hub.assign(Role.KNEE_ANGLE, StreamReader(angle_view, 60.0, Role.KNEE_ANGLE))
    workers = {k: PredictionWorker(hub, Predictor(m), model_id=k) for k, m in models.items()}
    sender = None
    try:
        hub.start()
        for reader in hub.readers:
            assert reader.wait_until_open(8.0), reader.status()
        for w in workers.values():
            w.start()
        # On the model grid, and far enough in the past that no stamp of the faster-than-real-
        # time replay lies in the future when it arrives (the reader would re-base such stamps
        # on their arrival: a sample cannot arrive before it was measured).
        ahead = rec.duration_s * (1.0 - 1.0 / SPEED) + 1.0
        t0 = math.ceil((pylsl.local_clock() - ahead) * 100.0) / 100.0
        sender = threading.Thread(
            target=_replay, args=((emg_out, angle_out),
                                  (np.asarray(rec.emg), np.asarray(rec.angle)[:, None]), t0))
        sender.start()
        sender.join(rec.duration_s / SPEED + 30.0)
        assert not sender.is_alive()
        # The last file row is aligned only if both streams' stamps reach its grid time (the
        # envelope's interpolated stamp may fall a hair short): the last row or the one before.
        last_row = len(series) - 1
        deadline = time.monotonic() + 20.0
        while time.monotonic() < deadline:
            done = [w.history.last_timestamp() for w in workers.values()]
            if all(t is not None and round((t - t0) * 100.0) >= last_row - 1 for t in done):
                break
            time.sleep(0.1)
        time.sleep(0.5)  # anything still on its way
    finally:
        for w in workers.values():
            w.stop()
        hub.stop()
        if sender is not None:
            sender.join(5.0)
        del emg_out, angle_out
    # Every row the file covers is complete. Only the file's last row may not be: when the test
    # outlasts max_wait after the replay ended, the hub emits it with NaN for the role whose
    # data fell a hair short of it (the sender-out rule), which is correct.
    frame = hub.aligned_from(0)
    status = hub.status()
    nan_rows = np.isnan(frame.emg_env).any(axis=1) | np.isnan(frame.angle)
    covered = np.round((frame.t - t0) * 100.0) <= last_row - 1
    assert not nan_rows[covered].any(), (np.flatnonzero(nan_rows), status)
    assert status.incomplete == int(nan_rows.sum()) <= 1, status
    for reader in hub.readers:
        assert reader.status().gaps == 0 and reader.status().clock_offset == 0.0
    inputs = ModelInputs.of(series)
    for key, worker in workers.items():
        assert worker.errors == 0, worker.last_error
        live, t = worker.history.latest(worker.history.total_written)
        rows = np.round((t - t0) * 100.0).astype(np.int64)
        np.testing.assert_allclose(t, t0 + rows / 100.0, atol=1e-6)  # on the grid
        need = worker.predictor.rows_needed
        # Every row from the first full window to the end of the file, each once, in order;
        # no prediction from a window the live path could not fill.
        first = int(rows[0])
        assert first >= need - 1
        assert first <= need  # (the grid may start one row late, never more)
        assert rows[-1] >= last_row - 1
        np.testing.assert_array_equal(rows, np.arange(first, rows[-1] + 1))
        offline = worker.predictor.predict(inputs, rows)
        diff = np.abs(live - offline)
        print(f"{key}: {len(rows)} live predictions, max |live - offline| {diff.max():.2e} deg")
        assert diff.max() <= TOLERANCE_DEG, (key, float(diff.max()),
                                             np.unravel_index(diff.argmax(), diff.shape))
