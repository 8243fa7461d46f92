"""The calibration protocol on real UCI data with a real model pretrained without the subject.

Frames are fed like the hub delivers them (model-rate chunks); the protocol's clock follows
the data time, so time-outs are tested without waiting in real time.
"""

from __future__ import annotations

import json
import threading
import time

import numpy as np
import pytest
from calibration_helpers import pretrained_without, subject_frames

from kneegui.calibration import (
    CalibrationConfig,
    CalibrationProtocol,
    ChannelCheck,
    EventKind,
    ProtocolError,
    Stage,
    SubjectInfo,
    SubjectModelStore,
)
from kneegui.calibration.tuning import CalibrationOutcome, finetune_input, validate

CHUNK = 5  # 50 ms of frames per feed, like a 20 Hz hub poll


@pytest.fixture(scope="session")
def base_and_subject(uci_dir, tmp_path_factory):
    base, target = pretrained_without(uci_dir, tmp_path_factory.getbasetemp())
    return base, subject_frames(target)


class DataClock:
    """The protocol's clock = time of the last fed frame (simulated real time)."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def make_protocol(base, clock=None, **config):
    events = []
    p = CalibrationProtocol(base, config=CalibrationConfig(**config), on_event=events.append,
                            clock=clock or time.monotonic)
    p.start(SubjectInfo("T01", "A"))
    p.update_quality([ChannelCheck(c, "ok") for c in ("RF", "BF", "VM", "ST")])
    p.confirm_sensors()
    p.start_capture()
    return p, events


def feed(p, subj, start=0, stop=None, clock=None):
    stop = len(subj.t) if stop is None else stop
    i = start
    while i < stop and p.stage == Stage.CAPTURE:
        j = min(i + CHUNK, stop)
        if clock is not None:
            clock.now = subj.t[j - 1]
        p.feed(subj.t[i:j], subj.emg_env[i:j], subj.angle[i:j])
        p.tick()  # like CapturePump.poll
        i = j
    return i


def kinds(events):
    return [e.kind for e in events]


def test_stall_before_a_reported_loss_is_not_walking_time(base_and_subject):
    base, subj = base_and_subject
    clock = DataClock()
    clock.now = subj.t[0]
    p, events = make_protocol(base, clock=clock, train_cycles=5)
    feed(p, subj, 0, 300, clock)
    walked = p.capture_seconds
    assert walked == pytest.approx(3.0, abs=0.1)
    clock.now += 1.2  # no frames for 1.2 s, still ticking (like CapturePump.poll)
    p.tick()
    assert p.capture_seconds == pytest.approx(walked + 1.2)  # not known to be a loss yet
    p.stream_lost("no data for 1.2 s")
    assert p.paused and p.capture_seconds == pytest.approx(walked)  # back to the last frame
    clock.now += 5.0
    p.tick()
    assert p.capture_seconds == pytest.approx(walked)  # paused: not counted


def test_stream_loss_pauses_and_resumes_then_calibrated_model_beats_base(
    base_and_subject, tmp_path
):
    base, subj = base_and_subject
    clock = DataClock()
    clock.now = subj.t[0]
    p, events = make_protocol(base, clock=clock, train_cycles=5)
    # 3 s of walking, then the EMG sender drops out for 4 s: the hub marks EMG as NaN
    i = feed(p, subj, 0, 300, clock)
    out = subj.emg_env[i : i + 400].copy()
    out[:] = np.nan
    clock.now = subj.t[i + CHUNK - 1]  # the first NaN rows arrive one poll later
    p.feed(subj.t[i : i + 400], out, subj.angle[i : i + 400])
    p.tick()
    assert p.paused and EventKind.PAUSED in kinds(events)
    assert p.capture_seconds == pytest.approx(3.0, abs=0.1)  # outage time is not counted
    clock.now = subj.t[i + 399]
    p.tick()
    assert p.capture_seconds == pytest.approx(3.0, abs=0.1)
    feed(p, subj, i + 400, None, clock)
    assert EventKind.RESUMED in kinds(events)
    assert p.stage == Stage.FINETUNE, [e.message for e in events][-5:]
    calib = p.calibration
    assert len(calib.segments) == 2
    for c in [*calib.train_cycles, calib.holdout_cycle]:  # no cycle spans the gap
        seg = calib.segments[c.segment]
        assert np.all(np.diff(seg.t[c.start : c.end]) < 0.02)
    assert p.wait(120)
    assert p.stage == Stage.VALIDATION
    out = p.outcome
    assert out.after.n_windows > 20
    assert out.after.mean_nmae < out.before.mean_nmae
    progress = [e for e in events if e.kind == EventKind.FINETUNE_PROGRESS]
    assert len(progress) == out.epochs > 0

    store = SubjectModelStore(root=tmp_path / "models", shipped_dir=tmp_path / "none")
    path = p.accept(store)
    assert p.stage == Stage.ACCEPTED
    assert store.active_path() is not None and str(store.active_path()) == str(
        store.find(path).path.resolve())
    card = store.load(path).card
    assert card.subject == "T01" and card.base_model == base.model_id
    assert card.training["calibration"]["data_sha256"] == calib.data_hash()
    held = card.metrics["calibration_holdout"]
    assert held["improved"] and held["after"]["nmae_1"] == out.after.nmae_1

    # the captured data and the results go into the session file under /calibration
    from kneegui.calibration.session import write_calibration
    from kneegui.recording import SessionWriter, open_session

    writer = SessionWriter(tmp_path / "session", {"subject_id": "T01"})
    writer.start()
    name = write_calibration(writer, p)
    writer.stop()
    session = open_session(writer.path)
    stored = session.calibration[name]
    assert stored["attrs"]["stage"] == "accepted" and stored["attrs"]["saved_model"] == path
    assert json.loads(stored["attrs"]["results"])["improved"] is True
    np.testing.assert_array_equal(stored["arrays"]["segment1_angle"], calib.segments[1].angle)
    assert stored["arrays"]["cycles"].shape == (6, 3)
    assert any(m.card.get("subject") == "T01" for m in session.models.values())


def test_no_gait_gives_a_message_and_saves_nothing(base_and_subject, uci_dir, tmp_path):
    """A real standing/sitting recording: no gait cycles, hint after 20 s, 'no gait' at timeout."""
    from kneegui.datasets.uci import load_uci_dataset
    from kneegui.dsp.gait import GaitSegmenter

    base, _ = base_and_subject
    still = next(r for r in load_uci_dataset(uci_dir, exercises=("sen", "pie"))
                 if r.duration_s > 22 and not GaitSegmenter(r.fs).segment(r.angle))
    subj = subject_frames(still)
    clock = DataClock()
    clock.now = subj.t[0]
    p, events = make_protocol(base, clock=clock, capture_timeout_s=21.0)
    feed(p, subj, clock=clock)
    assert EventKind.NO_GAIT_HINT in kinds(events)
    assert p.stage == Stage.FAILED and p.error == "no_gait"
    msg = next(e for e in events if e.kind == EventKind.NO_GAIT).message
    assert "nothing was saved" in msg and "0 of 6 cycles" in msg
    store = SubjectModelStore(root=tmp_path / "models", shipped_dir=tmp_path / "none")
    with pytest.raises(ProtocolError):
        p.accept(store)
    assert not (tmp_path / "models").exists()
    p.retry_capture()  # the operator can try again
    assert p.stage == Stage.CAPTURE


def test_cancel_during_finetune_stops_within_1s_and_keeps_the_model(base_and_subject, tmp_path):
    from kneegui.model.io import weights_digest

    base, subj = base_and_subject
    digest = weights_digest(base.net)
    started = threading.Event()
    p, events = make_protocol(base, train_cycles=5)
    p._on_event = lambda e: (events.append(e),  # noqa: SLF001
                             e.kind == EventKind.FINETUNE_PROGRESS and started.set())
    feed(p, subj)
    assert p.stage == Stage.FINETUNE
    assert started.wait(60), "no fine-tune progress"
    t0 = time.perf_counter()
    p.cancel()
    assert p.wait(1.0), "fine-tune thread still running 1 s after cancel"
    assert time.perf_counter() - t0 < 1.0
    assert p.stage == Stage.CANCELLED and p.outcome is None
    assert weights_digest(base.net) == digest
    with pytest.raises(ProtocolError):
        p.accept(SubjectModelStore(root=tmp_path / "m", shipped_dir=tmp_path / "none"))
    assert not (tmp_path / "m").exists()


def test_worse_model_is_reported_and_not_activated_by_default(
    base_and_subject, uci_dir, tmp_path
):
    """Re-calibrating an already adapted subject with another subject's walk (mixed-up
    recordings) gives a worse model: shown as such, saved only on request, never activated."""
    from kneegui.adaptation.finetune import FinetuneSettings, finetune
    from kneegui.datasets.uci import load_uci_dataset

    base, subj = base_and_subject
    quick = FinetuneSettings(recipes=("head",), max_epochs=8, patience=3)
    own, _ = make_protocol(base, train_cycles=5, auto_finetune=False)
    feed(own, subj)
    adapted = finetune(base, finetune_input(own.calibration, base.card.horizons,
                                            base.card.window, "T01"), settings=quick).model
    other = max((r for r in load_uci_dataset(uci_dir, exercises=("mar",))
                 if r.subject != subj.recording.subject), key=lambda r: r.duration_s)
    wrong_capture, _ = make_protocol(base, train_cycles=5, auto_finetune=False)
    feed(wrong_capture, subject_frames(other))
    assert wrong_capture.calibration is not None

    def finetune_on_wrong_subject(base_model, calib, progress, cancel) -> CalibrationOutcome:
        data = finetune_input(wrong_capture.calibration, base_model.card.horizons,
                              base_model.card.window, "T01")
        result = finetune(base_model, data, progress=progress, cancel=cancel, settings=quick)
        before, after, trace = validate(base_model, result.model, calib)
        return CalibrationOutcome(result.model, before, after, len(result.history) - 1,
                                  result.history, trace)

    store = SubjectModelStore(root=tmp_path / "models", shipped_dir=tmp_path / "none")
    previous = store.save(adapted, "T01")
    store.set_active(previous)
    events = []
    p = CalibrationProtocol(adapted, config=CalibrationConfig(train_cycles=5),
                            on_event=events.append, finetune_fn=finetune_on_wrong_subject)
    p.start(SubjectInfo("T01"))
    p.confirm_sensors()
    p.start_capture()
    feed(p, subj)
    assert p.wait(120) and p.stage == Stage.VALIDATION
    out = p.outcome
    assert not out.improved, out.summary()
    assert out.after.mean_nmae > out.before.mean_nmae
    assert "NOT better" in out.summary()
    assert not p.recommend_activation
    path = p.accept(store)  # kept for inspection, but not activated
    assert store.active_path() == previous.resolve()
    saved = store.load(path).card
    assert saved.metrics["calibration_holdout"]["improved"] is False
    assert any(e.kind == EventKind.SAVED and not e.data["activated"] for e in events)


def test_sensor_check_blocks_a_bad_channel_unless_overridden(base_and_subject):
    base, _ = base_and_subject
    p = CalibrationProtocol(base)
    with pytest.raises(ValueError, match="subject id"):
        SubjectInfo("../etc")
    p.start(SubjectInfo("T02"))
    assert p.update_quality([ChannelCheck("RF", "ok"), ChannelCheck("BF", "bad", "flat line")])
    with pytest.raises(ProtocolError, match="BF: flat line"):
        p.confirm_sensors()
    p.confirm_sensors(override=True)
    assert p.stage == Stage.BASELINE and p.sensor_override
    p.cancel()
    assert p.stage == Stage.CANCELLED


def test_rest_and_mvc_baselines_are_measured_and_kept(base_and_subject):
    base, subj = base_and_subject
    p = CalibrationProtocol(base)
    p.start(SubjectInfo("T03"))
    p.confirm_sensors()
    for kind in ("rest", "mvc"):
        with pytest.raises(ProtocolError, match="no EMG frames"):
            p.begin_baseline(kind)
            p.end_baseline()
        p.begin_baseline(kind)
        p.feed(subj.t[:300], subj.emg_env[:300], subj.angle[:300])
        values = p.end_baseline()
        expected = subj.emg_env[:300].mean(0) if kind == "rest" else subj.emg_env[:300].max(0)
        np.testing.assert_allclose(values, expected, rtol=1e-5)
    assert p.baseline["mvc"][0] > p.baseline["rest"][0]
    p.start_capture()
    p.set_train_cycles(3)
    assert p.capture.target_train == 3 and p.capture_target == 4
    feed(p, subj, 0, 60)
    with pytest.raises(ValueError):
        p.set_train_cycles(0)
    i = 60
    while len(p.capture.train) < 2 and i < len(subj.t):
        i = feed(p, subj, i, i + 50)
    assert len(p.capture.train) == 2
    with pytest.raises(ProtocolError, match="2 cycles are already captured"):
        p.set_train_cycles(1)  # cannot drop below what was counted
    p.set_train_cycles(5)
    assert p.capture.target_train == 5 and p.config.train_cycles == 5
    p.cancel()


def test_emg_only_model_calibrates_with_an_emg_memory_and_saves_it(base_and_subject, tmp_path):
    """EMG-only subject models carry an EMG-keyed calibration memory: built by the fine-tune,
    used on the held-back cycle (it needs the envelopes there too), saved and loaded back."""
    from kneegui.model import load_model, shipped_model_path

    _, subj = base_and_subject
    base = load_model(shipped_model_path("emg"))
    p, events = make_protocol(base, train_cycles=5)
    feed(p, subj, 0, None)
    assert p.stage == Stage.FINETUNE, [e.message for e in events][-5:]
    assert p.wait(120)
    assert p.stage == Stage.VALIDATION, [e.message for e in events][-5:]
    tuned = p.outcome.tuned_model
    assert tuned.memory is not None and tuned.memory.params.kind == "emg"
    assert p.outcome.after.n_windows > 20
    store = SubjectModelStore(root=tmp_path / "models", shipped_dir=tmp_path / "none")
    path = p.accept(store, activate=False)
    loaded = store.load(path)
    assert loaded.memory is not None and loaded.memory.digest() == tuned.memory.digest()
    assert loaded.card.memory.share == tuned.card.memory.share
