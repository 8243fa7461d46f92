"""Real LSL sender outage during the walking capture: the capture pauses, then resumes.

End-to-end on loopback, no mocks: a simulated lab publishes a real UCI gait clip, stream readers
and the hub align it, and the calibration protocol's walking capture is fed by the same pump the
wizard and the CLI use. Mid-capture the sender disappears (``lab.stop()``); a new sender with the
same source ids comes back later. The readers reconnect by source id, the protocol reports
PAUSED then RESUMED, the outage is not counted as walking time, and gait cycles keep coming.
"""

from __future__ import annotations

import time
import uuid

from kneegui.acquisition import Hub, Role, SimulatedLab, StreamReader, resolve_source_id
from kneegui.calibration import (
    CalibrationConfig,
    CalibrationProtocol,
    EventKind,
    Stage,
    SubjectInfo,
)
from kneegui.calibration.feeder import CapturePump, HubFrameSource
from kneegui.model import load_model, shipped_model_path

OUTAGE_S = 2.5  # how long the sender is gone


def _poll_until(pump: CapturePump, done, timeout: float, what: str) -> float:
    """Poll the pump (like the CLI loop) until ``done()``; returns the monotonic time it held."""
    deadline = time.monotonic() + timeout
    while True:
        pump.poll()
        if done():
            return time.monotonic()
        assert time.monotonic() < deadline, f"timed out after {timeout:g} s waiting for {what}"
        time.sleep(0.03)


def _resolve(source_id: str, timeout: float = 5.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        hits = resolve_source_id(source_id, timeout=1.0)
        if hits:
            return hits[0]
    raise AssertionError(f"stream {source_id!r} not found on loopback within {timeout:g} s")


def test_sender_outage_pauses_and_resumes_the_capture():
    prefix = f"outage-{uuid.uuid4().hex[:8]}"
    events = []
    lab = SimulatedLab(source_id_prefix=prefix, name_prefix=prefix).start()
    lab2 = None
    hub = None
    try:
        emg = StreamReader(_resolve(lab.emg_source_id), role=Role.EMG)
        angle = StreamReader(_resolve(lab.angle_source_id), role=Role.KNEE_ANGLE)
        hub = Hub(model_rate=100.0)
        hub.assign(Role.EMG, emg)
        hub.assign(Role.KNEE_ANGLE, angle)
        hub.start()
        deadline = time.monotonic() + 10.0
        while hub.aligned_count() == 0:
            assert time.monotonic() < deadline, f"no aligned frames: {hub.status()}"
            time.sleep(0.05)

        base = load_model(shipped_model_path("emg+angle"))
        protocol = CalibrationProtocol(
            base,
            # far more cycles than this test walks: the capture must not end on its own
            config=CalibrationConfig(train_cycles=200, no_cycle_hint_s=600.0,
                                     capture_timeout_s=None, auto_finetune=False),
            on_event=events.append,
        )
        protocol.start(SubjectInfo("T-outage"))
        protocol.confirm_sensors()
        protocol.start_capture()
        pump = CapturePump(HubFrameSource(hub), protocol)

        def kinds():
            return [e.kind for e in events]

        # ~2.5 s of walking with at least one detected gait cycle
        _poll_until(
            pump,
            lambda: protocol.capture_seconds >= 2.5 and protocol.capture.cycle_count >= 1,
            20.0, "walking before the outage",
        )
        assert EventKind.PAUSED not in kinds(), [e.message for e in events]
        active_before = protocol.capture_seconds
        samples_before = protocol.capture.n_samples
        n_before = len(events)

        # the sender disappears
        lab.stop()
        t_lost = time.monotonic()
        _poll_until(pump, lambda: EventKind.PAUSED in kinds()[n_before:], 6.0, "PAUSED")
        assert protocol.paused and protocol.stage == Stage.CAPTURE
        # stay away for the rest of the outage, still polling like the CLI does
        _poll_until(pump, lambda: time.monotonic() - t_lost >= OUTAGE_S, OUTAGE_S + 1.0,
                    "the end of the outage")
        assert protocol.paused and EventKind.RESUMED not in kinds()[n_before:]
        active_paused = protocol.capture_seconds

        # a new sender with the same source ids: the readers find it again
        lab2 = SimulatedLab(source_id_prefix=prefix, name_prefix=prefix).start()
        t_resumed = _poll_until(pump, lambda: EventKind.RESUMED in kinds()[n_before:], 15.0,
                                "RESUMED after the sender came back")
        later = kinds()[n_before:]
        assert later.index(EventKind.PAUSED) < later.index(EventKind.RESUMED)
        resumed = next(e for e in events[n_before:] if e.kind == EventKind.RESUMED)
        assert not protocol.paused and protocol.stage == Stage.CAPTURE

        # walking time did not count the outage (only the stall before the pause was noticed)
        wall_outage = t_resumed - t_lost
        assert wall_outage >= OUTAGE_S
        assert resumed.data["paused_s"] >= OUTAGE_S - 1.5, resumed.data
        assert protocol.capture_seconds - active_paused < 0.5
        # walking time counted since the stop: no more than the data that came in since (frames
        # in flight, then the new sender's): the stall before the pause is taken back
        counted = protocol.capture_seconds - active_before
        data_s = (protocol.capture.n_samples - samples_before) / 100.0
        assert counted <= data_s + 0.3, (counted, data_s, wall_outage)

        for st in hub.statuses():
            assert st.outages >= 1, st
            assert st.reconnects >= 1, st
            assert st.connected, st

        # gait cycles keep coming after the resume (in a new, gap-free segment)
        cycles_at_resume = protocol.capture.cycle_count
        i_resumed = n_before + later.index(EventKind.RESUMED)
        _poll_until(pump, lambda: protocol.capture.cycle_count >= cycles_at_resume + 2, 15.0,
                    "gait cycles after the resume")
        new_cycles = [e for e in events[i_resumed:] if e.kind == EventKind.CYCLE]
        assert len(new_cycles) >= 2
        assert new_cycles[-1].data["count"] == protocol.capture.cycle_count
        segments = protocol.capture.all_segments()
        assert len(segments) >= 2  # the outage split the capture; no cycle spans the gap
        assert all(c.segment == len(segments) - 1
                   for c in protocol.capture.train[cycles_at_resume:])
        assert protocol.stage == Stage.CAPTURE

        protocol.cancel()
        assert protocol.stage == Stage.CANCELLED
        assert events[-1].kind == EventKind.STAGE and EventKind.CANCELLED in kinds()
    finally:
        if hub is not None:
            hub.stop()
        lab.stop()
        if lab2 is not None:
            lab2.stop()
