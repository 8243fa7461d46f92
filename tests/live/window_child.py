"""A stand-in for a window process that crashes while recording (tests/live/test_remote.py):
connects a RemoteSession to the given streams, loads the shipped model, starts recording,
prints the predictor's pid and the session path, then dies without closing anything."""

from __future__ import annotations

import os
import sys
import time

from kneegui.acquisition import resolve_source_id
from kneegui.live.remote import RemoteSession
from kneegui.live.streams import StreamChoice
from kneegui.model import shipped_model_path

if __name__ == "__main__":
    emg_id, angle_id, out_dir, outlet = sys.argv[1:5]
    session = RemoteSession(outlet_name=outlet)
    emg = resolve_source_id(emg_id, timeout=10)[0]
    angle = resolve_source_id(angle_id, timeout=10)[0]
    session.connect([StreamChoice(emg, "EMG"), StreamChoice(angle, "KNEE_ANGLE")])
    session.load_model(shipped_model_path("emg+angle"))
    path = session.start_recording(out_dir, "S-crash", "crash test")
    deadline = time.monotonic() + 20
    while session.worker.predictions < 50 and time.monotonic() < deadline:
        time.sleep(0.05)
    print(session.pid, path, flush=True)
    time.sleep(0.5)
    os._exit(3)  # a crash: no close, no atexit
