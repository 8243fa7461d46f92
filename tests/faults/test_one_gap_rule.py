"""The one gap rule: the window's recorder (a Hub source) and `kneegui record` (a list of
readers) log the same events, the reader's. Before the fix the pump applied its own 1.5-period
rule for a Hub source, so the two recordings of one stream disagreed."""

from __future__ import annotations

import time

import numpy as np
import pylsl

from kneegui.acquisition import Hub, Role, StreamReader, resolve_source_id
from kneegui.recording import SessionWriter, open_session


def _push(outlet, k0: int, n: int, t0: float, rate: float) -> None:
    """Push samples k0..k0+n-1 in real time with exact stamps t0 + k / rate."""
    for a in range(k0, k0 + n, 10):
        stamps = t0 + np.arange(a, a + 10) / rate
        while pylsl.local_clock() < stamps[-1]:
            time.sleep(0.001)
        block = np.zeros((10, 4), np.float32)
        block[:, 0] = np.arange(a, a + 10)
        outlet.push_chunk(block, stamps.tolist())


def test_window_and_cli_recordings_log_the_same_gap_events(tmp_path, uid):
    rate = 1000.0
    sid = f"gaprule-{uid}"
    outlet = pylsl.StreamOutlet(pylsl.StreamInfo(f"gaprule-{uid}", "EMG", 4, rate,
                                                 pylsl.cf_float32, sid))
    info = resolve_source_id(sid, timeout=10.0)[0]
    hub_reader = StreamReader(info, role=Role.EMG)
    cli_reader = StreamReader(info)
    hub = Hub(model_rate=100.0)
    hub.assign(Role.EMG, hub_reader)
    window = SessionWriter(tmp_path / "window.h5", sources=hub).start()  # as the GUI does
    cli = SessionWriter(tmp_path / "cli.h5", sources=[cli_reader]).start()  # as `record` does
    try:
        hub.start()
        cli_reader.start()
        assert hub_reader.wait_until_open(5.0) and cli_reader.wait_until_open(5.0)
        t0 = pylsl.local_clock() + 0.05
        _push(outlet, 0, 1000, t0, rate)
        _push(outlet, 1120, 800, t0, rate)  # 120 samples never sent
        time.sleep(0.5)
        gui_events = hub_reader.events()  # the GUI still gets every event of its reader
    finally:
        window.stop()
        cli.stop()
        hub.stop()
        cli_reader.stop()
        del outlet
    assert [e.kind for e in gui_events].count("gap") == 1
    logged = {}
    for name in ("window", "cli"):
        with open_session(tmp_path / f"{name}.h5") as s:
            logged[name] = [(lab, origin) for _, lab, origin in s.events.as_list()]
    assert logged["window"] == logged["cli"], logged  # the same events, the reader's
    gaps = [(lab, origin) for lab, origin in logged["cli"] if lab.startswith("gap")]
    assert len(gaps) == 1 and gaps[0][1] == "acquisition"
    assert "120 samples missing" in gaps[0][0]
