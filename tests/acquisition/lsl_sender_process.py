"""A stand-alone LSL sender for the kill/restart test: counts samples in real time.

Usage: python lsl_sender_process.py SOURCE_ID NAME RATE CHANNELS FIRST_INDEX
Channel 0 holds the sample index; timestamps are exact (t0 + k / rate).
"""

import sys
import time

import numpy as np
import pylsl

source_id, name, rate, n_ch, first = sys.argv[1], sys.argv[2], float(sys.argv[3]), int(
    sys.argv[4]
), int(sys.argv[5])
outlet = pylsl.StreamOutlet(pylsl.StreamInfo(name, "EMG", n_ch, rate, "float32", source_id))
chunk = max(1, int(rate * 0.01))
t0 = pylsl.local_clock()
k = 0
print("ready", flush=True)
while True:
    stamps = t0 + (k + np.arange(chunk)) / rate
    while pylsl.local_clock() < stamps[-1]:
        time.sleep(0.001)
    data = np.zeros((chunk, n_ch), dtype=np.float32)
    data[:, 0] = first + k + np.arange(chunk)
    outlet.push_chunk(data, stamps.tolist())
    k += chunk
