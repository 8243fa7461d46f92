"""Item 1: sender clock faults are repaired, never smeared over the time axis.

Real fault senders (``lsl_fault_sender.py``) whose time stamps jump back by 100 s, jump ahead by
100 s, or are NaN for every 13th sample, each read by a real StreamReader. Before the fix the
backward jump squeezed thousands of samples 1e-7 s apart, the forward jump was reported as
"100000 samples missing", and NaN stamps were stored as NaN without an event.
"""

from __future__ import annotations

import time

import numpy as np

from kneegui.acquisition import StreamReader, resolve_source_id
from kneegui.acquisition import events as ev

RATE = 1000.0


def _read_all(reader: StreamReader):
    read = reader.read_from(0)
    return read.data[:, 0], read.timestamps


def test_clock_jumps_and_nan_stamps_are_repaired_not_smeared(fault_sender, uid):
    modes = {"back": ["--ts", "jumpback"], "ahead": ["--ts", "jumpfwd"], "nan": ["--ts", "nan"]}
    readers = {}
    try:
        for key, extra in modes.items():
            fault_sender("--name", f"clk-{key}-{uid}", "--source-id", f"clk-{key}-{uid}",
                         "--rate", str(RATE), "--duration", "6", "--jump-at", "3.5",
                         "--jump", "100", *extra)
        for key in modes:
            found = resolve_source_id(f"clk-{key}-{uid}", timeout=10.0)
            assert found, f"fault sender {key} not found"
            readers[key] = StreamReader(found[0], buffer_seconds=30.0).start()
        deadline = time.monotonic() + 20.0
        while time.monotonic() < deadline and any(
                r.status().received < 4500 for r in readers.values()):
            time.sleep(0.1)  # well past the jump at 3.5 s
        time.sleep(0.3)
    finally:
        for r in readers.values():
            r.stop()
    period = 1.0 / RATE
    for key, reader in readers.items():
        counter, ts = _read_all(reader)
        events = reader.events()
        kinds = [e.kind for e in events]
        assert len(ts) > 2000, (key, len(ts))
        np.testing.assert_array_equal(np.diff(counter), 1)  # nothing lost on loopback
        assert np.all(np.isfinite(ts)), key
        steps = np.diff(ts)
        # one continuous time line: every step is one sample period (no smear, no hole)
        assert steps.min() > 0.5 * period and steps.max() < 1.5 * period, (
            key, steps.min(), steps.max())
        assert ev.GAP not in kinds, (key, [e.message for e in events])  # no false "missing"
        if key == "nan":
            bad = [e for e in events if e.kind == ev.BAD_TIMESTAMPS]
            assert bad and "without a valid time stamp" in bad[0].message
            assert reader.status().bad_timestamps > 0
        else:
            jumps = [e for e in events if e.kind == ev.CLOCK_JUMP]
            assert len(jumps) == 1, (key, [e.message for e in events])
            assert key in jumps[0].message and "100.000 s" in jumps[0].message
            assert "no samples missing" in jumps[0].message
            assert reader.status().clock_jumps == 1


def test_a_delayed_sender_bursting_its_backlog_is_not_smeared(uid):
    """A sender that stamps chunks when it pushes them and is starved now and then (a busy
    PC) pushes its backlog in a burst whose stamps overlap. Before the fix the late chunks kept
    their raw stamps and the ones after were squeezed 1e-7 s apart behind them."""
    import pylsl

    rate, chunk = 1000.0, 10
    sid = f"burst-{uid}"
    outlet = pylsl.StreamOutlet(pylsl.StreamInfo(f"burst-{uid}", "EMG", 1, rate,
                                                 pylsl.cf_float32, sid))
    reader = StreamReader(resolve_source_id(sid, timeout=10.0)[0], 30.0).start()
    try:
        assert reader.wait_until_open(10.0)
        t0 = pylsl.local_clock() + 0.05
        n_chunks = 300
        for c in range(n_chunks):
            due = t0 + (c + 1) * chunk / rate
            burst_end = due if c % 50 < 45 else t0 + (c - c % 50 + 50) * chunk / rate
            push_at = max(due, burst_end)  # chunks 45..49 of every 50 wait for the 50th
            while pylsl.local_clock() < push_at:
                time.sleep(0.0005)
            now = pylsl.local_clock()
            stamps = now - np.arange(chunk - 1, -1, -1) / rate  # stamped on push
            outlet.push_chunk(np.arange(c * chunk, (c + 1) * chunk, dtype=np.float32)[:, None],
                              stamps.tolist())
        assert reader.wait_for_samples(n_chunks * chunk, timeout=10.0)
        time.sleep(0.2)
    finally:
        reader.stop()
        del outlet
    counter, ts = _read_all(reader)
    np.testing.assert_array_equal(counter, np.arange(n_chunks * chunk))
    steps = np.diff(ts)
    assert steps.min() > 0.5 / rate, steps.min()  # nothing squeezed together
    assert steps.max() < 60 / rate, steps.max()  # the bursts' delays are not turned into holes
    assert not [e for e in reader.events() if e.kind == ev.GAP]
