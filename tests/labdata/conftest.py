"""Sessions recorded the way a lab records them (real UCI gait files replayed through LSL on
loopback, recorded by `kneegui record` subprocesses), XDF files written by the tests' writer,
and the lab layout (8 EMG channels at 2 kHz, a goniometer on another clock). Built once per test
session; names and source_ids are unique per run."""

from __future__ import annotations

import sys
import threading
import uuid
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))

from lab_helpers import LAB_EMG_MAP, lab_outlets, write_lab_manifest  # noqa: E402
from xdf_writer import XdfStream, write_xdf  # noqa: E402

#: Gait files recorded as sessions: two normal-group and one abnormal-group subject (the
#: abnormal one has 8 gait cycles: enough to calibrate from).
SESSION_FILES = ("7Nmar", "8Nmar", "2Amar")
#: Gait files recorded in the lab layout (training of the 8-channel model).
LAB_FILES = ("7Amar", "2Amar")
PACE = 4.0


def _uci(uci_dir: Path, name: str):
    from kneegui.datasets.uci import find_uci_files, read_uci_file

    (path,) = [p for p in find_uci_files(uci_dir) if p.stem == name]
    return read_uci_file(path)


def _parallel(jobs):
    """Run ``jobs`` (callables) in threads; re-raise the first failure."""
    results, errors = [None] * len(jobs), []

    def run(i, job):
        try:
            results[i] = job()
        except BaseException as exc:  # noqa: BLE001 - re-raised below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i, j)) for i, j in enumerate(jobs)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(180.0)
    if errors:
        raise errors[0]
    return results


@pytest.fixture(scope="session")
def recorded_sessions(uci_dir, tmp_path_factory):
    """{name: (session path, UciRecording)} and the manifest listing them."""
    from kneegui.research.uci_sessions import record_streams, uci_outlets, write_manifest

    out = tmp_path_factory.mktemp("uci_sessions")
    recs = [_uci(uci_dir, n) for n in SESSION_FILES]
    tag = uuid.uuid4().hex[:8]
    jobs = [lambda r=r: record_streams(uci_outlets(r, f"{r.name}-{tag}"), out / f"{r.name}.h5",
                                       r.subject, PACE) for r in recs]
    paths = _parallel(jobs)
    manifest = write_manifest(out, list(zip(paths, recs, strict=True)), "uci sessions")
    return {r.name: (p, r) for p, r in zip(paths, recs, strict=True)}, manifest


@pytest.fixture(scope="session")
def lab_sessions(uci_dir, tmp_path_factory):
    """Lab-layout sessions of :data:`LAB_FILES` (recorded by `kneegui record`) and their
    manifest ``lab.toml`` (channel map, inputs RF..SOL)."""
    from kneegui.research.uci_sessions import record_streams

    out = tmp_path_factory.mktemp("lab_sessions")
    recs = [_uci(uci_dir, n) for n in LAB_FILES]
    tag = uuid.uuid4().hex[:8]
    jobs = [lambda r=r: record_streams(lab_outlets(r, f"{r.name}-{tag}"),
                                       out / f"lab_{r.name}.h5", r.subject, PACE) for r in recs]
    paths = _parallel(jobs)
    manifest = write_lab_manifest(out, {p.name: (r.subject, r.group)
                                        for p, r in zip(paths, recs, strict=True)})
    return {r.name: (p, r) for p, r in zip(paths, recs, strict=True)}, manifest


def lab_xdf(rec, path: Path, clock_ahead: float = 1234.5) -> Path:
    """An XDF file of ``rec`` in the lab layout, as LabRecorder writes it: the goniometer ran on
    a clock ``clock_ahead`` s ahead of the amplifier's (the recorder's), with the recorder's
    clock offset measurements (-clock_ahead, jittered)."""
    specs = lab_outlets(rec, "xdf", clock_ahead=clock_ahead)
    t0 = 5000.0
    rng = np.random.default_rng(1)
    streams = []
    for spec in specs:
        t = t0 + spec.stamp_offset + np.arange(len(spec.data)) / spec.rate
        offsets = []
        if spec.stamp_offset:
            # collection times on the sender's clock, as LabRecorder writes them
            offsets = [(float(tc), -spec.stamp_offset + 2e-5 * rng.standard_normal())
                       for tc in np.arange(t[0], t[-1] + 5.0, 5.0)]
        streams.append(XdfStream(spec.name, spec.type, spec.rate, spec.data, t,
                                 list(spec.labels), [spec.unit] * len(spec.labels),
                                 source_id=spec.source_id, clock_offsets=offsets))
    return write_xdf(path, streams)


@pytest.fixture(scope="session")
def lab_xdf_file(uci_dir, tmp_path_factory):
    """(XDF path, UciRecording) of the abnormal subject with 8 gait cycles, lab layout."""
    rec = _uci(uci_dir, "2Amar")
    return lab_xdf(rec, tmp_path_factory.mktemp("xdf") / "2A_walk.xdf"), rec


__all__ = ["LAB_EMG_MAP", "lab_xdf"]
