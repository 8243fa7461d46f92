"""Loading a dataset (folder or manifest) into :class:`LabRecording` objects, with every file
that cannot be used reported (never silently dropped)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from kneegui.labdata.manifest import DatasetEntry, DatasetSpec, open_dataset
from kneegui.labdata.recording import LabRecording, RecordingError, is_walking
from kneegui.labdata.sources import read_recording, recording_from_uci


@dataclass
class LoadedDataset:
    """The recordings of a dataset that were read, and why the others were not."""

    spec: DatasetSpec
    recordings: list[LabRecording]
    problems: list[tuple[Path, str]] = field(default_factory=list)
    duplicates: dict[str, str] = field(default_factory=dict)  # name -> the recording it repeats


def wants_activity(activity: str, wanted: Iterable[str] | None) -> bool:
    """True when ``activity`` is selected by ``wanted`` (None: all). A walking name in
    ``wanted`` (walk, gait, mar...) selects walking activities and unlabelled recordings (whose
    walking the gait detector finds); other names select that activity."""
    if wanted is None:
        return True
    for token in wanted:
        if is_walking(token) and (is_walking(activity) or not activity.strip()):
            return True
        if token.strip().casefold() == activity.strip().casefold():
            return True
    return False


def _uci_recording(entry: DatasetEntry):
    from kneegui.datasets.uci import UciFormatError, read_uci_file

    try:
        return read_uci_file(entry.path)
    except UciFormatError as exc:
        raise RecordingError(str(exc)) from exc


def _read(entry: DatasetEntry, spec: DatasetSpec) -> tuple[LabRecording, object | None]:
    channel_map = {**spec.channel_map, **entry.channel_map}
    if entry.path.suffix.lower() == ".txt":
        uci = _uci_recording(entry)
        rec = recording_from_uci(uci)
        if entry.angle_sign < 0:
            assert rec.angle is not None
            rec = replace(rec, angle=replace(rec.angle, data=-rec.angle.data))
        rec = replace(rec, subject=entry.subject or rec.subject,
                      group=entry.group if entry.group is not None else rec.group,
                      activity=entry.activity if entry.activity is not None else rec.activity,
                      channel_map=channel_map, start_s=entry.start_s, end_s=entry.end_s)
        return rec, uci
    rec = read_recording(entry.path, subject=entry.subject, group=entry.group,
                         activity=entry.activity, channel_map=channel_map, streams=entry.streams,
                         start_s=entry.start_s, end_s=entry.end_s, angle_sign=entry.angle_sign)
    return rec, None


def load_dataset(
    source: str | Path | DatasetSpec,
    activities: Sequence[str] | None = None,
    groups: Sequence[str] | None = None,
    progress: Callable[[int, int, Path], None] | None = None,
    drop_duplicates: bool = True,
) -> LoadedDataset:
    """Read the recordings of a dataset selected by activity (:func:`wants_activity`) and
    group (case-insensitive; None: all). UCI recordings that repeat an earlier one's samples
    (e.g. ``2Npie`` = ``1Npie``) are listed in ``duplicates`` and left out (unless
    ``drop_duplicates=False``)."""
    spec = source if isinstance(source, DatasetSpec) else open_dataset(source)
    wanted_groups = None if groups is None else {g.strip().casefold() for g in groups}
    out = LoadedDataset(spec, [])
    ucis = []
    for i, entry in enumerate(spec.entries):
        try:
            rec, uci = _read(entry, spec)
        except RecordingError as exc:
            out.problems.append((entry.path, str(exc)))
        else:
            if wants_activity(rec.activity, activities) and (
                    wanted_groups is None or rec.group.casefold() in wanted_groups):
                out.recordings.append(rec)
                if uci is not None:
                    ucis.append((uci, rec))
        if progress is not None:
            progress(i + 1, len(spec.entries), entry.path)
    if ucis:
        from kneegui.datasets.uci import mark_duplicates

        marked = mark_duplicates([u for u, _ in ucis])
        dropped = set()
        for u, (_, rec) in zip(marked, ucis, strict=True):
            if u.duplicate_of is not None:
                out.duplicates[rec.name] = u.duplicate_of
                dropped.add(id(rec))
        if drop_duplicates:
            out.recordings = [r for r in out.recordings if id(r) not in dropped]
    return out


def linked_subjects(spec: DatasetSpec) -> dict[str, set[str]]:
    """Subjects that share a duplicated UCI recording (e.g. 1N and 2N): an evaluation never
    splits them across folds. Other sources have no such links."""
    from kneegui.datasets.uci import linked_by_duplicates, mark_duplicates

    recs = []
    for entry in spec.entries:
        if entry.path.suffix.lower() != ".txt":
            continue
        try:
            recs.append(_uci_recording(entry))
        except RecordingError:
            continue
    return linked_by_duplicates(mark_duplicates(recs))
