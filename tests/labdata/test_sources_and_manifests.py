"""Recordings from every source as one type, datasets as folders or manifests, and the messages
a lab gets when its files do not fit (no LSL here; see test_recorded_sessions for sessions)."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from lab_helpers import LAB_CHANNEL_MAP, LAB_EMG_MAP, LAB_INPUTS
from xdf_writer import XdfStream, write_xdf

from kneegui.acquisition.alignment import TimedSamples, align
from kneegui.labdata import (
    DatasetError,
    RecordingError,
    StreamChoice,
    load_dataset,
    open_dataset,
    read_recording,
    require_angle,
    to_model_rate,
    usable_pieces,
)
from kneegui.model.layout import LayoutError, match_channels, parse_channel_map


def _uci_copy(uci_dir, tmp_path, names):
    from kneegui.datasets.uci import find_uci_files

    by_stem = {p.stem: p for p in find_uci_files(uci_dir)}
    for name in names:
        shutil.copy(by_stem[name], tmp_path / f"{name}.txt")
    return tmp_path


def test_the_xdf_writer_is_read_back_by_pyxdf(tmp_path):
    """The tests' XDF writer is right: pyxdf returns its values, stamps, labels and clock
    offsets, and applies the offsets."""
    import pyxdf

    t = 100.0 + np.arange(300) / 50.0
    data = np.arange(600, dtype=np.float32).reshape(300, 2)
    offsets = [(100.0, -2.5), (103.0, -2.5), (106.0, -2.5)]
    path = write_xdf(tmp_path / "x.xdf", [
        XdfStream("amp", "EMG", 50.0, data, t, ["a", "b"], ["uV", "uV"], source_id="amp-1",
                  clock_offsets=offsets),
        XdfStream("gon", "Angle", 10.0, np.ones((20, 1), np.float32) * 7, 90 + np.arange(20) / 10,
                  ["knee"], ["deg"], channel_format="double64")])
    raw, _ = pyxdf.load_xdf(str(path), synchronize_clocks=False, dejitter_timestamps=False)
    amp = next(s for s in raw if s["info"]["name"] == ["amp"])
    np.testing.assert_array_equal(amp["time_series"], data)
    np.testing.assert_array_equal(amp["time_stamps"], t)
    assert amp["clock_times"] == [o[0] for o in offsets]
    assert amp["clock_values"] == [o[1] for o in offsets]
    channel = amp["info"]["desc"][0]["channels"][0]["channel"][1]
    assert channel["label"] == ["b"] and channel["unit"] == ["uV"]
    synced, _ = pyxdf.load_xdf(str(path), synchronize_clocks=True, dejitter_timestamps=False)
    amp = next(s for s in synced if s["info"]["name"] == ["amp"])
    np.testing.assert_allclose(amp["time_stamps"], t - 2.5, atol=1e-9)


def test_uci_folder_gives_the_series_it_always_gave(uci_dir, tmp_path):
    """A UCI folder through the dataset code: the same series, order and ridge features as
    the UCI loader (so earlier evaluations and cached networks stay valid)."""
    from kneegui.research.data import load_dataset_series, load_series

    folder = _uci_copy(uci_dir, tmp_path, ["1Nmar", "2Amar", "1Npie", "2Npie"])
    old = load_series(folder, exercises=("mar", "pie"), with_td=True)
    new = load_dataset_series(folder, ["walk", "pie"], with_td=True)
    assert [s.name for s in new.series] == [s.name for s in old] == ["1Nmar", "1Npie", "2Amar"]
    assert new.duplicates == {"2Npie": "1Npie"} and new.muscles == ("RF", "BF", "VM", "ST")
    for a, b in zip(old, new.series, strict=True):
        np.testing.assert_array_equal(a.emg_env, b.emg_env)
        np.testing.assert_array_equal(a.angle, b.angle)
        assert (a.td is None) == (b.td is None)
        if a.td is not None:
            np.testing.assert_array_equal(a.td, b.td)


def test_one_clock_rows_equal_the_hub_alignment(uci_dir, tmp_path):
    """The text-file (index) rule and the hub's timestamp alignment give the same rows, bit for
    bit: the offline conversion is the live DSP + alignment code."""
    from kneegui import dsp

    folder = _uci_copy(uci_dir, tmp_path, ["2Amar"])
    rec = read_recording(folder / "2Amar.txt")
    indexed = to_model_rate(rec)
    ex = dsp.EmgFeatureExtractor(rec.emg.rate, 4, 100.0, dsp.FilterSettings())
    feats, t_feats = ex.process_with_times(np.asarray(rec.emg.data, np.float64), rec.emg.t)
    grid, (env, angle) = align([TimedSamples(t_feats, feats, 100.0),
                                TimedSamples(rec.angle.t, rec.angle.data, rec.angle.rate)], 100.0)
    n = len(grid)
    assert len(indexed) - 1 <= n <= len(indexed)
    np.testing.assert_array_equal(grid, indexed.t[:n])
    np.testing.assert_array_equal(env.astype(np.float32), indexed.emg_env[:n])
    np.testing.assert_array_equal(angle[:, 0].astype(np.float32), indexed.angle[:n])


def test_xdf_lab_layout_with_a_goniometer_on_another_clock(lab_xdf_file):
    """8 EMG channels at 2 kHz in microvolts with the lab's labels, a 2-channel goniometer on a
    clock 1234.5 s ahead: the channel map picks the inputs and the knee channel, the clock
    offsets put the goniometer on the amplifier's clock, microvolts become millivolts; on the
    model grid it is the UCI file's recording again."""
    from kneegui.research.data import load_series

    path, uci = lab_xdf_file
    rec = read_recording(path, channel_map=LAB_CHANNEL_MAP, activity="walk")
    assert rec.source == "xdf" and rec.emg.n_channels == 8 and rec.emg.unit() == "uV"
    assert abs(rec.angle.t[0] - rec.emg.t[0]) < 1e-3  # offsets applied
    assert rec.angle.labels == ("knee_R",)
    rows = to_model_rate(rec, LAB_INPUTS)
    assert any("uV converted to mV" in n for n in rows.notes)  # as the hub converts it
    assert rows.muscles == LAB_INPUTS and rows.emg_env.shape == (len(rows), 8)
    ref = next(s for s in load_series(uci.path.parent, exercises=("mar",)) if s.name == uci.name)
    k = int(round(rows.offset_s * 100))
    n = min(len(rows), len(ref) - k)
    assert n > len(ref) - 5
    assert np.abs(rows.angle[:n] - ref.angle[k : k + n]).max() < 0.2  # 100 Hz goniometer
    for i in range(4):  # the UCI muscles, found through the map in the card's order
        r = np.corrcoef(rows.emg_env[:n, i], ref.emg_env[k : k + n, i])[0, 1]
        assert r > 0.99, (LAB_INPUTS[i], r)
    pieces, report = usable_pieces(rows)
    assert len(pieces) == 1 and report.gait_cycles >= 6 and report.hole_rows == 0


