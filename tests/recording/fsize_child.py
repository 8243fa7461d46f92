"""Child process for the real I/O-failure test: records under a file-size limit (RLIMIT_FSIZE).

Usage: python fsize_child.py OUT.h5 LIMIT_BYTES. Writes a 16-channel counter stream (sample k,
channel c = k * 16 + c) until the writer fails, then prints the writer status as JSON.
"""

from __future__ import annotations

import json
import resource
import signal
import sys
import time

import numpy as np

from kneegui.recording import SessionWriter, StreamSpec


def main(out: str, limit: int) -> None:
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # get EFBIG instead of being killed
    writer = SessionWriter(out, {"subject_id": "fsize"}, flush_interval=0.1).start()
    emg = writer.add_stream(StreamSpec("emg", "EMG", 16, 2000.0, "float32", "fsize-emg"))
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    sent = 0
    deadline = time.monotonic() + 30
    while writer.recording and time.monotonic() < deadline:
        k = np.arange(sent, sent + 2000)
        data = (k[:, None] * 16 + np.arange(16)).astype(np.float32)
        if writer.write_samples(emg, data, k / 2000.0, block=True, timeout=1.0):
            sent += 2000
        time.sleep(0.02)
    status = writer.stop()
    print(json.dumps({"state": status.state.value, "error": status.error, "sent": sent,
                      "written": status.samples_written[emg],
                      "dropped": status.dropped_samples}))


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))
