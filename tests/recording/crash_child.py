"""Child process for the SIGKILL test: records a counter stream at 2 kHz until killed.

Usage: python crash_child.py OUT.h5. Sample k of channel c has value k * 16 + c, so the parent can
check that the recovered data are exactly the samples sent, in order.
"""

from __future__ import annotations

import sys
import time

import numpy as np
import pylsl

from kneegui.recording import SessionWriter, StreamSpec

RATE = 2000.0
CHANNELS = 16


def main(out: str) -> None:
    writer = SessionWriter(out, {"subject_id": "crash"}).start()
    emg = writer.add_stream(StreamSpec("emg", "EMG", CHANNELS, RATE, "float32", "crash-emg"))
    t0 = pylsl.local_clock()
    sent = 0
    print("ready", flush=True)
    while True:
        due = int((pylsl.local_clock() - t0) * RATE)
        if due > sent:
            k = np.arange(sent, due)
            data = (k[:, None] * CHANNELS + np.arange(CHANNELS)).astype(np.float32)
            writer.write_samples(emg, data, t0 + k / RATE, block=True)
            if sent // 2000 != due // 2000:
                writer.add_event(f"second {due // 2000}", origin="test")
            sent = due
        time.sleep(0.005)


if __name__ == "__main__":
    main(sys.argv[1])
