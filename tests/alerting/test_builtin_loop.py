"""Without Prometheus: the monitor's own rules turn sustained drift into one retraining."""

import pytest
from modelwatch.monitoring.service.app import create_app
from modelwatch.monitoring.service.config import MonitorConfig
from modelwatch.monitoring.window import WindowResult

from modelwatch.log import open_store
from tests.windows import judged_window


def _window(drift_share: float, integrity: list | None = None) -> WindowResult:
    return judged_window(drift_share, integrity)


MODEL = "credit-default"


class _Context:
    reference_accuracy = 0.79


@pytest.fixture
def app(tmp_path):
    """Windows are fed to the rules directly; the retraining subprocess is recorded instead
    of run (the closed-loop test runs the real one)."""
    runs = []
    config = MonitorConfig.from_env(
        model_name=MODEL,
        builtin_alerts=True,
        log_to_mlflow=False,
        retrain_cooldown_seconds=600,
        retrain_min_rows=0,
    )  # an empty log: the labels' wait is tested in test_retrain_trigger
    store = open_store(f"sqlite:///{tmp_path / 'predictions.db'}")
    app = create_app(
        config, store=store, runner=lambda reason: runs.append(reason) or "promoted", start=False
    )
    app.runs = runs
    return app


def _feed(app, windows, clock_step=20):
    monitor, rules = app.extensions["modelwatch"].monitor, app.extensions["modelwatch"].rules
    now = [0.0]
    rules._clock = lambda: now[0]
    for window in windows:
        monitor.on_window(window, _Context())
        now[0] += clock_step
    app.extensions["modelwatch"].trigger.wait_idle(5)


def test_sustained_drift_retrains_once(app):
    _feed(app, [_window(0.18)] * 10)  # 200 s of drift: fires at 60 s, then keeps firing
    assert app.runs == ["DataDriftDetected:builtin"]
    assert app.test_client().get("/status").json["models"][MODEL]["builtin_alerts_firing"] == [
        "DataDriftDetected"
    ]


def test_a_wobble_shorter_than_for_does_not(app):
    _feed(app, [_window(0.18), _window(0.18), _window(0.0), _window(0.18), _window(0.0)])
    assert app.runs == []


def test_integrity_errors_hold_retraining_before_their_own_rule_fires(app):
    """Drift pending since before the data broke fires in the first broken window, while
    DataIntegrityViolation has only begun its `for:`: the broken window still holds it."""
    broken = [{"kind": "swapped_columns", "columns": ["age", "debt_to_income"], "share": 1.0}]
    _feed(app, [_window(0.18)] * 3 + [_window(0.18, broken)])
    firing = app.extensions["modelwatch"].rules.firing
    assert "DataDriftDetected" in firing and "DataIntegrityViolation" not in firing
    assert app.runs == []


def test_integrity_errors_hold_retraining(app):
    broken = [{"kind": "swapped_columns", "columns": ["age", "debt_to_income"], "share": 1.0}]
    _feed(app, [_window(0.18, broken)] * 10)
    assert app.runs == []
    assert "DataIntegrityViolation" in app.extensions["modelwatch"].rules.firing
