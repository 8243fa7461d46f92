"""EMG-BIDS + Motion-BIDS export: every REQUIRED field of the BIDS schema, the data read back,
and the official BIDS validator (bids-validator-deno, installed with the test extra)."""

from __future__ import annotations

import csv
import datetime as dt
import json
import subprocess
import sys
from pathlib import Path

import edfio
import numpy as np
import pytest
from bidsschematools import schema as bids_schema
from export_session import GAP_S, GAP_START_S, make_lab_session

from kneegui.cli import main
from kneegui.recording import open_session
from kneegui.recording.bids_export import sample_positions

SUB, TASK = "S07", "walking"
EMG_STEM = f"sub-{SUB}_task-{TASK}"
MOTION_STEM = f"sub-{SUB}_task-{TASK}_tracksys-Kneegoniometer"


def _tsv(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh, delimiter="\t"))


def _required(rules, selectors: set[str]) -> set[str]:
    """Fields/columns a schema rule group marks required for files matching ``selectors``."""
    out: set[str] = set()
    for rule in rules.values():
        rule = rule.to_dict()
        if set(rule.get("selectors", [])) - selectors:
            continue
        items = rule.get("fields") or rule.get("columns") or {}
        for name, level in items.items():
            level = level if isinstance(level, str) else level.get("level")
            if level == "required":
                out.add(name.split("__")[0])
    return out


@pytest.fixture(scope="module")
def schema():
    return bids_schema.load_schema()


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    folder = tmp_path_factory.mktemp("bids")
    lab = make_lab_session(folder)
    out = folder / "dataset"
    rc = main(["export", str(lab.path), "--format", "bids", "--out", str(out),
               "--emg-reference", "Bipolar", "--placement", "SENIAM guidelines", "--age", "34",
               "--sex", "F", "--author", "Jane Doe", "--institution", "Test lab"])
    assert rc == 0
    return lab, out


def test_every_required_field_and_column_is_there(exported, schema):
    _, root = exported
    rules = schema["rules"]
    desc = json.loads((root / "dataset_description.json").read_text())
    req = _required(rules["json"]["dataset"], {'path == "/dataset_description.json"'})
    assert req == {"Name", "BIDSVersion"} and req <= set(desc)
    emg_sel = {'datatype == "emg"', 'suffix == "emg"'}
    emg_json = json.loads((root / f"sub-{SUB}/emg/{EMG_STEM}_emg.json").read_text())
    req = _required(rules["sidecars"]["emg"], emg_sel)
    assert {"EMGReference", "EMGPlacementScheme", "SamplingFrequency", "PowerLineFrequency",
            "RecordingType", "SoftwareFilters", "TaskName"} <= req
    assert req <= set(emg_json), req - set(emg_json)
    if emg_json["EMGPlacementScheme"] == "Other":  # conditionally required
        assert emg_json["EMGPlacementSchemeDescription"] == "SENIAM guidelines"
    meta = schema["objects"]["metadata"]
    for key in ("EMGPlacementScheme", "RecordingType"):
        assert emg_json[key] in meta[key]["enum"]
    assert emg_json["PowerLineFrequency"] == 50.0  # the notch of the recorded filters
    assert emg_json["SamplingFrequency"] == 1000.0 and emg_json["TaskName"] == TASK
    channels = _tsv(root / f"sub-{SUB}/emg/{EMG_STEM}_channels.tsv")
    req = _required(rules["tabular_data"]["emg"],
                    {'datatype == "emg"', 'suffix == "channels"', 'extension == ".tsv"'})
    assert req == {"name", "type", "units"} and req <= set(channels[0])
    types = schema["objects"]["columns"]["type__channels"]["enum"]
    assert all(ch["type"] in types for ch in channels)
    assert [ch["target_muscle"] for ch in channels] == [
        "rectus femoris", "biceps femoris", "vastus medialis", "semitendinosus"]
    motion_json = json.loads((root / f"sub-{SUB}/motion/{MOTION_STEM}_motion.json").read_text())
    req = _required(rules["sidecars"]["motion"], {'datatype == "motion"', 'suffix == "motion"'})
    assert {"SamplingFrequency", "TaskName"} <= req and req <= set(motion_json)
    mch = _tsv(root / f"sub-{SUB}/motion/{MOTION_STEM}_channels.tsv")
    req = _required(rules["tabular_data"]["motion"],
                    {'datatype == "motion"', 'suffix == "channels"', 'extension == ".tsv"'})
    assert req == {"name", "component", "type", "tracked_point", "units"}
    assert req <= set(mch[0])
    assert [(c["type"], c["units"]) for c in mch] == [("JNTANG", "deg"), ("LATENCY", "s")]
    assert all(c["type"] in types for c in mch)
    scans = _tsv(root / f"sub-{SUB}/sub-{SUB}_scans.tsv")
    req = _required(rules["tabular_data"]["modality_agnostic"],
                    {'suffix == "scans"', 'extension == ".tsv"'})
    assert req == {"filename"} and req <= set(scans[0]) and "acq_time" in scans[0]
    for folder, stem in (("emg", EMG_STEM), ("motion", MOTION_STEM)):
        events = _tsv(root / f"sub-{SUB}/{folder}/{stem}_events.tsv")
        req = _required(rules["tabular_data"]["events"], {'suffix == "events"'})
        assert req == {"onset", "duration"} and req <= set(events[0])
    participants = _tsv(root / "participants.tsv")
    assert participants == [{"participant_id": f"sub-{SUB}", "species": "homo sapiens",
                             "age": "34", "sex": "F"}]


