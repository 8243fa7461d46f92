"""Shared test configuration: headless Qt, loopback-only LSL, and the shared UCI data."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
# Both must be set before Qt or liblsl initialise.
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ["LSLAPICFG"] = str(HERE / "lsl_api.cfg")

REPO = HERE.parent
#: Real-data model fixtures (gait_series, held_out, small_model, subject_model).
pytest_plugins = ("model_fixtures",)
#: The shared UCI "EMG dataset in Lower Limb" folder (read-only).
UCI_DIR = Path(os.environ.get("KNEEGUI_UCI_DIR", REPO.parent / "shared/data/uci_lower_limb_emg"))
XDF_DIR = Path(os.environ.get("KNEEGUI_XDF_DIR", REPO.parent / "shared/data/xdf_examples"))


@pytest.fixture(scope="session")
def uci_dir() -> Path:
    """Path of the shared UCI dataset; the tests need the real data."""
    if not (UCI_DIR / "N_TXT").is_dir():
        raise RuntimeError(f"UCI data not found at {UCI_DIR}; set KNEEGUI_UCI_DIR")
    return UCI_DIR


@pytest.fixture(scope="session")
def xdf_dir() -> Path:
    """Path of the shared reference XDF files."""
    if not XDF_DIR.is_dir():
        raise RuntimeError(f"XDF examples not found at {XDF_DIR}; set KNEEGUI_XDF_DIR")
    return XDF_DIR


# -- leak checks: every test must clean up its threads, Qt widgets and LSL outlets -------------
import leak_checks  # noqa: E402  (tests/ is on sys.path: rootdir conftest)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "allow_leaks(reason): no per-test leak check (say why; e.g. tests that share "
        "a module-scoped window); the module-level check still runs")
    leak_checks.track_outlets()


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    report = yield
    if report.when == "call":
        item.stash[_CALL_FAILED] = report.failed
    return report


_CALL_FAILED = pytest.StashKey[bool]()


@pytest.fixture(scope="module", autouse=True)
def _no_module_leaks(request: pytest.FixtureRequest):
    """Fail the module's last test when the module's fixtures leave something behind."""
    before = leak_checks.snapshot()
    yield
    problems = leak_checks.leaks_since(before)
    if problems:
        pytest.fail(f"{request.module.__name__} (module fixtures) left things behind:\n  "
                    + "\n  ".join(problems), pytrace=False)


@pytest.fixture(autouse=True)
def _no_leaks(request: pytest.FixtureRequest):
    """Fail a test that leaves a thread, a Qt top-level widget or an LSL outlet behind."""
    if request.node.get_closest_marker("allow_leaks"):
        yield
        return
    before = leak_checks.snapshot()
    yield
    if request.node.stash.get(_CALL_FAILED, False):
        return  # the failure is reported; its traceback may still hold the test's objects
    problems = leak_checks.leaks_since(before)
    if problems:
        pytest.fail("the test left things behind (clean them up in the test or fixture):\n  "
                    + "\n  ".join(problems), pytrace=False)
