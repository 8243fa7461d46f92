"""The whole shipped predictor as one ONNX graph: ``window`` in, ``trajectory_deg`` out.

The graph repeats :class:`kneegui.model.Predictor` step by step, in the same number types:

1. subject normalisation (EMG / per-channel scale, angle ``(a - mean) / std``), the angle's
   row-to-row velocity, global standardisation: float32, as ``Predictor.network_inputs``;
2. :class:`~kneegui.model.network.KneeNet` (:mod:`kneegui.portable.network`): float32;
3. to degrees (target scale; residual: last angle + ``y * angle_std``; pretrained angle models:
   the constant-velocity mix ``card.velocity_mix``): float64 from here on, like the Predictor;
4. a subject model's calibration memory: its key of the window, squared distances to every
   stored key, the ``neighbours`` smallest (TopK), the mean of their futures, mixed in at
   ``card.memory.share``;
5. its extrapolator: lag matrix @ coefficients, stacked on top at ``card.extrapolator.share``;
6. a window with a non-finite value gives a row of NaN (the Predictor gives no prediction);
   the trajectory is returned as float32 (the type the live outlet publishes).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from kneegui.model.io import LoadedModel
from kneegui.model.memory import AnalogMemory
from kneegui.portable.columns import Layout, layout
from kneegui.portable.graph import IR_VERSION, OPSET, GraphBuilder
from kneegui.portable.network import add_network

INPUT = "window"
OUTPUT = "trajectory_deg"

F32, F64 = np.float32, np.float64


def predictor_model(model: LoadedModel, doc: str = "") -> Any:
    """An ``onnx.ModelProto`` of ``model``'s whole predictor (no metadata yet)."""
    from onnx import TensorProto, helper

    card = model.card
    lay = layout(card)
    g = GraphBuilder()
    rows = card.rows_needed
    traj = _predictor(g, model, lay)
    inp = helper.make_tensor_value_info(INPUT, TensorProto.FLOAT,
                                        ["batch", rows, lay.n_columns])
    inp.doc_string = (f"{rows} model-rate rows (oldest first, last = now) x {lay.n_columns} "
                      "columns (see metadata input_columns), float32")
    out = helper.make_tensor_value_info(OUTPUT, TensorProto.FLOAT, ["batch", card.horizons])
    out.doc_string = (f"knee angle in degrees at horizons 1..{card.horizons} model steps "
                      "(metadata horizons_ms); NaN row = the window had a non-finite value")
    g.nodes.append(helper.make_node("Identity", [traj], [OUTPUT], name="output"))
    graph = helper.make_graph(g.nodes, "kneegui_predictor", [inp], [out], g.initializers,
                              doc_string=doc)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)],
                             ir_version=IR_VERSION, producer_name="kneegui",
                             doc_string=doc)


def _predictor(g: GraphBuilder, model: LoadedModel, lay: Layout) -> str:
    card = model.card
    rows = card.rows_needed
    angle32 = angle64 = None
    g.scope = "inputs"
    if lay.angle is not None:
        angle32 = g.slice(INPUT, lay.angle, lay.angle + 1, 2, "angle")  # [B, R, 1]
        angle64 = g.op("Squeeze", [g.cast(angle32, F64, "angle_f64"),
                                   g.const("column_axis", [2], np.int64)], "angle_rows")
    y = add_network(g, _network_inputs(g, card, lay, angle32), model.net)
    g.scope = "degrees"
    out = _to_degrees(g, card, y, angle64)
    if model.memory is not None and card.memory is not None:
        g.scope = "memory"
        memory = _memory(g, model.memory, lay, angle64, rows)
        out = _mix(g, out, memory, card.memory.share, "memory_mix")
    if card.extrapolator is not None:
        g.scope = "extrapolator"
        out = _mix(g, out, _extrapolator(g, card, angle64), card.extrapolator.share,
                   "extrapolator_mix")
    g.scope = "output"
    return _nan_for_gaps(g, g.cast(out, F32, "trajectory_f32"))


