"""Splits of one gait recording at the model rate: calibration (the first K gait cycles), purge
gap (one input window) and test windows; and the development split inside the calibration."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from kneegui.model.features import window_ends
from kneegui.research.training import Series

MIN_TEST_CYCLES = 2
#: Development split: fewest scored windows inside the last calibration cycle.
MIN_DEV_WINDOWS = 10


@dataclass
class Split:
    """Index ranges of one test recording at the model rate."""

    k_used: int
    calib_end: int  # exclusive; calibration data = [0, calib_end)
    test_ends: np.ndarray
    cycles: list[tuple[int, int]]
    n_test_cycles: int


def gait_cycles(angle: np.ndarray, model_rate: float) -> list[tuple[int, int]]:
    """Gait cycles (start, end) from the shared ``kneegui.dsp`` segmenter."""
    from kneegui.dsp import GaitSegmenter

    return [(int(c.start), int(c.end)) for c in GaitSegmenter(model_rate).segment(angle)]


def plan_split(
    cycles: list[tuple[int, int]], n: int, window: int, horizons: int, k: int
) -> Split | None:
    """Largest K' <= k leaving >= MIN_TEST_CYCLES whole cycles after calibration + purge gap."""
    for k_used in range(min(k, len(cycles)), 0, -1):
        calib_end = cycles[k_used - 1][1]
        first_test = calib_end + window - 1  # test input windows start after calibration
        n_test = sum(1 for s, e in cycles if s >= first_test and e <= n)
        if n_test >= MIN_TEST_CYCLES:
            ends = window_ends(n, window, horizons, lo=first_test)
            if len(ends):
                return Split(k_used, calib_end, ends, cycles[:k_used], n_test)
    return None


def dev_split(split: Split, window: int, horizons: int) -> Split | None:
    """The development split inside ``split``'s calibration: calibration = its first K - 1
    cycles; scored = the windows whose newest sample lies in cycle K and whose future ends
    inside the calibration (so nothing reaches the purge gap or the test windows). Their inputs
    overlap the development calibration (there is no room for a purge gap inside one cycle).
    None when K = 1 or fewer than :data:`MIN_DEV_WINDOWS` windows fit."""
    if split.k_used < 2:
        return None
    cycles = split.cycles[:-1]
    calib_end = cycles[-1][1]
    ends = window_ends(split.calib_end, window, horizons, lo=calib_end)
    if len(ends) < MIN_DEV_WINDOWS:
        return None
    return Split(split.k_used - 1, calib_end, ends, cycles, 1)


def recording_split(s: Series, window: int, horizons: int, cycles: int,
                    dev: bool = False) -> Split | None:
    """The evaluation split of one gait recording (:func:`plan_split`), or with ``dev`` its
    development split (:func:`dev_split`); None when the recording cannot be split."""
    split = plan_split(gait_cycles(s.angle, 100.0), len(s), window, horizons, cycles)
    if split is None or not dev:
        return split
    return dev_split(split, window, horizons)
