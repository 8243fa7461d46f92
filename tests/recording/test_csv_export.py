"""CSV export: one file per stream with a time column and labelled channels, plus events."""

from __future__ import annotations

import csv

import numpy as np

from kneegui.cli import main
from kneegui.recording import SessionWriter, StreamSpec, open_session
from kneegui.recording.csv_export import export_csv


def _read(path):
    with path.open(newline="", encoding="utf-8") as fh:
        return list(csv.reader(fh))


def test_export_columns_and_values(tmp_path, capsys):
    w = SessionWriter(tmp_path / "s.h5", {"subject_id": "S2"}).start()
    emg = w.add_stream(StreamSpec("EMG", "EMG", 3, 1000.0, "float32", "e",
                                  channel_labels=("RF", "RF", "")))
    ang = w.add_stream(StreamSpec("knee", "Angle", 1, 100.0, "double64", "k",
                                  channel_labels=("knee_deg",)))
    mk = w.add_stream(StreamSpec("marks", "Markers", 1, 0.0, "string", "m"))
    data = np.array([[0.1, -2.5, 3.25e-5], [1e6, 0.0, -1.0]], dtype=np.float32)
    w.write_samples(emg, data, [10.0, 10.001])
    w.write_samples(ang, [[12.3456789012345]], [10.0])
    w.write_samples(mk, [["step, left"]], [10.5])
    w.add_event('say "hi"', t=10.2)
    w.add_prediction(10.0, np.arange(50), "m1")
    w.add_derived("emg_envelope/EMG", np.ones((2, 3)), [10.0, 10.01], labels=("RF", "BF", "VM"))
    path = w.stop().path
    out = tmp_path / "csv"
    assert main(["export", str(path), "--format", "csv", "--out", str(out)]) == 0
    names = sorted(p.name for p in out.iterdir())
    assert names == ["EMG.csv", "derived_emg_envelope_EMG.csv", "events.csv", "knee.csv",
                     "marks.csv", "predictions.csv"]
    rows = _read(out / "EMG.csv")
    assert rows[0] == ["time_s", "RF", "RF_2", "ch3"]
    assert float(rows[2][0]) == 10.001
    np.testing.assert_array_equal(np.array(rows[1:], dtype=np.float64)[:, 1:].astype(np.float32),
                                  data)
    knee = _read(out / "knee.csv")
    assert knee[0] == ["time_s", "knee_deg"] and float(knee[1][1]) == 12.3456789012345
    assert _read(out / "marks.csv")[1] == ["10.500000000", "step, left"]
    assert _read(out / "events.csv") == [["time_s", "label", "origin"],
                                         ["10.200000000", 'say "hi"', "operator"]]
    pred = _read(out / "predictions.csv")
    assert pred[0][:3] == ["time_s", "model_id", "h10ms"] and pred[0][-1] == "h500ms"
    assert pred[1][1] == "m1" and float(pred[1][-1]) == 49
    assert _read(out / "derived_emg_envelope_EMG.csv")[0] == ["time_s", "RF", "BF", "VM"]
    # never overwrites: a second export into the same directory is refused
    capsys.readouterr()
    assert main(["export", str(path), "--out", str(out)]) == 2
    assert "nothing was overwritten" in capsys.readouterr().err


def test_export_of_imported_xdf_with_empty_streams(xdf_dir, tmp_path):
    from kneegui.recording.xdf_import import import_xdf

    path, _ = import_xdf(xdf_dir / "empty_streams.xdf", tmp_path / "e.h5")
    with open_session(path) as s:
        files = export_csv(s, tmp_path / "out")
    by_name = {p.name: _read(p) for p in files}
    assert by_name["Empty_data_stream_test_stream_0_counter.csv"] == [["time_s", "ch:00"]]
    assert by_name["Data_stream_test_stream_0_counter.csv"][1][1] == "0"
    assert len(by_name["Data_stream_test_stream_0_counter.csv"]) == 11


def test_export_refuses_a_non_session(tmp_path, capsys):
    bad = tmp_path / "x.h5"
    bad.write_text("nope")
    assert main(["export", str(bad), "--out", str(tmp_path / "o")]) == 2
    assert "not an HDF5 file" in capsys.readouterr().err
