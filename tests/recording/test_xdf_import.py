"""XDF import of the three reference files (minimal, clock resets, empty streams)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from kneegui.cli import main
from kneegui.recording import OutputExistsError, open_session
from kneegui.recording.xdf_import import XdfImportError, import_xdf


def test_minimal_values_clock_offsets_and_headers(xdf_dir, tmp_path):
    path, summary = import_xdf(xdf_dir / "minimal.xdf", tmp_path / "minimal.h5", "S1")
    assert [(s.name, s.samples, s.channels) for s in summary] == [
        ("SendDataC", 9, 3), ("SendDataString", 9, 1)]
    with open_session(path) as s:
        assert s.complete and s.subject_id == "S1" and s.attrs["imported_from"] == "minimal.xdf"
        eeg = s.streams["SendDataC"]
        assert eeg.data.dtype == np.int16
        # values from the upstream README table
        assert eeg.data[0].tolist() == [192, 255, 238] and eeg.data[-1].tolist() == [15, 25, 35]
        np.testing.assert_allclose(eeg.group["timestamps_original"][:], np.arange(5.1, 5.95, 0.1))
        # clock offsets (time, value) kept; synchronized times include the -0.1 s offset
        np.testing.assert_allclose(eeg.clock_offsets, [[6.1, -0.1], [7.1, -0.1]])
        np.testing.assert_allclose(eeg.timestamps, np.arange(5.0, 5.85, 0.1), atol=1e-9)
        assert eeg.type == "EEG" and eeg.nominal_srate == 10 and eeg.channel_format == "int16"
        assert "<uid>xdfwriter_11_int</uid>" in eeg.info_xml
        markers = s.streams["SendDataString"]
        assert markers.data[1:5, 0].tolist() == ["Hello", "World", "from", "LSL"]
        assert markers.clock_offsets.shape == (0, 2)
        np.testing.assert_allclose(markers.timestamps, np.arange(5.1, 5.95, 0.1))


def test_clock_resets_become_one_monotonic_time_base(xdf_dir, tmp_path):
    path, _ = import_xdf(xdf_dir / "clock_resets.xdf", tmp_path)
    with open_session(path) as s:
        bio = s.streams["BioSemi"]
        assert bio.data.shape == (27815, 8) and bio.data.dtype == np.float32
        raw = bio.group["timestamps_original"][:]
        assert np.any(np.diff(raw) < -1000)  # the file's stamps jump back (clock reset)
        assert np.all(np.diff(bio.timestamps) > 0)  # synchronized: no reset left
        np.testing.assert_allclose(np.median(np.diff(bio.timestamps)), 0.01, rtol=0.1)
        assert len(bio.clock_offsets) == 115
        assert bio.clock_offsets[0, 1] == pytest.approx(-652340.2838, abs=1e-3)
        assert bio.clock_offsets[-1, 1] == pytest.approx(1121.1656, abs=1e-3)
        assert json.loads(bio.attrs["xdf_clock_segments"]) == [[0, 12875], [12876, 27814]]
        assert bio.source_id == "myuid34234" and bio.attrs["hostname"] == "BP-LP-022"
        marker = s.streams["MyMarkerStream"]
        assert marker.length == 175 and marker.data[0, 0] == "XXX" and marker.data[-1, 0] == "XXX"
        # both streams share the synchronized time base: they overlap in time
        assert marker.timestamps[0] < bio.timestamps[-1]
        assert bio.timestamps[0] < marker.timestamps[-1]


def test_empty_streams_are_kept_with_their_metadata(xdf_dir, tmp_path):
    path, summary = import_xdf(xdf_dir / "empty_streams.xdf", tmp_path)
    assert sorted(s.samples for s in summary) == [0, 0, 1, 10]
    with open_session(path) as s:
        assert s.start_time == "2025-01-31T00:21:17.000Z"
        empty_data = s.streams["Empty_data_stream_test_stream_0_counter"]
        assert empty_data.data.shape == (0, 1) and empty_data.data.dtype == np.float32
        assert empty_data.channel_labels == ("ch:00",)
        assert empty_data.attrs["name"] == "Empty data stream: test stream 0 counter"
        assert len(empty_data.clock_offsets) == 7
        empty_markers = s.streams["Empty_marker_stream_test_stream_0_counter"]
        assert empty_markers.length == 0 and empty_markers.is_string
        counter = s.streams["Data_stream_test_stream_0_counter"]
        assert counter.data[:, 0].tolist() == list(range(10))
        assert counter.data.dtype == np.int32
        assert s.streams["ctrl"].data[0, 0] == '{"state": 2}'
        assert "<manufacturer>pylsltools</manufacturer>" in s.streams["ctrl"].info_xml


def test_cli_import_and_errors(xdf_dir, tmp_path, capsys):
    out = tmp_path / "m.h5"
    assert main(["import-xdf", str(xdf_dir / "minimal.xdf"), "--out", str(out)]) == 0
    assert capsys.readouterr().out.strip() == str(out)
    assert main(["import-xdf", str(xdf_dir / "minimal.xdf"), "--out", str(out)]) == 2
    assert "never overwrites" in capsys.readouterr().err
    bogus = tmp_path / "bogus.xdf"
    bogus.write_bytes(b"not an xdf file at all")
    with pytest.raises(XdfImportError, match="could not be read as XDF"):
        import_xdf(bogus, tmp_path / "x.h5")
    assert not (tmp_path / "x.h5").exists()
    with pytest.raises(OutputExistsError):
        import_xdf(xdf_dir / "minimal.xdf", out)
