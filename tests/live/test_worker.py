"""The prediction worker's window logic on aligned rows (a hub's cursor interface over a real
ring buffer): no prediction before a full window, none from a window with a gap, none lost when
rows arrive in bursts, each equal to the offline predictor's."""

from __future__ import annotations

import numpy as np

from kneegui.acquisition.hub import AlignedFrame
from kneegui.acquisition.ringbuffer import RingBuffer
from kneegui.live.worker import PredictionWorker
from kneegui.model import ModelInputs, Predictor, load_model, shipped_model_path


class AlignedRows:
    """The hub's aligned-row cursor API (``aligned_count``, ``aligned_from``) over a buffer."""

    def __init__(self) -> None:
        self.buffer = RingBuffer(20_000, 5, np.float32)

    def push(self, emg: np.ndarray, angle: np.ndarray, t: np.ndarray) -> None:
        self.buffer.write(np.column_stack([emg, angle]).astype(np.float32), t)

    def aligned_count(self) -> int:
        return self.buffer.total_written

    def aligned_from(self, index: int, max_rows: int | None = None) -> AlignedFrame:
        r = self.buffer.read_from(index, max_rows)
        return AlignedFrame(t=r.timestamps, emg_env=r.data[:, :4], angle=r.data[:, 4],
                            kinematics=None, force=None, next_index=r.next_index, lost=r.lost)


def test_worker_predicts_every_full_gap_free_window_once(held_out):
    predictor = Predictor(load_model(shipped_model_path("emg+angle")))
    need = predictor.rows_needed
    rows = AlignedRows()
    worker = PredictionWorker(rows, predictor, clock=lambda: 0.0)
    n = 600
    emg = held_out.emg_env[:n].copy()
    angle = held_out.angle[:n].copy()
    angle[300] = np.nan  # a gap: the windows holding row 300 give no prediction
    t = np.arange(n) / 100.0
    assert worker.step() == 0  # nothing yet
    made = 0
    for a, b in ((0, 50), (50, 51), (51, 320), (320, 321), (321, n)):  # bursts and single rows
        rows.push(emg[a:b], angle[a:b], t[a:b])
        made += worker.step()
    got, stamps = worker.history.latest(10_000)
    ends = np.round(stamps * 100).astype(int)
    expected = [e for e in range(need - 1, n) if not (e - need + 1 <= 300 <= e)]
    np.testing.assert_array_equal(ends, expected)
    assert made == len(expected) and worker.skipped == need
    offline = predictor.predict(ModelInputs(emg, angle), np.asarray(expected))
    np.testing.assert_allclose(got, offline, atol=1e-3)


def test_a_worker_started_late_predicts_from_then_on_without_waiting_a_window(held_out):
    predictor = Predictor(load_model(shipped_model_path("emg")))
    rows = AlignedRows()
    rows.push(held_out.emg_env[:400], held_out.angle[:400], np.arange(400) / 100.0)
    worker = PredictionWorker(rows, predictor, clock=lambda: 0.0)
    assert worker.step() == 0  # history before the worker started is not predicted again
    rows.push(held_out.emg_env[400:403], held_out.angle[400:403], np.arange(400, 403) / 100.0)
    assert worker.step() == 3  # the rows before it complete the first windows at once
