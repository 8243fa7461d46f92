"""XDF import of the three reference files, and of damaged copies of them built here."""

from __future__ import annotations

import json
import struct

import numpy as np
import pytest

from kneegui.cli import main
from kneegui.recording import OutputExistsError, open_session, xdf_reader
from kneegui.recording.xdf_import import XdfImportError, import_xdf, import_xdf_report


def _chunks(blob: bytes) -> list[tuple[int, int, int, int]]:
    """(chunk start, tag, content start, chunk end) of every chunk of an intact XDF file."""
    out, pos = [], 4
    while pos < len(blob):
        nbytes = blob[pos]
        length = int.from_bytes(blob[pos + 1:pos + 1 + nbytes], "little")
        start = pos + 1 + nbytes
        tag = struct.unpack_from("<H", blob, start)[0]
        out.append((pos, tag, start + 2, start + length))
        pos = start + length
    return out


def _sample_chunks(blob: bytes, stream_id: int) -> list[tuple[int, int, int, int]]:
    return [c for c in _chunks(blob) if c[1] == 3
            and struct.unpack_from("<I", blob, c[2])[0] == stream_id]


def test_minimal_values_clock_offsets_markers_and_start(xdf_dir, tmp_path):
    path, summary = import_xdf(xdf_dir / "minimal.xdf", tmp_path / "minimal.h5", "S1")
    assert [(s.name, s.samples, s.channels) for s in summary] == [
        ("SendDataC", 9, 3), ("SendDataString", 9, 1)]
    with open_session(path) as s:
        assert s.complete and s.subject_id == "S1" and s.attrs["imported_from"] == "minimal.xdf"
        assert s.format_version == "1.1"
        eeg = s.streams["SendDataC"]
        assert eeg.data.dtype == np.int16
        # values from the upstream README table
        assert eeg.data[0].tolist() == [192, 255, 238] and eeg.data[-1].tolist() == [15, 25, 35]
        np.testing.assert_allclose(eeg.raw_timestamps, np.arange(5.1, 5.95, 0.1))
        # the file's clock offsets (sender time 6.1 / 7.1 s, value -0.1 s) kept, their times on
        # the recording machine's clock (+ offset); synchronized times include the offset
        np.testing.assert_allclose(eeg.clock_offsets, [[6.0, -0.1], [7.0, -0.1]])
        np.testing.assert_allclose(eeg.clock_measurements[:, :2], [[6.0, -0.1], [7.0, -0.1]])
        assert np.isnan(eeg.clock_measurements[:, 2]).all()  # XDF keeps no round trip
        np.testing.assert_allclose(eeg.timestamps, np.arange(5.0, 5.85, 0.1), atol=1e-9)
        assert eeg.type == "EEG" and eeg.nominal_srate == 10 and eeg.channel_format == "int16"
        assert "<uid>xdfwriter_11_int</uid>" in eeg.info_xml
        markers = s.streams["SendDataString"]
        assert markers.data[1:5, 0].tolist() == ["Hello", "World", "from", "LSL"]
        assert markers.clock_offsets.shape == (0, 2)
        np.testing.assert_allclose(markers.timestamps, np.arange(5.1, 5.95, 0.1))
        # every marker sample is an event too, at its synchronized time
        events = [e for e in s.events.as_list() if e[2] == "xdf:SendDataString"]
        assert [label for _, label, _ in events] == markers.data[:, 0].tolist()
        np.testing.assert_allclose([t for t, _, _ in events], markers.timestamps)
        # the file has no recording date; the LSL start is its earliest time (first sample)
        assert s.start_time == "" and s.start_lsl == pytest.approx(5.0)


def test_clock_resets_become_one_monotonic_time_base(xdf_dir, tmp_path):
    path, _ = import_xdf(xdf_dir / "clock_resets.xdf", tmp_path)
    with open_session(path) as s:
        assert s.complete
        bio = s.streams["BioSemi"]
        assert bio.data.shape == (27815, 8) and bio.data.dtype == np.float32
        raw = bio.raw_timestamps
        assert np.any(np.diff(raw) < -1000)  # the file's stamps jump back (clock reset)
        assert np.all(np.diff(bio.timestamps) > 0)  # synchronized: no reset left
        np.testing.assert_allclose(np.median(np.diff(bio.timestamps)), 0.01, rtol=0.1)
        assert len(bio.clock_offsets) == 115 and len(bio.clock_measurements) == 115
        assert bio.clock_offsets[0, 1] == pytest.approx(-652340.2838, abs=1e-3)
        assert bio.clock_offsets[-1, 1] == pytest.approx(1121.1656, abs=1e-3)
        assert json.loads(bio.attrs["xdf_clock_segments"]) == [[0, 12875], [12876, 27814]]
        assert bio.source_id == "myuid34234" and bio.attrs["hostname"] == "BP-LP-022"
        marker = s.streams["MyMarkerStream"]
        assert marker.length == 175 and marker.data[0, 0] == "XXX" and marker.data[-1, 0] == "XXX"
        assert sum(o == "xdf:MyMarkerStream" for _, _, o in s.events.as_list()) == 175
        # both streams share the synchronized time base: they overlap in time
        assert marker.timestamps[0] < bio.timestamps[-1]
        assert bio.timestamps[0] < marker.timestamps[-1]
        assert s.start_lsl == pytest.approx(min(bio.timestamps[0], marker.timestamps[0]))


