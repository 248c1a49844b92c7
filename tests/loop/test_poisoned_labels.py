"""Issue 23's inverted-label chain on real processes: a real `mlflow server`, real gunicorn
serving, the real monitor (built-in alert rules, the project's retraining runner) and a
SQLite prediction log.

10,000 predictions, then every label inverted through `POST /feedback` (and more of both
while the alert rules' `for:` runs). FeedbackSuspect fires, the retrain alerts the same
labels raise (ModelAccuracyDegraded, ConceptDriftDetected) start nothing, and production
stays version 1. A retraining run by hand on the poisoned rows then wins on its recent
holdout (a split of the same lies) but loses on the champion's trusted holdout: it takes
`challenger`, `needs_review`, and production is still version 1. The printed lines are
the numbers of the chain (what the gate saw, what was promoted, what paged).
"""

from __future__ import annotations

import threading

import mlflow
import pytest
import requests
from mlflow import MlflowClient
from modelwatch.monitoring.service.app import create_app
from modelwatch.monitoring.service.config import MonitorConfig
from modelwatch.training import gate, retrain, simulator, train
from modelwatch.training.retrain_run import project_runner
from sklearn.metrics import roc_auc_score

from tests.services import wait_for
from tests.serving.conftest import gunicorn

pytestmark = pytest.mark.slow
MODEL = "credit-poisoned"
BATCH = 200


def _send(url: str, rows, invert: bool) -> None:
    """Predictions of `rows`, then their labels, inverted when asked."""
    for i in range(0, len(rows), BATCH):
        chunk = rows.iloc[i : i + BATCH]
        records = chunk[simulator.FEATURES].astype(object).to_dict("records")
        answer = requests.post(f"{url}/predict", json={"records": records}, timeout=30)
        assert answer.status_code == 200, answer.text
        labels = (1 - chunk[simulator.TARGET]) if invert else chunk[simulator.TARGET]
        feedback = [
            {"prediction_id": p, "label": int(y)}
            for p, y in zip(answer.json()["prediction_ids"], labels)
        ]
        answer = requests.post(f"{url}/feedback", json={"feedback": feedback}, timeout=60)
        assert answer.status_code == 200, answer.text


class Traffic(threading.Thread):
    """Inverted-label traffic until stopped: the monitor judges only new windows."""

    def __init__(self, url: str):
        super().__init__(daemon=True)
        self.url, self.stopped, self.error = url, threading.Event(), None

    def run(self) -> None:
        seed = 100
        while not self.stopped.is_set():
            try:
                _send(self.url, simulator.generate(BATCH, "baseline", seed), invert=True)
            except Exception as exc:  # surfaced by the test, not lost in a thread
                self.error = exc
                return
            seed += 1
            self.stopped.wait(1.0)


@pytest.fixture(scope="module")
def chain(mlflow_url, tmp_path_factory):
    """Champion version 1, serving, the monitor, 10,000 inverted labels: yields the
    monitor app, serving's URL and the log's URL, with inverted traffic still flowing."""
    tmp = tmp_path_factory.mktemp("poisoned")
    store_url = f"sqlite:///{tmp / 'predictions.db'}"
    mlflow.set_tracking_uri(mlflow_url)
    assert train.main(["--model-name", MODEL, "--n-rows", "10000", "--seed", "42"]) == 0
    env = {
        "MLFLOW_TRACKING_URI": mlflow_url,
        "MODELWATCH_MODEL_NAME": MODEL,
        "MODELWATCH_STORE_URL": store_url,
        "MODELWATCH_FEEDBACK_WAIT": "5",
    }
    with gunicorn(tmp / "serving", env, workers=1, ready_version="1") as serving:
        _send(serving.url, simulator.generate(10_000, "baseline", 7), invert=True)
        config = MonitorConfig.from_env(
            tracking_uri=mlflow_url,
            model_name=MODEL,
            store_url=store_url,
            builtin_alerts=True,
            log_to_mlflow=False,
            interval_seconds=3,
            retrain_cooldown_seconds=5,
            retrain_min_rows=500,
            webhook_token=None,
        )
        runner = project_runner(config.tracking_uri, config.model_name, config.retrain_window)
        monitor_app = create_app(config, runner=runner)
        traffic = Traffic(serving.url)
        traffic.start()
        try:
            yield monitor_app, serving.url, store_url, traffic
        finally:
            traffic.stopped.set()
            traffic.join(30)
            monitor_app.extensions["modelwatch"].monitor.stop()