def test_a_missing_muscle_lists_the_channels_and_how_to_map(lab_xdf_file):
    path, _ = lab_xdf_file
    rec = read_recording(path, channel_map={"knee_R": "angle"})
    with pytest.raises(LayoutError) as err:
        to_model_rate(rec, ("RF", "BF", "VM", "ST"))
    msg = str(err.value)
    assert "no channel for RF, BF, VM, ST" in msg and "EMG 1, EMG 2" in msg and "EMG 8" in msg
    assert "--channel-map" in msg and "[channels]" in msg
    # no map says which goniometer channel is the knee: the message lists the streams
    with pytest.raises(RecordingError, match=r"no knee-angle stream .*Gonio-xdf.*knee_R, hip_R"):
        require_angle(read_recording(path))
    with pytest.raises(RecordingError, match=r"channels knee_R, hip_R; map the one that holds"):
        read_recording(path, streams=StreamChoice(angle="Kinematics"))


def test_layout_matching_rules():
    labels = ["EMG 1", "rf", "EMG 3", "St", "BF", "VM"]
    assert match_channels(["RF", "BF", "VM", "ST"], labels) == [1, 4, 5, 3]  # by label
    assert match_channels(["RF", "BF"], labels, channel_map={"EMG 1": "RF", "EMG 3": "BF"},
                          picks=[0, 2]) == [0, 2]
    with pytest.raises(LayoutError, match="matches several channels"):
        match_channels(["RF"], labels, channel_map={"EMG 1": "RF"})
    with pytest.raises(LayoutError, match="names 'EMG 9'"):
        match_channels(["RF"], labels, channel_map={"EMG 9": "RF"})
    assert parse_channel_map("EMG 1=RF; EMG 2 = BF,") == {"EMG 1": "RF", "EMG 2": "BF"}
    with pytest.raises(LayoutError, match="not LABEL=INPUT"):
        parse_channel_map("EMG 1")


