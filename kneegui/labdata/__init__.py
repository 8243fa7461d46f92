"""The lab's own data: recordings from every source as one type, datasets, and the model time
base.

* :class:`LabRecording` (:mod:`.recording`): EMG ``[n, ch]`` with labels, units and rate, the
  knee angle, other kinematics and force, each on its own time base; subject, group, activity.
  Read from UCI text files, KneeGUI sessions and XDF files by :func:`read_recording`
  (:mod:`.sources`).
* A dataset (:mod:`.manifest`, :mod:`.dataset`) is a folder or a manifest (``.toml`` / ``.csv``):
  files -> subject, group, activity; channel labels -> model inputs.
* :func:`to_model_rate` (:mod:`.series`) puts a recording on the model grid with the live
  path's DSP and alignment code; :func:`usable_pieces` keeps the gap-free walking parts.

Product code (``kneegui calibrate --from`` uses it); Qt-free.
"""

from kneegui.labdata.dataset import LoadedDataset, linked_subjects, load_dataset, wants_activity
from kneegui.labdata.manifest import DatasetEntry, DatasetError, DatasetSpec, open_dataset
from kneegui.labdata.recording import (
    WALKING_ACTIVITIES,
    LabRecording,
    RecordingError,
    Signal,
    is_walking,
    require_angle,
)
from kneegui.labdata.series import (
    ModelRateSeries,
    PieceReport,
    emg_inputs,
    emg_names,
    to_model_rate,
    usable_pieces,
    walking_segments,
)
from kneegui.labdata.sources import StreamChoice, read_recording, recording_from_uci

__all__ = [
    "WALKING_ACTIVITIES",
    "DatasetEntry",
    "DatasetError",
    "DatasetSpec",
    "LabRecording",
    "LoadedDataset",
    "ModelRateSeries",
    "PieceReport",
    "RecordingError",
    "Signal",
    "StreamChoice",
    "emg_inputs",
    "emg_names",
    "is_walking",
    "linked_subjects",
    "load_dataset",
    "open_dataset",
    "read_recording",
    "recording_from_uci",
    "require_angle",
    "to_model_rate",
    "usable_pieces",
    "walking_segments",
    "wants_activity",
]
