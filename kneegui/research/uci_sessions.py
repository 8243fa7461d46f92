"""Build KneeGUI sessions the way a lab records them: replay UCI text files through LSL and
record them with `kneegui record`.

Each file becomes an EMG outlet (type EMG, RF/BF/VM/ST in mV) and a knee-angle outlet (type
Angle, degrees) with unique names and source_ids; sample ``k`` is stamped ``t0 + k / fs`` (the
file's own rate) while the samples are pushed ``pace`` times faster than real time, so a session
holds the file's samples on the file's time base. A `kneegui record` process records the two
streams into ``<out>/<name>.h5``; a ``manifest.toml`` lists the sessions with the UCI subject,
group and activity. Used by the tests (small files) and by the proof that nothing is lost on the
way (docs/datasets.md)::

    python -m kneegui.research.uci_sessions --data ../shared/data/uci_lower_limb_emg \\
        --out sessions/ --pace 4
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

#: Samples per push (10 ms at 1 kHz), as an amplifier driver sends them.
CHUNK_S = 0.01


@dataclass
class OutletSpec:
    """One stream to replay: its LSL description and samples ``[n, ch]`` at ``rate`` Hz."""

    name: str
    type: str
    labels: Sequence[str]
    unit: str
    rate: float
    data: np.ndarray
    source_id: str = ""
    stamp_offset: float = 0.0  # seconds added to every stamp (a sender on another clock)


def make_outlet(spec: OutletSpec):
    import pylsl

    info = pylsl.StreamInfo(spec.name, spec.type, len(spec.labels), spec.rate,
                            pylsl.cf_float32, spec.source_id or spec.name)
    channels = info.desc().append_child("channels")
    for label in spec.labels:
        ch = channels.append_child("channel")
        ch.append_child_value("label", str(label))
        ch.append_child_value("unit", spec.unit)
    return pylsl.StreamOutlet(info, chunk_size=max(1, int(round(CHUNK_S * spec.rate))))


def replay(specs: Sequence[OutletSpec], outlets: Sequence, t0: float, pace: float = 4.0) -> None:
    """Push every stream's samples in 10 ms chunks, sample ``k`` of a stream stamped
    ``t0 + stamp_offset + k / rate``, ``pace`` times faster than real time (all streams
    interleaved by time, as they would arrive)."""
    start = time.monotonic()
    pos = [0] * len(specs)
    duration = max(len(s.data) / s.rate for s in specs)
    step = 0
    while True:
        step += 1
        until = step * CHUNK_S  # seconds of data pushed after this step
        for i, (spec, outlet) in enumerate(zip(specs, outlets, strict=True)):
            end = min(len(spec.data), int(np.ceil(until * spec.rate - 1e-9)))
            if end > pos[i]:
                stamps = t0 + spec.stamp_offset + np.arange(pos[i], end) / spec.rate
                outlet.push_chunk(np.asarray(spec.data[pos[i]:end], np.float32).tolist(),
                                  stamps.tolist())
                pos[i] = end
        if until >= duration:
            return
        lag = start + until / pace - time.monotonic()
        if lag > 0:
            time.sleep(lag)


def uci_outlets(rec, tag: str) -> list[OutletSpec]:
    """The two streams of a UCI recording (EMG RF/BF/VM/ST mV; knee angle degrees)."""
    return [
        OutletSpec(f"uci-emg-{tag}", "EMG", list(rec.channel_labels), "mV", rec.fs,
                   np.asarray(rec.emg, np.float32), f"uci-emg-{tag}"),
        OutletSpec(f"uci-knee-{tag}", "Angle", ["knee_flexion"], "degrees", rec.fs,
                   np.asarray(rec.angle, np.float32)[:, None], f"uci-knee-{tag}"),
    ]


class SessionDiffersError(RuntimeError):
    """The session's time stamps are not the ones the replay sent."""


def record_streams(specs: Sequence[OutletSpec], out: Path, subject: str = "",
                   pace: float = 4.0, timeout: float = 60.0, grid: float | None = 100.0,
                   retries: int = 1) -> Path:
    """Replay ``specs`` through LSL and record them with a `kneegui record` process into the
    session file ``out``; returns ``out``. RuntimeError with the recorder's output on failure.

    ``grid``: the first sample is stamped on a point of a ``grid`` Hz grid (the model time
    base), so the model grid falls on the file's samples as it does for the text file; None
    starts wherever the LSL clock is (the grid then falls between samples, as in a lab).

    The session is checked against what was sent: every sample, each stamped as sent (within
    0.1 ms). A session that differs (seen on a heavily loaded machine: the reader applied one
    bad same-host ``time_correction`` estimate of -38 ms to a whole stream) raises
    :class:`SessionDiffersError` after ``retries`` more attempts, each reported on stderr."""
    for attempt in range(retries + 1):
        path = _record_once(specs, out, subject, pace, timeout, grid)
        problem = _differs(specs, path)
        if problem is None:
            return path
        print(f"warning: {path.name}: {problem}", file=sys.stderr)
        if attempt < retries:
            path.rename(path.with_name(f"{path.stem}.bad{attempt + 1}.h5"))
    raise SessionDiffersError(f"{out}: {problem}")


