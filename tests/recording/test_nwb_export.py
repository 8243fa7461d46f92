"""NWB export: read back with pynwb, validated by pynwb and checked by nwbinspector."""

from __future__ import annotations

import json

import numpy as np
import pytest
from export_session import make_lab_session
from nwbinspector import Importance, inspect_nwbfile
from pynwb import NWBHDF5IO, validate

from kneegui.cli import main
from kneegui.recording import nwb_export as nx
from kneegui.recording import open_session


def _inspect(path, allow: tuple[str, ...] = ()) -> list:
    messages = list(inspect_nwbfile(nwbfile_path=str(path)))
    bad = [m for m in messages if m.importance in (Importance.CRITICAL, Importance.ERROR)
           and m.check_function_name not in allow]
    assert not bad, [(m.check_function_name, m.message) for m in bad]
    return messages


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    return make_lab_session(tmp_path_factory.mktemp("nwb"))


def test_nwb_file_reads_back_with_every_part(lab, tmp_path, capsys):
    out = tmp_path / "lab.nwb"
    assert main(["export", str(lab.path), "--format", "nwb", "--out", str(out), "--age", "34",
                 "--sex", "F", "--institution", "Test lab"]) == 0
    assert capsys.readouterr().out.strip() == str(out)
    assert not validate(path=str(out))  # pynwb schema validation: no errors
    messages = _inspect(out)
    assert not [m for m in messages if m.importance == Importance.BEST_PRACTICE_VIOLATION], \
        [(m.check_function_name, m.message) for m in messages]
    with open_session(lab.path) as s:
        start_lsl = s.start_lsl
        start = s.start_datetime
    with NWBHDF5IO(str(out), "r") as io:
        nwb = io.read()
        assert nwb.session_start_time == start
        assert nwb.subject.subject_id == "S07" and nwb.subject.sex == "F"
        assert nwb.subject.age == "P34Y" and nwb.subject.species == "Homo sapiens"
        assert list(nwb.experimenter) == ["Doe, Jane"] and nwb.institution == "Test lab"
        emg = nwb.acquisition["Delsys_EMG"]
        assert type(emg).__name__ == "ElectricalSeries"
        assert emg.unit == "volts" and emg.conversion == pytest.approx(1e-3)
        np.testing.assert_array_equal(emg.data[:], lab.emg)  # as recorded, float32 mV
        np.testing.assert_allclose(emg.timestamps[:], lab.emg_t - start_lsl, atol=1e-9)
        assert emg.timestamps_unit == "seconds"
        table = emg.electrodes.table
        assert [table["location"][i] for i in emg.electrodes.data[:]] == [
            "rectus femoris", "biceps femoris", "vastus medialis", "semitendinosus"]
        assert [table["channel_label"][i] for i in emg.electrodes.data[:]] == [
            "RF", "BF", "VM", "ST"]
        group = table["group"][0]
        assert "Delsys" in group.device.description and "1000 Hz" in group.device.description
        knee = nwb.acquisition["Knee_goniometer"]
        assert knee.unit == "degrees" and "flexion positive" in knee.description
        np.testing.assert_array_equal(knee.data[:], lab.angle[:, None])
        np.testing.assert_allclose(knee.timestamps[:], lab.angle_t - start_lsl, atol=1e-9)
        markers = nwb.events["Gait_markers"].to_dataframe()
        assert markers["annotation"].tolist() == ["heel strike", "toe off", "heel strike"]
        events = nwb.events["events"].to_dataframe()
        assert events["label"].tolist()[0] == "start walking"
        gap = events[events["origin"] == "recorder"].iloc[0]
        assert gap["duration"] == pytest.approx(0.201)
        invalid = nwb.invalid_times.to_dataframe()
        assert len(invalid) == 1 and invalid["stop_time"].iloc[0] - invalid["start_time"].iloc[
            0] == pytest.approx(0.201)
        filt = nwb.processing["ecephys"]["emg_filtered_Delsys_EMG"]
        assert "Butterworth band-pass 20-450 Hz" in filt.filtering
        assert "notches at 50, 100, 150 Hz" in filt.filtering
        assert filt.electrodes.data[:].tolist() == emg.electrodes.data[:].tolist()
        pred = nwb.processing["behavior"]["predicted_knee_angle"]
        assert pred.unit == "degrees" and pred.data.shape == (600, 50)
        assert json.loads(pred.comments)["horizons_ms"][:2] == [10.0, 20.0]
        use = nwb.processing["behavior"]["model_use"].to_dataframe()
        assert use["model_id"].tolist() == ["uci-base-v1", "S07-v1"]
        assert use["sha256"].tolist() == ["ab12", ""]
        cards = json.loads(nwb.scratch["model_cards"].data)
        assert cards["uci-base-v1"]["window"] == 30


