"""CSV export: units in the header, LSL + session + UTC time columns, values at their stored
precision, a JSON sidecar per file."""

from __future__ import annotations

import csv
import datetime as dt
import json

import numpy as np

from kneegui.cli import main
from kneegui.recording import SessionWriter, StreamSpec, open_session
from kneegui.recording.csv_export import export_csv


def _read(path):
    with path.open(newline="", encoding="utf-8") as fh:
        return list(csv.reader(fh))


def _session(tmp_path):
    w = SessionWriter(tmp_path / "s.h5", {"subject_id": "S2"}).start()
    emg = w.add_stream(StreamSpec("EMG", "EMG", 3, 1000.0, "float32", "e",
                                  channel_labels=("RF", "RF", ""), channel_units=("mV",) * 3))
    ang = w.add_stream(StreamSpec("knee", "Angle", 1, 100.0, "double64", "k",
                                  channel_labels=("knee_deg",), channel_units=("deg",)))
    mk = w.add_stream(StreamSpec("marks", "Markers", 1, 0.0, "string", "m"))
    return w, emg, ang, mk


def test_export_columns_units_times_precision_and_sidecars(tmp_path, capsys):
    w, emg, ang, mk = _session(tmp_path)
    data = np.array([[-0.0098, -2.5, 3.25e-5], [1e6, 0.1, -1.0]], dtype=np.float32)
    w.write_samples(emg, data, [10.0, 10.001])
    w.write_samples(ang, [[12.3456789012345]], [10.0])
    w.write_samples(mk, [["step, left"]], [10.5])
    w.add_event('say "hi"', t=10.2, duration=0.25)
    w.add_prediction(10.0, np.arange(50), "m1")
    w.add_derived("emg_envelope/EMG", np.ones((2, 3)), [10.0, 10.01], labels=("RF", "BF", "VM"),
                  units=("mV",) * 3)
    path = w.stop().path
    out = tmp_path / "csv"
    assert main(["export", str(path), "--format", "csv", "--out", str(out)]) == 0
    names = sorted(p.name for p in out.iterdir())
    stems = ["EMG", "derived_emg_envelope_EMG", "events", "knee", "marks", "predictions"]
    assert names == sorted([f"{s}.csv" for s in stems] + [f"{s}.json" for s in stems])
    with open_session(path) as s:
        start, start_utc = s.start_lsl, s.start_datetime
    rows = _read(out / "EMG.csv")
    assert rows[0] == ["time [s]", "lsl_time [s]", "utc_time", "RF [mV]", "RF_2 [mV]", "ch3 [mV]"]
    assert float(rows[2][1]) == 10.001
    assert float(rows[2][0]) == np.float64(f"{10.001 - start:.9f}")
    utc = dt.datetime.fromisoformat(rows[2][2].replace("Z", "+00:00"))
    assert abs((utc - start_utc).total_seconds() - (10.001 - start)) < 2e-6
    # float32 printed at its precision: shortest text that reads back to the same float32
    assert rows[1][3:] == ["-0.0098", "-2.5", "3.25e-05"] and rows[2][3:] == ["1e+06", "0.1",
                                                                                "-1.0"]
    np.testing.assert_array_equal(np.array(rows[1:])[:, 3:].astype(np.float32), data)
    knee = _read(out / "knee.csv")
    assert knee[0][3:] == ["knee_deg [deg]"] and knee[1][3] == "12.3456789012345"
    marks = _read(out / "marks.csv")
    assert marks[0][3:] == ["ch1"] and marks[1][1] == "10.500000000"
    assert marks[1][3] == "step, left"
    events = _read(out / "events.csv")
    assert events[0] == ["time [s]", "lsl_time [s]", "utc_time", "duration [s]", "label",
                         "origin"]
    assert events[1][1] == "10.200000000" and events[1][3:] == ["0.250000000", 'say "hi"',
                                                                "operator"]
    pred = _read(out / "predictions.csv")
    assert pred[0][3:5] == ["model_id", "h10ms [deg]"] and pred[0][-1] == "h500ms [deg]"
    assert pred[1][3] == "m1" and pred[1][-1] == "49.0"
    assert _read(out / "derived_emg_envelope_EMG.csv")[0][3:] == ["RF [mV]", "BF [mV]",
                                                                   "VM [mV]"]
    side = json.loads((out / "EMG.json").read_text())
    assert side["kind"] == "stream" and side["rows"] == 2
    assert side["stream"]["nominal_srate"] == 1000.0 and side["stream"]["source_id"] == "e"
    assert side["session"]["subject_id"] == "S2" and side["session"]["session_start_lsl"] == start
    assert [c["name"] for c in side["columns"]] == rows[0]
    assert side["columns"][3] == {"name": "RF [mV]", "label": "RF", "unit": "mV", "channel": 1}
    assert "<info>" in side["stream"]["info_xml"]
    # never overwrites: a second export into the same directory is refused
    capsys.readouterr()
    assert main(["export", str(path), "--out", str(out)]) == 2
    assert "nothing was overwritten" in capsys.readouterr().err


def test_export_of_imported_xdf_with_empty_streams(xdf_dir, tmp_path):
    from kneegui.recording.xdf_import import import_xdf

    path, _ = import_xdf(xdf_dir / "empty_streams.xdf", tmp_path / "e.h5")
    with open_session(path) as s:
        files = export_csv(s, tmp_path / "out")
    by_name = {p.name: _read(p) for p in files if p.suffix == ".csv"}
    assert by_name["Empty_data_stream_test_stream_0_counter.csv"] == [
        ["time [s]", "lsl_time [s]", "utc_time", "ch:00"]]
    counter = by_name["Data_stream_test_stream_0_counter.csv"]
    assert counter[1][3] == "0" and len(counter) == 11
    assert counter[1][2].startswith("2025-01-31T00:21:")  # the XDF's recording date


def test_export_without_a_start_date_has_no_utc_column(xdf_dir, tmp_path):
    from kneegui.recording.xdf_import import import_xdf

    path, _ = import_xdf(xdf_dir / "minimal.xdf", tmp_path / "m.h5")
    with open_session(path) as s:
        export_csv(s, tmp_path / "out")
    rows = _read(tmp_path / "out" / "SendDataC.csv")
    assert rows[0] == ["time [s]", "lsl_time [s]", "ch1", "ch2", "ch3"]
    assert rows[1] == ["0.000000000", "5.000000000", "192", "255", "238"]


def test_export_refuses_a_non_session(tmp_path, capsys):
    bad = tmp_path / "x.h5"
    bad.write_text("nope")
    assert main(["export", str(bad), "--out", str(tmp_path / "o")]) == 2
    assert "not an HDF5 file" in capsys.readouterr().err
