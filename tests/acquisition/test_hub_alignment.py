"""Hub: streams with different rates, clock offsets and arrival delays align by timestamp."""

from __future__ import annotations

import threading
import time

import numpy as np
import pylsl
import pytest

from kneegui.acquisition import Hub, Role, RoleError, StreamReader
from kneegui.dsp import FilterSettings


def _signal(t: np.ndarray) -> np.ndarray:
    return 20.0 * np.sin(2 * np.pi * 0.7 * t) + 5.0 * np.sin(2 * np.pi * 1.3 * t + 0.5)


def _pusher(outlet, rate, channels, t0, t_end, stamp_shift=0.0, delay=0.0, chunk_s=0.02):
    """Push _signal(true time) stamped at true time + stamp_shift, each chunk ``delay`` late."""

    def run():
        k = 0
        while True:
            n = max(1, int(round(chunk_s * rate)))
            t_true = t0 + (k + np.arange(n)) / rate
            if t_true[0] > t_end:
                return
            while pylsl.local_clock() < t_true[-1] + delay:
                time.sleep(0.001)
            values = np.stack([_signal(t_true) * (c + 1) for c in range(channels)], axis=1)
            outlet.push_chunk(values.astype(np.float32), (t_true + stamp_shift).tolist())
            k += n

    th = threading.Thread(target=run, daemon=True)
    th.start()
    return th


def test_two_rates_offset_and_late_arrival_align_by_timestamp(make_outlet, uid, resolve):
    # knee angle at 500 Hz, on time; kinematics (2 ch) at 120 Hz whose sender stamps its
    # samples 0.25 s ahead of true time and whose chunks arrive 0.2 s late; EMG at 1000 Hz
    angle_out = make_outlet(f"ang-{uid}", "Angle", 1, 500.0, "float32", f"ang-{uid}")
    kin_out = make_outlet(f"kin-{uid}", "Kin", 2, 120.0, "float32", f"kin-{uid}")
    emg_out = make_outlet(f"emg-{uid}", "EMG", 4, 1000.0, "float32", f"emg-{uid}")
    shift = 0.25
    readers = {
        role: StreamReader(resolve(sid), 10.0, role)
        for role, sid in (
            (Role.KNEE_ANGLE, f"ang-{uid}"),
            (Role.KINEMATICS, f"kin-{uid}"),
            (Role.EMG, f"emg-{uid}"),
        )
    }
    hub = Hub(model_rate=100.0, filter_settings=FilterSettings(mains=None))
    for role, reader in readers.items():
        hub.assign(role, reader)
    hub.start()
    try:
        for reader in readers.values():
            assert reader.wait_until_open(3.0)
        t0 = pylsl.local_clock() + 0.05
        t_end = t0 + 1.6
        threads = [
            _pusher(angle_out, 500.0, 1, t0, t_end),
            _pusher(kin_out, 120.0, 2, t0, t_end, stamp_shift=shift, delay=0.2),
        ]
        rng = np.random.default_rng(1)
        emg = rng.normal(scale=0.1, size=(1700, 4)).astype(np.float32)
        stamps = t0 + np.arange(1700) / 1000.0
        for a in range(0, 1700, 10):
            while pylsl.local_clock() < stamps[a + 9]:
                time.sleep(0.001)
            emg_out.push_chunk(emg[a : a + 10], stamps[a : a + 10].tolist())
        for th in threads:
            th.join(5.0)
        time.sleep(0.4)
        frame = hub.latest_aligned(1000)
        status = hub.status()
        # loopback time_correction measures a few tens of microseconds; stamps include it
        offset = {role: r.status().clock_offset for role, r in readers.items()}
    finally:
        hub.stop()
    assert frame is not None and len(frame) > 100
    # the grid is exact multiples of 10 ms on the local clock
    np.testing.assert_allclose(np.diff(frame.t), 0.01, atol=1e-9)
    np.testing.assert_allclose(frame.t * 100, np.round(frame.t * 100), atol=1e-6)
    # the grid starts when every role has data: the kinematics stamps start `shift` late
    assert frame.t[0] >= t0 + shift - 1e-9
    ok = ~np.isnan(frame.angle) & ~np.isnan(frame.kinematics).any(axis=1)
    assert ok.sum() > 100
    t = frame.t[ok]
    assert all(abs(v) < 1e-3 for v in offset.values())
    t_angle = t - offset[Role.KNEE_ANGLE]
    np.testing.assert_allclose(frame.angle[ok], _signal(t_angle), atol=1e-3)
    # kinematics values follow their own stamps: value at grid t is the signal at t - shift
    t_kin = t - shift - offset[Role.KINEMATICS]
    # linear interpolation of 120 Hz samples errs by up to (1/120)^2 / 8 * max|f''| = 6e-3;
    # a timing error of 1 ms would already cost up to 0.13
    np.testing.assert_allclose(frame.kinematics[ok, 0], _signal(t_kin), atol=8e-3)
    np.testing.assert_allclose(frame.kinematics[ok, 1], 2 * _signal(t_kin), atol=16e-3)
    assert frame.emg_env.shape == (len(frame), 4)
    assert np.isfinite(frame.emg_env[ok]).all() and (frame.emg_env[ok][-50:] > 0).all()
    assert status.lost_samples == 0 and status.last_error is None
    # the cursor API returns the same rows
    again = hub.aligned_from(frame.next_index - len(frame), max_rows=len(frame))
    np.testing.assert_array_equal(again.t, frame.t)
    np.testing.assert_array_equal(again.angle, frame.angle)
    assert again.next_index == frame.next_index and again.lost == 0
    # display buffers: full-rate filtered EMG of the 4 model channels
    filtered, ts = hub.emg_buffer("filtered").latest(2000)
    assert filtered.shape == (1700, 4)
    np.testing.assert_allclose(ts, stamps, atol=2e-6)


