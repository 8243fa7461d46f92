"""The UCI reader on the real shared files (every quirk of PROVENANCE.md) and on broken copies."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import numpy as np
import pytest

from kneegui.datasets.uci import (
    UciFormatError,
    find_uci_files,
    load_uci_dataset,
    read_uci_file,
)

NAME = re.compile(r"^\d+[NA](mar|pie|sen)\.txt$")


@pytest.fixture(scope="module")
def all_recordings(uci_dir):
    return {r.name: r for r in load_uci_dataset(uci_dir, exercises=None, drop_duplicates=False)}


def _file(uci_dir: Path, name: str) -> Path:
    hits = [p for p in find_uci_files(uci_dir) if p.stem == name]
    assert len(hits) == 1, f"{name} not in the shared data"
    return hits[0]


def _raw_rows(path: Path) -> list[list[str]]:
    """Independent, naive view of the data rows (tab-split), for cross-checks."""
    lines = path.read_bytes().decode("latin-1").splitlines()
    start = next(i for i, s in enumerate(lines) if s[:1].isdigit() or s[:1] == "-")
    return [s.split("\t") for s in lines[start:]]


def _write_style_a(path: Path, rows: list[str], trailer: str = "\t\t\t\t\r\n") -> Path:
    n = len(rows)
    labels = ["Recto Femoral", "Biceps Femoral", "Vasto Medial", "EMG Semitendinoso"]
    head = ["File Name: marcha.log"]
    head += [
        f"Channel {4 + i}: '{lab}', {n} values, engineering units: mV, no filters."
        for i, lab in enumerate(labels)
    ]
    head += [f"Channel 8: 'Flexo-Extension', {n} values, engineering units: deg, no filters.", ""]
    path.write_bytes(("\r\n".join(head + rows) + "\r\n" + trailer).encode("ascii"))
    return path


def _gait_rows(n: int = 3000) -> list[str]:
    rng = np.random.default_rng(0)
    t = np.arange(n) / 1000.0
    angle = 30 - 30 * np.cos(2 * np.pi * t)
    emg = rng.normal(0, 0.05, (n, 4))
    return [
        "\t".join(f"{v:.4f}" for v in e) + f"\t{a:.1f}" for e, a in zip(emg, angle, strict=True)
    ]


def test_every_txt_file_is_found_and_loads(uci_dir, all_recordings):
    on_disk = sorted(p.name for p in uci_dir.rglob("*.txt") if NAME.match(p.name))
    assert len(on_disk) >= 54
    assert sorted(p.name for p in find_uci_files(uci_dir)) == on_disk
    assert len(all_recordings) == len(on_disk)
    for rec in all_recordings.values():
        assert rec.emg.dtype == np.float32 and rec.emg.shape == (rec.n_samples, 4)
        assert rec.angle.dtype == np.float32 and rec.angle.shape == (rec.n_samples,)
        assert np.isfinite(rec.emg).all() and np.isfinite(rec.angle).all()
        assert (
            rec.fs == 1000.0 and rec.group in ("N", "A") and rec.exercise in ("mar", "pie", "sen")
        )
        assert rec.subject == f"{rec.subject_number}{rec.group}"
        assert rec.path.stem == rec.name
        assert rec.n_samples > 4000


def test_find_filters_by_exercise_and_group(uci_dir):
    gait_a = find_uci_files(uci_dir, exercises=["mar"], groups=["A"])
    assert gait_a and all(p.name.endswith("Amar.txt") for p in gait_a)
    with pytest.raises(ValueError, match="unknown exercise"):
        find_uci_files(uci_dir, exercises=["run"])


def test_three_header_styles(all_recordings):
    assert all_recordings["7Nmar"].header_style == "A"  # 2012 DaVinci unit
    assert all_recordings["1Amar"].header_style == "A"
    assert all_recordings["1Nmar"].header_style == "B"  # 2013 TP2 unit, 50 Hz goniometer
    assert all_recordings["9Amar"].header_style == "C"  # digital 6th column


def test_sixth_constant_column_is_dropped(uci_dir, all_recordings):
    rec = all_recordings["9Amar"]
    rows = _raw_rows(_file(uci_dir, "9Amar"))
    assert len(rows[0]) == 6 and rows[0][5] == "31"
    assert rec.emg.shape[1] == 4 and "digital_column_dropped" in rec.flags
    np.testing.assert_allclose(rec.emg[0], [float(x) for x in rows[0][:4]], atol=1e-6)


def test_crlf_and_lf_copies_read_identically(uci_dir, tmp_path):
    src = _file(uci_dir, "7Nmar")
    assert b"\r\n" in src.read_bytes()[:200]
    lf = tmp_path / "7Nmar.txt"
    lf.write_bytes(src.read_bytes().replace(b"\r\n", b"\n"))
    a, b = read_uci_file(src), read_uci_file(lf)
    np.testing.assert_array_equal(a.emg, b.emg)
    np.testing.assert_array_equal(a.angle, b.angle)
    assert a.content_hash == b.content_hash


def test_emg_empty_padding_rows_are_trimmed_and_angle_stays_aligned(uci_dir, all_recordings):
    path = _file(uci_dir, "1Nmar")
    rows = [r for r in _raw_rows(path) if any(f.strip() for f in r)]
    with_emg = [r for r in rows if r[0] != ""]
    rec = all_recordings["1Nmar"]
    assert len(rows) == 5700 and len(with_emg) == 5681
    # 285 angle samples at 50 Hz: rows after the second-to-last one (row 20 * 283) are cut
    assert rec.n_samples == 20 * (285 - 2) + 1
    assert {"emg_empty_rows_trimmed", "angle_end_ramp_trimmed"} <= rec.flags
    raw = np.array([float(r[4]) for r in with_emg[: rec.n_samples]])
    expected = rec.angle_sign * raw - rec.angle_offset_deg
    np.testing.assert_allclose(rec.angle, expected, atol=1e-4)


def test_ramp_to_bogus_last_angle_sample_is_cut(uci_dir, all_recordings):
    """6Nmar's last 50 Hz angle sample jumps ~49 deg; the 20 rows heading there are dropped."""
    raw_tail = [float(r[4]) for r in _raw_rows(_file(uci_dir, "6Nmar"))[-45:-1]]
    assert max(abs(np.diff(raw_tail))) > 2.0  # > 2000 deg/s in the file itself
    padded = [r for r in all_recordings.values() if "emg_empty_rows_trimmed" in r.flags]
    assert {r.name for r in padded} >= {"1Nmar", "6Nmar", "3Npie"}
    for rec in padded:
        assert "angle_end_ramp_trimmed" in rec.flags
        speed = np.abs(np.diff(rec.angle[-300:])) * rec.fs
        assert speed.max() < 1000.0, rec.name  # deg/s; knee swing peaks at ~500 deg/s


