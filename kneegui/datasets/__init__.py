"""KneeGUI datasets: readers for public EMG + knee-angle data (UCI "EMG dataset in Lower Limb")."""

from kneegui.datasets.uci import (
    UciFormatError,
    UciRecording,
    find_uci_files,
    load_uci_dataset,
    read_uci_file,
)

__all__ = ["UciFormatError", "UciRecording", "find_uci_files", "load_uci_dataset", "read_uci_file"]
