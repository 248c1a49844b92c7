"""`POST /alerts` (Alertmanager webhook v4) on the real monitor app, with a real SQLite
prediction store; only the retraining subprocess is a recording stand-in."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from modelwatch.monitoring.service.app import create_app
from modelwatch.monitoring.service.config import MonitorConfig
from modelwatch.monitoring.service.routes import alerts
from modelwatch.monitoring.window import WindowResult

from modelwatch.log import open_store
from tests.monitor_service.runners import RecordingRunner
from tests.services import wait_for
from tests.windows import judged_window

TOKEN = "webhook-secret"


def alert(
    name="DataDriftDetected", status="firing", action="retrain", fingerprint="f00d", **labels
):
    labels = {
        "alertname": name,
        "severity": "major",
        **({"action": action} if action else {}),
        **labels,
    }
    return {
        "status": status,
        "labels": labels,
        "annotations": {"summary": "drift"},
        "startsAt": "2026-01-01T00:00:00Z",
        "endsAt": "0001-01-01T00:00:00Z",
        "fingerprint": fingerprint,
    }


def payload(*alerts, status="firing"):
    return {
        "version": "4",
        "groupKey": "{}:{alertname=\"x\"}",
        "truncatedAlerts": 0,
        "status": status,
        "receiver": "monitor-retrain",
        "groupLabels": {},
        "commonLabels": {},
        "commonAnnotations": {},
        "externalURL": "http://alertmanager",
        "alerts": list(alerts),
    }


@pytest.fixture
def store(tmp_path):
    store = open_store(f"sqlite:///{tmp_path / 'predictions.db'}")
    yield store
    store.close()


@pytest.fixture
def make(store, monkeypatch):
    monkeypatch.delenv("MODELWATCH_WEBHOOK_TOKEN", raising=False)

    def build(runner=None, **config):
        settings = {
            "tracking_uri": "http://127.0.0.1:1",
            "log_to_mlflow": False,
            "retrain_cooldown_seconds": 600,
            "retrain_min_rows": 0,
            **config,
        }  # an empty log
        runner = runner or RecordingRunner()
        app = create_app(
            MonitorConfig.from_env(**settings), store=store, runner=runner, start=False
        )
        return app, app.test_client(), runner

    return build


def metric(client, line_start: str) -> float:
    text = client.get("/metrics").get_data(as_text=True)
    for line in text.splitlines():
        if line.startswith(line_start + " "):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"{line_start} not in /metrics:\n{text}")


@pytest.mark.parametrize("from_env", [False, True])
def test_a_configured_token_is_required(make, monkeypatch, from_env):
    if from_env:
        monkeypatch.setenv("MODELWATCH_WEBHOOK_TOKEN", TOKEN)
        app, client, runner = make()
    else:
        app, client, runner = make(webhook_token=TOKEN)
    body = payload(alert())

    r = client.post("/alerts", json=body)
    assert r.status_code == 401 and r.json["error"]["code"] == "unauthorized"
    r = client.post("/alerts", json=body, headers={"Authorization": "Basic " + TOKEN})
    assert r.status_code == 401
    r = client.post("/alerts", json=body, headers={"Authorization": "Bearer wrong"})
    assert r.status_code == 403 and r.json["error"]["code"] == "forbidden"
    assert runner.calls == []

    r = client.post("/alerts", json=body, headers={"Authorization": f"Bearer {TOKEN}"})
    assert r.status_code == 202 and r.json["results"] == [
        {"alert": "DataDriftDetected", "result": "started"}
    ]
    assert app.extensions["modelwatch"].trigger.wait_idle(10)
    assert runner.calls == ["DataDriftDetected:f00d"]


def test_without_a_token_configured_no_header_is_needed(make):
    app, client, runner = make()
    assert client.post("/alerts", json=payload(alert())).status_code == 202
    assert app.extensions["modelwatch"].trigger.wait_idle(10)
    assert len(runner.calls) == 1


def test_resolved_alerts_and_other_actions_are_ignored(make):
    app, client, runner = make()
    r = client.post("/alerts", json=payload(alert(status="resolved"), status="resolved"))
    assert r.status_code == 202 and r.json["results"] == [
        {"alert": "DataDriftDetected", "result": "ignored"}
    ]
    # the alert's own status wins over the group's
    r = client.post("/alerts", json=payload(alert(status="resolved"), status="firing"))
    assert r.json["results"][0]["result"] == "ignored"
    r = client.post(
        "/alerts",
        json=payload(alert("ServingDown", action="page"), alert("HighLatencyP99", action=None)),
    )
    assert [x["result"] for x in r.json["results"]] == ["ignored", "ignored"]
    r = client.post(
        "/alerts", json=payload({"labels": {"alertname": "NoAction"}, "status": "firing"})
    )
    assert r.json["results"] == [{"alert": "NoAction", "result": "ignored"}]
    time.sleep(0.2)
    assert runner.calls == []
    assert metric(client, 'modelwatch_retrain_in_progress{model="credit-default"}') == 0


@pytest.mark.parametrize(
    "body, content_type, names",
    [
        (b"not json", "application/json", "JSON object"),
        (b"[1, 2]", "application/json", "JSON object"),
        (b'{"alerts": [1]}', "text/plain", "JSON object"),
        (b'{"version": "4"}', "application/json", "`alerts`"),
        (b'{"alerts": "DataDriftDetected"}', "application/json", "`alerts`"),
        (b'{"alerts": [1]}', "application/json", "`alerts`"),
        (b'{"alerts": [{"labels": "DataDriftDetected"}]}', "application/json", "labels"),
        (b'{"alerts": [{"labels": null, "status": "firing"}]}', "application/json", "labels"),
        (
            b'{"alerts": [{"labels": {"alertname": ["x"], "action": "retrain"}, "status": "firing"}]}',
            "application/json",
            "labels",
        ),
        (
            b'{"alerts": [{"labels": {"alertname": "x"}, "status": 1}]}',
            "application/json",
            "status",
        ),
        (
            b'{"alerts": [{"labels": {"alertname": "x"}, "fingerprint": {}}]}',
            "application/json",
            "fingerprint",
        ),
        # JSON nested 100,000 deep (Flask's parser let its RecursionError through: a 500 page)
        (b"[" * 100_000 + b"]" * 100_000, "application/json", "nested too deeply"),
        (
            b'{"alerts": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",
            "application/json",
            "nested too deeply",
        ),
        (b'{"alerts": "\xff"}', "application/json", "not UTF-8"),
        (
            b'{"alerts": [{"labels": {"alertname": "\\ud800", "action": "retrain"}, "status": "firing"}]}',
            "application/json",
            "lone surrogate",
        ),
    ],
)
def test_malformed_payloads_are_a_400_naming_the_problem(make, body, content_type, names):
    app, client, runner = make()
    r = client.post("/alerts", data=body, content_type=content_type)
    assert r.status_code == 400, r.get_data(as_text=True)
    assert r.json["error"]["code"] == "bad_payload"
    assert names in r.json["error"]["message"]
    assert runner.calls == []


def test_a_body_over_the_limit_is_a_413_before_it_is_read(make):
    app, client, runner = make()
    body = {**payload(alert()), "padding": "x" * alerts.MAX_BODY_BYTES}
    r = client.post("/alerts", json=body)
    assert r.status_code == 413 and r.json["error"]["code"] == "payload_too_large"
    assert str(alerts.MAX_BODY_BYTES) in r.json["error"]["message"]
    assert runner.calls == []
    # a group of 100 alerts with Alertmanager's labels and annotations fits
    group = payload(
        *[
            alert(feature=f"feature_{i}", fingerprint=f"{i:016x}", description="d" * 500)
            for i in range(100)
        ]
    )
    assert client.post("/alerts", json=group).status_code == 202


def test_an_unexpected_failure_is_a_logged_json_500(make, monkeypatch, caplog):
    """The last resort: whatever breaks while answering, the answer is JSON, never HTML."""
    app, client, runner = make()

    def broken(*args, **kwargs):
        raise RuntimeError("the trigger broke")

    monkeypatch.setattr(app.extensions["modelwatch"].trigger, "request", broken)
    r = client.post("/alerts", json=payload(alert()))
    assert r.status_code == 500 and r.is_json
    assert r.json["error"]["code"] == "internal_error" and "broke" not in r.get_data(as_text=True)
    assert "the trigger broke" in caplog.text  # in the log, with its traceback


def test_other_methods_and_paths_are_json_errors(make):
    app, client, runner = make()
    r = client.get("/alerts")
    assert r.status_code == 405 and r.json["error"]["code"] == "method_not_allowed"
    r = client.post("/alert", json=payload(alert()))
    assert r.status_code == 404 and r.json["error"]["code"] == "not_found"


def test_a_webhook_storm_makes_exactly_one_retraining_and_answers_fast(make):
    runner = RecordingRunner(hold=True)
    app, client, _ = make(runner=runner)
    trigger = app.extensions["modelwatch"].trigger
    assert (
        metric(client, 'modelwatch_retrains_total{model="credit-default",result="promoted"}') == 0
    )

    # The same drift alert, repeated by Alertmanager and fanned out per feature.
    bodies = [payload(alert(feature=f"f{i % 5}", fingerprint=f"fp{i % 5}")) for i in range(100)]
    timings, results = [], []
    lock = threading.Lock()

    def send(body):
        c = app.test_client()
        started = time.perf_counter()
        r = c.post("/alerts", json=body)
        with lock:
            timings.append(time.perf_counter() - started)
            results.append((r.status_code, r.json["results"][0]["result"]))

    with ThreadPoolExecutor(10) as pool:
        list(pool.map(send, bodies))
    runner.wait_started()
    assert {status for status, _ in results} == {202}
    assert sorted(r for _, r in results) == ["duplicate"] * 99 + ["started"]
    # the retraining is still running (held): the webhook did not wait for it
    assert trigger.running is not None and max(timings) < 1.0
    assert metric(client, 'modelwatch_retrain_in_progress{model="credit-default"}') == 1
    status = client.get("/status?model=credit-default").json
    assert status["retraining"].startswith("DataDriftDetected:")

    runner.release()
    assert trigger.wait_idle(10)
    wait_for(
        lambda: (
            metric(client, 'modelwatch_retrains_total{model="credit-default",result="promoted"}')
            == 1
        ),
        30,
        "a promoted retraining",
    )
    assert metric(client, 'modelwatch_retrain_in_progress{model="credit-default"}') == 0
    assert metric(client, 'modelwatch_retrains_total{model="credit-default",result="failed"}') == 0
    assert (
        metric(client, 'modelwatch_retrain_last_success_timestamp_seconds{model="credit-default"}')
        > time.time() - 60
    )
    # the storm goes on after the run: the cooldown drops it
    r = client.post("/alerts", json=bodies[0])
    assert r.json["results"][0]["result"] == "cooling_down"
    assert len(runner.calls) == 1
    assert client.get("/status?model=credit-default").json["last_retrain"]["result"] == "promoted"


def test_failed_and_rejected_retrainings_are_counted(make):
    runner = RecordingRunner(fail=True)
    app, client, _ = make(runner=runner, retrain_cooldown_seconds=0)
    trigger = app.extensions["modelwatch"].trigger
    client.post("/alerts", json=payload(alert()))
    assert trigger.wait_idle(10)
    wait_for(
        lambda: (
            metric(client, 'modelwatch_retrains_total{model="credit-default",result="failed"}') == 1
        ),
        30,
        "a failed retraining",
    )
    assert (
        metric(client, 'modelwatch_retrain_last_success_timestamp_seconds{model="credit-default"}')
        == 0
    )

    runner.fail, runner.result = False, "rejected"
    r = client.post("/alerts", json=payload(alert("ModelAccuracyDegraded")))
    assert r.json["results"][0]["result"] == "started"
    assert trigger.wait_idle(10)
    wait_for(
        lambda: (
            metric(client, 'modelwatch_retrains_total{model="credit-default",result="rejected"}')
            == 1
        ),
        30,
        "a rejected retraining",
    )
    assert metric(client, 'modelwatch_retrain_in_progress{model="credit-default"}') == 0


def _window_with(integrity: list[dict]) -> WindowResult:
    return judged_window(integrity=integrity, rows=500)


def test_retraining_is_held_while_the_last_window_has_integrity_errors(make):
    app, client, runner = make()
    monitor = app.extensions["modelwatch"].monitor
    monitor.last_result = _window_with(
        [
            {
                "kind": "swapped_columns",
                "columns": ["age", "debt_to_income"],
                "share": 1.0,
                "severity": "error",
            }
        ]
    )
    r = client.post(
        "/alerts",
        json=payload(alert(), alert("ModelAccuracyDegraded"), alert("ServingDown", action="page")),
    )
    assert r.status_code == 202
    results = r.json["results"]
    assert [x["result"] for x in results] == ["held", "held", "ignored"]
    assert "swapped_columns on age+debt_to_income" in results[0]["reason"]
    time.sleep(0.2)
    assert runner.calls == []

    # the data is clean again: the same alert now starts a retraining
    monitor.last_result = _window_with([])
    r = client.post("/alerts", json=payload(alert()))
    assert r.json["results"][0]["result"] == "started"
    assert app.extensions["modelwatch"].trigger.wait_idle(10)
    assert len(runner.calls) == 1


def test_an_alert_retrains_the_model_it_names(make):
    """Two watched models: the alert's `model` label picks whose trigger asks; a model the
    monitor does not watch (or no label, with several watched) is a 422 naming them."""
    runner = RecordingRunner(hold=True)
    app, client, _ = make(runner=runner, models=("credit-default", "house-prices"))
    models = app.extensions["modelwatch"].models
    auth = {"Authorization": f"Bearer {TOKEN}"}
    body = payload(alert(model="house-prices", model_version="3"))
    r = client.post("/alerts", json=body, headers=auth)
    assert r.status_code == 202 and r.json["results"][0]["result"] == "started"
    runner.wait_started()
    assert models["house-prices"].trigger.running.startswith("DataDriftDetected:")
    assert models["credit-default"].trigger.running is None
    assert client.get("/status?model=house-prices").json["retraining"] is not None
    assert client.get("/status?model=credit-default").json["retraining"] is None
    assert (
        metric(client, 'modelwatch_retrain_in_progress{model="house-prices"}') == 1
        and metric(client, 'modelwatch_retrain_in_progress{model="credit-default"}') == 0
    )
    for labels, named in (({"model": "churn"}, "'churn'"), ({}, "no model label")):
        r = client.post("/alerts", json=payload(alert(**labels)), headers=auth)
        assert r.status_code == 422 and r.json["error"]["code"] == "unknown_model"
        assert named in r.json["error"]["message"]
        assert r.json["error"]["details"]["watched"] == ["credit-default", "house-prices"]
    runner.release()
    assert models["house-prices"].trigger.wait_idle(10)
    assert runner.calls == [runner.calls[0]]  # the refused alerts asked nothing
