"""FeedbackSuspect on real windows: a model trained on the simulator, windows of its
scenarios judged by the version's real calculators (monitoring/calculators/feedback.py).

Healthy windows (baseline, covariate and gradual drift, the simulator's concept change)
never raise it; inverted labels do, and then the webhook and the built-in rules hold
every retraining the other alerts ask for, as integrity errors do.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from modelwatch.monitoring.calculators.feedback import FeedbackDetails
from modelwatch.monitoring.reference import MonitoringReference
from modelwatch.monitoring.service.app import create_app
from modelwatch.monitoring.service.config import MonitorConfig
from modelwatch.monitoring.suite import fit_calculators
from modelwatch.monitoring.window import evaluate
from modelwatch.training import data, pipeline, simulator

from modelwatch.log import open_store
from tests.monitor_service.runners import RecordingRunner
from tests.monitor_service.test_webhook import alert, payload

TARGET = simulator.TARGET


@pytest.fixture(scope="module")
def version():
    """A gbm on 14,000 baseline rows; its reference: 3,000 held-out rows it scored."""
    ds = data.prepare(
        simulator.generate(17_000, "baseline", 42), TARGET, "simulator:baseline", "auto"
    )
    train, held_out = ds.frame[:14_000], ds.frame[14_000:]
    model = pipeline.build("gbm", ds.numeric, ds.categorical, 42, ds.task).fit(
        train[ds.features], train[TARGET]
    )
    proba = model.predict_proba(held_out[ds.features])
    reference = MonitoringReference.from_scores(
        held_out[ds.features],
        held_out[TARGET],
        model.classes_[proba.argmax(axis=1)],
        proba,
        model.classes_,
        TARGET,
        "binary",
        profile_rows=train[ds.features],
    )
    return model, ds, reference, fit_calculators(reference, chunk_rows=2000)


def _window(
    version, scenario: str, seed: int, invert: bool = False, rows: int = 2000
) -> pd.DataFrame:
    """Rows of the prediction log as serving writes them: features, answer, label."""
    model, ds, _, _ = version
    drawn = simulator.generate(rows, scenario, seed)
    features = data.prepare(drawn, TARGET, "window", "binary").frame[ds.features]
    proba = model.predict_proba(features)
    return features.assign(
        prediction=model.classes_[proba.argmax(axis=1)],
        probability=proba[:, 1],
        label=(1 - drawn[TARGET]) if invert else drawn[TARGET],
        ts=pd.Timestamp.now(tz="UTC"),
        prediction_id=[f"{scenario}-{seed}-{i}" for i in range(rows)],
    )


def _judged(version, *args, **kwargs):
    _, _, reference, calculators = version
    return evaluate("1", calculators, reference, _window(version, *args, **kwargs))


@pytest.mark.parametrize("scenario", ["baseline", "covariate", "gradual", "concept"])
def test_a_healthy_feed_never_raises_it(version, scenario):
    for seed in range(1, 6):
        result = _judged(version, scenario, seed)
        verdict = result.details_of(FeedbackDetails).to_dict()
        assert result.value("feedback_suspect") == 0.0, verdict
        assert verdict["gap"] < verdict["half_width"], verdict  # not even near twice the band


def test_inverted_labels_raise_it_and_say_why(version):
    result = _judged(version, "baseline", 7, invert=True)
    verdict = result.details_of(FeedbackDetails).to_dict()
    assert result.value("feedback_suspect") == 1.0 and verdict["drift"] == []
    assert verdict["realized"] < 0.3 < 0.7 < verdict["estimated"]
    print(
        f"\ninverted labels: live_accuracy {verdict['realized']:.3f}, estimated {verdict['estimated']:.3f}, "
        f"gap {verdict['gap']:.3f} = {verdict['gap'] / verdict['half_width']:.1f} band half-widths"
    )


def test_inverted_labels_on_drifted_inputs_are_left_to_the_drift_alerts(version):
    result = _judged(version, "covariate", 8, invert=True)
    assert result.value("feedback_suspect") == 0.0 and result.details_of(FeedbackDetails).drift


def test_without_labels_it_is_absent_never_zero(version):
    _, _, reference, calculators = version
    unlabelled = _window(version, "baseline", 9).assign(label=np.nan)
    assert evaluate("1", calculators, reference, unlabelled).metric("feedback_suspect") is None


@pytest.fixture
def monitor_app(tmp_path):
    runner = RecordingRunner()
    store = open_store(f"sqlite:///{tmp_path / 'predictions.db'}")
    config = MonitorConfig.from_env(
        tracking_uri="http://127.0.0.1:1",
        log_to_mlflow=False,
        builtin_alerts=True,
        retrain_cooldown_seconds=600,
        retrain_min_rows=0,
    )
    app = create_app(config, store=store, runner=runner, start=False)
    yield app, runner
    store.close()


def test_a_suspect_feed_holds_the_webhook_and_the_builtin_rules(version, monitor_app):
    app, runner = monitor_app
    monitor, rules = app.extensions["modelwatch"].monitor, app.extensions["modelwatch"].rules
    suspect = _judged(version, "baseline", 10, invert=True)
    monitor.last_result = suspect
    answer = app.test_client().post(
        "/alerts",
        json=payload(
            alert("ConceptDriftDetected", model_version="1"),
            alert("ModelAccuracyDegraded", model_version="1"),
        ),
    )
    assert answer.status_code == 202
    assert [r["result"] for r in answer.json["results"]] == ["held", "held"]
    assert answer.json["results"][0]["reason"].startswith("suspect labels: live_accuracy")

    now = [0.0]
    rules._clock = lambda: now[0]
    for _ in range(10):  # ten minutes of it: every retrain rule that fires is held
        monitor.on_window(suspect, None)
        now[0] += 60
    assert {"FeedbackSuspect", "ModelAccuracyDegraded"} <= set(rules.firing)
    assert app.extensions["modelwatch"].trigger.wait_idle(5) and runner.calls == []
    healthy = _judged(version, "baseline", 11)
    monitor.last_result = healthy
    answer = app.test_client().post(
        "/alerts", json=payload(alert("DataDriftDetected", model_version="1"))
    )
    assert answer.json["results"][0]["result"] == "started"
