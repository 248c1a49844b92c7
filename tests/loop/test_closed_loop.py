"""The whole loop on real processes, as `make demo` runs it: MLflow server, serving
(gunicorn), monitor, Prometheus, Alertmanager and Pushgateway.

baseline traffic raises no alert; covariate drift fires DataDriftDetected, the webhook
starts exactly one retraining, the new version is approved, the alias moves and serving
reloads it; integrity_swap fires DataIntegrityViolation and retrains nothing; the
monitoring runs in MLflow hold the windows; every Grafana panel's query returns data.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
from mlflow import MlflowClient

from modelwatch.cli.stack import Stack
from tests.loop.conftest import HAS_PROMETHEUS
from tests.stack_config.dashboards import panel_queries

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not HAS_PROMETHEUS,
        reason="Prometheus, Alertmanager and Pushgateway are installed by `make setup` as root",
    ),
]
BIN = Path(sys.executable).parent


@pytest.fixture(scope="module")
def demo(demos):
    """`make demo` itself, on free ports and a temporary home, with shortened durations
    (started beside the demo without Prometheus: tests/loop/conftest.py)."""
    run = demos["prometheus"]
    yield run.stack, run.finished(), run.started
    run.stop()


@pytest.fixture(scope="module")
def stack(demo):
    stack, done, _ = demo
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return stack


COVARIATE_TRIGGER = (
    r"validation_status=approved, trigger=(DataDriftDetected|ModelAccuracyDegraded):"
)


def test_make_demo_tells_the_whole_story(demo):
    stack, done, _ = demo
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    story = done.stdout
    for milestone in (
        "version 1 holds alias production",
        "alerts during baseline: none",
        "monitor: drift in income, region",
        "DataDriftDetected firing",
        "retraining started",
        "alias production moved",
        "serving hot-reloaded",
        "Timeline",
    ):
        assert milestone in story, milestone
    # The drift retrains, asked by whichever of its alerts reached the monitor first: the
    # drift itself, or the estimated accuracy it pushed out of its reference bounds.
    assert re.search(COVARIATE_TRIGGER, story), story[-3000:]
    report = stack.run_dir / "demo-report.html"
    assert report.is_file() and "plotly" in report.read_text()[:5_000_000]
    served = re.search(
        r"serving hot-reloaded the new version, no restart \((\d+)s after drift onset\)", story
    )
    print(f"\ndrift onset to new version served: {served.group(1)}s")


def test_covariate_drift_retrained_once_promoted_and_reloaded(stack, demo):
    client = MlflowClient(stack.url("mlflow"))
    version = client.get_model_version_by_alias("credit-default", "production")
    assert version.version == "2"
    assert version.tags["trigger"].startswith(("DataDriftDetected:", "ModelAccuracyDegraded:"))
    assert version.tags["validation_status"] == "approved"
    assert _retrains(stack) == {"promoted": 1, "rejected": 0, "failed": 0}
    assert _prometheus_range(
        stack, 'ALERTS{alertname="DataDriftDetected",alertstate="firing"}', demo[2], time.time()
    )
    answer = requests.post(
        stack.url("serving") + "/predict", timeout=10, json={"records": [_record()]}
    ).json()
    assert answer["model"]["version"] == "2"


def test_integrity_swap_paged_and_never_retrained(stack, demo):
    assert "DataIntegrityViolation" in demo[1].stdout.split("broken upstream data")[1]
    assert "retrainings started: 0" in demo[1].stdout
    assert _prometheus_range(
        stack,
        'ALERTS{alertname="DataIntegrityViolation",alertstate="firing"}',
        demo[2],
        time.time(),
    )
    assert _retrains(stack) == {"promoted": 1, "rejected": 0, "failed": 0}
    assert _metric(stack, "monitor", "modelwatch_retrain_in_progress", MODEL_LABEL) == 0
    status = requests.get(stack.url("monitor") + "/status?model=credit-default", timeout=5).json()
    swapped = [i for i in status["last_window"]["integrity"] if i["kind"] == "swapped_columns"]
    assert swapped and sorted(swapped[0]["columns"]) == ["age", "debt_to_income"]


def test_monitoring_runs_hold_the_windows(stack):
    client = MlflowClient(stack.url("mlflow"))
    experiment = client.get_experiment_by_name("credit-default-monitoring")
    runs = {
        r.data.tags["modelwatch.model_version"]: r
        for r in client.search_runs([experiment.experiment_id])
    }
    assert {"1", "2"} <= set(runs)
    history = client.get_metric_history(runs["1"].info.run_id, "dataset_drift_share")
    steps = [m.step for m in history]
    assert len(history) >= 5 and steps == sorted(steps)
    assert max(m.value for m in history) >= 0.15  # the covariate windows
    for metric in (
        "live_accuracy",
        "estimated_accuracy",
        "label_coverage_ratio",
        "latency_p95_ms",
        "drift_score.income",
    ):
        assert client.get_metric_history(runs["1"].info.run_id, metric), metric
    assert (
        runs["1"].data.tags["modelwatch.training_run_id"]
        == client.get_model_version("credit-default", "1").run_id
    )
    artifacts = [
        a.path
        for w in client.list_artifacts(runs["1"].info.run_id, "windows")
        for a in client.list_artifacts(runs["1"].info.run_id, w.path)
    ]
    assert any(p.endswith("drift_report.html") for p in artifacts)
    assert any(p.endswith("drift.json") for p in artifacts)


def test_batch_score_pushes_to_the_pushgateway(stack, tmp_path):
    from modelwatch.training.simulator import generate

    generate(500, "baseline", seed=9).drop(columns="defaulted").to_csv(
        tmp_path / "batch.csv", index=False
    )
    env = {**os.environ, **stack.service_env()}
    done = subprocess.run(
        [
            str(BIN / "mlflow"),
            "run",
            str(Path(__file__).resolve().parents[2]),
            "-e",
            "batch_score",
            "--env-manager",
            "local",
            "-P",
            f"data={tmp_path / 'batch.csv'}",
            "-P",
            f"output={tmp_path / 'scored.parquet'}",
            "-P",
            f"pushgateway=127.0.0.1:{stack.ports['pushgateway']}",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    import pandas as pd

    scored = pd.read_parquet(tmp_path / "scored.parquet")
    assert len(scored) == 500 and {"prediction", "probability"} <= set(scored.columns)
    pushed = requests.get(stack.url("pushgateway") + "/metrics", timeout=5).text
    assert (
        'modelwatch_batch_rows_scored{instance="",job="modelwatch_batch_score",model="credit-default"} 500'
        in pushed
    )


def test_every_grafana_panel_returns_data(stack):
    """Over the span of this module, as a dashboard of its last 15 minutes would show it
    (annotations mark events, so an instant query would miss them)."""
    bad = requests.post(
        stack.url("serving") + "/predict", json={"records": [{"age": 30}]}, timeout=5
    )
    assert bad.status_code == 422  # something for the input-errors panel to show
    # A rate needs two scrapes after the bad request and the batch job's push: wait for
    # them (a busy machine scrapes late), then every panel must have data.
    deadline = time.monotonic() + 180
    while (empty := _empty_panels(stack)) and time.monotonic() < deadline:
        time.sleep(5)
    assert empty == [], "panels without data:\n" + "\n".join(empty)


# The demo's model names no segment or sensitive columns, so this dashboard has nothing
# to show here; tests/stack_config/test_grafana.py proves its queries against a real
# Prometheus that scraped a monitor judging segments and groups. The demo's model is a
# classifier: the regression rows are proven by tests/loop/test_two_models.py.
NEEDS_SEGMENTS = "modelwatch-segments-fairness"


def _empty_panels(stack: Stack) -> list[str]:
    end = time.time()
    return [
        f"{q.dashboard_uid} / {q.panel_title}: {q.expr}"
        for q in panel_queries()
        if q.dashboard_uid != NEEDS_SEGMENTS
        and "regression" not in q.row.lower()
        and not _prometheus_range(stack, q.expr, end - 900, end)
    ]


# -- helpers ------------------------------------------------------------------------------------
def _prometheus_range(stack: Stack, query: str, start: float, end: float) -> list:
    answer = requests.get(
        stack.url("prometheus") + "/api/v1/query_range",
        timeout=20,
        params={"query": query, "start": start, "end": end, "step": 5},
    ).json()
    assert answer["status"] == "success", answer
    return answer["data"]["result"]


MODEL_LABEL = '{model="credit-default"}'  # the demo's model, every series of it


def _metric(stack: Stack, component: str, name: str, labels: str = "") -> float:
    for line in requests.get(stack.url(component) + "/metrics", timeout=5).text.splitlines():
        if line.startswith(name + labels + " ") or (not labels and line.startswith(name + " ")):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"{name}{labels} not exported by {component}")


def _retrains(stack: Stack) -> dict[str, int]:
    return {
        r: int(
            _metric(
                stack,
                "monitor",
                "modelwatch_retrains_total",
                f'{{model="credit-default",result="{r}"}}',
            )
        )
        for r in ("promoted", "rejected", "failed")
    }


def _record() -> dict:
    from modelwatch.training.simulator import FEATURES, generate

    return generate(1, "baseline", seed=5)[FEATURES].iloc[0].to_dict()