def test_hub_refuses_unfit_assignments(make_outlet, uid, resolve):
    make_outlet(f"e2-{uid}", "EMG", 2, 1000.0, "float32", f"e2-{uid}")
    make_outlet(f"k3-{uid}", "Kin", 3, 100.0, "float32", f"k3-{uid}")
    e2 = StreamReader(resolve(f"e2-{uid}"), role=Role.EMG)
    k3 = StreamReader(resolve(f"k3-{uid}"), role=Role.KINEMATICS)
    hub = Hub()
    # EMG: every channel unless picked (which channels feed a model is the model's layout)
    assert hub.assign(Role.EMG, e2).channels == [0, 1]
    with pytest.raises(RoleError, match="does not exist in stream"):
        hub.assign(Role.EMG, e2, channels=[2])
    with pytest.raises(RoleError, match="choose the one that holds the knee angle"):
        hub.assign(Role.KNEE_ANGLE, k3)
    with pytest.raises(RoleError, match="assign at least an EMG or a knee-angle stream"):
        Hub().start()
    assert hub.assign(Role.KNEE_ANGLE, k3, channels=[2]).channels == [2]


def _angle_and_force(make_outlet, resolve, tag: str, **hub_options):
    """Outlets for a knee angle and a force stream (200 Hz) and a started hub reading them."""
    angle_out = make_outlet(f"a-{tag}", "Angle", 1, 200.0, "float32", f"a-{tag}")
    force_out = make_outlet(f"f-{tag}", "Force", 1, 200.0, "float32", f"f-{tag}")
    hub = Hub(model_rate=100.0, **hub_options)
    hub.assign(Role.KNEE_ANGLE, StreamReader(resolve(f"a-{tag}")))
    hub.assign(Role.FORCE, StreamReader(resolve(f"f-{tag}")))
    hub.start()
    if not all(r.wait_until_open(3.0) for r in hub.readers):
        hub.stop()
        raise AssertionError("the test streams did not open within 3 s")
    return angle_out, force_out, hub


def test_grid_goes_on_with_nan_when_one_sender_stops(make_outlet, uid, resolve):
    angle_out, force_out, hub = _angle_and_force(make_outlet, resolve, uid, max_wait=0.3)
    try:
        t0 = pylsl.local_clock() + 0.05
        a = _pusher(angle_out, 200.0, 1, t0, t0 + 1.5)
        f = _pusher(force_out, 200.0, 1, t0, t0 + 0.5)  # the force sender stops after 0.5 s
        a.join(5.0)
        f.join(5.0)
        time.sleep(0.5)
        frame = hub.aligned_from(0)
        status = hub.status()
        newest = max(r.buffer.last_timestamp() for r in hub.readers)
        force_end = hub.assignment(Role.FORCE).reader.buffer.last_timestamp()
    finally:
        hub.stop()
    assert frame.t[-1] > t0 + 1.4  # the grid went on after the force stream stopped
    assert np.isfinite(frame.angle).all()
    stopped = frame.t > force_end
    assert np.isnan(frame.force[stopped, 0]).all()
    assert np.isfinite(frame.force[~stopped, 0]).all()
    assert status.incomplete == int(stopped.sum())
    # nothing is emitted past the newest data of any role
    assert newest - 0.01 < frame.t[-1] <= newest


