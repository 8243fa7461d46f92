"""Item 5 (sessions): damaged or odd session files are reported for what they are and still
exported/replayed where possible. Before the fix a truncated file was "being recorded right now"
(HDF5's word "sblock" contains "lock"), 1-D data or stripped stream attributes gave IndexError /
ValueError tracebacks in export and replay, and NaN or backward time stamps passed silently.
"""

from __future__ import annotations

import h5py
import numpy as np
import pytest

from kneegui.cli import main
from kneegui.recording import SessionFormatError, SessionWriter, StreamSpec, open_session


def _session(path, stamps, sid: str = "odd-src") -> None:
    w = SessionWriter(path).start()
    key = w.add_stream(StreamSpec("EMG", "EMG", 2, 100.0, "float32", sid,
                                  channel_labels=("a", "b")))
    n = len(stamps)
    w.write_samples(key, np.column_stack([np.arange(n), -np.arange(n)]).astype(np.float32),
                    stamps)
    w.stop()


def test_a_truncated_file_is_reported_as_truncated(tmp_path, capsys):
    good = tmp_path / "good.h5"
    _session(good, 3 + np.arange(2000) / 100)
    cut = tmp_path / "copy.h5"
    cut.write_bytes(good.read_bytes()[: good.stat().st_size * 2 // 3])
    with pytest.raises(SessionFormatError, match="is truncated") as err:
        open_session(cut)
    assert "being recorded" not in str(err.value)
    assert main(["export", str(cut), "--out", str(tmp_path / "csv")]) == 2
    message = capsys.readouterr().err
    assert "is truncated" in message and "copy it again" in message


def test_one_dimensional_data_and_stripped_attributes_are_exported_and_replayed(tmp_path,
                                                                               capsys, uid):
    path = tmp_path / "odd.h5"
    _session(path, 3 + np.arange(30) / 100, sid=f"odd-{uid}")
    with h5py.File(path, "a") as f:
        group = f["streams/EMG"]
        first = group["data"][:, 0]
        del group["data"]
        group["data"] = first  # 1-D, as another tool might write it
        for key in ("channel_format", "nominal_srate", "channel_labels", "name"):
            del group.attrs[key]
    assert main(["export", str(path), "--out", str(tmp_path / "csv")]) == 0
    err = capsys.readouterr().err
    assert "1-D data, read as one channel" in err and "lacks the attributes" in err
    lines = (tmp_path / "csv" / "EMG.csv").read_text().splitlines()
    assert lines[0] == "time [s],lsl_time [s],utc_time,ch1" and len(lines) == 31
    assert lines[2].endswith(",1.0")  # the second sample of channel 1
    assert main(["replay", str(path), "--speed", "10"]) == 0
    err = capsys.readouterr().err
    assert "replayed 30 samples" in err and "Traceback" not in err


def test_nan_and_backward_time_stamps_are_warned_about(tmp_path, capsys, uid):
    stamps = 3 + np.arange(40) / 100
    stamps[5] = np.nan
    stamps[20:] -= 0.5  # back by half a second
    path = tmp_path / "stamps.h5"
    _session(path, stamps, sid=f"stamps-{uid}")
    assert main(["export", str(path), "--out", str(tmp_path / "csv")]) == 0
    err = capsys.readouterr().err
    assert "1 of 40 time stamps are not finite" in err
    assert "go backwards 1 times (by up to 0.49 s)" in err
    assert main(["replay", str(path), "--speed", "10"]) == 0
    err = capsys.readouterr().err
    assert "time stamps are not finite" in err and "go backwards" in err
    assert "replayed 40 samples" in err