def _differs(specs: Sequence[OutletSpec], path: Path) -> str | None:
    """Why the session at ``path`` does not hold the samples and stamps sent (None: it does)."""
    from kneegui.recording import open_session

    firsts, offsets = {}, {}
    with open_session(path) as session:
        by_name = {st.attrs.get("name", n): st for n, st in session.streams.items()}
        for spec in specs:
            st = by_name.get(spec.name)
            if st is None or st.length != len(spec.data):
                got = 0 if st is None else st.length
                return f"stream {spec.name}: {got} of {len(spec.data)} samples recorded"
            steps = np.diff(st.timestamps)
            if len(steps) and np.abs(steps - 1.0 / spec.rate).max() > 1e-4:
                return f"stream {spec.name}: stamps not {1.0 / spec.rate:g} s apart"
            firsts[spec.name] = float(st.timestamps[0]) - spec.stamp_offset
            offsets[spec.name] = np.round(st.clock_offsets[:, 1], 6).tolist()
        spread = max(firsts.values()) - min(firsts.values())
    if spread > 1e-4:
        return (f"the streams' first stamps differ by {1000 * spread:.3f} ms although they were "
                f"sent at the same time (clock offsets applied by the recorder, s: {offsets})")
    return None


def _record_once(specs: Sequence[OutletSpec], out: Path, subject: str, pace: float,
                 timeout: float, grid: float | None) -> Path:
    import pylsl

    outlets = [make_outlet(s) for s in specs]
    duration = max(len(s.data) / s.rate for s in specs)
    seconds = duration / pace + 3.0
    cmd = [sys.executable, "-m", "kneegui", "record", "--out", str(out), "--quiet",
           "--duration", f"{seconds:.2f}", "--discover-timeout", "3", "--subject", subject,
           "--streams", *[s.source_id or s.name for s in specs]]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    err_lines: list[str] = []
    started = threading.Event()

    def watch() -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            err_lines.append(line)
            if line.startswith("recording "):
                started.set()

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        deadline = time.monotonic() + timeout
        while not started.wait(0.1):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("kneegui record did not start: " + "".join(err_lines))
        for outlet in outlets:  # every stream subscribed before the first sample is sent
            outlet.wait_for_consumers(10.0)
        time.sleep(0.5)
        # in the past: no stamp of a faster-than-real-time replay may lie in the future when
        # it arrives (the reader would re-base it on its arrival: a clock fault)
        ahead = duration * (1.0 - 1.0 / pace) + max(0.0, *[s.stamp_offset for s in specs])
        t0 = pylsl.local_clock() - ahead - 0.5
        if grid:
            t0 = float(np.ceil(t0 * grid)) / grid
        replay(specs, outlets, t0, pace)
        stdout, _ = proc.communicate(timeout=seconds + timeout)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        watcher.join(2.0)
        del outlets
    if proc.returncode != 0:
        raise RuntimeError(f"kneegui record failed ({proc.returncode}): " + "".join(err_lines))
    return Path(stdout.strip().splitlines()[-1]) if stdout.strip() else out


def record_uci_file(path: Path, out_dir: Path, pace: float = 4.0,
                    grid: float | None = 100.0) -> tuple[Path, object]:
    """Replay one UCI file through LSL and record it: ``(<out_dir>/<name>.h5, UciRecording)``
    (``grid``: see :func:`record_streams`)."""
    from kneegui.datasets.uci import read_uci_file

    rec = read_uci_file(path)
    tag = f"{rec.name}-{uuid.uuid4().hex[:8]}"
    out_dir.mkdir(parents=True, exist_ok=True)
    session = record_streams(uci_outlets(rec, tag), out_dir / f"{rec.name}.h5", rec.subject, pace,
                             grid=grid)
    return session, rec


def write_manifest(out_dir: Path, rows: Sequence[tuple[Path, object]], name: str) -> Path:
    """``manifest.toml`` listing the sessions with the UCI subject, group and activity."""
    lines = [f'name = "{name}"', "",
             "# Sessions recorded from UCI files replayed through LSL (kneegui.research."
             "uci_sessions).", ""]
    for session, rec in rows:
        lines += ["[[recording]]", f'file = "{Path(session).name}"',
                  f'subject = "{rec.subject}"', f'group = "{rec.group}"',
                  f'activity = "{rec.exercise}"', ""]
    path = out_dir / "manifest.toml"
    path.write_text("\n".join(lines))
    return path


def main(argv: Sequence[str] | None = None) -> int:
    from kneegui.datasets.uci import find_uci_files

    p = argparse.ArgumentParser(prog="python -m kneegui.research.uci_sessions",
                                description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", type=Path, required=True, help="folder of UCI text files")
    p.add_argument("--out", type=Path, required=True, help="folder for the sessions")
    p.add_argument("--exercises", default="mar", help="comma list (default mar)")
    p.add_argument("--groups", default="N,A", help="comma list (default N,A)")
    p.add_argument("--pace", type=float, default=4.0,
                   help="push this many times faster than real time (stamps stay at the "
                   "file's rate; default 4)")
    p.add_argument("--off-grid", action="store_true",
                   help="start each replay wherever the LSL clock is (the model grid falls "
                   "between the file's samples) instead of on a 100 Hz grid point")
    args = p.parse_args(argv)
    files = find_uci_files(args.data, args.exercises.split(","), args.groups.split(","))
    if not files:
        print(f"error: no UCI files under {args.data}", file=sys.stderr)
        return 2
    rows = []
    t0 = time.perf_counter()
    for i, f in enumerate(files):
        session, rec = record_uci_file(f, args.out, args.pace,
                                       grid=None if args.off_grid else 100.0)
        rows.append((session, rec))
        print(f"[{i + 1}/{len(files)}] {rec.name} -> {session}", file=sys.stderr)
    manifest = write_manifest(args.out, rows, f"UCI sessions ({args.data.name})")
    print(f"{len(rows)} sessions in {time.perf_counter() - t0:.0f} s; manifest {manifest}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
