"""The reader's time stamps for hostile timing, simulated (no LSL: a fake clock drives
``StreamReader._ingest``): many seeds of a push-stamped sender that is starved at random and
pushes its backlog in bursts, with and without real gaps. Whatever happens, samples are never
squeezed together (steps < half a period), real gaps are reported with their size, and
starvation is never reported as missing samples."""

from __future__ import annotations

import numpy as np
import pylsl
import pytest

from kneegui.acquisition import events as ev
from kneegui.acquisition.discovery import StreamInfoView
from kneegui.acquisition.reader import StreamReader

RATE, CHUNK = 1000.0, 10
PERIOD = 1.0 / RATE


@pytest.fixture
def fake_clock(monkeypatch):
    clock = {"t": 1000.0}
    monkeypatch.setattr(pylsl, "local_clock", lambda: clock["t"])
    return clock


def _simulate(clock, seed: int, starve_p: float, max_starve: float, gap_every: int = 0,
              seconds: float = 12.0):
    """Chunks of 10 stamped on push (last sample = push time); a starved sender pushes late;
    the reader pulls whatever is queued at random moments. ``gap_every`` chunks the sender
    loses 50 samples. Returns (counter, stamps, events)."""
    rng = np.random.default_rng(seed)
    view = StreamInfoView("sim", "EMG", 1, RATE, "float32", "sim", "h", "u", ("a",), ("",))
    reader = StreamReader(view, buffer_seconds=60)  # never started: fed by hand
    t, k, queue, delay_until = 1000.0, 0, [], 0.0
    for c in range(int(seconds * RATE / CHUNK)):
        due = 1000.0 + (c + 1) * CHUNK * PERIOD + (0.05 * (c // gap_every) if gap_every else 0)
        if rng.random() < starve_p:
            delay_until = due + rng.uniform(0.005, max_starve)
        t = max(t, max(due, delay_until) + rng.uniform(0, 0.002))
        queue.append((np.arange(k, k + CHUNK, dtype=np.float32)[:, None],
                      t - np.arange(CHUNK - 1, -1, -1) * PERIOD))
        k += CHUNK
        if rng.random() < 0.5:
            clock["t"] = t + rng.uniform(0, 0.003)
            reader._ingest(np.concatenate([q[0] for q in queue]),
                           np.concatenate([q[1] for q in queue]))
            queue = []
    reader._confirm_suspect(report=False)  # as when the reader stops
    read = reader.read_from(0)
    return read.data[:, 0], read.timestamps, reader.events()


@pytest.mark.parametrize("seed", range(12))
def test_a_starved_sender_is_never_squeezed_nor_reported_missing(fake_clock, seed):
    counter, ts, events = _simulate(fake_clock, seed, starve_p=0.03, max_starve=0.4)
    np.testing.assert_array_equal(counter, np.arange(len(counter)))
    assert np.diff(ts).min() > 0.5 * PERIOD
    assert not [e for e in events if e.kind == ev.GAP]


@pytest.mark.parametrize("seed", range(6))
def test_real_gaps_are_found_with_their_size_and_never_squeezed(fake_clock, seed):
    counter, ts, events = _simulate(fake_clock, seed, starve_p=0.01, max_starve=0.02,
                                    gap_every=300)
    steps = np.diff(ts)
    assert steps.min() > 0.5 * PERIOD
    gaps = [e for e in events if e.kind == ev.GAP]
    assert len(gaps) == 3 and all(49 <= g.missing <= 51 for g in gaps), gaps
    assert np.sum(steps > 0.03) == 3  # the holes are where the gaps are, and only there


def test_paced_pulls_wake_for_the_expected_sample():
    from kneegui.acquisition.reader import ARRIVAL_MARGIN, LATE_LIMIT, MIN_PULL_INTERVAL, pull_pause

    # nothing expected: pace (take what came meanwhile in one pull)
    assert pull_pause(10.0, 10.001, None, 10.0) == pytest.approx(MIN_PULL_INTERVAL - 0.001)
    # the consumer waits for the sample stamped 10.002: wake just after it, not at 10.005
    assert pull_pause(10.0, 10.001, 10.002, 10.0) == pytest.approx(0.001 + ARRIVAL_MARGIN)
    # it is due and not here yet: pull at once (the pull returns when a sample arrives)
    assert pull_pause(10.0023, 10.0024, 10.002, 10.0015) == 0.0
    # already received, or expected after the regular pull anyway: pace as usual
    assert pull_pause(10.0, 10.001, 10.002, 10.002) == pytest.approx(0.004)
    assert pull_pause(10.0, 10.001, 10.009, 10.0) == pytest.approx(0.004)
    # long overdue (a sender that stamps in the past): pace as usual, no busy loop
    assert pull_pause(10.0, 10.001, 10.001 - LATE_LIMIT - ARRIVAL_MARGIN - 1e-4, 9.0) \
        == pytest.approx(0.004)
