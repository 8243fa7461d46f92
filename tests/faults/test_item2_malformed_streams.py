"""Item 2: one malformed stream on the network must not stop a recording.

A real 0-channel outlet next to a good one: `kneegui streams` lists it as unusable, `kneegui
record` skips it with a message and records the good stream (before the fix: a RoleError
traceback and no file). `replay --speed nan` and `simulate --speed nan` are refused (before: a
broken "(invalid: stoi)" stream, exit 0 / a traceback); replay skips a stored stream it cannot
publish instead of failing.
"""

from __future__ import annotations

import subprocess
import sys
import time

import h5py
import numpy as np
import pylsl

from kneegui.cli import main
from kneegui.recording import SessionWriter, StreamSpec, open_session


def test_a_zero_channel_outlet_is_listed_unusable_and_skipped_by_record(tmp_path, capsys, uid,
                                                                      pusher):
    stype = f"EMG{uid}"  # only this test's streams
    broken = pylsl.StreamOutlet(pylsl.StreamInfo(f"Zero-{uid}", stype, 0, 100.0,
                                                 pylsl.cf_float32, f"zero-{uid}"))
    good = pusher(f"Good-{uid}", f"good-{uid}", stype=stype)
    try:
        listing = subprocess.run([sys.executable, "-m", "kneegui", "streams", "--type", stype,
                                  "--timeout", "3"], capture_output=True, text=True, timeout=60)
        assert listing.returncode == 0, listing.stderr
        line = next(x for x in listing.stdout.splitlines() if f"Zero-{uid}" in x)
        assert "UNUSABLE: it declares no channels" in line
        rc = main(["record", "--out", str(tmp_path / "rec"), "--type", stype, "--duration", "2",
                   "--discover-timeout", "3", "--quiet"])
        captured = capsys.readouterr()
    finally:
        del broken
    assert rc == 0, captured.err
    assert f"skipping unusable stream 'Zero-{uid}'" in captured.err
    assert "Traceback" not in captured.err
    with open_session(captured.out.strip()) as s:
        assert list(s.streams) == [f"Good-{uid}"] and s.complete
        counter = s.streams[f"Good-{uid}"].data[:, 0]
        assert len(counter) > 300
        np.testing.assert_array_equal(np.diff(counter), 1)
    assert good.sent > 0


def _session(path, sid: str) -> None:
    w = SessionWriter(path).start()
    key = w.add_stream(StreamSpec("Replay me", "EMG", 1, 100.0, "float32", sid))
    w.write_samples(key, np.arange(20, dtype=np.float32)[:, None], 5 + np.arange(20) / 100)
    w.stop()


def test_nan_speeds_are_refused_and_unpublishable_streams_are_skipped(tmp_path, capsys, uid):
    path = tmp_path / "s.h5"
    _session(path, f"rp-{uid}")
    for args in (["replay", str(path), "--speed", "nan"],
                 ["replay", str(path), "--speed", "inf"],
                 ["simulate", "--speed", "nan", "--duration", "1"]):
        assert main(args) == 2, args
        err = capsys.readouterr().err
        assert "--speed must be > 0 and finite" in err and "Traceback" not in err
    # a stored stream replay cannot publish (complex samples) is skipped, the others play
    with h5py.File(path, "a") as f:
        odd = f["streams"].create_group("Odd")
        odd["data"] = np.ones((5, 1), np.complex64)
        odd["timestamps"] = 5 + np.arange(5) / 100
    assert main(["replay", str(path), "--speed", "20"]) == 0
    err = capsys.readouterr().err
    assert "stream 'Odd' has an unknown channel format" in err
    assert "replayed 20 samples" in err
    time.sleep(0.1)