def test_start_wait_is_local_time_even_for_stamps_in_the_past(make_outlet, uid, resolve):
    # A replayed or high-latency sender stamps its samples seconds in the past: the grid must
    # still wait (on the local clock) for the role that delivers its first data later, not start
    # at once with NaN for it (the wait was measured against the data's stamps).
    angle_out, force_out, hub = _angle_and_force(make_outlet, resolve, f"p{uid}")
    try:
        t0 = pylsl.local_clock() - 10.0
        stamps = (t0 + np.arange(200) / 200.0).tolist()
        values = _signal(np.asarray(stamps))[:, None].astype(np.float32)
        angle_out.push_chunk(values, stamps)
        time.sleep(0.6)  # the force sender starts late; both stamp the same (past) times
        force_out.push_chunk(values, stamps)
        deadline = time.monotonic() + 5.0
        while hub.status().aligned < 90 and time.monotonic() < deadline:
            time.sleep(0.05)
        frame = hub.aligned_from(0)
        status = hub.status()
    finally:
        hub.stop()
    assert status.incomplete == 0, status
    assert frame.t[0] >= t0 - 1e-9 and len(frame) >= 90
    assert np.isfinite(frame.force).all() and np.isfinite(frame.angle).all()


def test_hub_tells_each_reader_the_sample_its_next_row_waits_for(make_outlet, uid, resolve):
    # A reader that paces its pulls wakes for the stamp the hub expects (reader.expect): that
    # stamp must be the very sample that completes the next grid row, for the knee angle (its
    # own 1 kHz samples, off the grid by 0.37 ms) and for EMG (2 kHz, features at the model rate).
    angle_out = make_outlet(f"xa-{uid}", "Angle", 1, 1000.0, "float32", f"xa-{uid}")
    emg_out = make_outlet(f"xe-{uid}", "EMG", 4, 2000.0, "float32", f"xe-{uid}")
    hub = Hub(model_rate=100.0, filter_settings=FilterSettings(mains=None))
    angle, emg = StreamReader(resolve(f"xa-{uid}")), StreamReader(resolve(f"xe-{uid}"))
    hub.assign(Role.KNEE_ANGLE, angle)
    hub.assign(Role.EMG, emg)
    t0 = pylsl.local_clock() - 5.0
    ta = t0 + 0.00037 + np.arange(3000) / 1000.0
    te = t0 + 0.00011 + np.arange(6000) / 2000.0
    rng = np.random.default_rng(3)
    va = _signal(ta)[:, None].astype(np.float32)
    ve = rng.normal(scale=0.1, size=(6000, 4)).astype(np.float32)
    sent = {"a": 0, "e": 0}

    def push_until(key: str, n: int) -> None:
        out, t, v = (angle_out, ta, va) if key == "a" else (emg_out, te, ve)
        if n > sent[key]:
            out.push_chunk(v[sent[key]:n], t[sent[key]:n].tolist())
            sent[key] = n

    def settle(count: int | None = None, timeout: float = 3.0) -> int:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            n = hub.status().aligned
            if count is not None and n > count:
                return n
            time.sleep(0.05)
        return hub.status().aligned

    hub.start()
    try:
        for r in hub.readers:
            assert r.wait_until_open(3.0)
        push_until("a", 1000)
        push_until("e", 2000)
        rows = settle(0)
        assert rows > 0
        awaited_roles = set()
        for _ in range(4):
            time.sleep(0.3)
            rows = hub.status().aligned
            want = {}
            for key, reader, t in (("a", angle, ta), ("e", emg, te)):
                stamp = reader.expected
                if stamp is None:  # the next row has this role's data already
                    continue
                raw = stamp - reader.status().clock_offset
                i = int(np.argmin(np.abs(t - raw)))
                assert abs(t[i] - raw) < 1e-6, (key, t[i], raw)  # one of the stream's samples
                assert i >= sent[key]  # not received yet
                want[key] = i
            assert want, "the hub waits for a row but expects nothing"
            awaited_roles |= set(want)
            for key, i in want.items():  # everything before the awaited samples: no row
                push_until(key, i)
            assert settle(timeout=0.5) == rows
            for key, i in want.items():  # the awaited samples complete it
                push_until(key, i + 1)
            assert settle(rows) > rows
        assert awaited_roles == {"a", "e"}
    finally:
        hub.stop()
