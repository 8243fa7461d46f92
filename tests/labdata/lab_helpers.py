"""A lab's own data, generated from real UCI gait files: an 8-channel EMG amplifier at 2 kHz in
microvolts with its own channel labels, and a 100 Hz goniometer stream (knee and hip) that may
run on another machine's clock. The first four EMG channels are the UCI muscles in another
order; the other four are made from them (mixtures plus noise, seeded), like the neighbouring
muscles a lab records."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from kneegui.research.uci_sessions import OutletSpec

#: The model inputs of the generated layout, in input order.
LAB_INPUTS = ("RF", "BF", "VM", "ST", "VL", "TA", "GM", "SOL")
#: Amplifier channel -> muscle (the UCI muscles on channels 3, 1, 4, 2).
LAB_EMG_MAP = {"EMG 1": "BF", "EMG 2": "ST", "EMG 3": "RF", "EMG 4": "VM", "EMG 5": "VL",
               "EMG 6": "TA", "EMG 7": "GM", "EMG 8": "SOL"}
LAB_CHANNEL_MAP = {**LAB_EMG_MAP, "knee_R": "angle"}
EMG_RATE = 2000.0
GONIO_RATE = 100.0


def lab_emg(rec, seed: int = 0) -> np.ndarray:
    """[n, 8] EMG at 2 kHz in microvolts (channels EMG 1..EMG 8 of :data:`LAB_EMG_MAP`)."""
    rng = np.random.default_rng(seed)
    rf, bf, vm, st = (np.asarray(rec.emg[:, i], np.float64) for i in range(4))
    noise = 0.004 * rng.standard_normal((len(rf), 4))
    lag = int(0.15 * rec.fs)
    extra = np.column_stack([0.6 * vm + 0.3 * rf, 0.5 * np.roll(st, lag), 0.7 * bf,
                             0.3 * (st + bf)]) + noise
    emg = np.column_stack([bf, st, rf, vm, extra])  # EMG 1..8
    t_in = np.arange(len(rf)) / rec.fs
    t_out = np.arange(int(len(rf) * EMG_RATE / rec.fs)) / EMG_RATE
    up = np.column_stack([np.interp(t_out, t_in, emg[:, c]) for c in range(emg.shape[1])])
    return (1000.0 * up).astype(np.float32)


def gonio(rec) -> np.ndarray:
    """[m, 2] knee and hip angle (degrees) at 100 Hz."""
    step = int(rec.fs / GONIO_RATE)
    knee = np.asarray(rec.angle, np.float64)[::step]
    hip = 10.0 + 0.4 * np.roll(knee, 15)
    return np.column_stack([knee, hip]).astype(np.float32)


def lab_outlets(rec, tag: str, clock_ahead: float = 0.0) -> list[OutletSpec]:
    """The amplifier and goniometer streams of a UCI recording in the lab layout; the
    goniometer stamps ``clock_ahead`` s ahead (its own clock) when asked."""
    return [
        OutletSpec(f"Trigno-{tag}", "EMG", list(LAB_EMG_MAP), "uV", EMG_RATE, lab_emg(rec),
                   f"trigno-{tag}"),
        OutletSpec(f"Gonio-{tag}", "Kinematics", ["knee_R", "hip_R"], "degrees", GONIO_RATE,
                   gonio(rec), f"gonio-{tag}", stamp_offset=clock_ahead),
    ]


def write_lab_manifest(folder: Path, files: dict[str, tuple[str, str]],
                       name: str = "lab") -> Path:
    """``lab.toml``: the lab channel map, the inputs in order, ``files`` -> (subject, group)."""
    lines = [f'name = "{name}"', 'inputs = [' + ", ".join(f'"{m}"' for m in LAB_INPUTS) + "]",
             "", "[channels]"]
    lines += [f'"{label}" = "{target}"' for label, target in LAB_CHANNEL_MAP.items()]
    lines.append("")
    for file, (subject, group) in files.items():
        lines += ["[[recording]]", f'file = "{file}"', f'subject = "{subject}"',
                  f'group = "{group}"', 'activity = "walk"', ""]
    path = folder / f"{name}.toml"
    path.write_text("\n".join(lines))
    return path