def test_large_streams_are_copied_in_chunks(lab, tmp_path, monkeypatch):
    monkeypatch.setattr(nx, "_STREAM_BYTES", 1024)  # force the chunk iterator
    monkeypatch.setattr(nx, "REGULAR_TOLERANCE_S", 0.0)  # and explicit time stamps
    out = tmp_path / "chunked.nwb"
    with open_session(lab.path) as s:
        nx.export_nwb(s, out, nx.NwbOptions(age="P34Y"))
        start_lsl = s.start_lsl
    _inspect(out)
    with NWBHDF5IO(str(out), "r") as io:
        emg = io.read().acquisition["Delsys_EMG"]
        np.testing.assert_array_equal(emg.data[:], lab.emg)
        np.testing.assert_allclose(emg.timestamps[:], lab.emg_t - start_lsl, atol=1e-9)
        assert emg.data.compression == "gzip"


def test_an_imported_xdf_needs_a_start_date_and_then_exports(xdf_dir, tmp_path, capsys):
    from kneegui.recording.xdf_import import import_xdf

    session, _ = import_xdf(xdf_dir / "clock_resets.xdf", tmp_path / "cr.h5", "P1")
    out = tmp_path / "cr.nwb"
    assert main(["export", str(session), "--format", "nwb", "--out", str(out)]) == 2
    assert "--session-start" in capsys.readouterr().err and not out.exists()
    assert main(["export", str(session), "--format", "nwb", "--out", str(out),
                 "--session-start", "2019-05-06T10:00:00Z"]) == 0
    # without --age the export warns; the age is the only critical finding of the inspector
    assert "no subject age given (--age)" in capsys.readouterr().err
    messages = _inspect(out, allow=("check_subject_age",))
    assert [m.check_function_name for m in messages if m.importance == Importance.CRITICAL] \
        == ["check_subject_age"]
    with NWBHDF5IO(str(out), "r") as io:
        nwb = io.read()
        bio = nwb.acquisition["BioSemi"]
        assert bio.unit == "n/a" and bio.data.shape == (27815, 8)  # no unit in the XDF
        assert len(nwb.events["MyMarkerStream"]) == 175
        assert len(nwb.events["events"]) == 175  # the markers are session events too
    # never overwritten
    assert main(["export", str(session), "--format", "nwb", "--out", str(out),
                 "--session-start", "2019-05-06T10:00:00Z"]) == 2
    assert "never overwrites" in capsys.readouterr().err


def test_bad_nwb_arguments_are_one_line_errors(lab, tmp_path, capsys):
    out = tmp_path / "x.nwb"
    assert main(["export", str(lab.path), "--format", "nwb", "--out", str(out),
                 "--session-start", "yesterday"]) == 2
    assert "ISO 8601" in capsys.readouterr().err
    assert main(["export", str(lab.path), "--format", "nwb", "--out", str(out),
                 "--age", "-3"]) == 2
    assert "--age" in capsys.readouterr().err and not out.exists()


def test_streams_without_samples_keep_their_device_and_nothing_critical(xdf_dir, tmp_path):
    from kneegui.recording.xdf_import import import_xdf

    session, _ = import_xdf(xdf_dir / "empty_streams.xdf", tmp_path / "es.h5")
    out = tmp_path / "es.nwb"
    assert main(["export", str(session), "--format", "nwb", "--out", str(out), "--age",
                 "30"]) == 0
    _inspect(out)
    with NWBHDF5IO(str(out), "r") as io:
        nwb = io.read()
        assert "Empty_data_stream_test_stream_0_counter" not in nwb.acquisition
        device = nwb.devices["Empty_data_stream_test_stream_0_counter_device"]
        assert "delivered no samples" in device.description
        counter = nwb.acquisition["Data_stream_test_stream_0_counter"]
        assert counter.data[:, 0].tolist() == list(range(10))
        assert nwb.events["ctrl"]["annotation"][0] == '{"state": 2}'
        assert nwb.session_start_time.isoformat().startswith("2025-01-31T00:21:17")
