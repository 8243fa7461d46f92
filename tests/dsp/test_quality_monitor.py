"""Signal-quality metrics on real UCI EMG and on synthetic flat / clipped / hum signals."""

from __future__ import annotations

import numpy as np
import pytest

from kneegui.datasets.uci import load_uci_dataset
from kneegui.dsp.quality import QualityMonitor

FS = 1000.0


def _feed(monitor: QualityMonitor, x: np.ndarray, chunk: int = 20) -> None:
    for i in range(0, len(x), chunk):
        monitor.update(x[i : i + chunk])


def _emg_like(n: int, ch: int = 1, seed: int = 0) -> np.ndarray:
    """Band-limited noise bursts with a realistic quantisation step (0.00075 mV)."""
    rng = np.random.default_rng(seed)
    t = np.arange(n) / FS
    burst = 0.05 + 0.2 * (np.sin(2 * np.pi * 0.8 * t) > 0.3)
    x = rng.normal(0.0, 1.0, (n, ch)) * burst[:, None]
    return np.round(x / 0.00075) * 0.00075


def test_real_uci_emg_is_judged_ok(uci_dir):
    statuses = []
    for rec in load_uci_dataset(uci_dir, exercises=None):
        mon = QualityMonitor(rec.fs, 4, window_s=1.0, mains=50.0)
        for start in range(0, min(rec.n_samples, 10_000), 2000):
            _feed(mon, rec.emg[start : start + 2000].astype(float), chunk=25)
            for q in mon.metrics():
                assert q.status != "bad", (rec.name, q)
                assert q.rms > 0 and not q.flat
                statuses.append(q.status)
    assert statuses.count("ok") / len(statuses) > 0.95


def test_flat_and_constant_channels_are_bad():
    x = _emg_like(3000, ch=3)
    x[:, 1] = 0.0  # disconnected
    x[:, 2] = 0.3  # stuck at an offset
    mon = QualityMonitor(FS, 3)
    _feed(mon, x)
    ok, zero, stuck = mon.metrics()
    assert ok.status == "ok" and not ok.flat
    for q in (zero, stuck):
        assert q.flat and q.status == "bad" and "flat line" in q.reason
        assert q.rms == pytest.approx(0.0, abs=1e-12)


def test_clipping_is_detected_at_the_rail_and_at_a_given_level():
    x = _emg_like(3000) * 8.0
    rail = 0.4
    clipped = np.clip(x, -rail, rail)
    mon = QualityMonitor(FS, 1)
    _feed(mon, clipped)
    q = mon.metrics()[0]
    assert q.clip_fraction > 0.02 and q.status == "bad" and "clipping" in q.reason
    clean = QualityMonitor(FS, 1)
    _feed(clean, x)
    assert clean.metrics()[0].clip_fraction < 0.005
    level = QualityMonitor(FS, 1, clip_level=rail)
    _feed(level, clipped)
    assert level.metrics()[0].clip_fraction == pytest.approx(q.clip_fraction)


@pytest.mark.parametrize("mains", [50.0, 60.0])
def test_mains_hum_is_reported(mains):
    t = np.arange(3000) / FS
    emg = _emg_like(3000)[:, 0]
    hum = emg + 0.5 * np.sin(2 * np.pi * mains * t)
    mon = QualityMonitor(FS, 2, mains=mains)
    _feed(mon, np.column_stack([emg, hum]))
    clean, dirty = mon.metrics()
    assert clean.mains_ratio < 0.2 and clean.status == "ok"
    assert dirty.mains_ratio > 0.6 and dirty.status == "bad" and "mains hum" in dirty.reason
    other = QualityMonitor(FS, 1, mains=110.0 - mains)  # wrong mains setting sees no hum
    _feed(other, hum[:, None])
    assert other.metrics()[0].mains_ratio < 0.2


def test_window_slides_and_warns_until_filled():
    mon = QualityMonitor(FS, 2, window_s=0.5)
    q = mon.metrics()[0]
    assert q.status == "warn" and "collecting data" in q.reason
    x = np.arange(2 * 1234, dtype=float).reshape(-1, 2)
    rng = np.random.default_rng(1)
    i = 0
    while i < len(x):
        n = int(rng.integers(1, 200))
        mon.update(x[i : i + n])
        i += n
    np.testing.assert_array_equal(mon.window_data(), x[-500:])
    with pytest.raises(ValueError, match=r"shape \[n, 2\]"):
        mon.update(np.zeros((5, 3)))


def test_nan_samples_make_the_channel_bad_without_breaking_the_others():
    x = _emg_like(2000, ch=2)
    x[500:520, 1] = np.nan
    mon = QualityMonitor(FS, 2)
    _feed(mon, x[:1000])
    good, broken = mon.metrics()
    assert good.status == "ok" and np.isfinite(good.rms)
    assert broken.status == "bad" and "NaN" in broken.reason and np.isfinite(broken.rms)
    _feed(mon, x[1000:])  # the NaNs have left the window
    assert mon.metrics()[1].status == "ok"
