"""Synthetic lab streams shared by the benchmarks (gui_load, live_latency): an EMG outlet with
channel labels and units, a knee-angle outlet, and gait-like signals for given stamps."""

from __future__ import annotations

import numpy as np


def outlets(tag: str, emg_channels: int, emg_rate: float, angle_rate: float,
            prefix: str = "bench", emg_chunk: int = 1):
    """(EMG outlet, angle outlet) named ``<prefix>-EMG-<tag>`` / ``<prefix>-knee-<tag>`` with
    source_ids ``<prefix>-emg-<tag>`` / ``<prefix>-angle-<tag>``."""
    import pylsl

    emg = pylsl.StreamInfo(f"{prefix}-EMG-{tag}", "EMG", emg_channels, emg_rate,
                           pylsl.cf_float32, f"{prefix}-emg-{tag}")
    chans = emg.desc().append_child("channels")
    for label in ["RF", "BF", "VM", "ST"] + [f"E{i}" for i in range(5, emg_channels + 1)]:
        ch = chans.append_child("channel")
        ch.append_child_value("label", label)
        ch.append_child_value("unit", "mV")
    ang = pylsl.StreamInfo(f"{prefix}-knee-{tag}", "Angle", 1, angle_rate, pylsl.cf_float32,
                           f"{prefix}-angle-{tag}")
    ch = ang.desc().append_child("channels").append_child("channel")
    ch.append_child_value("label", "knee_flexion")
    ch.append_child_value("unit", "degrees")
    return pylsl.StreamOutlet(emg, chunk_size=emg_chunk), pylsl.StreamOutlet(ang, chunk_size=1)


def emg_samples(ts: np.ndarray, channels: int, rng: np.random.Generator) -> np.ndarray:
    """EMG-like noise [n, channels] (float32, mV) with bursts locked to a ~0.9 Hz gait."""
    act = np.clip(np.sin(2 * np.pi * 0.9 * ts[:, None]
                         + np.linspace(0, np.pi, channels)[None, :]), 0, None)
    return (rng.standard_normal((ts.size, channels)) * (0.02 + 0.2 * act)).astype(np.float32)


def angle_samples(ts: np.ndarray) -> np.ndarray:
    """A gait-like knee angle [n, 1] (float32, degrees)."""
    ph = 2 * np.pi * 0.9 * ts
    return (30 + 25 * np.sin(ph) + 8 * np.sin(2 * ph + 0.5)).astype(np.float32)[:, None]
