"""Gait-cycle segmentation on the real UCI gait recordings, offline and streaming."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.signal import find_peaks

from kneegui.datasets.uci import load_uci_dataset
from kneegui.dsp.gait import GaitCycleCounter, GaitParams, GaitSegmenter


@pytest.fixture(scope="module")
def gait_recordings(uci_dir):
    return load_uci_dataset(uci_dir, exercises=["mar"])


@pytest.fixture(scope="module")
def cycle_table(gait_recordings):
    """Per-file cycle counts found by the offline segmenter (printed by the test below)."""
    table = {}
    for rec in gait_recordings:
        cycles = GaitSegmenter(rec.fs).segment(rec.angle)
        table[rec.name] = (rec.duration_s, cycles)
    return table


def test_cycle_counts_are_plausible_for_recording_length(cycle_table, gait_recordings, capsys):
    lines = [f"{'file':8s} {'dur_s':>6s} {'cycles':>6s} {'median_s':>8s} {'covered':>7s}"]
    for rec in gait_recordings:
        duration, cycles = cycle_table[rec.name]
        periods = np.array([c.duration for c in cycles])
        covered = periods.sum() / duration
        lines.append(
            f"{rec.name:8s} {duration:6.1f} {len(cycles):6d} {np.median(periods):8.2f} "
            f"{covered:7.2f}"
        )
        # gait cycles last ~0.8-2.0 s: the count must fit the recording length
        assert duration / 3.0 - 2 <= len(cycles) <= duration / 0.8, rec.name
        assert 0.8 <= np.median(periods) <= 2.0, rec.name
        assert covered >= 0.5, rec.name  # most of every walking recording is segmented
        # independent check: no more cycles than gaps between clear swing peaks
        padded = np.pad(rec.angle, 1)  # so that a swing cut by the recording end counts
        peaks, _ = find_peaks(padded, prominence=15, distance=int(0.4 * rec.fs))
        assert 0.5 * (len(peaks) - 1) <= len(cycles) <= len(peaks) - 1, rec.name
        for c in cycles:
            assert c.start < c.peak < c.end
            assert rec.angle[c.peak] == pytest.approx(c.peak_deg) and c.peak_deg >= 30.0
    with capsys.disabled():
        print("\nUCI gait cycles found per file:\n" + "\n".join(lines))
    short = [n for n, (d, _) in cycle_table.items() if n.endswith("Nmar")]
    assert all(3 <= len(cycle_table[n][1]) <= 7 for n in short)  # N gait files hold 5-9 s


def test_streaming_counter_matches_offline_in_random_chunks(cycle_table, gait_recordings):
    rng = np.random.default_rng(42)
    for rec in gait_recordings:
        counter = GaitCycleCounter(rec.fs)
        t = 100.0 + np.arange(rec.n_samples) / rec.fs
        found, i = [], 0
        while i < rec.n_samples:
            n = int(rng.integers(1, 400))
            found += counter.update(rec.angle[i : i + n], t[i : i + n])
            i += n
        offline = cycle_table[rec.name][1]
        assert counter.count == len(offline) == len(found), rec.name
        assert [(c.start, c.end, c.peak) for c in found] == [
            (c.start, c.end, c.peak) for c in offline
        ]
        assert found[0].t_start == pytest.approx(100.0 + offline[0].start / rec.fs)


def test_segmenter_works_at_the_model_rate(cycle_table, gait_recordings):
    rec = max(gait_recordings, key=lambda r: r.duration_s)
    at_100hz = rec.angle[::10]
    cycles = GaitSegmenter(100.0).segment(at_100hz)
    full = cycle_table[rec.name][1]
    assert abs(len(cycles) - len(full)) <= 1
    assert np.median([c.duration for c in cycles]) == pytest.approx(
        np.median([c.duration for c in full]), abs=0.05
    )


def test_no_cycles_when_standing_still_or_swaying():
    rng = np.random.default_rng(0)
    fs = 100.0
    t = np.arange(int(60 * fs)) / fs
    still = 2.0 + rng.normal(0, 0.5, t.size)
    sway = 8.0 + 7.0 * np.sin(2 * np.pi * 0.8 * t) + rng.normal(0, 1.0, t.size)
    flat = np.zeros(t.size)
    for signal in (still, sway, flat):
        assert GaitSegmenter(fs).segment(signal) == []
        counter = GaitCycleCounter(fs)
        for chunk in np.array_split(signal, 37):
            assert counter.update(chunk) == []
        assert counter.count == 0


def test_synthetic_walk_counts_every_cycle_and_drops_pauses():
    fs = 200.0
    period = 1.2
    t = np.arange(int(12 * period * fs)) / fs
    walk = 30.0 - 30.0 * np.cos(2 * np.pi * t / period)  # 0..60 deg, 10 full cycles
    cycles = GaitSegmenter(fs).segment(walk)
    assert len(cycles) == 11
    assert all(c.duration == pytest.approx(period, abs=1.5 / fs) for c in cycles)
    paused = np.concatenate([walk, np.zeros(int(5 * fs)), walk])  # 5 s standing in between
    assert len(GaitSegmenter(fs).segment(paused)) == 22  # the gap is not a cycle


def test_bad_parameters_are_explained():
    with pytest.raises(ValueError, match="fall_deg"):
        GaitParams(rise_deg=20.0, fall_deg=25.0)
    with pytest.raises(ValueError, match="one timestamp per sample"):
        GaitCycleCounter(100.0).update(np.zeros(10), np.zeros(9))


def test_nan_dropouts_are_neutral():
    fs = 100.0
    t = np.arange(int(10 * 1.2 * fs)) / fs
    walk = 30.0 - 30.0 * np.cos(2 * np.pi * t / 1.2)
    gappy = walk.copy()
    gappy[300:310] = np.nan  # inside a swing peak region
    gappy[700:705] = np.nan
    clean = GaitSegmenter(fs).segment(walk)
    with_gaps = GaitSegmenter(fs).segment(gappy)
    assert [(c.start, c.end) for c in with_gaps] == [(c.start, c.end) for c in clean]
    assert all(np.isfinite(c.peak_deg) for c in with_gaps)
