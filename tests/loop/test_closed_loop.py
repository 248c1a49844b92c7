"""The whole loop on real processes: MLflow server, serving (gunicorn), monitor,
Prometheus, Alertmanager and Pushgateway, as `modelwatch up` starts them.

baseline traffic raises no alert; covariate drift fires DataDriftDetected, the webhook
starts exactly one retraining, the new version is approved, the alias moves and serving
reloads it; integrity_swap fires DataIntegrityViolation and retrains nothing; the
monitoring runs in MLflow hold the windows; every Grafana panel's query returns data.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import mlflow
import pytest
import requests
from mlflow import MlflowClient

from modelwatch.stack import Stack
from modelwatch.traffic import simulate
from tests.services import free_port
from tests.stack_config.dashboards import panel_queries

pytestmark = pytest.mark.skipif(
    not all(shutil.which(b) for b in ("prometheus", "prometheus-alertmanager", "prometheus-pushgateway")),
    reason="Prometheus, Alertmanager and Pushgateway are installed by `make setup` as root",
)
BIN = Path(sys.executable).parent
TOKEN = "loop-test-token"
RETRAIN_ALERTS = {"DataDriftDetected", "ConceptDriftDetected", "ModelAccuracyDegraded"}
timings: dict[str, float] = {}


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    home = tmp_path_factory.mktemp("stack")
    ports = {name: free_port() for name in ("mlflow", "serving", "monitor", "prometheus", "alertmanager", "pushgateway")}
    stack = Stack(home, ports, env={
        "MODELWATCH_WEBHOOK_TOKEN": TOKEN,
        "MODELWATCH_MONITOR_INTERVAL": "3",
        # Short, so that only the integrity safeguards can keep integrity_swap from retraining.
        "MODELWATCH_RETRAIN_COOLDOWN": "5",
    })
    try:
        stack.up()
        env = {**os.environ, **stack.service_env()}
        done = subprocess.run([str(BIN / "modelwatch"), "train", "--n-rows", "8000"], env=env,
                              capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stderr[-3000:]
        _wait(lambda: requests.get(stack.url("serving") + "/ready", timeout=2).ok, 120, "serving ready")
        yield stack
    finally:
        stack.down()


def test_baseline_raises_no_alert(stack):
    firing = _alerts_during(stack, lambda: simulate(stack.url("serving"), "baseline", rate=40, duration=75,
                                                   label_delay=1, seed=1))
    assert firing == set(), f"alerts on baseline traffic: {firing}"
    status = requests.get(stack.url("monitor") + "/status", timeout=5).json()
    assert status["version"] == "1" and status["last_window"]["drifted_features"] == []
    assert status["last_window"]["live_accuracy"] > 0.7
    assert _retrains(stack) == {"promoted": 0, "rejected": 0, "failed": 0}


def test_covariate_drift_retrains_once_promotes_and_reloads(stack):
    stop = threading.Event()
    onset = time.monotonic()
    traffic = threading.Thread(target=_stream, args=(stack, "covariate", stop), daemon=True)
    traffic.start()
    try:
        _wait(lambda: _served_version(stack) == "2", 420, "serving version 2")
        timings["drift onset to new version served (s)"] = time.monotonic() - onset
    finally:
        stop.set()
        traffic.join()
    client = MlflowClient(stack.url("mlflow"))
    version = client.get_model_version_by_alias("credit-default", "production")
    assert version.version == "2"
    assert version.tags["trigger"].startswith("DataDriftDetected:")
    assert version.tags["validation_status"] == "approved"
    assert _retrains(stack) == {"promoted": 1, "rejected": 0, "failed": 0}
    assert _prometheus(stack, 'max_over_time(ALERTS{alertname="DataDriftDetected",alertstate="firing"}[15m])')
    answer = requests.post(stack.url("serving") + "/predict", timeout=10,
                           json={"records": [_record()]}).json()
    assert answer["model"]["version"] == "2"
    print(f"\nclosed loop: {timings}")


def test_integrity_swap_pages_and_never_retrains(stack):
    before = _retrains(stack)
    firing = _alerts_during(stack, lambda: simulate(stack.url("serving"), "integrity_swap", rate=40,
                                                   duration=90, label_delay=1, seed=3))
    assert "DataIntegrityViolation" in firing
    time.sleep(20)  # anything the webhook started would be running by now
    assert _retrains(stack) == before
    assert _metric(stack, "monitor", "modelwatch_retrain_in_progress") == 0
    assert _served_version(stack) == "2"
    status = requests.get(stack.url("monitor") + "/status", timeout=5).json()
    swapped = [i for i in status["last_window"]["integrity"] if i["kind"] == "swapped_columns"]
    assert swapped and sorted(swapped[0]["columns"]) == ["age", "debt_to_income"]


def test_monitoring_runs_hold_the_windows(stack):
    client = MlflowClient(stack.url("mlflow"))
    experiment = client.get_experiment_by_name("credit-default-monitoring")
    runs = {r.data.tags["modelwatch.model_version"]: r for r in client.search_runs([experiment.experiment_id])}
    assert {"1", "2"} <= set(runs)
    history = client.get_metric_history(runs["1"].info.run_id, "dataset_drift_share")
    steps = [m.step for m in history]
    assert len(history) >= 5 and steps == sorted(steps)
    assert max(m.value for m in history) >= 0.15  # the covariate windows
    for metric in ("live_accuracy", "estimated_accuracy", "label_coverage", "latency_p95_ms", "drift_score.income"):
        assert client.get_metric_history(runs["1"].info.run_id, metric), metric
    assert runs["1"].data.tags["modelwatch.training_run_id"] == client.get_model_version("credit-default", "1").run_id
    artifacts = [a.path for w in client.list_artifacts(runs["1"].info.run_id, "windows")
                 for a in client.list_artifacts(runs["1"].info.run_id, w.path)]
    assert any(p.endswith("drift_report.html") for p in artifacts)
    assert any(p.endswith("drift.json") for p in artifacts)


def test_batch_score_pushes_to_the_pushgateway(stack, tmp_path):
    from training.simulator import generate

    generate(500, "baseline", seed=9).drop(columns="defaulted").to_csv(tmp_path / "batch.csv", index=False)
    env = {**os.environ, **stack.service_env()}
    done = subprocess.run(
        [str(BIN / "mlflow"), "run", str(Path(__file__).resolve().parents[2]), "-e", "batch_score",
         "--env-manager", "local", "-P", f"data={tmp_path / 'batch.csv'}", "-P", f"output={tmp_path / 'scored.parquet'}",
         "-P", f"pushgateway=127.0.0.1:{stack.ports['pushgateway']}"],
        env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    import pandas as pd

    scored = pd.read_parquet(tmp_path / "scored.parquet")
    assert len(scored) == 500 and {"prediction", "probability"} <= set(scored.columns)
    pushed = requests.get(stack.url("pushgateway") + "/metrics", timeout=5).text
    assert 'modelwatch_batch_rows_scored{instance="",job="modelwatch_batch_score",model="credit-default"} 500' in pushed


def test_every_grafana_panel_returns_data(stack):
    """Over the span of this module, as a dashboard of its last 15 minutes would show it
    (annotations mark events, so an instant query would miss them)."""
    bad = requests.post(stack.url("serving") + "/predict", json={"records": [{"age": 30}]}, timeout=5)
    assert bad.status_code == 422  # something for the input-errors panel to show
    time.sleep(12)  # two scrapes after the batch job's push and the bad request
    end = time.time()
    empty = [f"{q.dashboard_uid} / {q.panel_title}: {q.expr}" for q in panel_queries()
             if not _prometheus_range(stack, q.expr, end - 900, end)]
    assert empty == [], "panels without data:\n" + "\n".join(empty)


# -- helpers ------------------------------------------------------------------------------------
def _stream(stack: Stack, scenario: str, stop: threading.Event) -> None:
    seed = 10
    while not stop.is_set():
        simulate(stack.url("serving"), scenario, rate=40, duration=10, label_delay=1, seed=seed)
        seed += 1


def _alerts_during(stack: Stack, action) -> set[str]:
    """Names of every alert pending or firing in Prometheus while `action` runs."""
    seen: set[str] = set()
    done = threading.Event()

    def poll():
        while not done.is_set():
            for series in _prometheus(stack, 'ALERTS{alertstate=~"pending|firing"}'):
                seen.add(series["metric"]["alertname"])
            done.wait(3)

    poller = threading.Thread(target=poll, daemon=True)
    poller.start()
    try:
        action()
    finally:
        done.set()
        poller.join()
    return seen


def _prometheus(stack: Stack, query: str) -> list:
    answer = requests.get(stack.url("prometheus") + "/api/v1/query", params={"query": query}, timeout=10).json()
    assert answer["status"] == "success", answer
    return answer["data"]["result"]


def _prometheus_range(stack: Stack, query: str, start: float, end: float) -> list:
    answer = requests.get(stack.url("prometheus") + "/api/v1/query_range", timeout=20,
                          params={"query": query, "start": start, "end": end, "step": 5}).json()
    assert answer["status"] == "success", answer
    return answer["data"]["result"]


def _metric(stack: Stack, component: str, name: str, labels: str = "") -> float:
    for line in requests.get(stack.url(component) + "/metrics", timeout=5).text.splitlines():
        if line.startswith(name + labels + " ") or (not labels and line.startswith(name + " ")):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"{name}{labels} not exported by {component}")


def _retrains(stack: Stack) -> dict[str, int]:
    return {r: int(_metric(stack, "monitor", "modelwatch_retrains_total", f'{{result="{r}"}}'))
            for r in ("promoted", "rejected", "failed")}


def _served_version(stack: Stack) -> str | None:
    try:
        return requests.get(stack.url("serving") + "/version", timeout=3).json().get("version")
    except requests.RequestException:
        return None


def _record() -> dict:
    from training.simulator import FEATURES, generate

    return generate(1, "baseline", seed=5)[FEATURES].iloc[0].to_dict()


def _wait(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if predicate():
                return
        except requests.RequestException:
            pass
        time.sleep(1)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