def test_stray_7_5v_token_in_padding_is_tolerated(uci_dir, all_recordings):
    text = _file(uci_dir, "1Nmar").read_bytes()
    assert b"\t\t\t\t7.5V\r\n" in text
    assert "stray_token_in_padding" in all_recordings["1Nmar"].flags


def test_missing_last_angle_holds_previous_value(uci_dir, all_recordings):
    for name in ("4Nsen", "7Npie", "8Nsen"):
        rows = [r for r in _raw_rows(_file(uci_dir, name)) if any(f.strip() for f in r)]
        assert rows[-1][4] == ""
        rec = all_recordings[name]
        assert rec.n_samples == len(rows)
        assert rec.angle[-1] == rec.angle[-2]
        assert "angle_last_sample_held" in rec.flags


def test_tab_only_trailer_is_skipped(uci_dir, tmp_path):
    src = _file(uci_dir, "7Nmar")
    data = src.read_bytes()
    assert data.endswith(b"\t\t\t\t\r\n")
    no_trailer = tmp_path / "7Nmar.txt"
    no_trailer.write_bytes(data[: -len(b"\t\t\t\t\r\n")])
    np.testing.assert_array_equal(read_uci_file(src).emg, read_uci_file(no_trailer).emg)


def test_duplicates_detected_by_content_and_dropped(uci_dir, all_recordings):
    assert all_recordings["2Npie"].duplicate_of == "1Npie"
    assert all_recordings["2Nsen"].duplicate_of == "1Nsen"
    assert all_recordings["1Npie"].duplicate_of is None
    assert all_recordings["2Nmar"].duplicate_of is None  # same start time, different data
    dups = [r.name for r in all_recordings.values() if r.duplicate_of]
    assert sorted(dups) == ["2Npie", "2Nsen"]
    kept = {r.name for r in load_uci_dataset(uci_dir, exercises=["pie", "sen"], groups=["N"])}
    assert "1Npie" in kept and "2Npie" not in kept and "2Nsen" not in kept