def test_bdf_holds_the_emg_with_the_gap_zero_filled(exported):
    lab, root = exported
    bdf = edfio.read_bdf(root / f"sub-{SUB}/emg/{EMG_STEM}_emg.bdf")
    assert [s.label for s in bdf.signals] == ["RF", "BF", "VM", "ST"]
    assert {s.sampling_frequency for s in bdf.signals} == {1000.0}
    assert {s.physical_dimension for s in bdf.signals} == {"mV"}
    pos = sample_positions(lab.emg_t, 1000.0)
    gap_first = int(GAP_START_S * 1000)
    assert pos[gap_first] == gap_first + int(GAP_S * 1000)  # the gap kept its length
    for i, signal in enumerate(bdf.signals):
        data = signal.data
        resolution = (signal.physical_max - signal.physical_min) / 2 ** 24
        np.testing.assert_allclose(data[pos], lab.emg[:, i], atol=resolution)
        assert np.all(data[gap_first:gap_first + int(GAP_S * 1000)] == pytest.approx(0.0,
                                                                                   abs=resolution))
    events = _tsv(root / f"sub-{SUB}/emg/{EMG_STEM}_events.tsv")
    gaps = [e for e in events if e["trial_type"] == "data_gap"]
    assert len(gaps) == 1 and float(gaps[0]["onset"]) == pytest.approx(GAP_START_S)
    assert float(gaps[0]["duration"]) == pytest.approx(GAP_S)
    assert [e["label"] for e in events if e["trial_type"] == "marker:Gait_markers"] == [
        "heel strike", "toe off", "heel strike"]
    start = [e for e in events if e["label"] == "start walking"][0]
    assert float(start["onset"]) == pytest.approx(0.5, abs=1e-6)  # from the first EMG sample


