"""The About box: version, what the tool does, and the data attribution."""

from __future__ import annotations

from PySide6 import QtCore, QtWidgets

from kneegui import __version__

ABOUT_HTML = f"""
<h2>KneeGUI {__version__}</h2>
<p>Live knee-angle prediction from EMG over Lab Streaming Layer: causal EMG filtering,
an attention CNN-LSTM predicting the knee trajectory 10–500 ms ahead (after arXiv 2510.13443),
crash-safe HDF5 session recording and few-cycle subject calibration.</p>
<h3>Data attribution</h3>
<p>The shipped pretrained models and the simulated lab's gait clip are derived from the
<b>“EMG dataset in Lower Limb”</b> by Sanchez, O. F. and Sotelo, J. (2014),
UCI Machine Learning Repository,
<a href="https://doi.org/10.24432/C5ZW3P">DOI 10.24432/C5ZW3P</a>,
licensed under <a href="https://creativecommons.org/licenses/by/4.0/">CC BY 4.0</a>.</p>
<p>Built with PySide6 (Qt), pyqtgraph, PyTorch, pylsl (liblsl) and h5py.
KneeGUI itself is MIT-licensed.</p>
"""


def show_about(parent: QtWidgets.QWidget | None) -> QtWidgets.QMessageBox:
    """Open the About box (non-modal) and return it."""
    box = QtWidgets.QMessageBox(parent)
    box.setWindowTitle("About KneeGUI")
    box.setTextFormat(QtCore.Qt.RichText)
    box.setText(ABOUT_HTML)
    box.setStandardButtons(QtWidgets.QMessageBox.Ok)
    box.setModal(False)
    box.show()
    return box
