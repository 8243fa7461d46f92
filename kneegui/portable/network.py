""":class:`~kneegui.model.network.KneeNet` as ONNX nodes, written out layer by layer.

The network is translated here rather than traced with ``torch.onnx.export``: the export is
instant and byte-for-byte reproducible, needs only the ``onnx`` package (also in the app
bundle), uses opset 17 operators every mainstream runtime has (Conv, LSTM, Softmax, Erf, MatMul),
and names every tensor after the layer it comes from. The price is that this module must follow
KneeNet: :func:`check_structure` refuses a network whose layers or tensors differ from what it
knows, and the export's self-check (:mod:`kneegui.portable.export`) compares the graph with
:class:`kneegui.model.Predictor` every time.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from kneegui.portable.graph import GraphBuilder


class UnsupportedNetworkError(ValueError):
    """The network is not the KneeNet layout this exporter translates."""


def expected_shapes(config: Any) -> dict[str, tuple[int, ...]]:
    """Tensor name -> shape of a KneeNet with ``config`` (its ``state_dict``)."""
    c = config
    h4 = 4 * c.lstm_hidden
    return {
        "conv1.weight": (c.conv_channels, c.n_inputs, c.kernel),
        "conv1.bias": (c.conv_channels,),
        "conv2.weight": (c.conv_channels, c.conv_channels, c.kernel),
        "conv2.bias": (c.conv_channels,),
        "lstm.weight_ih_l0": (h4, c.conv_channels),
        "lstm.weight_hh_l0": (h4, c.lstm_hidden),
        "lstm.bias_ih_l0": (h4,),
        "lstm.bias_hh_l0": (h4,),
        "attention.project.weight": (c.attention_dim, c.lstm_hidden),
        "attention.project.bias": (c.attention_dim,),
        "attention.score.weight": (1, c.attention_dim),
        "head.0.weight": (c.head_hidden, 2 * c.lstm_hidden),
        "head.0.bias": (c.head_hidden,),
        "head.2.weight": (c.horizons, c.head_hidden),
        "head.2.bias": (c.horizons,),
        "skip.weight": (c.horizons, c.n_inputs * c.skip_steps),
        "skip.bias": (c.horizons,),
    }


def check_structure(net: Any) -> dict[str, np.ndarray]:
    """The network's tensors as float32 arrays, after checking that ``net`` is the KneeNet
    layout translated here; :class:`UnsupportedNetworkError` says what differs."""
    from torch import nn

    c = net.config
    problems = []
    lstm = net.lstm
    if not (isinstance(lstm, nn.LSTM) and lstm.num_layers == 1 and not lstm.bidirectional
            and lstm.batch_first and lstm.proj_size == 0):
        problems.append("the LSTM is not a single unidirectional batch-first layer")
    for conv, stride in ((net.conv1, 1), (net.conv2, c.conv_stride)):
        if (tuple(conv.stride) != (stride,) or tuple(conv.padding) != (0,)
                or tuple(conv.dilation) != (1,) or conv.groups != 1):
            problems.append(f"a convolution differs ({conv})")
    gelus = [net.act, net.head[1]]
    if not all(isinstance(g, nn.GELU) and g.approximate == "none" for g in gelus):
        problems.append("the activations are not exact GELU")
    if len(net.head) != 3 or not all(isinstance(net.head[i], nn.Linear) for i in (0, 2)):
        problems.append("the head is not Linear-GELU-Linear")
    state = {k: v.detach().cpu().numpy().astype(np.float32) for k, v in
             net.state_dict().items()}
    shapes = {k: tuple(v.shape) for k, v in state.items()}
    expected = expected_shapes(c)
    if shapes != expected:
        diff = sorted(set(shapes.items()) ^ set(expected.items()))
        problems.append(f"its tensors differ: {diff[:4]}")
    if problems:
        raise UnsupportedNetworkError(
            "the network is not the KneeNet layout kneegui/portable/network.py translates ("
            + "; ".join(problems) + "); update the exporter together with the network")
    return state


def add_network(g: GraphBuilder, x: str, net: Any) -> str:
    """Nodes computing ``net(x)`` for ``x [B, window, C]`` float32; returns ``[B, H]``."""
    w = check_structure(net)
    c = net.config
    scope, g.scope = g.scope, "network"
    try:
        z = g.op("Transpose", [x], "channels_first", perm=[0, 2, 1])  # [B, C, T]
        for i, stride in ((1, 1), (2, c.conv_stride)):
            z = g.op("Conv", [z, g.const(f"conv{i}_weight", w[f"conv{i}.weight"], np.float32),
                              g.const(f"conv{i}_bias", w[f"conv{i}.bias"], np.float32)],
                     f"conv{i}", pads=[c.kernel - 1, 0], strides=[stride])  # causal: left pad
            z = _gelu(g, z, f"conv{i}_gelu")
        seq = g.op("Transpose", [z], "time_first", perm=[2, 0, 1])  # [T', B, conv]
        states, last = _lstm(g, seq, w, c.lstm_hidden)
        pooled = _attention(g, states, w)
        summary = g.op("Concat", [pooled, last], "summary", axis=1)  # [B, 2 * hidden]
        h = g.matmul_const(summary, w["head.0.weight"].T, "head_0", w["head.0.bias"])
        h = _gelu(g, h, "head_gelu")
        out = g.matmul_const(h, w["head.2.weight"].T, "head_2", w["head.2.bias"])
        recent = g.slice(x, c.window - c.skip_steps, c.window, 1, "skip_rows")
        flat = g.op("Reshape", [recent, g.const("skip_shape", [0, c.skip_steps * c.n_inputs],
                                                 np.int64)], "skip_flat")
        skip = g.matmul_const(flat, w["skip.weight"].T, "skip", w["skip.bias"])
        return g.op("Add", [out, skip], "output")  # [B, H]
    finally:
        g.scope = scope


def _gelu(g: GraphBuilder, x: str, what: str) -> str:
    """Exact GELU, ``x * 0.5 * (1 + erf(x / sqrt(2)))`` (torch's ``approximate="none"``)."""
    f32 = np.float32
    erf = g.op("Erf", [g.op("Mul", [x, g.const(f"{what}_rsqrt2", 1.0 / math.sqrt(2.0), f32)],
                            f"{what}_scaled")], f"{what}_erf")
    one_plus = g.op("Add", [erf, g.const(f"{what}_one", 1.0, f32)], f"{what}_1p")
    return g.op("Mul", [g.op("Mul", [x, g.const(f"{what}_half", 0.5, f32)], f"{what}_half_x"),
                        one_plus], what)


def _lstm(g: GraphBuilder, seq: str, w: dict[str, np.ndarray], hidden: int) -> tuple[str, str]:
    """ONNX LSTM for torch's ``nn.LSTM``: gate blocks reordered from torch's (input, forget,
    cell, output) to ONNX's (input, output, forget, cell). Returns every step's hidden state
    ``[B, T', hidden]`` and the last one ``[B, hidden]``."""
    order = [0, 3, 1, 2]

    def gates(a: np.ndarray) -> np.ndarray:
        return np.concatenate([a[k * hidden:(k + 1) * hidden] for k in order], axis=0)

    W = gates(w["lstm.weight_ih_l0"])[None]
    R = gates(w["lstm.weight_hh_l0"])[None]
    B = np.concatenate([gates(w["lstm.bias_ih_l0"]), gates(w["lstm.bias_hh_l0"])])[None]
    y, y_h = g.op("LSTM", [seq, g.const("lstm_W", W, np.float32),
                           g.const("lstm_R", R, np.float32), g.const("lstm_B", B, np.float32)],
                  "lstm", outputs=2, hidden_size=hidden)
    axis1 = g.const("lstm_direction_axis", [1], np.int64)
    states = g.op("Transpose", [g.op("Squeeze", [y, axis1], "lstm_states_tbh")],
                  "lstm_states", perm=[1, 0, 2])  # [B, T', hidden]
    last = g.op("Squeeze", [y_h, g.const("lstm_last_axis", [0], np.int64)], "lstm_last")
    return states, last


def _attention(g: GraphBuilder, states: str, w: dict[str, np.ndarray]) -> str:
    """Additive attention pooling over time: ``softmax_t(v . tanh(W s_t + b))`` weighted sum."""
    e = g.op("Tanh", [g.matmul_const(states, w["attention.project.weight"].T, "attention_project",
                                     w["attention.project.bias"])], "attention_tanh")
    score = g.matmul_const(e, w["attention.score.weight"].T, "attention_score")  # [B, T', 1]
    weights = g.op("Softmax", [score], "attention_weights", axis=1)
    weighted = g.op("Mul", [weights, states], "attention_weighted")
    return g.op("ReduceSum", [weighted, g.const("attention_time_axis", [1], np.int64)],
                "attention_pooled", keepdims=0)