def test_empty_streams_are_kept_and_the_start_comes_from_the_file(xdf_dir, tmp_path):
    path, summary = import_xdf(xdf_dir / "empty_streams.xdf", tmp_path)
    assert sorted(s.samples for s in summary) == [0, 0, 1, 10]
    with open_session(path) as s:
        assert s.start_time == "2025-01-31T00:21:17.000Z"
        # not 0.0: the earliest clock measurement on the recorder's clock (~25.5 h of uptime)
        assert s.start_lsl == pytest.approx(91716.6915, abs=1e-3)
        assert s.start_lsl == pytest.approx(min(float(st.clock_measurements[:, 0].min())
                                                for st in s.streams.values()), abs=1e-9)
        first = s.streams["Data_stream_test_stream_0_counter"].timestamps[0]
        delta = (s.utc_datetime64([first])[0] - np.datetime64("2025-01-31T00:21:17", "us"))
        assert delta / np.timedelta64(1, "s") == pytest.approx(first - s.start_lsl, abs=1e-6)
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
        assert ("{\"state\": 2}", "xdf:ctrl") in [(lab, o) for _, lab, o in s.events.as_list()]
        assert "<manufacturer>pylsltools</manufacturer>" in s.streams["ctrl"].info_xml


def test_the_file_is_read_once_and_pyxdf_is_not_asked_to_parse_it(xdf_dir, tmp_path,
                                                                  monkeypatch):
    import pyxdf

    calls = []
    real = xdf_reader.read_xdf

    def counting(path):
        calls.append(path)
        return real(path)

    def refuse(*_a, **_k):
        raise AssertionError("pyxdf.load_xdf must not parse the file a second time")

    monkeypatch.setattr("kneegui.recording.xdf_import.read_xdf", counting)
    monkeypatch.setattr(pyxdf, "load_xdf", refuse)
    import_xdf(xdf_dir / "clock_resets.xdf", tmp_path / "once.h5")
    assert len(calls) == 1