def test_motion_tsv_and_acquisition_times(exported):
    lab, root = exported
    rows = (root / f"sub-{SUB}/motion/{MOTION_STEM}_motion.tsv").read_text().splitlines()
    assert "\t" in rows[0] and not rows[0][0].isalpha()  # no header row
    table = [r.split("\t") for r in rows]
    assert len(table) == 800  # 8 s at 100 Hz on the regular grid, gap included
    gap = range(int(GAP_START_S * 100), int((GAP_START_S + GAP_S) * 100))
    assert all(table[k] == ["n/a", "n/a"] for k in gap)
    kept = [k for k in range(800) if k not in gap]
    np.testing.assert_array_equal(np.array([float(table[k][0]) for k in kept], np.float32),
                                  lab.angle)
    np.testing.assert_allclose([float(table[k][1]) for k in kept],
                               lab.angle_t - lab.angle_t[0], atol=1e-6)
    with open_session(lab.path) as s:
        start, start_lsl = s.start_datetime, s.start_lsl
    scans = {r["filename"]: r["acq_time"] for r in _tsv(root / f"sub-{SUB}/sub-{SUB}_scans.tsv")}
    for name, t0 in ((f"emg/{EMG_STEM}_emg.bdf", lab.emg_t[0]),
                     (f"motion/{MOTION_STEM}_motion.tsv", lab.angle_t[0])):
        when = dt.datetime.fromisoformat(scans[name].replace("Z", "+00:00"))
        assert abs((when - start).total_seconds() - (t0 - start_lsl)) < 2e-6


def _validate(root: Path) -> dict:
    validator = Path(sys.executable).parent / "bids-validator-deno"
    done = subprocess.run([str(validator), str(root), "--format", "json"],
                          capture_output=True, text=True, timeout=240)
    assert done.stdout, done.stderr
    return json.loads(done.stdout)


def test_the_official_bids_validator_finds_no_error(exported, tmp_path):
    lab, root = exported
    report = _validate(root)
    issues = report["issues"]["issues"]
    errors = [(i["code"], i.get("subCode"), i.get("location")) for i in issues
              if i["severity"] == "error"]
    assert not errors
    assert set(report["summary"]["dataTypes"]) >= {"emg", "motion"}
    # a second participant goes into the same dataset; the validator stays happy
    second = make_lab_session(tmp_path, subject="S08")
    assert main(["export", str(second.path), "--format", "bids", "--out", str(root),
                 "--bids-session", "2"]) == 0
    participants = [r["participant_id"] for r in _tsv(root / "participants.tsv")]
    assert participants == ["sub-S07", "sub-S08"]
    assert (root / "sub-S08/ses-2/emg/sub-S08_ses-2_task-walking_emg.bdf").exists()
    report = _validate(root)
    assert not [i for i in report["issues"]["issues"] if i["severity"] == "error"]
    assert report["summary"]["subjects"] == ["S07", "S08"]


def test_nothing_is_overwritten_and_unusable_sessions_are_refused(exported, xdf_dir, tmp_path,
                                                                   capsys):
    lab, root = exported
    before = {p: p.stat().st_mtime_ns for p in root.rglob("*") if p.is_file()}
    assert main(["export", str(lab.path), "--format", "bids", "--out", str(root)]) == 2
    assert "never overwrites" in capsys.readouterr().err
    assert {p: p.stat().st_mtime_ns for p in root.rglob("*") if p.is_file()} == before
    from kneegui.recording.xdf_import import import_xdf

    session, _ = import_xdf(xdf_dir / "clock_resets.xdf", tmp_path / "cr.h5")
    assert main(["export", str(session), "--format", "bids", "--out", str(tmp_path / "b"),
                 "--subject", "01"]) == 2
    err = capsys.readouterr().err
    assert "nothing to export" in err and not (tmp_path / "b").exists()
    assert main(["export", str(session), "--format", "bids", "--out", str(tmp_path / "b")]) == 2
    assert "--subject" in capsys.readouterr().err


def test_the_validator_does_catch_a_missing_required_field(exported, tmp_path):
    import shutil

    _, root = exported
    broken = tmp_path / "broken"
    shutil.copytree(root, broken)
    sidecar = next(broken.rglob("*_emg.json"))
    content = json.loads(sidecar.read_text())
    del content["EMGReference"]
    sidecar.write_text(json.dumps(content))
    errors = [i for i in _validate(broken)["issues"]["issues"] if i["severity"] == "error"]
    assert any(i.get("subCode") == "EMGReference" for i in errors), errors
