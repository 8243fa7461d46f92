"""Causal EMG filters: chunking invariance, frequency response, rate conversion, real EMG."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.signal import butter, sosfiltfilt, sosfreqz

from kneegui.datasets.uci import load_uci_dataset
from kneegui.dsp import (
    BandPass,
    Decimator,
    EmgFeatureExtractor,
    Envelope,
    FilterChain,
    FilterSettings,
    MainsNotch,
    emg_features_offline,
)

TOL = 1e-10


def _chunks(n: int, rng: np.random.Generator):
    """Random chunk boundaries, including empty and single-sample chunks."""
    i = 0
    while i < n:
        size = int(rng.choice([0, 1, 2, 7, 20, 33, 128, 1000]))
        yield slice(i, min(n, i + size))
        i += size


def _chunked(proc, x, rng):
    return np.concatenate([proc(x[s]) for s in _chunks(len(x), rng)])


@pytest.fixture(scope="module")
def noise():
    return np.random.default_rng(7).normal(0.0, 0.2, (6000, 3))


@pytest.mark.parametrize(
    "make",
    [
        lambda: BandPass(2000.0, 3),
        lambda: MainsNotch(2000.0, 3, mains=60.0, harmonics=5),
        lambda: Envelope(2000.0, 3),
        lambda: Decimator(2000.0, 100.0, 3),
        lambda: Decimator(2148.0, 100.0, 3),
        lambda: Decimator(1000.0, 1000.0, 3),
    ],
    ids=["bandpass", "notch60", "envelope", "decim20", "decim2148", "decim1"],
)
def test_filters_chunked_equal_one_go(make, noise):
    rng = np.random.default_rng(3)
    one_go = make().process(noise)
    f = make()
    chunked = _chunked(f.process, noise, rng)
    assert chunked.shape == one_go.shape
    np.testing.assert_allclose(chunked, one_go, rtol=0, atol=TOL)
    f.reset()
    np.testing.assert_allclose(f.process(noise), one_go, rtol=0, atol=TOL)


@pytest.mark.parametrize(("fs", "rate"), [(2000.0, 100.0), (2148.0, 100.0), (1000.0, 100.0)])
def test_feature_extractor_chunked_equal_offline(fs, rate, noise):
    rng = np.random.default_rng(11)
    offline = emg_features_offline(noise, fs, rate)
    assert offline.shape == (int(np.ceil((len(noise) - 1) * rate / fs + 1e-9)), 3)
    ex = EmgFeatureExtractor(fs, 3, rate)
    chunked = _chunked(ex.process, noise, rng)
    np.testing.assert_allclose(chunked, offline, rtol=0, atol=TOL)


def test_filter_chain_chunked_equal_one_go(noise):
    rng = np.random.default_rng(5)
    settings = FilterSettings(mains=60.0, envelope_cutoff=4.0)
    whole = FilterChain(2000.0, 3, settings).process(noise)
    chain = FilterChain(2000.0, 3, settings)
    parts = [chain.process(noise[s]) for s in _chunks(len(noise), rng)]
    np.testing.assert_allclose(
        np.concatenate([p.filtered for p in parts]), whole.filtered, atol=TOL
    )
    np.testing.assert_allclose(
        np.concatenate([p.envelope for p in parts]), whole.envelope, atol=TOL
    )


def test_output_timestamps_follow_input_clock(noise):
    fs, rate, t0 = 2148.0, 100.0, 1234.5
    t = t0 + np.arange(len(noise)) / fs
    ex = EmgFeatureExtractor(fs, 3, rate)
    rng = np.random.default_rng(2)
    outs = [ex.process_with_times(noise[s], t[s]) for s in _chunks(len(noise), rng)]
    y = np.concatenate([o[0] for o in outs])
    ty = np.concatenate([o[1] for o in outs])
    np.testing.assert_allclose(ty, t0 + np.arange(len(y)) / rate, rtol=0, atol=1e-9)
    np.testing.assert_allclose(y, emg_features_offline(noise, fs, rate), atol=TOL)
    dec = Decimator(fs, rate, 3)
    dec.process(noise[:100])
    np.testing.assert_allclose(dec.last_output_positions, np.arange(5) * fs / rate)


def _gain_db(sos, freqs, fs):
    _, h = sosfreqz(sos, worN=np.asarray(freqs, dtype=float), fs=fs)
    return 20 * np.log10(np.maximum(np.abs(h), 1e-300))


def test_bandpass_response():
    bp = BandPass(2000.0, 1)
    pass_db = _gain_db(bp.sos, [60, 100, 200, 300], 2000.0)
    assert np.all(np.abs(pass_db) < 0.5), pass_db
    stop_db = _gain_db(bp.sos, [2, 900], 2000.0)
    assert np.all(stop_db < -30), stop_db


def test_notch_removes_mains_and_harmonics_keeps_the_rest():
    fs = 2000.0
    notch = MainsNotch(fs, 1, mains=50.0, harmonics=3)
    assert notch.frequencies == (50.0, 100.0, 150.0)
    assert np.all(_gain_db(notch.sos, [50, 100, 150], fs) < -30)
    assert np.all(np.abs(_gain_db(notch.sos, [20, 75, 125, 300], fs)) < 1.0)
    # a real 50 Hz hum through the streaming filter, after the transient
    t = np.arange(int(3 * fs)) / fs
    hum = np.sin(2 * np.pi * 50.0 * t)[:, None]
    out = notch.process(hum)[int(2 * fs) :]
    assert 20 * np.log10(np.std(out) / np.std(hum)) < -30


def test_cutoffs_are_clamped_below_nyquist():
    bp = BandPass(500.0, 2, low=20.0, high=450.0)
    assert bp.high == pytest.approx(0.9 * 250.0)
    assert MainsNotch(250.0, 1, mains=50.0, harmonics=5).frequencies == (50.0, 100.0)
    assert Envelope(10.0, 1, cutoff=6.0).cutoff == pytest.approx(4.5)
    with pytest.raises(ValueError, match="must be below the high cut-off"):
        BandPass(200.0, 1, low=100.0, high=450.0)


def test_decimator_rejects_aliases_and_keeps_slow_signals():
    fs, rate = 2148.0, 100.0
    t = np.arange(int(4 * fs)) / fs
    fast = np.sin(2 * np.pi * 310.0 * t)[:, None]  # would alias to 10 Hz without the filter
    slow = np.sin(2 * np.pi * 5.0 * t)[:, None]
    y_fast = Decimator(fs, rate, 1).process(fast)[100:]
    y_slow = Decimator(fs, rate, 1).process(slow)[100:]
    assert np.std(y_fast) < 1e-3
    assert np.std(y_slow) == pytest.approx(np.std(slow), rel=0.02)


def test_bad_chunk_shapes_are_explained():
    with pytest.raises(ValueError, match=r"shape \[n, 4\]"):
        EmgFeatureExtractor(1000.0, 4).process(np.zeros((10, 3)))
    with pytest.raises(ValueError, match="one timestamp per sample"):
        EmgFeatureExtractor(1000.0, 2).process_with_times(np.zeros((10, 2)), np.zeros(9))
    with pytest.raises(ValueError, match="higher rate"):
        Decimator(100.0, 1000.0, 1)
    with pytest.raises(ValueError, match="low < high"):
        FilterSettings(low=500.0, high=450.0)


def test_real_gait_envelope_matches_zero_phase_reference(uci_dir):
    """Causal features of a real gait recording track a zero-phase offline envelope."""
    rec = load_uci_dataset(uci_dir, exercises=["mar"], groups=["A"])[0]
    feats = emg_features_offline(rec.emg, rec.fs, 100.0)
    chunked = _chunked(
        EmgFeatureExtractor(rec.fs, 4, 100.0).process,
        rec.emg.astype(float),
        np.random.default_rng(0),
    )
    np.testing.assert_allclose(chunked, feats, rtol=0, atol=TOL)
    band = butter(4, [20, 450], "bandpass", fs=rec.fs, output="sos")
    low = butter(2, 6.0, fs=rec.fs, output="sos")
    ref = sosfiltfilt(low, np.abs(sosfiltfilt(band, rec.emg.astype(float), axis=0)), axis=0)
    ref = ref[:: int(rec.fs / 100)][: len(feats)]
    skip = 50  # start-up transient of the causal filters
    for ch in range(4):
        # the causal envelope lags the zero-phase one by its group delay (~75 ms at defaults)
        rs = [
            np.corrcoef(feats[skip + lag :, ch], ref[skip : len(ref) - lag, ch])[0, 1]
            for lag in range(20)
        ]
        best = int(np.argmax(rs))
        assert rs[best] > 0.9, (rec.name, ch, rs[best])
        assert 3 <= best <= 12, (rec.name, ch, best)  # 30..120 ms at 100 Hz
    assert np.all(feats[skip:] > -1e-3)  # an envelope is (almost) non-negative


def test_fast_kernel_equals_public_scipy_sosfilt(noise):
    """SosState calls scipy's compiled sosfilt kernel directly; it must match the public API."""
    from kneegui.dsp.sos import SosState

    sos = np.vstack([BandPass(2000.0, 3).sos, MainsNotch(2000.0, 3).sos])
    fast, public = SosState(sos, 3), SosState(sos, 3, use_kernel=False)
    rng = np.random.default_rng(9)
    for s in _chunks(len(noise), rng):
        np.testing.assert_allclose(fast.process(noise[s]), public.process(noise[s]), atol=TOL)
    from scipy.signal import sosfilt

    np.testing.assert_allclose(
        SosState(sos, 3).process(noise), sosfilt(sos, noise, axis=0), atol=TOL
    )


def test_nan_input_is_zeroed_and_counted_instead_of_poisoning_the_state(noise):
    x = noise.copy()
    x[100:110, 0] = np.nan
    x[200, 1] = np.inf
    ex = EmgFeatureExtractor(2000.0, 3)
    y = ex.process(x)
    assert np.isfinite(y).all() and ex.nonfinite_samples == 11
    clean = x.copy()
    clean[~np.isfinite(clean)] = 0.0
    np.testing.assert_allclose(y, emg_features_offline(clean, 2000.0), atol=TOL)
    chain = FilterChain(2000.0, 3)
    assert np.isfinite(chain.process(x).envelope).all() and chain.nonfinite_samples == 11
