"""The monitor on real data: a model trained by `python -m modelwatch.training.train` into a real
MLflow server, simulated scenarios scored through the real serving app into a real SQLite
prediction log, then `Monitor.run_once()` window after window, as the service runs it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, replace
from pathlib import Path

import pytest
from mlflow import MlflowClient
from modelwatch.monitoring.service.app import create_app
from modelwatch.monitoring.service.config import MonitorConfig
from modelwatch.monitoring.service.metrics import MonitorMetrics
from modelwatch.monitoring.service.mlflow_log import MonitoringRunLogger
from modelwatch.monitoring.service.monitor import Monitor
from modelwatch.serving.app import create_app as create_serving_app
from modelwatch.serving.app import shutdown_app
from modelwatch.training.simulator import FEATURES, TARGET, generate
from prometheus_client.parser import text_string_to_metric_families

from modelwatch.log import PREDICTION_COLUMNS, open_store
from tests import services
from tests.monitor_service.runners import RecordingRunner
from tests.monitor_service.test_webhook import alert, payload

ROOT = Path(__file__).resolve().parents[2]
ROWS = 1200  # above 1000: the distance tests Evidently picks, no p-value false alarms
SCENARIOS = ("baseline", "covariate", "integrity_swap", "integrity_missing")

# docs/DESIGN.md, Metrics: the monitor's names (prefix modelwatch_), with the labels each needs.
MONITOR_METRICS = {
    "drift_score": {"feature", "test", "model", "model_version"},
    "drift_detected": {"feature", "model", "model_version"},
    "dataset_drift_share": {"model", "model_version"},
    "dataset_drift_detected": {"model", "model_version"},
    "prediction_drift_score": {"model", "model_version"},
    "live_accuracy": {"model", "model_version"},
    "live_f1": {"model", "model_version"},
    "live_roc_auc": {"model", "model_version"},
    "label_coverage_ratio": {"model", "model_version"},
    "estimated_accuracy": {"model", "model_version"},
    "concept_drift_detected": {"model", "model_version"},
    "integrity_missing_ratio": {"feature", "model", "model_version"},
    "integrity_out_of_domain_ratio": {"feature", "model", "model_version"},
    "drift_out_of_range_ratio": {"feature", "model", "model_version"},
    "integrity_issue": {"kind", "feature", "model", "model_version"},
    "monitor_window_rows": {"model", "model_version"},
    "monitor_window_new_rows": {"model", "model_version"},
    "monitor_newest_row_timestamp_seconds": {"model", "model_version"},
    "monitor_last_run_timestamp_seconds": {"model"},
    "monitor_run_duration_seconds": {"model"},
    "retrains_total": {"model", "result"},
    "retrain_in_progress": {"model"},
    "retrain_last_success_timestamp_seconds": {"model"},
}


def train(tracking_uri: str, model_name: str, log: Path) -> str:
    """`python -m modelwatch.training.train`; returns the version that took `production`."""
    with open(log, "ab") as out:
        subprocess.run(
            [
                sys.executable,
                "-m",
                "modelwatch.training.train",
                "--n-rows",
                "3000",
                "--model-name",
                model_name,
                "--promote",
                "always",
            ],
            cwd=ROOT,
            env={**os.environ, "MLFLOW_TRACKING_URI": tracking_uri},
            stdout=out,
            stderr=subprocess.STDOUT,
            check=True,
            timeout=300,
        )
    return MlflowClient(tracking_uri).get_model_version_by_alias(model_name, "production").version


def send_through_serving(client, state, frame) -> list[str]:
    """POST /predict the features, then /feedback every true label, as clients do."""
    records = frame[FEATURES].astype(object).where(frame[FEATURES].notna(), None).to_dict("records")
    r = client.post("/predict", json={"records": records})
    assert r.status_code == 200, r.get_data(as_text=True)
    ids = r.json["prediction_ids"]
    assert state.log.flush(30)
    fb = client.post(
        "/feedback",
        json={
            "feedback": [{"prediction_id": i, "label": int(y)} for i, y in zip(ids, frame[TARGET])]
        },
    )
    assert fb.status_code == 200 and fb.json["accepted"] == len(ids), fb.get_data(as_text=True)
    return ids


def as_records(frame, **changes) -> list[tuple]:
    """Rows read from the log, as the store inserts them (PREDICTION_COLUMNS order)."""
    return [
        tuple(
            {
                **row,
                "features": json.dumps({k: row[k] for k in FEATURES}),
                "shadow_of": None,
                **changes,
            }.get(c)
            for c in PREDICTION_COLUMNS
        )
        for row in frame.astype(object).where(frame.notna(), None).to_dict("records")
    ]


def log_more(run: Run, rows: int = 100) -> None:
    """The log grows: its newest `rows` logged again as new predictions (new ids, now)."""
    newest = run.store.read_window(model_name=run.model, model_version=run.version, limit=rows)
    fresh = newest.assign(
        prediction_id=[uuid.uuid4().hex for _ in range(len(newest))], ts=time.time()
    )
    run.store.insert_predictions(as_records(fresh))


def parse_metrics(text: str) -> dict[str, list]:
    """name -> [(labels, value)], sample names as exposed (counters with _total)."""
    out: dict[str, list] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out.setdefault(sample.name, []).append((sample.labels, sample.value))
    return out


def value(samples: dict, name: str, **labels) -> float:
    matches = [
        v for lab, v in samples.get(name, []) if all(lab.get(k) == w for k, w in labels.items())
    ]
    assert len(matches) == 1, (name, labels, samples.get(name))
    return matches[0]


@dataclass
class Seen:
    result: object
    metrics: dict
    status: dict
    held: dict


@dataclass
class Run:
    model: str
    version: str
    app: object
    seen: dict[str, Seen]
    runner: RecordingRunner
    store: object
    config: MonitorConfig


@pytest.fixture(scope="module")
def monitored(mlflow_url, tmp_path_factory) -> Run:
    tmp = tmp_path_factory.mktemp("monitor-real")
    model = f"credit-default-monitor-{uuid.uuid4().hex[:8]}"
    version = train(mlflow_url, model, tmp / "train.log")
    store_url = f"sqlite:///{tmp / 'predictions.db'}"

    serving = create_serving_app(
        {
            "tracking_uri": mlflow_url,
            "model_name": model,
            "store_url": store_url,
            "spill_dir": str(tmp / "spill"),
            "model_cache_dir": str(tmp / "cache"),
            "reload_interval": 60.0,
            "feedback_wait": 0.3,
        }
    )
    state = serving.extensions["modelwatch"]
    store = open_store(store_url)
    runner = RecordingRunner()
    config = MonitorConfig.from_env(
        tracking_uri=mlflow_url,
        model_name=model,
        store_url=store_url,
        window_rows=ROWS,
        window_seconds=3600,
        min_window_rows=200,
        retrain_cooldown_seconds=0,
        retrain_min_rows=0,
    )  # every window is labelled: an alert starts at once
    app = create_app(config, store=store, runner=runner, start=False)
    monitor, client = app.extensions["modelwatch"].monitor, app.test_client()
    try:
        assert state.models.ready.wait(120), state.models.last_error
        seen = {}
        serving_client = serving.test_client()
        for i, scenario in enumerate(SCENARIOS):
            send_through_serving(serving_client, state, generate(ROWS, scenario, seed=100 + i))
            result = monitor.run_once()
            assert result is not None, monitor.last_error
            held = client.post("/alerts", json=payload(alert())).json["results"][0]
            app.extensions["modelwatch"].trigger.wait_idle(10)
            seen[scenario] = Seen(
                result,
                parse_metrics(client.get("/metrics").get_data(as_text=True)),
                client.get(f"/status?model={model}").json,
                held,
            )
        assert monitor.run_logger.flush(120), "windows were not written to MLflow"
        yield Run(model, version, app, seen, runner, store, config)
    finally:
        shutdown_app(serving)
        monitor.run_logger.close()
        store.close()


def drifted(result) -> set[str]:
    return {name for name, c in result.drift["columns"].items() if c["drifted"]}


def test_baseline_is_quiet(monitored):
    seen = monitored.seen["baseline"]
    r = seen.result
    assert r.rows == ROWS and r.version == monitored.version
    assert drifted(r) == set() and not r.drift["dataset_drift"] and r.drift["drift_share"] == 0
    assert r.integrity == []
    assert r.value("label_coverage_ratio") == 1.0
    assert 0.6 < r.value("live_accuracy") <= 1.0
    assert abs(r.value("estimated_accuracy") - r.value("live_accuracy")) < 0.06
    assert not r.concept_drift
    assert (
        seen.status["last_window"]["drifted_features"] == []
        and seen.status["last_window"]["integrity"] == []
    )
    assert seen.status["version"] == monitored.version and seen.status["last_error"] is None
    assert (
        seen.status["last_window"]["new_rows"] == ROWS
        and seen.status["last_window"]["skipped_windows"] == 0
    )
    # clean data: a retraining alert goes through
    assert seen.held["result"] == "started"


def test_covariate_drift_names_income_and_region(monitored):
    seen = monitored.seen["covariate"]
    r = seen.result
    assert {"income", "region"} <= drifted(r)
    assert r.drift["drift_share"] >= 0.15
    assert r.integrity == []  # a new region is drift, not broken data
    v = monitored.version
    assert value(seen.metrics, "modelwatch_drift_detected", feature="income", model_version=v) == 1
    assert value(seen.metrics, "modelwatch_drift_detected", feature="region", model_version=v) == 1
    assert (
        value(seen.metrics, "modelwatch_drift_detected", feature="credit_score", model_version=v)
        == 0
    )
    assert value(seen.metrics, "modelwatch_dataset_drift_share", model_version=v) == pytest.approx(
        r.drift["drift_share"]
    )
    assert value(seen.metrics, "modelwatch_drift_score", feature="income", model_version=v) > 0.1
    assert seen.held["result"] in ("started", "cooling_down")


def test_swapped_columns_are_an_integrity_issue_naming_the_pair(monitored):
    seen = monitored.seen["integrity_swap"]
    swaps = [i for i in seen.result.integrity if i["kind"] == "swapped_columns"]
    assert len(swaps) == 1 and sorted(swaps[0]["columns"]) == ["age", "debt_to_income"]
    issues = [lab for lab, val in seen.metrics["modelwatch_integrity_issue"] if val == 1]
    assert {(lab["kind"], tuple(sorted(lab["feature"].split("+")))) for lab in issues} >= {
        ("swapped_columns", ("age", "debt_to_income"))
    }
    assert all(lab["model_version"] == monitored.version for lab in issues)
    # broken data never triggers a retraining
    assert seen.held["result"] == "held" and "age" in seen.held["reason"]
    assert "debt_to_income" in seen.held["reason"]


def test_blank_income_is_a_missing_issue(monitored):
    seen = monitored.seen["integrity_missing"]
    missing = [i for i in seen.result.integrity if i["kind"] == "missing"]
    assert [i["columns"] for i in missing] == [["income"]]
    assert 0.25 < missing[0]["share"] < 0.45  # the web channel's share
    assert value(
        seen.metrics,
        "modelwatch_integrity_missing_ratio",
        feature="income",
        model_version=monitored.version,
    ) == pytest.approx(missing[0]["share"])
    assert (
        value(
            seen.metrics,
            "modelwatch_integrity_missing_ratio",
            feature="age",
            model_version=monitored.version,
        )
        == 0
    )
    assert value(seen.metrics, "modelwatch_integrity_issue", kind="missing", feature="income") == 1
    # the swap of the window before is gone from the gauges
    assert not [
        lab
        for lab, _ in seen.metrics["modelwatch_integrity_issue"]
        if lab["kind"] == "swapped_columns"
    ]
    assert seen.held["result"] == "held"
    assert monitored.runner.calls and all(
        c.startswith("DataDriftDetected") for c in monitored.runner.calls
    )


def test_metrics_expose_the_design_names_with_the_model_version(monitored):
    samples = monitored.seen["integrity_missing"].metrics
    for name, labels in MONITOR_METRICS.items():
        full = f"modelwatch_{name}"
        assert full in samples, f"{full} missing from /metrics"
        assert any(set(lab) == labels for lab, _ in samples[full]), (full, samples[full][:3])
        assert {lab["model"] for lab, _ in samples[full]} == {monitored.model}
        if "model_version" in labels:
            assert {lab["model_version"] for lab, _ in samples[full]} == {monitored.version}
    assert value(samples, "modelwatch_monitor_window_rows", model_version=monitored.version) == ROWS
    assert time.time() - value(samples, "modelwatch_monitor_last_run_timestamp_seconds") < 600
    assert value(samples, "modelwatch_monitor_run_duration_seconds") > 0
    assert value(samples, "modelwatch_label_coverage_ratio", model_version=monitored.version) == 1.0
    assert value(samples, "modelwatch_monitor_errors_total", dependency="mlflow") == 0
    assert value(samples, "modelwatch_monitor_errors_total", dependency="store") == 0


def test_windows_are_logged_to_an_mlflow_monitoring_run(monitored, mlflow_url):
    client = MlflowClient(mlflow_url)
    experiment = client.get_experiment_by_name(f"{monitored.model}-monitoring")
    assert experiment is not None
    runs = client.search_runs([experiment.experiment_id])
    assert len(runs) == 1
    run = runs[0]
    assert run.data.tags["modelwatch.model_version"] == monitored.version
    assert run.data.tags["modelwatch.model_name"] == monitored.model
    training_run = client.get_model_version(monitored.model, monitored.version).run_id
    assert run.data.tags["modelwatch.training_run_id"] == training_run

    history = sorted(
        client.get_metric_history(run.info.run_id, "dataset_drift_share"), key=lambda m: m.timestamp
    )
    steps = [m.step for m in history]
    assert len(steps) == len(SCENARIOS) and steps == sorted(set(steps))
    shares = dict(zip(SCENARIOS, [m.value for m in history]))
    assert shares["baseline"] == 0 and shares["covariate"] >= 0.15
    for name in (
        "live_accuracy",
        "estimated_accuracy",
        "window_rows",
        "drift_score.income",
        "integrity_missing_ratio.income",
        "integrity_issues",
    ):
        assert len(client.get_metric_history(run.info.run_id, name)) == len(SCENARIOS), name
    issues = {
        m.step: m.value for m in client.get_metric_history(run.info.run_id, "integrity_issues")
    }
    assert issues[steps[0]] == 0 and issues[steps[2]] >= 1

    # drift began at the covariate window: its report and verdict are artifacts of that step
    step_dir = f"windows/{steps[1]:06d}"
    files = {Path(f.path).name for f in client.list_artifacts(run.info.run_id, step_dir)}
    assert files == {"drift.json", "drift_report.html"}
    assert not client.list_artifacts(run.info.run_id, f"windows/{steps[0]:06d}")
    tmp = Path(client.download_artifacts(run.info.run_id, step_dir))
    verdict = json.loads((tmp / "drift.json").read_text())
    assert (
        verdict["drift"]["columns"]["income"]["drifted"] and verdict["version"] == monitored.version
    )
    html = (tmp / "drift_report.html").read_text()
    assert "<html" in html[:2000].lower() and "income" in html
    # Evidently's headline states the monitor's verdict, with the version's share bound
    said = "detected" if verdict["drift"]["dataset_drift"] else "NOT detected"
    assert f"Dataset Drift is {said}" in html


def builtin_monitor(run: Run, runner=None):
    """A fresh monitor of the module's model with the built-in rules on a clock the test
    moves (one interval per window, as the loop would), logging to the real MLflow."""
    app = create_app(
        replace(run.config, builtin_alerts=True, log_to_mlflow=True),
        store=run.store,
        runner=runner or RecordingRunner(),
        start=False,
    )
    now = [0.0]
    app.extensions["modelwatch"].rules._clock = lambda: now[0]
    return app, now


def window_steps(run: Run, mlflow_url: str) -> list[int]:
    client = MlflowClient(mlflow_url)
    experiment = client.get_experiment_by_name(f"{run.model}-monitoring")
    (found,) = client.search_runs(
        [experiment.experiment_id], f"tags.`modelwatch.model_version` = '{run.version}'"
    )
    return sorted(m.step for m in client.get_metric_history(found.info.run_id, "window_rows"))


def test_a_log_that_stops_growing_is_not_judged_again(monitored, mlflow_url):
    """One batch of rows, then none: the next interval judges nothing, logs no MLflow step,
    refreshes no verdict, and the rule pending on the batch does not fire on it (before,
    the same rows were judged again each interval and their rules' `for:` ran out)."""
    app, now = builtin_monitor(monitored)
    monitor, rules, client = (
        app.extensions["modelwatch"].monitor,
        app.extensions["modelwatch"].rules,
        app.test_client(),
    )
    steps_before = window_steps(monitored, mlflow_url)

    first = monitor.run_once()  # a fresh monitor: every row of the window is new to it
    assert first is not None and first.integrity, monitor.last_error  # the blank-income rows
    assert "DataIntegrityViolation" in rules._since and rules.firing == []  # pending, `for: 30s`
    exported = parse_metrics(client.get("/metrics").get_data(as_text=True))
    v = monitored.version
    assert value(exported, "modelwatch_monitor_window_new_rows", model_version=v) == ROWS

    for interval in (1, 2, 3):
        now[0] = 100.0 * interval  # well past every `for:`
        assert monitor.run_once() is None
        assert rules.firing == [] and "DataIntegrityViolation" not in rules._since
    status = client.get("/status").json["models"][monitored.model]
    window = status["last_window"]
    assert window["new_rows"] == ROWS and window["skipped_windows"] == 3
    assert (
        window["evaluated_at"] == first.evaluated_at and window["checked_at"] > first.evaluated_at
    )
    assert status["builtin_alerts_firing"] == [] and status["last_error"] is None
    stale = parse_metrics(client.get("/metrics").get_data(as_text=True))
    assert value(stale, "modelwatch_monitor_window_new_rows", model_version=v) == 0
    for name, labels in (
        ("modelwatch_integrity_missing_ratio", {"feature": "income"}),
        ("modelwatch_dataset_drift_share", {}),
    ):  # not refreshed: the window's, as exported
        assert value(stale, name, model_version=v, **labels) == value(
            exported, name, model_version=v, **labels
        )
    newest = monitored.store.read_window(model_name=monitored.model, model_version=v, limit=1)[
        "ts"
    ].max()
    assert value(
        stale, "modelwatch_monitor_newest_row_timestamp_seconds", model_version=v
    ) == pytest.approx(newest.timestamp())
    assert monitor.run_logger.flush(60)
    assert len(window_steps(monitored, mlflow_url)) == len(steps_before) + 1  # one window, one step

    # the log grows again: a window of its new rows, and the rule pending from scratch
    log_more(monitored, 100)
    now[0] = 400.0
    again = monitor.run_once()
    assert (
        again is not None
        and client.get("/status").json["models"][monitored.model]["last_window"]["new_rows"] == 100
    )
    assert rules.firing == [] and rules._since["DataIntegrityViolation"] == 400.0
    log_more(monitored, 100)
    now[0] = 430.0
    assert monitor.run_once() is not None and "DataIntegrityViolation" in rules.firing
    assert monitor.run_logger.flush(60)
    assert len(window_steps(monitored, mlflow_url)) == len(steps_before) + 3

    # labels that come after the traffic stopped are news: the same rows are judged again
    now[0] = 460.0
    assert monitor.run_once() is None  # nothing new yet
    unlabelled = monitored.store.read_window(model_name=monitored.model, model_version=v, limit=100)
    assert unlabelled["label"].isna().all()  # log_more's copies have new ids, no labels yet
    monitored.store.store_feedback({i: 0 for i in unlabelled["prediction_id"]})
    now[0] = 490.0
    assert monitor.run_once() is not None
    assert client.get("/status").json["models"][monitored.model]["last_window"]["new_rows"] == 100
    monitor.run_logger.close()


def test_an_interval_without_its_store_judges_nothing(monitored):
    """The store is down (a PostgreSQL log nobody answers for): no window is read, so the
    last verdicts are no newer, and nothing may advance on them."""
    app, now = builtin_monitor(monitored)
    monitor, rules = app.extensions["modelwatch"].monitor, app.extensions["modelwatch"].rules
    assert monitor.run_once() is not None and "DataIntegrityViolation" in rules._since
    monitor.store = open_store(f"postgresql://modelwatch@127.0.0.1:{services.free_port()}/log")
    now[0] = 100.0
    assert monitor.run_once() is None and "store unavailable" in monitor.last_error
    assert rules._since == {} and rules.firing == []
    exported = parse_metrics(app.test_client().get("/metrics").get_data(as_text=True))
    assert (
        value(exported, "modelwatch_monitor_window_new_rows", model_version=monitored.version) == 0
    )
    assert value(exported, "modelwatch_monitor_errors_total", dependency="store") == 1
    monitor.store.close()
    monitor.run_logger.close()


def test_a_promotion_clears_the_old_versions_builtin_alerts(monitored, mlflow_url):
    """builtin_alerts_firing showed the old version's alerts until the new version had a
    window; they go when the monitor switches, pending ones too."""
    app, now = builtin_monitor(monitored)
    monitor, rules, client = (
        app.extensions["modelwatch"].monitor,
        app.extensions["modelwatch"].rules,
        app.test_client(),
    )
    registry = MlflowClient(mlflow_url)
    old = registry.get_model_version(monitored.model, monitored.version)
    assert monitor.run_once() is not None
    log_more(monitored, 100)
    now[0] = 60.0
    assert monitor.run_once() is not None
    assert (
        "DataIntegrityViolation"
        in client.get("/status").json["models"][monitored.model]["builtin_alerts_firing"]
    )
    # the monitor reads a version's tags and reference, never its model: any source will do
    artifacts = registry.get_run(old.run_id).info.artifact_uri
    new = registry.create_model_version(
        monitored.model, f"{artifacts}/reference", old.run_id, tags=old.tags
    )
    services.wait_for(
        lambda: registry.get_model_version(monitored.model, new.version).status == "READY",
        60,
        "the new version",
    )
    registry.set_registered_model_alias(monitored.model, "production", new.version)
    try:
        now[0] = 120.0
        monitor.run_once()  # switches; the new version has no rows yet
        status = client.get("/status").json["models"][monitored.model]
        assert status["version"] == new.version and status["last_window"] is None
        assert status["builtin_alerts_firing"] == [] and rules._since == {}
    finally:
        registry.set_registered_model_alias(monitored.model, "production", monitored.version)
        monitor.run_logger.close()


MLFLOW_CLIENT_ENV = (
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR",
    "MLFLOW_HTTP_REQUEST_TIMEOUT",
)


def errors(metrics: MonitorMetrics, dependency: str) -> float:
    """Failures of `dependency` counted, over every model's series."""
    return sum(
        s.value
        for family in metrics.errors.collect()
        for s in family.samples
        if s.name.endswith("_total") and s.labels["dependency"] == dependency
    )


def test_an_mlflow_outage_neither_stalls_nor_breaks_the_monitor(monitored, monkeypatch):
    """MLflow's client default retries a refused connection for minutes; the monitor
    must fail within seconds, count it, and go on with the version it knew."""
    for name in MLFLOW_CLIENT_ENV:  # as in a fresh monitor process
        monkeypatch.delenv(name, raising=False)
    dead = f"http://127.0.0.1:{services.free_port()}"

    # never reached MLflow: nothing to judge yet, but no exception and no stall
    metrics = MonitorMetrics()
    monitor = Monitor(replace(monitored.config, tracking_uri=dead), metrics, monitored.store, None)
    started = time.monotonic()
    assert monitor.run_once() is None and monitor.run_once() is None
    assert time.monotonic() - started < 20
    assert errors(metrics, "mlflow") == 2 and "mlflow unavailable" in monitor.last_error

    # knew the version, then MLflow went away: windows go on with the last known context
    metrics = MonitorMetrics()
    monitor = Monitor(monitored.config, metrics, monitored.store, None)
    assert monitor.run_once() is not None
    monitor.client = MlflowClient(dead)
    log_more(monitored)
    started = time.monotonic()
    result = monitor.run_once()
    assert time.monotonic() - started < 30
    assert result is not None and result.version == monitored.version and result.rows == ROWS
    assert errors(metrics, "mlflow") == 1
    assert "mlflow unavailable" in monitor.last_error  # a good window does not hide it

    # MLflow is back: no error now, and the outage is still on record with its time
    monitor.client = MlflowClient(monitored.config.tracking_uri)
    log_more(monitored)
    assert monitor.run_once() is not None and monitor.last_error is None
    assert "mlflow unavailable" in monitor.last_failure["error"]
    assert time.time() - monitor.last_failure["at"] < 60
    rows = metrics.window_rows.labels(model=monitored.model, model_version=monitored.version)
    assert rows._value.get() == ROWS


def test_window_records_wait_out_an_mlflow_outage(monitored, tmp_path, monkeypatch):
    """The monitor's MLflow writes go to a second real server that is stopped and started
    again (same port, same backend): nothing is lost, steps stay in order."""
    for name in MLFLOW_CLIENT_ENV:
        monkeypatch.delenv(name, raising=False)
    root, port = tmp_path / "mlflow2", services.free_port()
    metrics = MonitorMetrics()
    logger = None
    try:
        with services.mlflow_server(root, port) as url:
            logger = MonitoringRunLogger(
                url,
                monitored.model,
                on_error=metrics.model(monitored.model).errors.labels(dependency="mlflow").inc,
            )
            monitor = Monitor(monitored.config, metrics, monitored.store, logger)
            assert monitor.run_once() is not None
            assert logger.flush(60) and logger.pending() == 0
        # the server is down now: windows go on, their records wait
        assert errors(metrics, "mlflow") == 0
        for _ in range(2):
            log_more(monitored)
            started = time.monotonic()
            assert monitor.run_once() is not None
            assert time.monotonic() - started < 30
        services.wait_for(lambda: errors(metrics, "mlflow") >= 1, 30, "an MLflow error counted")
        assert not logger.flush(1) and logger.pending() == 2

        with services.mlflow_server(root, port) as url:
            assert logger.flush(60), f"{logger.pending()} windows still pending"
            client = MlflowClient(url)
            experiment = client.get_experiment_by_name(f"{monitored.model}-monitoring")
            runs = client.search_runs([experiment.experiment_id])
            assert len(runs) == 1
            assert runs[0].data.tags["modelwatch.model_version"] == monitored.version
            history = sorted(
                client.get_metric_history(runs[0].info.run_id, "window_rows"), key=lambda m: m.step
            )
            assert [m.step for m in history] == [1, 2, 3]
            assert {m.value for m in history} == {ROWS}
    finally:
        if logger is not None:
            logger.close()


def test_another_models_rows_of_the_same_version_stay_out_of_the_window(monitored):
    """Every model numbers its versions 1, 2, ...: a window of version N of this model must
    not take in version N of another model logging to the same store (last in this module:
    it adds rows to the shared store)."""
    before = Monitor(monitored.config, MonitorMetrics(), monitored.store, None).run_once()
    ours = monitored.store.read_window(
        model_name=monitored.model, model_version=monitored.version, limit=ROWS
    )
    theirs = ours.assign(
        prediction_id="other-" + ours["prediction_id"], ts=time.time(), income=ours["income"] * 5
    )  # newer than ours, and nothing alike
    monitored.store.insert_predictions(as_records(theirs, model_name="some-other-model"))
    assert (
        len(monitored.store.read_window(model_version=monitored.version, limit=2 * ROWS))
        == 2 * ROWS
    )

    after = Monitor(monitored.config, MonitorMetrics(), monitored.store, None).run_once()
    assert after is not None and after.rows == ROWS
    assert (
        after.drift["columns"]["income"]["statistic"]
        == before.drift["columns"]["income"]["statistic"]
    )


# -- one monitor, two models (issue 20) --------------------------------------------------
# A team's two models of different tasks, logged by its own plain script (the one the
# two-models stack test runs, tests/loop/two_models_script.py) and onboarded with
# `modelwatch onboard`, served by two in-process serving apps into one prediction log, and
# watched by ONE monitor app (MODELWATCH_MODELS). About 2 minutes: two onboardings (in
# parallel) and four windows.
TWO_MODELS_SCRIPT = ROOT / "tests" / "loop" / "two_models_script.py"
TEAM = "mon"  # not the stack test's prefix: the MLflow server is the session's
CHURN, HOUSES = f"{TEAM}-churn", f"{TEAM}-houses"
TARGETS = {CHURN: "churned", HOUSES: "price"}


@dataclass
class TwoModels:
    app: object
    servings: dict
    store: object
    tmp: Path


def _log_and_onboard(mlflow_url: str, tmp: Path) -> None:
    env = {**os.environ, "MLFLOW_TRACKING_URI": mlflow_url}
    done = subprocess.run(
        [sys.executable, str(TWO_MODELS_SCRIPT), TEAM, str(tmp)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    onboarding = {
        model: subprocess.Popen(
            [sys.executable, "-m", "modelwatch.cli", "onboard", "--model-name", model]
            + ["--version", "1", "--reference", str(tmp / f"{model}.parquet")]
            + ["--target", target, "--chunk-rows", str(ROWS)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for model, target in TARGETS.items()
    }
    for model, proc in onboarding.items():
        out, _ = proc.communicate(timeout=300)
        assert proc.returncode == 0, f"onboarding {model}:\n{out[-3000:]}"


def _send(serving, frame, target: str) -> None:
    """POST /predict the inputs, then /feedback every label, as the team's clients do."""
    client, state = serving.test_client(), serving.extensions["modelwatch"]
    features = frame.drop(columns=target)
    r = client.post("/predict", json={"records": features.to_dict("records")})
    assert r.status_code == 200, r.get_data(as_text=True)
    ids = r.json["prediction_ids"]
    assert state.log.flush(30)
    labels = frame[target].tolist()
    feedback = [{"prediction_id": i, "label": y} for i, y in zip(ids, labels)]
    assert client.post("/feedback", json={"feedback": feedback}).status_code == 200


@pytest.fixture(scope="module")
def two_models(mlflow_url, tmp_path_factory) -> TwoModels:
    sys.path.insert(0, str(TWO_MODELS_SCRIPT.parent))
    from two_models_script import churn, houses  # noqa: PLC0415 (the script's generators)

    tmp = tmp_path_factory.mktemp("two-models-monitor")
    _log_and_onboard(mlflow_url, tmp)
    store_url = f"sqlite:///{tmp / 'predictions.db'}"  # one prediction log for both
    servings = {
        model: create_serving_app(
            {
                "tracking_uri": mlflow_url,
                "model_name": model,
                "store_url": store_url,
                "spill_dir": str(tmp / model / "spill"),
                "model_cache_dir": str(tmp / model / "cache"),
                "reload_interval": 60.0,
                "feedback_wait": 0.3,
            }
        )
        for model in TARGETS
    }
    store = open_store(store_url)
    config = MonitorConfig.from_env(
        tracking_uri=mlflow_url,
        models=(CHURN, HOUSES),
        store_url=store_url,
        window_rows=ROWS,
        window_seconds=3600,
        min_window_rows=200,
        log_to_mlflow=False,
    )
    app = create_app(config, store=store, runner=RecordingRunner(), start=False)
    try:
        for serving in servings.values():
            state = serving.extensions["modelwatch"]
            assert state.models.ready.wait(120), state.models.last_error
        _send(servings[CHURN], churn(ROWS, seed=3), TARGETS[CHURN])
        _send(servings[HOUSES], houses(ROWS, seed=3), TARGETS[HOUSES])
        yield TwoModels(app, servings, store, tmp)
    finally:
        for serving in servings.values():
            shutdown_app(serving)
        store.close()


def test_one_monitor_judges_two_models_each_under_its_name(two_models):
    state, client = two_models.app.extensions["modelwatch"], two_models.app.test_client()
    assert sorted(state.models) == [CHURN, HOUSES]
    for watched in state.models.values():
        assert watched.monitor.run_once() is not None, watched.monitor.last_error
    samples = parse_metrics(client.get("/metrics").get_data(as_text=True))
    for name, series in samples.items():
        if name.startswith("modelwatch_"):
            assert all(labels.get("model") in (CHURN, HOUSES) for labels, _ in series), name
    # each model's own metrics, under its own name: a classifier's accuracy, a regressor's MAE
    assert value(samples, "modelwatch_monitor_window_rows", model=CHURN) == ROWS
    assert value(samples, "modelwatch_monitor_window_rows", model=HOUSES) == ROWS
    assert value(samples, "modelwatch_live_accuracy", model=CHURN) > 0.6
    assert not [s for s in samples.get("modelwatch_live_accuracy", []) if s[0]["model"] == HOUSES]
    assert value(samples, "modelwatch_live_mae", model=HOUSES) > 1000
    assert not [s for s in samples.get("modelwatch_live_mae", []) if s[0]["model"] == CHURN]
    both = client.get("/status").json
    assert sorted(both["models"]) == both["watched"] == [CHURN, HOUSES]
    for model, metric in ((CHURN, "live_accuracy"), (HOUSES, "live_mae")):
        one = client.get(f"/status?model={model}").json
        assert one["model"] == model and one["version"] == "1" and one["monitored"]
        assert one["last_window"]["rows"] == ROWS
        assert metric in one["last_window"]["metrics"]
        assert one == both["models"][model]
    unknown = client.get("/status?model=nobody")
    assert unknown.status_code == 404 and unknown.json["error"]["details"]["watched"] == [
        CHURN,
        HOUSES,
    ]


def test_star_finds_every_onboarded_model(two_models, mlflow_url):
    """`MODELWATCH_MODELS=*`: the registry's onboarded models, found without a restart."""
    app = create_app(
        MonitorConfig.from_env(tracking_uri=mlflow_url, models=("*",), log_to_mlflow=False),
        store=two_models.store,
        runner=RecordingRunner(),
        start=False,
    )
    state = app.extensions["modelwatch"]
    assert state.models == {}
    assert {CHURN, HOUSES} <= set(state.discover())
    assert state.discover() == []  # found once
    assert app.test_client().get("/status").json["discovers"] is True
