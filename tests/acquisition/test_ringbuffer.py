"""RingBuffer: wrap-around, time-based snapshots and the lossless cursor."""

import threading

import numpy as np
import pytest

from kneegui.acquisition.ringbuffer import RingBuffer


def _chunk(start: int, n: int, channels: int = 3) -> tuple[np.ndarray, np.ndarray]:
    idx = np.arange(start, start + n)
    data = np.stack([idx * 10 + c for c in range(channels)], axis=1).astype(np.float32)
    return data, idx * 0.001


def test_wraparound_keeps_newest_samples_in_order():
    rb = RingBuffer(10, 3)
    written = 0
    for n in (4, 3, 5, 7, 1):  # crosses the end of the storage several times
        data, ts = _chunk(written, n)
        rb.write(data, ts)
        written += n
    assert rb.total_written == written == 20
    assert len(rb) == 10
    data, ts = rb.latest(10)
    np.testing.assert_array_equal(ts, np.arange(10, 20) * 0.001)
    np.testing.assert_array_equal(data[:, 2], np.arange(10, 20) * 10 + 2)
    data, ts = rb.latest(3)
    np.testing.assert_array_equal(data[:, 0], [170, 180, 190])


def test_chunk_larger_than_capacity_keeps_its_tail():
    rb = RingBuffer(8, 3)
    data, ts = _chunk(0, 21)
    rb.write(data, ts)
    assert rb.total_written == 21
    got, got_ts = rb.latest(100)
    np.testing.assert_array_equal(got_ts, ts[-8:])
    np.testing.assert_array_equal(got, data[-8:])


def test_time_based_reads_across_wrap():
    rb = RingBuffer(16, 3)
    for start in range(0, 40, 6):
        rb.write(*_chunk(start, 6))
    # held: indices 26..41 (ts 0.026..0.041)
    _, ts = rb.since(0.0305)
    np.testing.assert_allclose(ts, np.arange(31, 42) * 0.001)
    _, ts = rb.since(0.031)  # strictly after
    np.testing.assert_allclose(ts[0], 0.032)
    _, ts = rb.latest_seconds(0.005)
    np.testing.assert_allclose(ts, np.arange(36, 42) * 0.001)
    _, ts = rb.since(1.0)
    assert ts.size == 0
    assert rb.last_timestamp() == pytest.approx(0.041)


def test_cursor_reads_every_sample_and_reports_losses():
    rb = RingBuffer(10, 3)
    cursor = 0
    seen = []
    for start in range(0, 30, 5):
        rb.write(*_chunk(start, 5))
        r = rb.read_from(cursor)
        assert r.lost == 0
        seen.extend(r.timestamps.tolist())
        cursor = r.next_index
    np.testing.assert_allclose(seen, np.arange(30) * 0.001)
    # a slow consumer falls behind by more than the capacity
    for start in range(30, 55, 5):
        rb.write(*_chunk(start, 5))
    r = rb.read_from(cursor, max_samples=4)
    assert r.lost == 15  # samples 30..44 were overwritten
    np.testing.assert_allclose(r.timestamps, np.arange(45, 49) * 0.001)
    assert r.next_index == 49
    r = rb.read_from(r.next_index)
    np.testing.assert_allclose(r.timestamps, np.arange(49, 55) * 0.001)
    assert r.next_index == rb.total_written
    with pytest.raises(ValueError, match="ahead"):
        rb.read_from(rb.total_written + 1)


def test_reads_are_copies():
    rb = RingBuffer(4, 3)
    rb.write(*_chunk(0, 4))
    data, _ = rb.latest(4)
    data[:] = -1
    again, _ = rb.latest(4)
    assert again.min() >= 0


def test_bad_chunks_are_refused_with_clear_messages():
    rb = RingBuffer(4, 3)
    with pytest.raises(ValueError, match=r"expects \[n, 3\]"):
        rb.write(np.zeros((2, 2)), np.zeros(2))
    with pytest.raises(ValueError, match="timestamps"):
        rb.write(np.zeros((2, 3)), np.zeros(3))


