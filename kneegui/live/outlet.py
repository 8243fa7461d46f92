"""Publishes predicted trajectories as an LSL stream (type ``KneeAnglePrediction``).

One channel per horizon, labelled with its lead time (``h10ms`` … ``h500ms`` at 100 Hz),
unit degrees; each sample is stamped with the time the prediction refers to ("now" of its
input window), so a consumer knows that channel ``k`` applies at ``t + (k+1)/rate``.
Qt-free; it lives here only because no core publisher exists yet.
"""

from __future__ import annotations

import uuid

import numpy as np

STREAM_TYPE = "KneeAnglePrediction"


def horizon_labels(n_horizons: int, model_rate: float) -> list[str]:
    """``["h10ms", "h20ms", …]`` for ``n_horizons`` steps at ``model_rate`` Hz."""
    return [f"h{round(1000 * (k + 1) / model_rate)}ms" for k in range(n_horizons)]


class PredictionOutlet:
    """An LSL outlet for predicted knee trajectories."""

    def __init__(
        self,
        n_horizons: int = 50,
        model_rate: float = 100.0,
        name: str = "KneeGUI knee-angle prediction",
        source_id: str | None = None,
        model_id: str = "",
    ) -> None:
        import pylsl

        self.n_horizons = n_horizons
        self.source_id = source_id or f"kneegui-prediction-{uuid.uuid4().hex[:8]}"
        info = pylsl.StreamInfo(
            name, STREAM_TYPE, n_horizons, model_rate, pylsl.cf_float32, self.source_id
        )
        desc = info.desc()
        desc.append_child_value("model_id", model_id)
        desc.append_child_value("manufacturer", "KneeGUI")
        channels = desc.append_child("channels")
        for label in horizon_labels(n_horizons, model_rate):
            ch = channels.append_child("channel")
            ch.append_child_value("label", label)
            ch.append_child_value("unit", "degrees")
            ch.append_child_value("type", "KneeAngle")
        self.name = name
        self._outlet = pylsl.StreamOutlet(info, chunk_size=1, max_buffered=10)
        self.pushed = 0

    def push(self, trajectory: np.ndarray, timestamp: float) -> None:
        """Send one predicted trajectory ``[n_horizons]`` stamped ``timestamp``."""
        values = np.asarray(trajectory, dtype=np.float32).reshape(-1)
        if values.size != self.n_horizons:
            raise ValueError(f"trajectory has {values.size} values, outlet has {self.n_horizons}")
        self._outlet.push_sample(values.tolist(), timestamp)
        self.pushed += 1

    def close(self) -> None:
        self._outlet = None
