"""StreamReader on real LSL loopback streams: data, timestamps, gaps, outages, reconnects."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pylsl
import pytest

from kneegui.acquisition import Role, RoleError, StreamReader, discover
from kneegui.acquisition import events as ev
from kneegui.acquisition.roles import check_emg_picks

SENDER = Path(__file__).with_name("lsl_sender_process.py")


def _push_realtime(outlet, data: np.ndarray, rate: float, t0: float, chunk: int) -> np.ndarray:
    """Push ``data`` in chunks paced by the clock, with exact stamps; return the stamps."""
    stamps = t0 + np.arange(data.shape[0]) / rate
    for a in range(0, data.shape[0], chunk):
        b = min(a + chunk, data.shape[0])
        while pylsl.local_clock() < stamps[b - 1]:
            time.sleep(0.0005)
        outlet.push_chunk(data[a:b], stamps[a:b].tolist())
    return stamps


def test_metadata_round_trip(make_outlet, uid, resolve):
    labels, units = ["RF", "BF", "VM", "ST"], ["mV"] * 4
    make_outlet(f"meta-{uid}", f"EMG{uid}", 4, 1000.0, "float32", f"src-{uid}", labels, units)
    views = discover(timeout=1.0, stream_type=f"EMG{uid}")
    assert len(views) == 1
    v = views[0]
    assert (v.name, v.type, v.channel_count, v.nominal_srate) == (
        f"meta-{uid}",
        f"EMG{uid}",
        4,
        1000.0,
    )
    assert v.channel_format == "float32"
    assert v.source_id == f"src-{uid}"
    assert v.channel_labels == tuple(labels)
    assert v.channel_units == tuple(units)
    assert v.hostname and v.uid
    assert "<label>VM</label>" in v.xml
    as_json = v.to_dict()
    assert as_json["channel_labels"] == labels and "handle" not in as_json
    assert resolve(f"src-{uid}").uid == v.uid


def test_float64_8_channels_at_2148_hz_are_read_exactly(make_outlet, uid, resolve):
    rate = 2148.0
    outlet = make_outlet(f"f64-{uid}", "EMG", 8, rate, "double64", f"f64-{uid}")
    info = resolve(f"f64-{uid}")
    reader = StreamReader(info, buffer_seconds=5.0, role=Role.EMG).start()
    try:
        assert reader.wait_until_open(2.0)
        rng = np.random.default_rng(0)
        data = rng.normal(size=(int(rate * 0.8), 8)) * 1e3  # float64 values need 64 bits
        stamps = _push_realtime(outlet, data, rate, pylsl.local_clock() + 0.01, chunk=22)
        assert reader.wait_for_samples(data.shape[0], timeout=3.0)
        got, got_ts = reader.read_from(0)[:2]
        assert got.dtype == np.float64
        np.testing.assert_array_equal(got, data)
        status = reader.status()
        # loopback: the clock offset is ~0, so the stamps come back as sent (dejittered exactly)
        np.testing.assert_allclose(got_ts, stamps + status.clock_offset, atol=2e-6)
        assert abs(status.clock_offset) < 1e-3 and status.clock_jitter >= 0.0
        assert status.gaps == 0 and status.outages == 0 and status.connected
        assert status.received == data.shape[0]
        assert 0.8 * rate < status.effective_rate < 1.2 * rate
        assert status.delay < 0.05
    finally:
        reader.stop()
    kinds = [e.kind for e in reader.events()]
    assert kinds == [ev.CONNECTED]


def test_gap_and_silent_sender_are_reported(make_outlet, uid, resolve):
    rate = 1000.0
    outlet = make_outlet(f"gap-{uid}", "EMG", 2, rate, "float32", f"gap-{uid}")
    info = resolve(f"gap-{uid}")
    reader = StreamReader(info, 5.0, Role.EMG, outage_timeout=0.3).start()
    try:
        assert reader.wait_until_open(2.0)
        t0 = pylsl.local_clock()
        first = np.ones((200, 2), np.float32)
        _push_realtime(outlet, first, rate, t0, 10)
        # 50 samples never sent: the next stamp jumps by 51 periods
        _push_realtime(outlet, first, rate, t0 + 250 / rate, 10)
        time.sleep(0.6)  # silent sender (outlet alive): outage after 0.3 s
        assert not reader.status().connected
        _push_realtime(outlet, first, rate, pylsl.local_clock(), 10)
        assert reader.wait_for_samples(600, timeout=2.0)
        time.sleep(0.05)
        status = reader.status()
    finally:
        reader.stop()
    events = reader.events()
    gaps = [e for e in events if e.kind == ev.GAP]
    assert len(gaps) == 1, events
    assert gaps[0].missing == 50
    assert gaps[0].duration == pytest.approx(0.051, abs=1e-4)
    assert [e.kind for e in events if e.kind != ev.GAP] == [
        ev.CONNECTED,
        ev.DISCONNECTED,
        ev.RECONNECTED,
    ]
    back = events[-1]
    assert 0.55 < back.duration < 2.0
    assert status.gaps == 1 and status.outages == 1 and status.reconnects == 1
    assert status.connected and status.last_error is None
    _, ts = reader.latest(10.0)
    assert np.all(np.diff(ts) > 0)


def test_killed_sender_restarted_with_same_source_id_is_resumed(uid, resolve):
    source_id = f"kill-{uid}"
    args = [sys.executable, str(SENDER), source_id, f"kill-{uid}", "1000", "3"]
    sender = subprocess.Popen([*args, "0"], stdout=subprocess.PIPE)
    try:
        assert sender.stdout.readline().strip() == b"ready"
        info = resolve(source_id)
        reader = StreamReader(info, 10.0, Role.EMG, outage_timeout=0.5).start()
        assert reader.wait_for_samples(300, timeout=3.0)
        sender.kill()
        sender.wait()
        killed_at = pylsl.local_clock()
        time.sleep(0.8)
        assert not reader.status().connected
        sender = subprocess.Popen([*args, "100000"], stdout=subprocess.PIPE)
        assert sender.stdout.readline().strip() == b"ready"
        n_before = reader.buffer.total_written
        assert reader.wait_for_samples(n_before + 300, timeout=5.0)
        status = reader.status()
        data, ts = reader.latest(30.0)
    finally:
        sender.kill()
        sender.wait()
        reader.stop()
    events = reader.events()
    kinds = [e.kind for e in events]
    assert kinds[0] == ev.CONNECTED
    assert ev.DISCONNECTED in kinds and ev.RECONNECTED in kinds
    outage = next(e for e in events if e.kind == ev.RECONNECTED)
    assert outage.t <= killed_at
    assert outage.duration > 0.7
    assert outage.missing > 0
    assert status.outages == 1 and status.reconnects == 1 and status.connected
    assert status.running and status.last_error is None
    assert not [e for e in events if e.kind == ev.ERROR]
    # data from both sender lives, in order, with increasing timestamps
    counter = data[:, 0]
    assert counter.min() < 100000 <= counter.max()
    assert np.all(np.diff(ts) > 0)
    after = counter[counter >= 100000]
    np.testing.assert_array_equal(np.diff(after), 1)


def test_wrong_streams_are_refused_with_clear_messages(make_outlet, uid, resolve):
    make_outlet(f"txt-{uid}", "Markers", 1, 0.0, "string", f"txt-{uid}")
    make_outlet(f"kin-{uid}", "Kinematics", 6, 200.0, "float32", f"kin-{uid}",
                labels=["hip", "knee", "ankle", "hip_r", "knee_r", "ankle_r"])
    make_outlet(f"emg2-{uid}", "EMG", 2, 1000.0, "int16", f"emg2-{uid}")
    make_outlet(f"irr-{uid}", "EMG", 4, 0.0, "float32", f"irr-{uid}")
    text = resolve(f"txt-{uid}")
    kin = resolve(f"kin-{uid}")
    emg2 = resolve(f"emg2-{uid}")
    irregular = resolve(f"irr-{uid}")

    with pytest.raises(RoleError, match="carries text; a text stream can only be used as MARKERS"):
        StreamReader(text, role=Role.EMG)
    with pytest.raises(RoleError, match="has 6 channels; choose the one that holds the knee"):
        StreamReader(kin, role=Role.KNEE_ANGLE)
    with pytest.raises(RoleError, match="pick exactly one"):
        StreamReader(kin, role=Role.KNEE_ANGLE, channels=["knee", "ankle"])
    with pytest.raises(RoleError, match="no channel labelled 'elbow'"):
        StreamReader(kin, role=Role.KNEE_ANGLE, channels=["elbow"])
    with pytest.raises(RoleError, match="declares an irregular rate"):
        StreamReader(irregular, role=Role.EMG)
    assert check_emg_picks(emg2, None) == [0, 1]  # what feeds a model is its layout's job
    # what fits is accepted
    assert StreamReader(kin, role=Role.KNEE_ANGLE, channels=["knee"]).channels == [1]
    assert StreamReader(emg2, role=Role.EMG).buffer.dtype == np.int16
    assert StreamReader(text, role=Role.MARKERS).buffer.dtype == object


def test_marker_strings_are_read(make_outlet, uid, resolve):
    outlet = make_outlet(f"mk-{uid}", "Markers", 1, 0.0, "string", f"mk-{uid}")
    info = resolve(f"mk-{uid}")
    with StreamReader(info, 10.0, Role.MARKERS) as reader:
        assert reader.wait_until_open(2.0)
        now = pylsl.local_clock()
        outlet.push_sample(["heel strike"], now)
        outlet.push_sample(["toe off"], now + 0.1)
        assert reader.wait_for_samples(2, timeout=2.0)
        data, ts = reader.latest(60.0)
    assert data[:, 0].tolist() == ["heel strike", "toe off"]
    assert ts[1] - ts[0] == pytest.approx(0.1, abs=1e-6)


def test_jittery_push_stamps_give_no_false_gaps_but_real_gaps_are_found(make_outlet, uid, resolve):
    """A sender that stamps each chunk when it pushes (+-1.5 ms jitter) and drops 40 ms once."""
    rate, chunk = 1000.0, 10
    outlet = make_outlet(f"jit-{uid}", "EMG", 1, rate, "float32", f"jit-{uid}")
    reader = StreamReader(resolve(f"jit-{uid}"), 10.0, Role.EMG).start()
    rng = np.random.default_rng(3)
    try:
        assert reader.wait_until_open(2.0)
        t0 = pylsl.local_clock() + 0.02
        k, true_times = 0, []
        for c in range(150):
            if c == 80:
                k += 40  # the sender loses 40 samples
            t_true = t0 + (k + np.arange(chunk)) / rate
            while pylsl.local_clock() < t_true[-1]:
                time.sleep(0.0005)
            stamp = t_true[-1] + rng.uniform(-1.5e-3, 1.5e-3)  # stamped on push, jittery
            outlet.push_chunk(np.full((chunk, 1), c, np.float32), stamp)
            true_times.append(t_true)
            k += chunk
        assert reader.wait_for_samples(1500, timeout=3.0)
        status = reader.status()
        data, ts = reader.read_from(0)[:2]
    finally:
        reader.stop()
    gaps = [e for e in reader.events() if e.kind == ev.GAP]
    assert len(gaps) == 1, gaps
    assert 37 <= gaps[0].missing <= 43
    assert status.gaps == 1
    # dejittered stamps stay close to the true sample times (raw ones are off by up to 1.5 ms)
    truth = np.concatenate(true_times) + status.clock_offset
    settled = slice(300, 800)  # after the fit has settled, before the gap
    assert np.abs(ts[settled] - truth[settled]).max() < 1.0e-3
    assert np.all(np.diff(ts) > 0)


def test_integer_formats_are_read_exactly(make_outlet, uid, resolve):
    formats = {"int8": np.int8, "int16": np.int16, "int32": np.int32, "int64": np.int64}
    outlets, readers = {}, {}
    for fmt in formats:
        outlets[fmt] = make_outlet(f"{fmt}-{uid}", "EMG", 3, 500.0, fmt, f"{fmt}-{uid}")
        readers[fmt] = StreamReader(resolve(f"{fmt}-{uid}"), 5.0, Role.EMG)
        readers[fmt].start()
    try:
        for reader in readers.values():
            assert reader.wait_until_open(3.0)
        t0 = pylsl.local_clock()
        sent = {}
        rng = np.random.default_rng(7)
        for fmt, dtype in formats.items():
            info = np.iinfo(dtype)
            values = rng.integers(info.min, info.max, (100, 3), dtype=dtype, endpoint=True)
            values[0] = (info.min, 0, info.max)  # the extremes survive the trip
            outlets[fmt].push_chunk(values, (t0 + np.arange(100) / 500.0).tolist())
            sent[fmt] = values
        for fmt, reader in readers.items():
            assert reader.wait_for_samples(100, timeout=3.0)
            data = reader.read_from(0).data
            assert data.dtype == formats[fmt]
            np.testing.assert_array_equal(data, sent[fmt])
    finally:
        for reader in readers.values():
            reader.stop()


def test_a_sender_that_returns_with_another_shape_is_not_reconnected(uid, resolve):
    sid = f"shape-{uid}"

    def outlet(n_channels: int):
        return pylsl.StreamOutlet(
            pylsl.StreamInfo(f"shape-{uid}", "EMG", n_channels, 500.0, "float32", sid)
        )

    def push(o, n_channels: int, seconds: float, t0: float | None = None) -> float:
        """Push in real time from ``t0`` (default now); returns the next sample's stamp."""
        t0 = pylsl.local_clock() if t0 is None else t0
        n = int(500 * seconds)
        _push_realtime(o, np.ones((n, n_channels), np.float32), 500.0, t0, 5)
        return t0 + n / 500.0

    first = outlet(3)
    reader = StreamReader(resolve(sid), 5.0, Role.EMG).start()
    try:
        assert reader.wait_until_open(3.0)
        push(first, 3, 0.3)
        assert reader.wait_for_samples(150, 2.0)
        del first  # the sender goes away ...
        wrong = outlet(5)  # ... and comes back with 5 channels under the same source_id
        deadline = time.monotonic() + 5.0
        while time.monotonic() < deadline and not reader.status().last_error:
            time.sleep(0.05)
        time.sleep(0.6)  # one more reconnect attempt: the error is not reported twice
        status = reader.status()
        assert not status.connected and status.running
        assert "does not match" in (status.last_error or "")
        right = outlet(3)  # the right one appears too
        deadline = time.monotonic() + 5.0
        t_next = None
        while time.monotonic() < deadline and not reader.status().connected:
            t_next = push(right, 3, 0.1, t_next)
        assert reader.status().connected and reader.status().last_error is None
        assert wrong.get_info().channel_count() == 5  # still on the network, never used
    finally:
        reader.stop()  # before the outlets go, so that no disconnect is reported
    events = reader.events()
    errors = [e for e in events if e.kind == ev.ERROR]
    assert len(errors) == 1 and "came back as" in errors[0].message  # reported once
    assert [e.kind for e in events if e.kind != ev.ERROR] == [
        ev.CONNECTED, ev.DISCONNECTED, ev.RECONNECTED
    ]