def _to_degrees(g: GraphBuilder, card: Any, y: str, angle64: str | None) -> str:
    """Network output -> degrees ``[B, H]`` float64 (``Predictor._network`` after the net)."""
    norm, rows = card.norm, card.rows_needed
    subject = norm.subject
    y = g.op("Add", [g.op("Mul", [y, g.const("target_std", norm.target_std, F32)], "y_scaled"),
                     g.const("target_mean", norm.target_mean, F32)], "y")
    if not card.config.residual:  # float32 like the Predictor, then float64
        deg32 = g.op("Add", [g.const("angle_mean", subject.angle_mean, F32),
                             g.op("Mul", [y, g.const("angle_std", subject.angle_std, F32)],
                                  "y_deg")], "absolute_deg")
        return g.cast(deg32, F64, "network_deg")
    last = g.slice(angle64, rows - 1, rows, 1, "last_angle")  # [B, 1]
    change = g.cast(g.op("Mul", [y, g.const("angle_std", subject.angle_std, F32)],
                         "change_deg_f32"), F64, "change_deg")
    out = g.op("Add", [last, change], "network_deg")
    if card.velocity_mix is not None:
        prev = g.slice(angle64, rows - 2, rows - 1, 1, "previous_angle")
        step = g.op("Sub", [last, prev], "step")
        ramp = g.const("steps", np.arange(1, card.horizons + 1), F64)
        cv = g.op("Add", [last, g.op("Mul", [step, ramp], "cv_change")], "constant_velocity")
        out = _mix(g, cv, out, card.velocity_mix.network_share, "velocity_mix")
    return out


def _extrapolator(g: GraphBuilder, card: Any, angle64: str) -> str:
    """The subject extrapolator's forecast ``[B, H]`` (``Extrapolator.predict``)."""
    rows = card.rows_needed
    ex = card.extrapolator.extrapolator
    lags = g.rows(angle64, [rows - 1 - j for j in range(1, ex.lags + 1)], 1, "lag_angles")
    last = g.slice(angle64, rows - 1, rows, 1, "last_angle")
    lagm = g.op("Sub", [lags, last], "lag_matrix")
    return g.op("Add", [last, g.matmul_const(lagm, np.asarray(ex.coef, F64), "ar")],
                "forecast")


def _network_inputs(g: GraphBuilder, card: Any, lay: Layout, angle32: str | None) -> str:
    """Fully normalised network inputs ``[B, window, C]`` float32 (``Predictor.network_inputs``
    on the window's rows; the velocity of the first network row uses the row before it)."""
    rows, window = card.rows_needed, card.window
    first = rows - window
    subject = card.norm.subject
    parts = []
    if lay.n_emg:
        emg = g.slice(g.slice(INPUT, 0, lay.n_emg, 2, "emg"), first, rows, 1, "emg_window")
        parts.append(g.op("Div", [emg, g.const("emg_scale", subject.emg_scale, F32)],
                          "emg_scaled"))
    if angle32 is not None:
        a = g.op("Div", [g.op("Sub", [angle32, g.const("angle_mean", subject.angle_mean, F32)],
                              "angle_centered"),
                         g.const("angle_std", subject.angle_std, F32)], "angle_scaled")
        parts.append(g.slice(a, first, rows, 1, "angle_window"))
        parts.append(g.op("Sub", [g.slice(a, 1, rows, 1, "angle_now"),
                                  g.slice(a, 0, rows - 1, 1, "angle_before")], "velocity"))
    for start, n, what in ((lay.kinematics_start, lay.n_kinematics, "kinematics"),
                           (lay.force_start, lay.n_force, "force")):
        if n:
            parts.append(g.slice(g.slice(INPUT, start, start + n, 2, what), first, rows, 1,
                                 f"{what}_window"))
    x = g.op("Concat", parts, "features", axis=2) if len(parts) > 1 else parts[0]
    norm = card.norm
    return g.op("Div", [g.op("Sub", [x, g.const("input_mean", norm.input_mean, F32)],
                             "features_centered"),
                        g.const("input_std", norm.input_std, F32)], "network_input")


