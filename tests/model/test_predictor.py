"""The predictor's live path (one window, the window rule) against its batched path."""

from __future__ import annotations

import numpy as np
import pytest

from kneegui.model import ModelInputs, Predictor


def test_live_window_matches_the_batched_prediction(small_model, held_out):
    """predict_latest on the newest rows = the batched predict at that end (same code); fewer
    rows than the window rule asks, or a gap inside the window, give no prediction."""
    predictor = Predictor(small_model.model)
    need = predictor.rows_needed
    assert need == small_model.model.card.window + 1  # emg+angle: one row for the velocity
    i = 700
    live = predictor.predict_latest(ModelInputs(held_out.emg_env[: i + 1],
                                                held_out.angle[: i + 1]))
    offline = predictor.predict(ModelInputs.of(held_out), np.array([i]))[0]
    np.testing.assert_allclose(live, offline, rtol=0, atol=1e-4)
    rows = slice(i - need + 2, i + 1)
    short = ModelInputs(held_out.emg_env[rows], held_out.angle[rows])
    assert predictor.predict_latest(short) is None  # one row short: no padded window
    gap = held_out.angle[i - need + 1 : i + 1].copy()
    gap[0] = np.nan  # only the row behind the first velocity: still part of the window
    assert predictor.predict_latest(ModelInputs(held_out.emg_env[i - need + 1 : i + 1],
                                                gap)) is None
    with pytest.raises(ValueError, match="needs the knee angle"):
        predictor.predict_latest(ModelInputs(emg_env=held_out.emg_env[: i + 1]))
    with pytest.raises(ValueError, match="window ends must lie"):
        predictor.predict(ModelInputs.of(held_out), np.array([need - 2]))


def test_predictor_accepts_a_hub_aligned_frame(small_model, held_out):
    from kneegui.acquisition.hub import AlignedFrame

    predictor = Predictor(small_model.model)
    i = 650
    rows = slice(i - 100, i + 1)
    frame = AlignedFrame(t=np.arange(101) / 100.0, emg_env=held_out.emg_env[rows],
                         angle=held_out.angle[rows], kinematics=None, force=None)
    by_frame = predictor.predict_latest(frame)
    by_arrays = predictor.predict_latest(ModelInputs(held_out.emg_env[rows],
                                                     held_out.angle[rows]))
    np.testing.assert_array_equal(by_frame, by_arrays)


def test_the_one_call_forward_equals_the_module_bit_for_bit(small_model, held_out):
    """The Predictor runs the network as one traced graph (one interpreter-lock release per
    prediction); for any batch size it gives exactly what the module gives, and it follows the
    module's weights when they change (fine-tuning trains the same parameters)."""
    import torch

    net = small_model.model.net
    predictor = Predictor(small_model.model)
    x = torch.from_numpy(predictor.network_inputs(ModelInputs.of(held_out))[:400].copy())
    windows = x.unfold(0, predictor.card.window, 1).transpose(1, 2).contiguous()  # (B, T, C)
    with torch.inference_mode():
        for batch in (1, 2, 7, 64, len(windows)):
            assert torch.equal(predictor._forward(windows[:batch]), net(windows[:batch]))
    original = [p.detach().clone() for p in net.parameters()]
    try:
        with torch.no_grad():
            for p in net.parameters():
                p.mul_(1.01)
        with torch.inference_mode():
            assert torch.equal(predictor._forward(windows[:3]), net(windows[:3]))
    finally:
        with torch.no_grad():
            for p, o in zip(net.parameters(), original, strict=True):
                p.copy_(o)
