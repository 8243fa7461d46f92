"""`kneegui dataset info` on a user-style copy of the UCI files (subset + a broken file)."""

from __future__ import annotations

import json
import shutil

from kneegui.cli import main
from kneegui.datasets.uci import find_uci_files


def _copy(uci_dir, tmp_path, names: dict[str, str]):
    by_stem = {p.stem: p for p in find_uci_files(uci_dir)}
    for src, dst in names.items():
        target = tmp_path / dst
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(by_stem[src], target)


def test_info_json_lists_recordings_flags_cycles_and_duplicates(uci_dir, tmp_path, capsys):
    _copy(
        uci_dir,
        tmp_path,
        {
            "7Nmar": "a/7Nmar.txt",
            "1Nmar": "1Nmar.txt",
            "1Npie": "b/1Npie.txt",
            "2Npie": "b/c/2Npie.txt",
        },
    )
    (tmp_path / "5Asen.txt").write_text("File Name: x\r\n\r\n0.1\t0.2\t0.3\t0.4\t5\r\n")
    assert main(["dataset", "info", str(tmp_path), "--json"]) == 1  # one malformed file
    report = json.loads(capsys.readouterr().out)
    rows = {r["name"]: r for r in report["recordings"]}
    assert set(rows) == {"7Nmar", "1Nmar", "1Npie", "2Npie"}
    assert rows["2Npie"]["duplicate_of"] == "1Npie"
    assert rows["1Nmar"]["header_style"] == "B" and "angle_resampled_50hz" in rows["1Nmar"]["flags"]
    assert 3 <= rows["7Nmar"]["gait_cycles"] <= 7 and rows["1Npie"]["gait_cycles"] is None
    assert 0.8 <= rows["7Nmar"]["gait_cycle_median_s"] <= 2.0
    assert rows["7Nmar"]["duration_s"] == 8.147
    (bad,) = report["malformed"]
    assert "5Asen.txt, line 3" in bad["error"]


def test_info_table_and_filters(uci_dir, tmp_path, capsys):
    _copy(uci_dir, tmp_path, {"7Nmar": "7Nmar.txt", "1Npie": "1Npie.txt"})
    assert main(["dataset", "info", str(tmp_path), "--exercise", "mar"]) == 0
    out = capsys.readouterr().out
    assert "7Nmar" in out and "1Npie" not in out and "1 recordings (0 duplicates)" in out


def test_info_missing_or_empty_folder_exits_2(tmp_path, capsys):
    assert main(["dataset", "info", str(tmp_path / "missing")]) == 2
    assert "not found" in capsys.readouterr().err
    assert main(["dataset", "info", str(tmp_path)]) == 2
    assert "no recordings under" in capsys.readouterr().err
