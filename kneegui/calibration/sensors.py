"""Sensor check: live per-channel EMG quality of the hub's EMG stream as traffic lights."""

from __future__ import annotations

from typing import Any

from kneegui.calibration.protocol import ChannelCheck


def checks_from_quality(qualities: list[Any], labels: list[str]) -> list[ChannelCheck]:
    """``kneegui.dsp`` channel qualities -> :class:`ChannelCheck` (status ok | warn | bad)."""
    out = []
    for i, q in enumerate(qualities):
        label = labels[i] if i < len(labels) else f"ch{i + 1}"
        out.append(ChannelCheck(label, str(q.status), str(getattr(q, "reason", "") or "")))
    return out


class HubSensorCheck:
    """Feeds the raw EMG of the hub's EMG stream into a ``dsp.QualityMonitor`` on each poll."""

    def __init__(self, hub: Any, window_s: float = 1.0) -> None:
        self.hub = hub
        self.window_s = window_s
        self._monitor: Any = None
        self._reader: Any = None
        self._channels: list[int] | None = None
        self._labels: list[str] = []
        self._last_t: float | None = None

    def _setup(self) -> bool:
        from kneegui.dsp import QualityMonitor

        found = _emg_reader(self.hub)
        if found is None:
            return False
        self._reader, self._channels = found
        info = self._reader.info
        picks = self._channels or list(range(info.channel_count))
        self._labels = [info.label(i) for i in picks]
        self._monitor = QualityMonitor(info.nominal_srate, len(picks), window_s=self.window_s)
        return True

    def poll(self) -> list[ChannelCheck]:
        """New raw samples into the monitor; returns the current verdict per channel."""
        if self._monitor is None and not self._setup():
            return []
        if self._last_t is None:
            data, ts = self._reader.latest(self.window_s)
        else:
            data, ts = self._reader.since(self._last_t)
        if len(ts):
            self._last_t = float(ts[-1])
            if self._channels:
                data = data[:, self._channels]
            self._monitor.update(data)
        return checks_from_quality(self._monitor.metrics(), self._labels)


def _emg_reader(hub: Any) -> tuple[Any, list[int] | None] | None:
    """(reader, channel picks) of the hub's EMG role, or None when no EMG stream is assigned."""
    from kneegui.acquisition import Role

    assignment = hub.assignment(Role.EMG)
    if assignment is None:
        return None
    return assignment.reader, assignment.channels
