"""Run the test suite next to a busy lab: broken LSL outlets and a CPU hog (issue #17, item 8).

Beside pytest run: an outlet with 0 channels, two outlets sharing one source_id, one with NaN
stamps and one whose stamps jump 100 s back (all type EMG at 1 kHz, from the shared fault
sender), and a process spinning one core. Prints JSON: exit code, seconds, what ran beside.

    .venv/bin/python benchmarks/busy_lab.py [pytest arguments...]
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
FAULT_SENDER = REPO.parent / "shared" / "tools" / "lsl_fault_sender.py"


def _zero_channel_outlet(tag: str, env: dict) -> subprocess.Popen:
    code = ("import pylsl, time\n"
            f"o = pylsl.StreamOutlet(pylsl.StreamInfo('Z-{tag}', 'EMG', 0, 100.0, "
            f"pylsl.cf_float32, 'z-{tag}'))\n"
            "time.sleep(1e6)\n")
    return subprocess.Popen([sys.executable, "-c", code], env=env)


def main() -> int:
    env = {**os.environ, "LSLAPICFG": str(REPO / "tests" / "lsl_api.cfg")}
    tag = uuid.uuid4().hex[:6]
    faults = {"dup-a": ["--source-id", f"dup-{tag}", "--ch", "4"],
              "dup-b": ["--source-id", f"dup-{tag}", "--ch", "2"],
              "nan": ["--source-id", f"nan-{tag}", "--ts", "nan"],
              "back": ["--source-id", f"back-{tag}", "--ts", "jumpback", "--jump-at", "6",
                       "--jump", "100"]}
    beside = [_zero_channel_outlet(tag, env),
              subprocess.Popen([sys.executable, "-c", "while True: pass"])]
    for name, extra in faults.items():
        beside.append(subprocess.Popen(
            [sys.executable, str(FAULT_SENDER), "--name", f"{name}-{tag}", "--type", "EMG",
             "--rate", "1000", "--duration", "1e6", *extra],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env))
    time.sleep(3.0)
    t0 = time.monotonic()
    try:
        rc = subprocess.call([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                              *sys.argv[1:]], cwd=REPO,
                             env={**env, "QT_QPA_PLATFORM": "offscreen"})
    finally:
        for proc in beside:
            proc.kill()
            proc.wait()
    print(json.dumps({"benchmark": "busy_lab", "pytest_exit_code": rc,
                      "seconds": round(time.monotonic() - t0, 1),
                      "beside": ["0-channel EMG outlet", "2 outlets sharing a source_id",
                                 "NaN stamps", "stamps jumping 100 s back", "1 core spinning"],
                      "pytest_args": sys.argv[1:]}))
    return rc


if __name__ == "__main__":
    sys.exit(main())
