"""Item 6: CLI misuse gets one clear line and exit code 2. Before the fix `record --duration
nan` recorded forever, `--discover-timeout -1` was a traceback, `simulate --source DIR` said
"does not exist" and `simulate --duration nan` said "cannot convert float NaN"."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from kneegui.paths import resources_dir


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("record", "--out", "{tmp}/x.h5", "--duration", "nan"), "--duration must be > 0"),
        (("record", "--out", "{tmp}/x.h5", "--duration", "inf"), "--duration must be > 0"),
        (("record", "--out", "{tmp}/x.h5", "--discover-timeout", "-1"),
         "--discover-timeout must be > 0"),
        (("simulate", "--duration", "nan"), "--duration must be > 0"),
        (("simulate", "--speed", "-2"), "--speed must be > 0"),
        (("simulate", "--source", "{demo_dir}"), "is a folder; give one UCI TXT file"),
        (("replay", "{tmp}/x.h5", "--speed", "nan"), "--speed must be > 0"),
        (("replay", "{tmp}/x.h5", "--wait-for-consumers", "-1"),
         "--wait-for-consumers must be >= 0"),
        (("streams", "--timeout", "nan"), "--timeout must be > 0"),
    ],
)
def test_bad_arguments_get_one_clear_line(tmp_path, args, message):
    demo_dir = resources_dir() / "demo_gait"
    argv = [a.format(tmp=tmp_path, demo_dir=demo_dir) for a in args]
    done = subprocess.run([sys.executable, "-m", "kneegui", *argv], capture_output=True,
                          text=True, timeout=60, env=dict(os.environ))
    assert done.returncode == 2, done.stderr
    assert message in done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / "x.h5").exists()