def test_an_emg_rate_the_features_cannot_use_is_refused(tmp_path):
    t = np.arange(5000) / 500.0
    path = write_xdf(tmp_path / "slow.xdf", [
        XdfStream("amp", "EMG", 500.0, np.zeros((5000, 1), np.float32), t, ["RF"], ["mV"]),
        XdfStream("knee", "Angle", 500.0, np.zeros((5000, 1), np.float32), t, ["knee"],
                  ["deg"])])
    with pytest.raises(RecordingError, match=r"EMG at 500 Hz .*\(needs >= 1000 Hz\)"):
        to_model_rate(read_recording(path), ("RF",))


def test_files_that_are_not_recordings_say_what_they_are(tmp_path, xdf_dir):
    (tmp_path / "notes.csv").write_text("a,b\n1,2\n")
    (tmp_path / "junk.h5").write_bytes(b"not hdf5")
    with pytest.raises(RecordingError, match="not a recording KneeGUI reads"):
        read_recording(tmp_path / "notes.csv")
    with pytest.raises(RecordingError, match="not an HDF5 file, so not a KneeGUI session"):
        read_recording(tmp_path / "junk.h5")
    with pytest.raises(RecordingError,
                       match=r"neither an EMG nor a knee-angle stream; its streams: 'SendDataC' "
                             r"\(type EEG, 3 ch, 10 Hz"):
        read_recording(xdf_dir / "minimal.xdf")
    t = np.arange(2000) / 1000.0
    two = write_xdf(tmp_path / "two.xdf", [
        XdfStream(f"amp{i}", "EMG", 1000.0, np.zeros((2000, 1), np.float32), t, ["RF"], ["mV"])
        for i in (1, 2)])
    with pytest.raises(RecordingError, match=r"2 streams could be the EMG .*emg = "):
        read_recording(two)


def test_manifests_toml_and_csv(lab_xdf_file, uci_dir, tmp_path):
    path, _ = lab_xdf_file
    shutil.copy(path, tmp_path / "walk.xdf")
    _uci_copy(uci_dir, tmp_path, ["7Nmar"])
    toml = tmp_path / "study.toml"
    toml.write_text("\n".join([
        'name = "study"', "[channels]", *[f'"{k}" = "{v}"' for k, v in LAB_CHANNEL_MAP.items()],
        "[[recording]]", 'file = "walk.xdf"', 'subject = "P01"', 'group = "patient"',
        'activity = "walk"', "start = 1.0", "end = 9.0",
        "[[recording]]", 'file = "7Nmar.txt"', 'group = "control"']))
    spec = open_dataset(toml)
    in_map_order = tuple(LAB_EMG_MAP.values())  # the inputs, in the order the map names them
    assert spec.kind == "manifest" and spec.inputs == in_map_order
    data = load_dataset(spec)
    walk, uci = data.recordings
    assert (walk.subject, walk.group, walk.activity) == ("P01", "patient", "walk")
    assert (uci.subject, uci.group, uci.activity) == ("7N", "control", "mar")
    rows = to_model_rate(walk, LAB_INPUTS)
    assert rows.offset_s >= 0.99 and rows.offset_s + len(rows) / 100.0 <= 9.0 + 1e-9
    csv = tmp_path / "study.csv"
    csv.write_text("file,subject,group,activity,channels\n"
                   'walk.xdf,P01,patient,walk,"' + "; ".join(
                       f"{k}={v}" for k, v in LAB_CHANNEL_MAP.items()) + '"\n')
    spec = open_dataset(csv)
    assert spec.inputs == in_map_order and load_dataset(spec).recordings[0].subject == "P01"
    bad = tmp_path / "bad.toml"
    for text, match in (('[[recording]]\nfile = "nope.xdf"', "nope.xdf not found"),
                        ('colour = 1\n[[recording]]\nfile = "walk.xdf"', "unknown key"),
                        ('[[recording]]\nfile = "walk.xdf"\nstart = 5\nend = 2', "after start"),
                        ("name = 'x'", "no \\[\\[recording\\]\\] entries")):
        bad.write_text(text)
        with pytest.raises(DatasetError, match=match):
            open_dataset(bad)
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match="no recordings under"):
        open_dataset(tmp_path / "empty")


