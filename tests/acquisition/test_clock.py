"""Timestamp correction maths: clock offset statistics, dejitter fit, monotonic output."""

import numpy as np

from kneegui.acquisition.clock import ClockOffset, Dejitter, make_increasing


def test_clock_offset_is_the_median_and_jitter_the_spread():
    c = ClockOffset(history=5)
    assert not c.known and c.offset == 0.0 and c.jitter == 0.0
    for v in (0.010, 0.011, 0.5, 0.009, 0.010):  # one bad round trip
        c.add(v)
    assert c.offset == 0.010
    assert c.jitter > 0.1  # the outlier shows in the jitter
    c.add(float("nan"))  # ignored
    assert c.offset == 0.010


def test_dejitter_removes_chunk_jitter_and_follows_a_sender_rate_off_nominal():
    nominal, actual = 1000.0, 1000.4  # the device clock runs 400 ppm fast
    rng = np.random.default_rng(0)
    dj = Dejitter(nominal)
    errors = []
    for c in range(3000):  # 30 s of 10-sample chunks stamped on push, +-2 ms jitter
        k = c * 10 + np.arange(10)
        truth = 50.0 + k / actual
        raw = truth[-1] + rng.uniform(-2e-3, 2e-3) - (9 - np.arange(10)) / nominal
        out = dj.process(raw)
        errors.append(np.abs(out - truth).max())
    errors = np.array(errors)
    assert errors[:100].max() > 1e-3  # raw-ish at the start
    assert errors[1000:].max() < 0.6e-3  # after 10 s: well below the +-2 ms stamp jitter


def test_dejitter_is_exact_for_exact_stamps_and_skip_keeps_the_line():
    dj = Dejitter(500.0)
    ts = 10.0 + np.arange(1000) / 500.0
    out = np.concatenate([dj.process(ts[a : a + 50]) for a in range(0, 500, 50)])
    np.testing.assert_allclose(out, ts[:500], atol=1e-9)
    dj.skip(100)  # 100 samples lost: the fit continues after them
    assert abs(dj.expected_next() - ts[600]) < 1e-9
    np.testing.assert_allclose(dj.process(ts[600:650]), ts[600:650], atol=1e-9)


def test_make_increasing():
    out = make_increasing(np.array([1.0, 1.0, 0.5, 2.0]), previous=1.5, min_step=0.1)
    np.testing.assert_allclose(out, [1.6, 1.7, 1.8, 2.0])
    ok = np.array([3.0, 4.0])
    np.testing.assert_array_equal(make_increasing(ok, 2.0, 1e-7), ok)


def test_a_same_host_sender_shares_the_clock_unless_the_estimate_says_otherwise():
    """Round-trip asymmetry makes the loopback estimate ~2e-5 s (under overload tens of ms),
    not 0: for a sender on this machine the true offset 0 is applied; an estimate beyond the
    tolerance means another clock."""
    import socket

    from kneegui.acquisition.clock import SAME_HOST_TOLERANCE, is_this_host

    assert is_this_host(socket.gethostname()) and not is_this_host("") \
        and not is_this_host("some-other-host")
    local = ClockOffset(same_host=True)
    remote = ClockOffset(same_host=False)
    for c in (local, remote):
        for v in (1.9e-5, 2.1e-5, 2.0e-5):
            c.add(v)
    assert local.offset == 0.0 and local.measured == 2.0e-5  # kept for the status
    assert remote.offset == 2.0e-5
    for _ in range(3):
        local.add(-0.038)  # an overloaded machine's estimates: still the same clock
    assert local.offset == 0.0
    for _ in range(6):
        local.add(5.0)  # the median now says another clock: applied
    assert local.measured > SAME_HOST_TOLERANCE and local.offset == local.measured