def test_concurrent_writer_and_cursor_reader_see_a_consistent_stream():
    rb = RingBuffer(4096, 2, np.int64)
    total = 200_000

    def writer():
        for start in range(0, total, 100):
            idx = np.arange(start, start + 100)
            rb.write(np.stack([idx, -idx], axis=1), idx.astype(float))

    th = threading.Thread(target=writer)
    th.start()
    cursor, expected, lost = 0, 0, 0
    while cursor < total:
        r = rb.read_from(cursor)
        lost += r.lost
        expected += r.lost
        if r.data.shape[0]:
            assert r.data[0, 0] == expected
            np.testing.assert_array_equal(np.diff(r.data[:, 0]), 1)
            np.testing.assert_array_equal(r.data[:, 1], -r.data[:, 0])
            np.testing.assert_array_equal(r.timestamps, r.data[:, 0])
            expected = int(r.data[-1, 0]) + 1
        cursor = r.next_index
    th.join()
    assert expected == total


def test_object_dtype_holds_marker_strings():
    rb = RingBuffer(3, 1, object)
    rb.write(np.array([["start"], ["stop"]], dtype=object), np.array([1.0, 2.0]))
    data, ts = rb.since(1.5)
    assert data.tolist() == [["stop"]]


def test_raw_stamp_column_travels_with_the_cursor_and_wraps():
    rb = RingBuffer(8, 1, np.float32, raw_stamps=True)
    rb.write(np.arange(5.0)[:, None], np.arange(5.0), np.arange(5.0) + 100)
    rb.write(np.arange(5.0, 7.0)[:, None], np.arange(5.0, 7.0))  # no raw given: NaN
    rb.write(np.arange(7.0, 12.0)[:, None], np.arange(7.0, 12.0), np.arange(7.0, 12.0) + 100)
    r = rb.read_from(0)
    assert r.lost == 4 and r.data[:, 0].tolist() == list(range(4, 12))
    np.testing.assert_array_equal(r.raw_timestamps, [104, np.nan, np.nan, 107, 108, 109, 110,
                                                     111])
    assert RingBuffer(4, 1).read_from(0).raw_timestamps is None  # plain buffers: no column


def test_clock_log_cursor_keeps_every_measurement_once():
    from kneegui.acquisition.clock import ClockLog, ClockMeasurement

    log = ClockLog(maxlen=3)
    for k in range(5):
        log.append(ClockMeasurement(float(k), 0.01 * k, 1e-4, 0.0))
    rows, nxt = log.read_from(0)  # the two oldest were dropped
    assert [r.time for r in rows] == [2.0, 3.0, 4.0] and nxt == 5 and log.total == 5
    log.append(ClockMeasurement(5.0, 0.05, 1e-4, 0.0))
    rows, nxt = log.read_from(nxt)
    assert [r.time for r in rows] == [5.0] and nxt == 6


@pytest.mark.parametrize("shared", [False, True], ids=["private", "arena"])
def test_a_new_buffer_is_resident_at_once_and_its_first_pass_adds_no_memory(tmp_path, shared):
    """Fresh zero pages used to be faulted in during the buffer's first pass: on the sample path,
    and the process's memory crept up for as long as the pass lasted (the hub's 600-s aligned
    buffer: 10 minutes; issue #17's RSS growth)."""
    psutil = pytest.importorskip("psutil")  # the research extra, installed by `make test`
    from kneegui.acquisition.shared import Arena

    proc = psutil.Process()
    arena = Arena(tmp_path / "arena") if shared else None
    channels, capacity = 16, 400_000  # 25.6 MB of samples + 3.2 MB of stamps
    size_mb = capacity * (channels * 4 + 8) / 1e6
    before = proc.memory_info().rss / 1e6
    rb = RingBuffer(capacity, channels, np.float32, arena=arena)
    allocated = proc.memory_info().rss / 1e6
    block = np.ones((10_000, channels), np.float32)
    for k in range(capacity // 10_000):
        rb.write(block, k * 10.0 + np.arange(10_000) * 1e-3)
    filled = proc.memory_info().rss / 1e6
    assert allocated - before > 0.9 * size_mb, (before, allocated, size_mb)
    assert filled - allocated < 0.1 * size_mb, (allocated, filled, size_mb)
    if arena is not None:
        arena.close()
