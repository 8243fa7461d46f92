"""A model's whole predictor as one portable ONNX file, for controllers that cannot run Python
(C/C++, MATLAB/Simulink, embedded runtimes): ``kneegui models export NAME --format onnx``.

The graph (:mod:`~kneegui.portable.predictor_graph`) holds everything
:class:`kneegui.model.Predictor` does — normalisation, the network, the conversion to degrees,
the calibration memory, the extrapolator and the blends — with one named input (``window``:
model-rate rows, columns in :mod:`~kneegui.portable.columns` order) and one named output
(``trajectory_deg``). Qt-free product code: it imports :mod:`kneegui.model` and ``onnx``;
nothing in :mod:`kneegui.model` imports it. Usage: ``docs/portable-predictor.md``.
"""

from kneegui.portable.columns import Column, input_columns, windows
from kneegui.portable.export import ExportError, ExportResult, build, check, export_onnx
from kneegui.portable.predictor_graph import INPUT, OUTPUT

__all__ = [
    "INPUT",
    "OUTPUT",
    "Column",
    "ExportError",
    "ExportResult",
    "build",
    "check",
    "export_onnx",
    "input_columns",
    "windows",
]
