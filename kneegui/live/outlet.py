"""Publishes predicted trajectories as an LSL stream a controller can follow.

* Stream type ``KneeAnglePrediction``, one float32 channel per horizon labelled with its lead
  time (``h10ms`` … ``h500ms`` at 100 Hz, unit degrees), then ``newest_input_ms``: how long
  after the sample's stamp the newest input sample it used was stamped (>= 0).
* Each sample is stamped with the time the prediction refers to: the grid time ``t`` of the
  newest row of its input window (local LSL clock); channel ``hN`` is the knee angle predicted
  for ``t + N ms``.
* The ``source_id`` is stable (``kneegui-prediction@<host>/<outlet name>``): the same across
  model switches and restarts, so LSL consumers (a controller, LabRecorder) follow it. A model
  switch keeps the stream and is announced on a marker stream (type ``Markers``, source_id
  ``…/events``) as one JSON string, and recorded by the session; the stream's ``desc`` names the
  model it started with.
"""

from __future__ import annotations

import json
import re
import socket
from typing import Any

import numpy as np

STREAM_TYPE = "KneeAnglePrediction"
DEFAULT_NAME = "KneeGUI knee-angle prediction"
TIMING_LABEL = "newest_input_ms"


def horizon_labels(n_horizons: int, model_rate: float) -> list[str]:
    """``["h10ms", "h20ms", …]`` for ``n_horizons`` steps at ``model_rate`` Hz."""
    return [f"h{round(1000 * (k + 1) / model_rate)}ms" for k in range(n_horizons)]


def stable_source_id(name: str = DEFAULT_NAME, host: str | None = None) -> str:
    """The prediction outlet's source_id for this host and outlet name."""
    host = host or socket.gethostname()
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "-", name).strip("-").lower() or "prediction"
    return f"kneegui-prediction@{host}/{slug}"


def model_description(model: Any) -> dict[str, Any]:
    """What the outlet and its model-switch markers say about a ``LoadedModel``."""
    from kneegui.model.io import weights_digest

    card = model.card
    return {"model_id": model.model_id, "name": card.name, "input_set": card.input_set,
            "weights_sha256": weights_digest(model.net), "subject": card.subject or "",
            "calibrated": card.subject is not None, "rows_needed": card.rows_needed}


class PredictionOutlet:
    """An LSL outlet for predicted knee trajectories (+ its model-switch marker stream)."""

    def __init__(
        self,
        n_horizons: int = 50,
        model_rate: float = 100.0,
        name: str = DEFAULT_NAME,
        source_id: str | None = None,
        model: dict[str, Any] | None = None,
    ) -> None:
        import pylsl

        self.n_horizons = int(n_horizons)
        self.model_rate = float(model_rate)
        self.name = name
        self.source_id = source_id or stable_source_id(name)
        self.model = dict(model or {})
        info = pylsl.StreamInfo(name, STREAM_TYPE, self.n_horizons + 1, model_rate,
                                pylsl.cf_float32, self.source_id)
        desc = info.desc()
        desc.append_child_value("manufacturer", "KneeGUI")
        from kneegui import __version__

        desc.append_child_value("kneegui_version", __version__)
        labels = horizon_labels(self.n_horizons, model_rate)
        ms = [1000.0 * (k + 1) / model_rate for k in range(self.n_horizons)]
        desc.append_child_value("horizons_ms", " ".join(f"{v:g}" for v in ms))
        desc.append_child_value("unit", "degrees (knee flexion positive, 0 = extended)")
        desc.append_child_value(
            "time_reference",
            "each sample is stamped with the grid time t (local LSL clock) of the newest row of "
            "its input window; channel hN is the knee angle predicted for t + N ms; "
            f"{TIMING_LABEL} = stamp of the newest input sample used minus t, in ms")
        pred = desc.append_child("prediction")
        for key in ("model_id", "name", "input_set", "weights_sha256", "subject"):
            pred.append_child_value(key, str(self.model.get(key, "")))
        desc.append_child_value("model_switches",
                                f"announced on the marker stream {self.events_source_id}")
        channels = desc.append_child("channels")
        for label in labels:
            ch = channels.append_child("channel")
            ch.append_child_value("label", label)
            ch.append_child_value("unit", "degrees")
            ch.append_child_value("type", "KneeAngle")
        ch = channels.append_child("channel")
        ch.append_child_value("label", TIMING_LABEL)
        ch.append_child_value("unit", "ms")
        ch.append_child_value("type", "Timing")
        self._outlet = pylsl.StreamOutlet(info, chunk_size=1, max_buffered=10)
        events = pylsl.StreamInfo(f"{name} events", "Markers", 1, pylsl.IRREGULAR_RATE,
                                  pylsl.cf_string, self.events_source_id)
        self._events = pylsl.StreamOutlet(events)
        self._row = np.zeros(self.n_horizons + 1, np.float32)
        self.pushed = 0

    @property
    def events_source_id(self) -> str:
        return f"{self.source_id}/events"

    def push(self, trajectory: np.ndarray, timestamp: float, ready: float | None = None) -> None:
        """Send one predicted trajectory ``[n_horizons]`` stamped ``timestamp``; ``ready`` is
        the stamp of the newest input sample it used."""
        values = np.asarray(trajectory, dtype=np.float32).reshape(-1)
        if values.size != self.n_horizons:
            raise ValueError(f"trajectory has {values.size} values, outlet has {self.n_horizons}")
        row = self._row
        row[: self.n_horizons] = values
        row[-1] = 0.0 if ready is None else 1000.0 * (ready - timestamp)
        self._outlet.push_sample(row, timestamp)
        self.pushed += 1

    def announce_model(self, model: dict[str, Any], timestamp: float | None = None) -> str:
        """Say on the marker stream that predictions come from ``model`` from now on; returns
        the JSON marker (the session records it too)."""
        self.model = dict(model)
        marker = json.dumps({"event": "model", **self.model}, sort_keys=True)
        if timestamp is None:
            self._events.push_sample([marker])
        else:
            self._events.push_sample([marker], timestamp)
        return marker

    def close(self) -> None:
        self._outlet = None
        self._events = None