def _memory(g: GraphBuilder, memory: AnalogMemory, lay: Layout, angle64: str | None,
            rows: int) -> str:
    """The calibration memory's forecast ``[B, H]`` (``AnalogMemory.predict``)."""
    p = memory.params
    parts = []
    last = None
    if p.angle_key:
        last = g.slice(angle64, rows - 1, rows, 1, "now")
        hist = g.rows(angle64, [rows - 1 - j for j in range(p.history)][::-1], 1, "history")
        parts += [g.op("Sub", [hist, last], "history_relative"), last]
    if p.emg_key:
        emg64 = g.cast(g.slice(INPUT, 0, lay.n_emg, 2, "emg"), F64, "emg_f64")
        idx = [rows - 1 - j for j in range(0, p.history, p.stride)][::-1]
        env = g.rows(emg64, idx, 1, "emg_history")  # [B, steps, ch]
        env = g.op("Max", [env, g.const("zero", 0.0, F64)], "emg_nonnegative")
        env = g.op("Log", [g.op("Add", [env, g.const("floor", memory.center[1], F64)],
                                "emg_floored")], "emg_log")
        z = g.op("Div", [g.op("Sub", [env, g.const("log_mean", memory.center[0], F64)],
                              "emg_log_centered"), g.const("log_scale", memory.scale, F64)],
                 "emg_z")
        z = g.op("Reshape", [z, g.const("key_shape", [0, len(idx) * lay.n_emg], np.int64)],
                 "emg_key")
        if p.angle_key:
            z = g.op("Mul", [z, g.const("emg_weight", p.emg_weight, F64)], "emg_key_weighted")
        parts.append(z)
    q = g.op("Concat", parts, "key", axis=1) if len(parts) > 1 else parts[0]
    # |q|^2 - 2 q.k + |k|^2, in this order (as AnalogMemory.predict).
    qq = g.op("ReduceSum", [g.op("Mul", [q, q], "key_squared"),
                            g.const("key_axis", [1], np.int64)], "key_norm", keepdims=1)
    # The stored keys and futures stay float32 in the file (as in the model) and are cast to
    # float64 in the graph, exactly as AnalogMemory does.
    keys = g.cast(g.const("stored_keys_t", memory.keys.T, F32), F64, "stored_keys_f64")
    cross = g.op("MatMul", [q, keys], "key_dot")
    dist = g.op("Sub", [qq, g.op("Mul", [cross, g.const("two", 2.0, F64)], "key_dot_2")],
                "distance_partial")
    key_sq = (memory.keys.astype(F64) ** 2).sum(axis=1)
    dist = g.op("Add", [dist, g.const("stored_key_norm", key_sq, F64)], "distance")
    k = min(p.neighbours, len(memory.keys))
    _, nearest = g.op("TopK", [dist, g.const("neighbours", [k], np.int64)], "nearest",
                      outputs=2, axis=1, largest=0, sorted=1)
    futures = g.op("Gather", [g.const("stored_futures", memory.futures, F32), nearest],
                   "neighbour_futures_f32", axis=0)  # [B, k, H]
    futures = g.cast(futures, F64, "neighbour_futures")
    pred = g.op("ReduceMean", [futures], "forecast_relative" if p.angle_key else "forecast",
                axes=[1], keepdims=0)
    if p.angle_key:
        pred = g.op("Add", [pred, last], "forecast")
    return pred


def _mix(g: GraphBuilder, base: str, other: str, share: Any, what: str) -> str:
    """``(1 - w) * base + w * other`` per horizon (:func:`kneegui.model.mixing.mix`)."""
    w = np.asarray(share, F64)
    return g.op("Add", [g.op("Mul", [g.const(f"{what}_keep", 1.0 - w, F64), base],
                             f"{what}_base"),
                        g.op("Mul", [g.const(f"{what}_share", w, F64), other], f"{what}_other")],
                what)


def _nan_for_gaps(g: GraphBuilder, traj: str) -> str:
    """Rows whose window holds NaN or inf become NaN (never a prediction from a gap)."""
    bad = g.op("Or", [g.op("IsNaN", [INPUT], "isnan"), g.op("IsInf", [INPUT], "isinf")],
               "nonfinite")
    any_bad = g.op("ReduceMax", [g.cast(bad, F32, "nonfinite_f32")], "nonfinite_rows",
                   axes=[1, 2], keepdims=0)
    any_bad = g.op("Greater", [any_bad, g.const("zero", 0.0, F32)], "gap")
    any_bad = g.op("Unsqueeze", [any_bad, g.const("row_axis", [1], np.int64)], "gap_rows")
    return g.op("Where", [any_bad, g.const("nan", np.nan, F32), traj], "trajectory")