def test_suspect_labels_page_and_hold_every_retraining(chain):
    monitor_app, _, _, traffic = chain
    client = monitor_app.test_client()

    def firing() -> set:
        assert traffic.error is None, traffic.error
        return set(client.get(f"/status?model={MODEL}").json["builtin_alerts_firing"] or [])

    # FeedbackSuspect's `for:` is 30 s, the retrain alerts' 1 m: wait until the latter fire too.
    wait_for(
        lambda: {"FeedbackSuspect", "ModelAccuracyDegraded"} <= firing(), 300, "the alerts to fire"
    )
    status = client.get(f"/status?model={MODEL}").json
    window = status["last_window"]
    print(
        f"\nmonitor: live_accuracy {window['live_accuracy']:.3f}, estimated {window['estimated_accuracy']:.3f}; "
        f"firing {sorted(firing())}; retraining {status['retraining']}, last {status['last_retrain']}"
    )
    assert status["retraining"] is None and status["last_retrain"] is None
    assert status["retrain_pending"] is None  # held before it was ever asked
    metrics = client.get("/metrics").text
    assert f'modelwatch_feedback_suspect{{model="{MODEL}",model_version="1"}} 1.0' in metrics
    assert f'modelwatch_retrains_total{{model="{MODEL}",result="promoted"}} 0.0' in metrics
    assert MlflowClient().get_model_version_by_alias(MODEL, gate.PRODUCTION).version == "1"


def test_a_retraining_on_the_poisoned_rows_needs_review(chain, capsys):
    _, serving_url, store_url, _ = chain
    assert (
        retrain.main(
            [
                "--model-name",
                MODEL,
                "--window",
                "1h",
                "--store-url",
                store_url,
                "--promote",
                "auto",
                "--trigger",
                "manual",
            ]
        )
        == 0
    )
    client = MlflowClient()
    assert client.get_model_version_by_alias(MODEL, gate.PRODUCTION).version == "1"
    candidate = client.get_model_version_by_alias(MODEL, gate.CHALLENGER)
    tags = candidate.tags
    assert tags["validation_status"].startswith("needs_review: on the trusted holdout"), tags[
        "validation_status"
    ]
    recent = gate.decide(
        "roc_auc", float(tags["gate_score"]), 0.6, 0.01, float(tags["gate_champion_score"]), "1"
    )
    assert recent.approved  # what the gate of recent traffic alone would have done
    assert (
        float(tags["gate_trusted_score"])
        < float(tags["gate_champion_trusted_score"]) - gate.TRUSTED_TOLERANCE
    )
    fresh = simulator.generate(5000, "baseline", 999)
    auc = {
        v: roc_auc_score(
            fresh[simulator.TARGET],
            mlflow.sklearn.load_model(f"models:/{MODEL}/{v}").predict_proba(
                fresh[simulator.FEATURES]
            )[:, 1],
        )
        for v in ("1", candidate.version)
    }
    answer = requests.post(
        f"{serving_url}/predict",
        json={"records": fresh[simulator.FEATURES].head(3).astype(object).to_dict("records")},
        timeout=30,
    ).json()
    assert answer["model"]["version"] == "1"
    with capsys.disabled():
        print(
            f"\ngate on recent traffic (poisoned): candidate {float(tags['gate_score']):.3f}, champion "
            f"{float(tags['gate_champion_score']):.3f} -> alone it would be {recent.status}\n"
            f"gate on the trusted holdout: candidate {float(tags['gate_trusted_score']):.3f}, champion "
            f"{float(tags['gate_champion_trusted_score']):.3f} -> {tags['validation_status']}\n"
            f"fresh data ROC AUC: champion {auc['1']:.3f}, candidate version {candidate.version} "
            f"{auc[candidate.version]:.3f}; production still version 1"
        )
    assert auc[candidate.version] < 0.5 < auc["1"]