def test_duplicate_detection_ignores_file_names(uci_dir, tmp_path):
    src = _file(uci_dir, "7Nmar")
    (tmp_path / "a").mkdir()
    (tmp_path / "b" / "deep").mkdir(parents=True)
    shutil.copy(src, tmp_path / "a" / "7Nmar.txt")
    shutil.copy(src, tmp_path / "b" / "deep" / "12Nmar.txt")
    recs = load_uci_dataset(tmp_path, drop_duplicates=False)
    assert [(r.name, r.duplicate_of) for r in recs] == [("7Nmar", None), ("12Nmar", "7Nmar")]
    assert [r.name for r in load_uci_dataset(tmp_path)] == ["7Nmar"]


def test_gait_angles_are_flexion_positive_from_zero(all_recordings):
    gait = [r for r in all_recordings.values() if r.exercise == "mar"]
    assert len(gait) >= 18
    for rec in gait:
        lo, med, hi = np.percentile(rec.angle, [1, 50, 99])
        assert abs(lo) < 1e-3, rec.name
        assert 40 < hi < 90, (rec.name, hi)  # swing-phase flexion
        assert med < hi / 2, rec.name  # more time near extension than near peak flexion
        raw = (rec.angle + rec.angle_offset_deg) * rec.angle_sign
        magnitude_sign = 1 if abs(raw.max()) >= abs(raw.min()) else -1
        assert rec.angle_sign == magnitude_sign, rec.name  # PROVENANCE 3b: rule holds for gait
        assert ("sign_flipped" in rec.flags) == (rec.angle_sign == -1)


def test_known_negative_gait_files_are_flipped(all_recordings):
    for name in ("1Amar", "8Amar", "9Amar", "3Nmar", "4Nmar", "6Nmar"):  # PROVENANCE quirk 3
        assert all_recordings[name].angle_sign == -1, name
    assert all_recordings["3Amar"].angle_sign == 1


def _envelope(x: np.ndarray) -> np.ndarray:
    from scipy.signal import butter, sosfiltfilt

    band = butter(4, [20, 450], "bandpass", fs=1000, output="sos")
    low = butter(2, 2, fs=1000, output="sos")
    return sosfiltfilt(low, np.abs(sosfiltfilt(band, x.astype(float), axis=0)), axis=0)


def test_standing_sign_follows_hamstring_emg(all_recordings):
    """PROVENANCE 3b: in 2Apie the magnitude rule is wrong; the EMG decides the sign."""
    assert "angle_sign_disagrees_with_magnitude" in all_recordings["2Apie"].flags
    for rec in (r for r in all_recordings.values() if r.exercise == "pie"):
        env = _envelope(rec.emg[:, [1, 3]])
        r = np.mean([np.corrcoef(env[:, k], rec.angle)[0, 1] for k in range(2)])
        assert r > 0.2 or "angle_sign_ambiguous" in rec.flags, (rec.name, r)


def test_sitting_sign_follows_quadriceps_emg(all_recordings):
    for rec in (r for r in all_recordings.values() if r.exercise == "sen"):
        env = _envelope(rec.emg[:, [0, 2]])
        r = np.mean([np.corrcoef(env[:, k], rec.angle)[0, 1] for k in range(2)])
        assert r < -0.2 or "angle_sign_ambiguous" in rec.flags, (rec.name, r)


def test_resampled_goniometer_flag_matches_header(uci_dir, all_recordings):
    for rec in all_recordings.values():
        header = rec.path.read_bytes()[:600].decode("latin-1")
        resampled = "extrapolated from 50" in header
        assert ("angle_resampled_50hz" in rec.flags) == resampled, rec.name
        assert rec.angle_native_fs == (50.0 if resampled else 1000.0)
        assert (rec.header_style == "B") == resampled
    # style-B angle really is a 50 Hz signal: long runs of repeated values
    b = all_recordings["1Nmar"].angle
    assert np.mean(np.diff(b) == 0) > 0.3


