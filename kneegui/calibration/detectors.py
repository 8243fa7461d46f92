"""The streaming gait-cycle detector used by the walking capture (``kneegui.dsp`` underneath)."""

from __future__ import annotations

import numpy as np


class DspCycleDetector:
    """Wraps ``kneegui.dsp.GaitCycleCounter``: ``update(angle, t)`` -> ``[(t_start, t_end)]``."""

    def __init__(self, model_rate: float) -> None:
        from kneegui.dsp.gait import GaitCycleCounter

        self.counter = GaitCycleCounter(model_rate)

    def update(self, angle: np.ndarray, t: np.ndarray) -> list[tuple[float, float]]:
        return [(c.t_start, c.t_end) for c in self.counter.update(angle, t)]


def dsp_cycle_detector(model_rate: float) -> DspCycleDetector:
    """Factory for :class:`kneegui.calibration.capture.WalkingCapture`."""
    return DspCycleDetector(model_rate)