def test_a_file_cut_to_a_third_imports_what_is_there_with_complete_false(xdf_dir, tmp_path,
                                                                         capsys):
    blob = (xdf_dir / "clock_resets.xdf").read_bytes()
    cut = tmp_path / "cut.xdf"
    cut.write_bytes(blob[: len(blob) // 3])
    out = tmp_path / "cut.h5"
    assert main(["import-xdf", str(cut), "--out", str(out)]) == 3
    err = capsys.readouterr().err
    assert "is damaged; imported what was readable" in err and "Traceback" not in err
    with open_session(out) as s:
        assert not s.complete
        bio = s.streams["BioSemi"]
        assert bio.length == 9375  # every complete chunk before the cut
        full, _ = import_xdf(xdf_dir / "clock_resets.xdf", tmp_path / "full.h5")
        with open_session(full) as f:
            np.testing.assert_array_equal(bio.data, f.streams["BioSemi"].data[:9375])
            np.testing.assert_array_equal(bio.raw_timestamps,
                                          f.streams["BioSemi"].raw_timestamps[:9375])
        events = [(t, lab) for t, lab, o in s.events.as_list() if o == "xdf"]
        cut_msgs = [lab for _, lab in events if "cut off" in lab]
        assert len(cut_msgs) == 1 and f"of {len(blob) // 3}" in cut_msgs[0]
        no_footer = [lab for _, lab in events if "no footer" in lab]
        assert len(no_footer) == 2 and any("'BioSemi'" in m and "9375 samples" in m
                                           for m in no_footer)
        # the cut is placed after the last sample that could be read
        t_cut = [t for t, lab in events if "cut off" in lab][0]
        assert t_cut == pytest.approx(max(bio.timestamps[-1],
                                          s.streams["MyMarkerStream"].timestamps[-1]))
        assert json.loads(s.attrs["xdf_damage"])[0]["truncated"] is True


def test_a_damaged_sample_chunk_loses_only_that_chunk_and_says_so(xdf_dir, tmp_path):
    blob = bytearray((xdf_dir / "clock_resets.xdf").read_bytes())
    chunks = _sample_chunks(bytes(blob), 2)  # BioSemi
    start, _, content, end = chunks[len(chunks) // 2]
    # the sample count, then the first time-stamp marker: make it invalid
    nbytes = blob[content + 4]
    n_chunk = int.from_bytes(blob[content + 5:content + 5 + nbytes], "little")
    blob[content + 5 + nbytes] = 0x18
    bad = tmp_path / "flipped.xdf"
    bad.write_bytes(bytes(blob))
    report = import_xdf_report(bad, tmp_path / "flipped.h5")
    assert not report.complete
    full, _ = import_xdf(xdf_dir / "clock_resets.xdf", tmp_path / "full.h5")
    with open_session(report.path) as s, open_session(full) as f:
        bio, ref = s.streams["BioSemi"], f.streams["BioSemi"]
        assert bio.length == 27815 - n_chunk
        before = sum(int.from_bytes(bytes(blob[c[2] + 5:c[2] + 5 + blob[c[2] + 4]]), "little")
                     for c in chunks[: len(chunks) // 2])
        keep = np.r_[0:before, before + n_chunk:27815]
        np.testing.assert_array_equal(bio.data, ref.data[keep])
        np.testing.assert_array_equal(bio.raw_timestamps, ref.raw_timestamps[keep])
        assert s.streams["MyMarkerStream"].length == 175  # nothing else lost
        labels = [lab for _, lab, o in s.events.as_list() if o == "xdf"]
        assert any(f"bytes {start}-{end}" in x and f"one chunk of {n_chunk} samples of "
                   "'BioSemi'" in x for x in labels), labels
        assert any(f"{27815 - n_chunk} of 27815 samples" in x for x in labels)
        t_event = [t for t, lab, o in s.events.as_list() if o == "xdf" and "bytes" in lab][0]
        assert t_event >= bio.timestamps[before - 1] - 1e-9


def test_a_damaged_chunk_length_is_resynchronised_on_the_next_chunks(xdf_dir, tmp_path):
    blob = bytearray((xdf_dir / "clock_resets.xdf").read_bytes())
    chunks = _sample_chunks(bytes(blob), 2)
    start = chunks[40][0]
    assert blob[start] == 4  # a 4-byte length: make it point far beyond the file
    blob[start + 4] = 0x7F
    bad = tmp_path / "length.xdf"
    bad.write_bytes(bytes(blob))
    report = import_xdf_report(bad, tmp_path / "length.h5")
    assert not report.complete
    with open_session(report.path) as s:
        bio = s.streams["BioSemi"]
        assert 27815 - 200 < bio.length < 27815  # one chunk (plus at most a neighbour) lost
        labels = [lab for _, lab, o in s.events.as_list() if o == "xdf"]
        assert any("runs past the end of the file" in x and f"bytes {start}-" in x
                   for x in labels)
        assert not any("cut off" in x for x in labels)  # damaged, not truncated


@pytest.mark.parametrize("content", [
    b"", b"XDF", b"XDF:", b"\x89PNG\r\n\x1a\n" + bytes(200),
    b"XDF:" + bytes(np.random.default_rng(5).integers(0, 256, 4000, dtype=np.uint8)),
    b"XDF:\x01\x05\x01\x00<in", b"XDF:\x04\xff\xff\xff\x7f\x02\x00garbage",
])
def test_malformed_files_give_a_clear_error_and_no_file(tmp_path, capsys, content):
    bad = tmp_path / "bad.xdf"
    bad.write_bytes(content)
    out = tmp_path / "bad.h5"
    assert main(["import-xdf", str(bad), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.strip().splitlines()[-1].startswith("kneegui import-xdf: ")
    assert "Traceback" not in err
    assert "not an XDF file" in err or "holds no readable XDF stream" in err
    assert not out.exists()


def test_random_damage_never_raises_anything_but_a_clear_error(xdf_dir, tmp_path):
    blob = (xdf_dir / "clock_resets.xdf").read_bytes()
    rng = np.random.default_rng(20)
    for trial in range(12):
        data = bytearray(blob[: int(rng.integers(4, len(blob)))] if trial % 3 == 0 else blob)
        for _ in range(int(rng.integers(1, 40))):
            data[int(rng.integers(4, len(data)))] = int(rng.integers(0, 256))
        bad = tmp_path / f"fuzz{trial}.xdf"
        bad.write_bytes(bytes(data))
        try:
            report = import_xdf_report(bad, tmp_path / f"fuzz{trial}.h5")
        except XdfImportError:
            continue
        with open_session(report.path) as s:
            assert s.complete == report.complete
            for st in s.streams.values():
                assert len(st.raw_timestamps) == st.length


def test_cli_import_and_errors(xdf_dir, tmp_path, capsys):
    out = tmp_path / "m.h5"
    assert main(["import-xdf", str(xdf_dir / "minimal.xdf"), "--out", str(out)]) == 0
    assert capsys.readouterr().out.strip() == str(out)
    assert main(["import-xdf", str(xdf_dir / "minimal.xdf"), "--out", str(out)]) == 2
    assert "never overwrites" in capsys.readouterr().err
    bogus = tmp_path / "bogus.xdf"
    bogus.write_bytes(b"not an xdf file at all")
    with pytest.raises(XdfImportError, match="not an XDF file"):
        import_xdf(bogus, tmp_path / "x.h5")
    assert not (tmp_path / "x.h5").exists()
    with pytest.raises(OutputExistsError):
        import_xdf(xdf_dir / "minimal.xdf", out)