# ---- malformed files: clear errors naming file and line -------------------------------------


def test_bad_number_in_data_names_file_and_line(tmp_path):
    rows = _gait_rows(50)
    fields = rows[10].split("\t")
    fields[1] = "0.01x"
    rows[10] = "\t".join(fields)
    path = _write_style_a(tmp_path / "1Amar.txt", rows)
    with pytest.raises(UciFormatError, match=r"1Amar\.txt, line 18: column 2 holds '0\.01x'"):
        read_uci_file(path)


def test_stray_token_outside_the_padding_is_an_error(tmp_path):
    rows = _gait_rows(50)
    rows[20] = "\t\t\t\t7.5V"  # EMG-empty row in the middle of the data
    path = _write_style_a(tmp_path / "2Amar.txt", rows)
    with pytest.raises(UciFormatError, match=r"2Amar\.txt, line 28: EMG is empty in the middle"):
        read_uci_file(path)


def test_padding_tolerates_stray_token_at_the_end(tmp_path):
    rows = _gait_rows(50) + ["\t\t\t\t7.5", "\t\t\t\t7.5V", "\t\t\t\t7.5"]
    rec = read_uci_file(_write_style_a(tmp_path / "2Amar.txt", rows))
    assert rec.n_samples == 50
    assert {"stray_token_in_padding", "emg_empty_rows_trimmed"} <= rec.flags


@pytest.mark.parametrize(
    ("bad_row", "message"),
    [
        ("0.1\t0.2\t0.3\t0.4", r"line 12: expected 5 tab-separated columns, found 4"),
        ("0.1\t\t0.3\t0.4\t5", r"line 12: some but not all 4 EMG columns are empty"),
        ("0.1\t0.2\t0.3\t0.4\t", r"line 12: knee-angle column is empty"),
        ("", r"line 12: empty line inside the data"),
    ],
)
def test_structural_errors_name_the_line(tmp_path, bad_row, message):
    rows = _gait_rows(30)
    rows[4] = bad_row
    path = _write_style_a(tmp_path / "3Nmar.txt", rows)
    with pytest.raises(UciFormatError, match=r"3Nmar\.txt, " + message):
        read_uci_file(path)


def test_missing_header_and_bad_name_are_explained(tmp_path):
    headerless = tmp_path / "1Nsen.txt"
    headerless.write_text("0.1\t0.2\t0.3\t0.4\t5\r\n")
    with pytest.raises(UciFormatError, match=r"1Nsen\.txt, line 1: expected 5 'Channel' header"):
        read_uci_file(headerless)
    badname = tmp_path / "subject1.txt"
    badname.write_text("x")
    with pytest.raises(UciFormatError, match="does not match"):
        read_uci_file(badname)


def test_missing_folder_and_empty_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match="not found"):
        find_uci_files(tmp_path / "nope")
    with pytest.raises(FileNotFoundError, match="no UCI TXT files"):
        load_uci_dataset(tmp_path)


@pytest.mark.parametrize("token", ["nan", "inf", "-Infinity", "1,5"])
def test_non_numeric_words_that_float_accepts_are_rejected(tmp_path, token):
    rows = _gait_rows(30)
    fields = rows[7].split("\t")
    fields[2] = token
    rows[7] = "\t".join(fields)
    path = _write_style_a(tmp_path / "4Amar.txt", rows)
    with pytest.raises(UciFormatError, match=rf"4Amar\.txt, line 15: column 3 holds '{token}'"):
        read_uci_file(path)


def test_header_count_mismatch_is_flagged_not_fatal(tmp_path):
    path = _write_style_a(tmp_path / "5Amar.txt", _gait_rows(3000))
    text = path.read_text().replace("3000 values", "3100 values")
    path.write_text(text, newline="")
    rec = read_uci_file(path)
    assert rec.n_samples == 3000 and "row_count_mismatch" in rec.flags
