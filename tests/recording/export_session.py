"""A realistic session for the export tests, built from the shipped UCI gait clip.

8 s of 4-channel EMG (mV, 1 kHz) and knee angle (deg, 100 Hz), each with a 0.2 s gap after 3 s,
a marker stream, operator and gap events, the live-filtered EMG with its filter settings, and
predictions from two models.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from kneegui.acquisition.simulator import default_clip
from kneegui.datasets.uci import read_uci_file
from kneegui.dsp import FilterChain, FilterSettings
from kneegui.recording import SessionWriter, StreamSpec
from kneegui.recording.filter_meta import filter_attrs

GAP_START_S, GAP_S = 3.0, 0.2


@dataclass
class LabSession:
    path: Path
    emg: np.ndarray  # [n, 4] mV as written
    emg_t: np.ndarray
    angle: np.ndarray  # [m] deg as written
    angle_t: np.ndarray
    start_lsl: float


def make_lab_session(folder: Path, subject: str = "S07") -> LabSession:
    rec = read_uci_file(default_clip())
    emg_all = rec.emg[:8000].astype(np.float32)
    angle_all = rec.angle[:8000:10].astype(np.float32)
    w = SessionWriter(folder, {"subject_id": subject, "operator": "Doe, Jane",
                               "notes": "treadmill 3 km/h"}).start()
    start = float(w._storage.file.attrs["session_start_lsl"])  # noqa: SLF001 - test helper
    t0 = start + 0.25
    keep_emg = np.r_[0:int(GAP_START_S * 1000), int((GAP_START_S + GAP_S) * 1000):8000]
    keep_ang = np.r_[0:int(GAP_START_S * 100), int((GAP_START_S + GAP_S) * 100):800]
    emg, emg_t = emg_all[keep_emg], t0 + keep_emg / 1000.0
    angle, angle_t = angle_all[keep_ang], t0 + keep_ang / 100.0
    e = w.add_stream(StreamSpec("Delsys EMG", "EMG", 4, 1000.0, "float32", "delsys-1",
                                "labpc", "uid-e", ("RF", "BF", "VM", "ST"), ("mV",) * 4,
                                xml=_xml("Delsys EMG", "EMG", ("RF", "BF", "VM", "ST"), "mV",
                                         1000.0, "Delsys")))
    a = w.add_stream(StreamSpec("Knee goniometer", "Angle", 1, 100.0, "float32", "gonio-1",
                                channel_labels=("knee_flexion",), channel_units=("deg",)))
    m = w.add_stream(StreamSpec("Gait markers", "Markers", 1, 0.0, "string", "mk-1"))
    for i in range(0, len(emg), 250):
        w.write_samples(e, emg[i:i + 250], emg_t[i:i + 250],
                        raw_timestamps=emg_t[i:i + 250] - 12.5)
    w.write_samples(a, angle[:, None], angle_t, raw_timestamps=angle_t - 3.0)
    w.write_samples(m, [["heel strike"], ["toe off"], ["heel strike"]],
                    [t0 + 1.0, t0 + 1.6, t0 + 2.1])
    w.add_event("start walking", t=t0 + 0.5)
    w.add_event("gap: 200 samples missing in Delsys EMG (201.0 ms)",
                t=emg_t[int(GAP_START_S * 1000) - 1], origin="recorder", duration=0.201)
    settings = FilterSettings()
    out = FilterChain(1000.0, 4, settings).process(emg)
    for kind, data in (("filtered", out.filtered), ("envelope", out.envelope)):
        w.add_derived(f"emg_{kind}/Delsys EMG", data.astype(np.float32), emg_t, rate=1000.0,
                      labels=("RF", "BF", "VM", "ST"), units=("mV",) * 4, source="Delsys_EMG",
                      attrs=filter_attrs(settings, 1000.0, kind))
    pred_t = t0 + np.arange(100, 700) / 100.0
    preds = np.repeat(np.interp(pred_t, angle_t, angle)[:, None], 50, axis=1)
    w.add_prediction(pred_t[:300], preds[:300], "uci-base-v1")
    w.add_prediction(pred_t[300:], preds[300:], "S07-v1")
    w.add_model("uci-base-v1", json.dumps({"name": "uci-base-v1", "window": 30}), "ab12")
    path = w.stop().path
    return LabSession(path, emg, emg_t, angle, angle_t, start)


def _xml(name, kind, labels, unit, rate, maker) -> str:
    chans = "".join(f"<channel><label>{x}</label><unit>{unit}</unit><type>{kind}</type>"
                    "</channel>" for x in labels)
    return (f"<info><name>{name}</name><type>{kind}</type><channel_count>{len(labels)}"
            f"</channel_count><nominal_srate>{rate}</nominal_srate><channel_format>float32"
            f"</channel_format><desc><manufacturer>{maker}</manufacturer><channels>{chans}"
            "</channels></desc></info>")
