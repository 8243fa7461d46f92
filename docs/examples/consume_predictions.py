"""Follow KneeGUI's predictions with pylsl: python consume_predictions.py [SOURCE_ID] [N]."""
import sys

import pylsl

source_id = sys.argv[1] if len(sys.argv) > 1 else None  # `kneegui predict` prints it
query = ("source_id", source_id) if source_id else ("type", "KneeAnglePrediction")
inlet = pylsl.StreamInlet(pylsl.resolve_byprop(*query, timeout=10)[0], recover=True)
channels = inlet.info().desc().child("channels")
print("channels:", channels.first_child().child_value("label"), "...")  # h10ms ... h500ms
for _ in range(int(sys.argv[2]) if len(sys.argv) > 2 else 100):
    sample, t = inlet.pull_sample(timeout=5.0)  # t: the time the prediction refers to
    if sample is not None:  # sample[k] = knee angle (deg) at t + (k + 1) * 10 ms
        age_ms = 1000 * (pylsl.local_clock() - t) - sample[-1]  # since the newest input
        print(f"t={t:.3f}  +500 ms: {sample[49]:5.1f} deg  age {age_ms:.1f} ms", flush=True)
