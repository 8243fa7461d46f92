"""A small ONNX graph builder: named nodes and constants, no framework in between.

Every tensor gets a readable name (``<scope>/<what>``) so the exported graph can be read in a
viewer (Netron) next to ``docs/portable-predictor.md``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

#: The ONNX operator set the predictor graph uses (ONNX 1.12's: it has every operator the graph
#: needs and is what most runtimes and importers accept; tested with ONNX Runtime 1.31.1).
OPSET = 17
#: IR version written into the file (IR 8 is the one that opset 17 came with).
IR_VERSION = 8


class GraphBuilder:
    """Collects nodes and initializers; :meth:`op` returns the name of the node's output."""

    def __init__(self) -> None:
        self.nodes: list[Any] = []
        self.initializers: list[Any] = []
        self._names: set[str] = set()
        self.scope = "predictor"

    def name(self, what: str) -> str:
        """A unique tensor name ``<scope>/<what>`` (suffixed _2, _3... when taken)."""
        base = f"{self.scope}/{what}"
        name, k = base, 1
        while name in self._names:
            k += 1
            name = f"{base}_{k}"
        self._names.add(name)
        return name

    def const(self, what: str, value: Any, dtype: Any) -> str:
        """An initializer holding ``value`` as ``dtype`` (exactly: no further rounding)."""
        from onnx import numpy_helper

        arr = np.ascontiguousarray(np.asarray(value, dtype=dtype))
        name = self.name(what)
        self.initializers.append(numpy_helper.from_array(arr, name))
        return name

    def op(self, op_type: str, inputs: Sequence[str], what: str | None = None,
           outputs: int = 1, **attrs: Any) -> Any:
        """Add one node; returns its output name (or a list of names with ``outputs > 1``)."""
        from onnx import helper

        names = [self.name(what or op_type.lower()) if outputs == 1
                 else self.name(f"{what or op_type.lower()}:{i}") for i in range(outputs)]
        node_name = self.name(f"{what or op_type.lower()}_node")
        self.nodes.append(helper.make_node(op_type, list(inputs), names, name=node_name,
                                           **attrs))
        return names[0] if outputs == 1 else names

    def rows(self, x: str, indices: Sequence[int], axis: int, what: str) -> str:
        """``x`` at fixed ``indices`` along ``axis`` (a Gather with a constant index list)."""
        idx = self.const(f"{what}_index", np.asarray(indices, np.int64), np.int64)
        return self.op("Gather", [x, idx], what, axis=axis)

    def slice(self, x: str, start: int, end: int, axis: int, what: str) -> str:
        """``x[start:end]`` along ``axis``."""
        s = self.const(f"{what}_start", [start], np.int64)
        e = self.const(f"{what}_end", [end], np.int64)
        a = self.const(f"{what}_axis", [axis], np.int64)
        return self.op("Slice", [x, s, e, a], what)

    def cast(self, x: str, to: Any, what: str) -> str:
        from onnx import helper

        return self.op("Cast", [x], what, to=helper.np_dtype_to_tensor_dtype(np.dtype(to)))

    def matmul_const(self, x: str, matrix: np.ndarray, what: str,
                     bias: np.ndarray | None = None) -> str:
        """``x @ matrix (+ bias)`` for ``x [..., n]`` and a constant ``matrix [n, m]``."""
        y = self.op("MatMul", [x, self.const(f"{what}_weight", matrix, matrix.dtype)], what)
        if bias is not None:
            y = self.op("Add", [y, self.const(f"{what}_bias", bias, bias.dtype)], f"{what}_b")
        return y