def test_walking_is_found_by_the_gait_detector(uci_dir, tmp_path):
    """A session that starts and ends with 30 s of standing: only the walking (plus 3 s either
    side) is used; the same file labelled 'stand' is used whole and never as gait."""
    from kneegui.datasets.uci import find_uci_files, read_uci_file
    from kneegui.labdata import recording_from_uci
    from kneegui.labdata.recording import Signal

    (src,) = [p for p in find_uci_files(uci_dir) if p.stem == "7Amar"]
    uci = read_uci_file(src)
    rec = recording_from_uci(uci)
    pad = int(30 * uci.fs)
    rng = np.random.default_rng(0)
    emg = np.vstack([0.005 * rng.standard_normal((pad, 4)), uci.emg,
                     0.005 * rng.standard_normal((pad, 4))])
    angle = np.r_[np.full(pad, uci.angle[0]), uci.angle, np.full(pad, uci.angle[-1])]
    t = np.arange(len(angle)) / uci.fs
    from dataclasses import replace

    long = replace(rec, emg=Signal(emg, t, rec.emg.labels, rec.emg.units, uci.fs, "amp"),
                   angle=Signal(angle[:, None], t, ("knee",), ("deg",), uci.fs, "gonio"),
                   activity="")
    rows = to_model_rate(long)
    pieces, report = usable_pieces(rows)
    assert len(pieces) == 1 and pieces[0].activity == "walk"
    assert "walking_detected" in pieces[0].flags
    start, end = pieces[0].offset_s, pieces[0].offset_s + len(pieces[0]) / 100.0
    assert 26.0 < start < 30.0 and 30.0 + uci.duration_s < end < 34.0 + uci.duration_s
    assert report.gait_cycles >= 8
    standing, report = usable_pieces(replace(rows, activity="stand"))
    assert len(standing) == 1 and len(standing[0]) == len(rows) and report.walking_rows is None


def test_a_hole_in_a_stream_splits_the_recording(uci_dir):
    """0.3 s of goniometer samples missing (a dropped connection): NaN rows there, as the hub
    gives them live, and two gap-free pieces; no window spans the hole."""
    from dataclasses import replace

    from kneegui.datasets.uci import find_uci_files, read_uci_file
    from kneegui.labdata import recording_from_uci

    (src,) = [p for p in find_uci_files(uci_dir) if p.stem == "3Amar"]
    rec = recording_from_uci(read_uci_file(src))
    keep = (rec.angle.t < 20.0) | (rec.angle.t >= 20.3)
    angle = replace(rec.angle, data=rec.angle.data[keep], t=rec.angle.t[keep])
    rows = to_model_rate(replace(rec, angle=angle, one_clock=False, activity=""))
    holes = np.flatnonzero(~np.isfinite(rows.angle))
    # samples at 19.999 s and 20.300 s around the hole: grid rows 20.00 .. 20.29 s have none
    assert len(holes) == 30 and np.allclose(rows.t[holes[[0, -1]]], [20.0, 20.29])
    assert np.isfinite(rows.emg_env).all()
    pieces, report = usable_pieces(rows)
    assert report.hole_rows == 30 and len(pieces) == 2
    assert pieces[0].t[-1] < 20.0 and pieces[1].t[0] > 20.29
    assert [p.name for p in pieces] == ["3Amar#1", "3Amar#2"]
