"""Inlets replaced at sender restarts leave nothing behind in a sample-path process (#17 item 7:
the soak's recorder and predictor kept ~3 MB over their first restarts). Real liblsl inlets on
a real outlet, each in a fresh process: glibc's allocator state is per process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from kneegui.acquisition.allocator import glibc_here

# Environment only: the setting exists for glibc (Linux), where CI and the lab PCs we target
# run this test; elsewhere keep_inlet_queues_mapped() is a documented no-op with nothing to test.
pytestmark = pytest.mark.skipif(
    not glibc_here(),
    reason="the setting is glibc's (other platforms' allocators are left alone)")

REPO = Path(__file__).resolve().parents[2]

#: open and close an inlet on a 16 ch @ 2 kHz outlet 8 times (as 8 sender restarts would);
#: print the Rss of the heaps (the main [heap] and glibc's 64 MiB-aligned thread arenas) after each
_REPLACE_INLETS = r"""
import json, re, sys
import pylsl
from kneegui.cli import configure_process

configure_process(sys.argv[1:])

def heap_kb():
    total, heap = 0, False
    with open("/proc/self/smaps") as f:
        for line in f:
            m = re.match(r"^([0-9a-f]+)-[0-9a-f]+ \S+ \S+ \S+ \S+\s*(.*)$", line)
            if m:
                name = m[2].strip()
                heap = name == "[heap]" or (not name and int(m[1], 16) % (64 << 20) == 0)
            elif line.startswith("Rss:") and heap:
                total += int(line.split()[1])
    return total

sid = "alloc-" + __import__("os").environ["KNEEGUI_TEST_TAG"]
outlet = pylsl.StreamOutlet(pylsl.StreamInfo(sid, "EMG", 16, 2000.0, pylsl.cf_float32, sid))
info = pylsl.resolve_byprop("source_id", sid, timeout=10)[0]
heaps = []
for _ in range(8):
    inlet = pylsl.StreamInlet(info, max_buflen=60, recover=False)  # as StreamReader opens it
    inlet.open_stream(timeout=5)
    outlet.push_chunk([[0.0] * 16] * 20)
    inlet.pull_chunk(timeout=0.5)
    del inlet
    heaps.append(heap_kb())
from kneegui.acquisition.allocator import inlet_queues_kept_mapped
print(json.dumps({"heaps_kb": heaps, "kept_mapped": inlet_queues_kept_mapped()}))
"""


def _replace_inlets(*command: str) -> dict:
    env = {**os.environ, "KNEEGUI_TEST_TAG": uuid.uuid4().hex[:10]}
    out = subprocess.run([sys.executable, "-c", _REPLACE_INLETS, *command], cwd=REPO, env=env,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_inlets_replaced_at_sender_restarts_leave_no_heap_behind_in_record_and_predict():
    for command in ("record", "predict"):
        run = _replace_inlets(command, "--help")
        assert run["kept_mapped"], command
        growth = run["heaps_kb"][-1] - run["heaps_kb"][0]
        assert growth < 512, (command, run["heaps_kb"])
    # the same inlets in a process left at glibc's default keep a queue's worth (1.9 MB) or more:
    # what the setting is for (and proof that this test can fail)
    control = _replace_inlets("train", "--help")
    assert not control["kept_mapped"]
    assert control["heaps_kb"][-1] - control["heaps_kb"][0] > 1500, control["heaps_kb"]
