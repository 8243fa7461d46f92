"""The calibration wizard end-to-end: simulated lab (real UCI gait of a subject the model never
saw) -> LSL loopback -> hub -> wizard pages -> background fine-tune -> accept -> active model.

Speed 1 on purpose: the hub aligns by timestamps, so a faster replay would compress the gait
(and the EMG) in time and calibrate the model on a gait no person walks.
"""

from __future__ import annotations

import sys
import uuid
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "calibration"))
from calibration_helpers import pretrained_without  # noqa: E402

from kneegui.calibration import Stage, SubjectModelStore  # noqa: E402


@pytest.fixture(scope="session")
def base_model(uci_dir, tmp_path_factory):
    return pretrained_without(uci_dir, tmp_path_factory.getbasetemp())


@pytest.fixture
def live_hub(base_model):
    from kneegui.acquisition import Hub, Role, SimulatedLab, StreamReader, resolve_source_id

    _, target = base_model
    lab = SimulatedLab(source=target.path, loop=True, speed=1.0,
                       source_id_prefix=f"calib-wizard-{uuid.uuid4().hex[:8]}",
                       name_prefix=f"CalibWizard-{uuid.uuid4().hex[:6]}")
    lab.start()
    hub = Hub(model_rate=100.0)
    try:
        emg = resolve_source_id(lab.emg_source_id, timeout=5.0)
        angle = resolve_source_id(lab.angle_source_id, timeout=5.0)
        assert emg and angle, "simulated lab streams not found on loopback"
        hub.assign(Role.EMG, StreamReader(emg[0], role=Role.EMG))
        hub.assign(Role.KNEE_ANGLE, StreamReader(angle[0], role=Role.KNEE_ANGLE))
        hub.start()
        yield hub, lab
    finally:
        hub.stop()
        lab.stop()


def test_wizard_calibrates_an_unseen_subject_end_to_end(qtbot, base_model, live_hub, tmp_path):
    from PySide6 import QtWidgets

    from kneegui.gui.calibration_wizard import (
        PAGE_BASELINE,
        PAGE_RESULT,
        PAGE_SENSORS,
        PAGE_WALK,
        RESULT_PLOT_MIN_HEIGHT,
        CalibrationWizard,
    )
    from kneegui.model.io import weights_digest

    base, target = base_model
    hub, _ = live_hub
    digest = weights_digest(base.net)
    store = SubjectModelStore(root=tmp_path / "models", shipped_dir=tmp_path / "none")
    wizard = CalibrationWizard(hub, store, base)
    qtbot.addWidget(wizard)
    wizard.show()

    wizard.subject_page.subject_id.setText("T-wiz")
    wizard.next()
    assert wizard.currentId() == PAGE_SENSORS
    qtbot.waitUntil(lambda: wizard.sensor_page.isComplete(), timeout=15000)
    assert {c.status for c in wizard.protocol.checks} <= {"ok", "warn"}
    wizard.next()
    assert wizard.currentId() == PAGE_BASELINE
    wizard.next()  # skip rest/MVC
    assert wizard.currentId() == PAGE_WALK and wizard.protocol.stage == Stage.CAPTURE
    wizard.walk_page.target.setValue(4)  # operator lowers the target before walking

    # walking: cycles counted live, auto-advance to fine-tuning, then to the results
    qtbot.waitUntil(lambda: wizard.currentId() == PAGE_RESULT, timeout=150000)
    assert wizard.protocol.stage == Stage.VALIDATION
    assert wizard.tune_page.epochs, "no live loss curve"
    assert "Gait cycles: 4 / 4" in wizard.walk_page.counter.text()
    assert len(wizard.protocol.calibration.train_cycles) == 4
    out = wizard.protocol.outcome
    assert out.after.nmae_last < out.before.nmae_last
    assert out.after.mean_nmae < out.before.mean_nmae
    assert wizard.result_page.activate.isChecked()
    assert wizard.result_page.table.item(0, 0).text().endswith("%")
    # the results are readable: the before/after plot is not squashed by the table, its
    # curves are in the legend, degrees are written "°" (as everywhere in the window)
    page = wizard.result_page
    QtWidgets.QApplication.processEvents()
    assert page.plot.height() >= RESULT_PLOT_MIN_HEIGHT >= 200
    table = page.table
    rows = sum(table.rowHeight(r) for r in range(table.rowCount()))
    assert table.height() >= rows + table.horizontalHeader().height()
    legend = [label.text for _, label in page.plot.getPlotItem().legend.items]
    assert legend[0] == "measured" and legend[1].startswith("before: predicted 500 ms ahead")
    assert legend[2].startswith("after: predicted 500 ms ahead") and len(legend) == 3
    cells = [table.item(r, c).text() for r in range(table.rowCount()) for c in range(3)]
    assert any(c.endswith("°") for c in cells) and not any("deg" in c for c in cells)
    assert page.plot.getPlotItem().getAxis("left").labelText == "knee flexion (°)"

    with qtbot.waitSignal(wizard.modelAccepted, timeout=5000) as accepted:
        wizard.accept()
    path = accepted.args[0]
    assert store.active_path() == Path(path).resolve()
    card = store.load(path).card
    assert card.subject == "T-wiz"
    assert target.subject not in card.training.get("subjects", [])  # base never saw the subject
    assert weights_digest(base.net) == digest  # the previous model object is untouched


def test_wizard_cancel_during_finetune_keeps_everything(qtbot, base_model, live_hub, tmp_path):
    import time

    from kneegui.gui.calibration_wizard import PAGE_TUNE, CalibrationWizard

    base, _ = base_model
    hub, _ = live_hub
    store = SubjectModelStore(root=tmp_path / "models", shipped_dir=tmp_path / "none")
    wizard = CalibrationWizard(hub, store, base)
    qtbot.addWidget(wizard)
    wizard.show()
    wizard.subject_page.subject_id.setText("T-cancel")
    wizard.next()
    wizard.sensor_page.override.setChecked(True)  # no need to wait for the quality window
    wizard.next()
    wizard.next()
    qtbot.waitUntil(lambda: wizard.currentId() == PAGE_TUNE and bool(wizard.tune_page.epochs),
                    timeout=150000)
    n_frames = len(wizard.frame_times)
    qtbot.wait(300)
    assert len(wizard.frame_times) > n_frames  # GUI keeps refreshing while fine-tuning
    t0 = time.perf_counter()
    wizard.tune_page.cancel_btn.click()
    assert not wizard.protocol.worker_alive
    assert time.perf_counter() - t0 < 1.0
    assert wizard.protocol.stage == Stage.CANCELLED
    assert not (tmp_path / "models").exists() and store.active_path() is None
