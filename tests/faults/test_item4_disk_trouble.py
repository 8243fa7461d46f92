"""Item 4: disk trouble gives the documented message (what happened, what to do), never a
traceback, and never costs what was already written.

Read-only targets and a full disk are real: small tmpfs mounts (as root; a non-root run uses
a read-only folder, a run that may not mount uses a path below a file or a file-size limit).
Before the fix: 4 tracebacks for read-only targets, a traceback for ENOSPC at the start, a
recording under `ulimit -f 2 MB` that stopped at 0.56 MB, `writer_error` always empty, and
ENAMETOOLONG tracebacks for long subject ids and stream names.
"""

from __future__ import annotations

import contextlib
import os
import resource
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np

from kneegui.cli import main
from kneegui.recording import SessionWriter, StreamSpec, open_session


def _mount_tmpfs(path: Path, options: str) -> bool:
    path.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0:
        return False
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)],
                          capture_output=True)
    return done.returncode == 0


@contextlib.contextmanager
def read_only_dir(base: Path):
    """A folder nothing can be written to, and the words its error message uses."""
    target = base / "ro"
    if _mount_tmpfs(target, "ro,size=1m"):
        try:
            yield target, "read-only"
        finally:
            subprocess.run(["umount", "-l", str(target)], check=False)
    elif os.geteuid() != 0:
        target.chmod(0o555)
        try:
            yield target, "no permission"
        finally:
            target.chmod(0o755)
    else:  # root without mount rights: a path below a regular file cannot be created either
        blocker = base / "a-file"
        blocker.write_text("x")
        yield blocker, "not a folder"


def _session(path: Path) -> None:
    w = SessionWriter(path).start()
    key = w.add_stream(StreamSpec("EMG", "EMG", 2, 100.0, "float32", "disk-src"))
    w.write_samples(key, np.ones((50, 2), np.float32), 3 + np.arange(50) / 100)
    w.stop()


def test_read_only_targets_give_the_message_not_a_traceback(tmp_path, capsys, uid, pusher,
                                                           xdf_dir):
    sid = f"ro-{uid}"
    pusher(f"RO-{uid}", sid)
    session = tmp_path / "s.h5"
    _session(session)
    xdf = sorted(xdf_dir.glob("*.xdf"))[0]
    with read_only_dir(tmp_path) as (ro, words):
        cases = [
            (["record", "--out", str(ro / "x.h5"), "--streams", sid, "--duration", "1",
              "--discover-timeout", "3", "--quiet"], 2),
            (["record", "--out", str(ro / "sessions"), "--streams", sid, "--duration", "1",
              "--discover-timeout", "3", "--quiet"], 2),
            (["export", str(session), "--out", str(ro / "csv")], 1),
            (["import-xdf", str(xdf), "--out", str(ro / "imported.h5")], 2),
        ]
        for args, code in cases:
            assert main(args) == code, args
            err = capsys.readouterr().err
            assert "Traceback" not in err, err
            assert words in err and str(ro) in err, (args, err)
    assert not list(tmp_path.glob("**/x.h5"))


def _limit_file_size(limit: int):
    def apply() -> None:  # in the child, before exec: EFBIG instead of SIGXFSZ
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    return apply


def test_a_full_disk_at_the_start_gives_the_message_and_leaves_no_stub(tmp_path, uid, pusher):
    sid = f"full-{uid}"
    pusher(f"Full-{uid}", sid)
    tiny = tmp_path / "tiny"
    mounted = _mount_tmpfs(tiny, "size=64k")
    try:
        done = subprocess.run(
            [sys.executable, "-m", "kneegui", "record", "--out", str(tiny), "--streams", sid,
             "--duration", "1", "--discover-timeout", "3", "--quiet"],
            capture_output=True, text=True, timeout=60, env=dict(os.environ),
            preexec_fn=None if mounted else _limit_file_size(64 * 1024))
    finally:
        if mounted:
            files = list(tiny.iterdir())
            subprocess.run(["umount", "-l", str(tiny)], check=False)
        else:
            files = list(tiny.iterdir())
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    hint = "the drive is full" if mounted else "file-size limit"
    assert "cannot create the session file" in done.stderr and hint in done.stderr
    assert files == []  # no empty stub left behind


def test_a_file_size_limit_records_up_to_the_limit_and_says_why_in_the_file(tmp_path, uid,
                                                                           pusher):
    sid = f"fsize-{uid}"
    source = pusher(f"Fsize-{uid}", sid, channels=64, rate=2000.0, chunk=40)  # 512 KB/s
    out = tmp_path / "limited.h5"
    limit = 2 * 1024 * 1024
    done = subprocess.run(
        [sys.executable, "-m", "kneegui", "record", "--out", str(out), "--streams", sid,
         "--duration", "30", "--discover-timeout", "3", "--quiet"],
        capture_output=True, text=True, timeout=90, env=dict(os.environ),
        preexec_fn=_limit_file_size(limit))
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr
    assert "file-size limit" in done.stderr and "everything flushed" in done.stderr
    assert out.stat().st_size > 0.75 * limit  # before: 0.56 MB of 2 MB (the reservation)
    with open_session(out) as s:
        assert not s.complete
        assert "file-size limit" in s.attrs["writer_error"]  # before: always empty
        counter = s.streams[f"Fsize-{uid}"].data[:, 0]
        assert len(counter) > 2000
        np.testing.assert_array_equal(np.diff(counter), 1)
    assert source.sent > 0


def test_long_subject_ids_and_stream_names_are_recorded_and_exported(tmp_path, capsys, uid,
                                                                     pusher):
    sid = f"long-{uid}"
    name = f"L{uid}-" + "x" * 295  # 307 characters
    pusher(name, sid)
    subject = "S" * 300
    assert main(["record", "--out", str(tmp_path / "rec"), "--streams", sid, "--duration",
                 "1.5", "--subject", subject, "--discover-timeout", "3", "--quiet"]) == 0
    captured = capsys.readouterr()
    path = Path(captured.out.strip())
    assert len(path.name.encode()) < 255 and path.name.startswith("S" * 100)
    with open_session(path) as s:
        assert s.subject_id == subject and s.streams[name].length > 100
    assert main(["export", str(path), "--out", str(tmp_path / "csv")]) == 0
    files = capsys.readouterr().out.split()
    assert any(Path(f).name.startswith(f"L{uid}-xxx") for f in files)
    assert all(len(Path(f).name.encode()) < 255 for f in files)
