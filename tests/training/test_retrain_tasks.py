"""Retraining models modelwatch did not train, against a real `mlflow server`.

Each model is logged by a plain script (`mlflow.sklearn.log_model`, alias `production`)
and given an onboarding reference the way `modelwatch onboard` does (a run of its own,
linked by version tags). Retraining learns from that reference plus labelled traffic in a
real SQLite prediction log, and only the gate moves the alias. A model without a target
is refused as unsupported, by the retrain command and by the monitor, which pages nobody.
"""

from __future__ import annotations

import json
import time
import uuid

import mlflow
import numpy as np
import pandas as pd
import pytest
from mlflow import MlflowClient
from mlflow.models import infer_signature
from modelwatch.monitoring.reference import MonitoringReference
from modelwatch.monitoring.registry import link_reference, log_reference
from modelwatch.monitoring.service.app import create_app
from modelwatch.monitoring.service.config import MonitorConfig
from modelwatch.training import retrain
from modelwatch.training.retrain_run import project_runner
from sklearn.datasets import make_classification, make_friedman1
from sklearn.linear_model import LinearRegression, LogisticRegression

from modelwatch.log import open_store
from modelwatch.log.schema import PREDICTION_COLUMNS
from tests.monitor_service.test_webhook import alert, metric, payload
from tests.services import wait_for


def _friedman(kind: str) -> pd.DataFrame:
    """Friedman's nonlinear function of five of ten inputs (sklearn ships it), as a value,
    above/below its median, or its tertile: a linear model learns it poorly, so a
    retrained gradient-boosting candidate should win the gate in every task."""
    x, y = make_friedman1(n_samples=2400, noise=1.0, random_state=3)
    frame = pd.DataFrame(x, columns=[f"x{i}" for i in range(10)])
    if kind == "binary":
        return frame.assign(high=(y > np.median(y)).astype(int))
    if kind == "multiclass":
        return frame.assign(
            band=np.array(["low", "mid", "high"])[np.digitize(y, np.quantile(y, [1 / 3, 2 / 3]))]
        )
    return frame.assign(y=y)


TABLES = {  # task -> (target, the user's own model)
    "binary": ("high", lambda: LogisticRegression(max_iter=2000)),
    "multiclass": ("band", lambda: LogisticRegression(max_iter=2000)),
    "regression": ("y", LinearRegression),
}


@pytest.fixture(scope="module")
def client(mlflow_url):
    mlflow.set_tracking_uri(mlflow_url)
    return MlflowClient(mlflow_url)


@pytest.fixture
def store_url(tmp_path):
    return f"sqlite:///{tmp_path / 'predictions.db'}"


def register(
    client, name: str, task: str, labelled_reference: bool = True, float_reference: bool = False
):
    """A user's model, registered with alias production and onboarded. Answers the
    version and the rows it has not seen (for traffic). `float_reference`: the
    reference's labels are floats (read from a CSV with gaps, say), the model's ints."""
    target, estimator = TABLES[task]
    frame = _friedman(task)
    third = len(frame) // 3
    train, reference, unseen = frame[:third], frame[third : 2 * third], frame[2 * third :]
    if float_reference:
        reference = reference.astype({target: "float64"})
    x = train.drop(columns=target)
    model = estimator().fit(x, train[target])
    with mlflow.start_run(run_name="users-own-script"):
        info = mlflow.sklearn.log_model(
            model,
            name="model",
            registered_model_name=name,
            signature=infer_signature(x, model.predict(x)),
            input_example=x.head(3),
        )
    version = str(info.registered_model_version)
    client.set_registered_model_alias(name, "production", version)
    onboard(client, name, version, model, reference, target if labelled_reference else None, task)
    return version, unseen


def onboard(
    client, name: str, version: str, model, rows: pd.DataFrame, target: str | None, task: str
):
    """What `modelwatch onboard` attaches: a reference in a run of its own, linked by tags."""
    features = rows.drop(columns=TABLES[task][0])
    proba = None if task == "regression" else model.predict_proba(features)
    reference = MonitoringReference.from_scores(
        features,
        rows[target] if target else None,
        model.predict(features),
        proba,
        classes=getattr(model, "classes_", None),
        target=target,
        task=task,
    )
    with mlflow.start_run(run_name=f"onboard-{name}") as run:
        log_reference(reference)
    link_reference(client, reference, name, version, run.info.run_id)


def log_traffic(store_url: str, name: str, version: str, rows: pd.DataFrame, target: str) -> None:
    """The rows as served predictions of `version` over the last minutes, each labelled."""
    store = open_store(store_url)
    now = time.time() - 600
    ids = [f"{name}-{uuid.uuid4().hex}" for _ in range(len(rows))]
    features = rows.drop(columns=target)
    records = [
        dict(
            prediction_id=i,
            ts=now + k * 0.1,
            model_name=name,
            model_version=version,
            model_alias="production",
            features=json.dumps(f),
            prediction="0",
            probability=None,
            latency_ms=1.0,
            shadow_of=None,
        )
        for k, (i, f) in enumerate(zip(ids, features.to_dict(orient="records")))
    ]
    store.insert_predictions([tuple(r.get(c) for c in PREDICTION_COLUMNS) for r in records])
    store.store_feedback(dict(zip(ids, rows[target].tolist())))
    store.close()


def retrain_now(name: str, store_url: str, trigger: str) -> int:
    return retrain.main(
        ["--model-name", name, "--store-url", store_url, "--trigger", trigger, "--window", "1h"]
    )


def decision(client, version) -> dict:
    local = mlflow.artifacts.download_artifacts(
        run_id=version.run_id, artifact_path="gate/decision.json"
    )
    with open(local) as f:
        return json.load(f)


@pytest.mark.parametrize(
    "task, metric_name", [("binary", "roc_auc"), ("multiclass", "accuracy"), ("regression", "rmse")]
)
def test_a_users_model_of_each_task_is_retrained_and_promoted_through_the_gate(
    client, store_url, task, metric_name
):
    name = f"users-{task}"
    version, unseen = register(client, name, task)
    target = TABLES[task][0]
    log_traffic(store_url, name, version, unseen, target)

    assert retrain_now(name, store_url, f"DataDriftDetected:{task}") == 0
    new = client.get_model_version_by_alias(name, "production")
    assert new.version == str(int(version) + 1)
    assert new.tags["validation_status"] == "approved"
    assert new.tags["modelwatch.task"] == task and new.tags["modelwatch.target"] == target
    verdict = decision(client, new)
    # judged against the user's model on the same holdout of recent traffic
    assert verdict["metric"] == metric_name and verdict["champion_version"] == version
    assert verdict["champion"] is not None and verdict["approved"]
    params = client.get_run(new.run_id).data.params
    assert params["task"] == task and params["target"] == target


@pytest.mark.parametrize("task", ["binary", "regression"])
def test_a_retraining_on_noise_is_rejected_and_production_stays(client, store_url, task):
    """Recent labels shuffled: the candidate cannot beat the floor (ROC AUC 0.6; for
    RMSE, predicting the mean), so it takes `challenger` and the user's model stays."""
    name = f"noisy-{task}"
    version, unseen = register(client, name, task)
    target = TABLES[task][0]
    rng = np.random.default_rng(1)
    noisy = unseen.assign(**{target: rng.permutation(unseen[target].to_numpy())})
    log_traffic(store_url, name, version, noisy, target)

    assert retrain_now(name, store_url, f"ModelAccuracyDegraded:{task}") == 0
    assert client.get_model_version_by_alias(name, "production").version == version
    candidate = client.get_model_version_by_alias(name, "challenger")
    expected = "rejected: roc_auc" if task == "binary" else "rejected: rmse"
    bar = "below the floor" if task == "binary" else "not below the ceiling"
    status = candidate.tags["validation_status"]
    assert status.startswith(expected) and bar in status, status


def test_a_model_without_a_target_is_refused_as_unsupported(client, store_url, capsys):
    name = "users-unlabelled"
    version, _ = register(client, name, "binary", labelled_reference=False)
    with pytest.raises(
        retrain.Unsupported, match=f"{name} version {version} has no target .*modelwatch onboard"
    ):
        retrain.champion(client, name)
    assert retrain_now(name, store_url, "manual") == 2
    assert "error: unsupported:" in capsys.readouterr().err
    # a target tag alone is not enough: the reference has no labels to learn from
    client.set_model_version_tag(name, version, "modelwatch.target", "high")
    with pytest.raises(retrain.Unsupported, match="has 0 rows labelled in 'high'"):
        retrain.champion(client, name)
    assert [v.version for v in client.search_model_versions(f"name='{name}'")] == [version]


def test_the_monitor_counts_an_unsupported_retraining_and_nothing_fails(
    client, mlflow_url, store_url, monkeypatch
):
    """The real runner (it would `mlflow run` the retraining) refuses before starting one."""
    monkeypatch.delenv("MODELWATCH_WEBHOOK_TOKEN", raising=False)
    name = "users-not-onboarded"
    x, y = make_classification(n_samples=300, n_features=4, random_state=0)
    with mlflow.start_run():
        mlflow.sklearn.log_model(
            LogisticRegression().fit(x, y), name="model", registered_model_name=name
        )
    client.set_registered_model_alias(name, "production", "1")
    config = MonitorConfig.from_env(
        tracking_uri=mlflow_url, model_name=name, log_to_mlflow=False, retrain_min_rows=0
    )
    store = open_store(store_url)
    runner = project_runner(config.tracking_uri, config.model_name, config.retrain_window)
    app = create_app(config, runner=runner, store=store, start=False)
    web = app.test_client()

    answer = web.post("/alerts", json=payload(alert()))
    assert answer.json["results"][0]["result"] == "started"
    assert app.extensions["modelwatch"].trigger.wait_idle(60)
    wait_for(
        lambda: (
            metric(web, f'modelwatch_retrains_total{{model="{name}",result="unsupported"}}') == 1
        ),
        30,
        "an unsupported retraining",
    )
    assert metric(web, f'modelwatch_retrains_total{{model="{name}",result="failed"}}') == 0
    last = web.get(f"/status?model={name}").json["last_retrain"]
    assert last["result"] == "unsupported" and "has no target" in last["detail"]
    assert client.get_experiment_by_name(f"{name}-retraining") is None  # no run was started
    store.close()


def test_a_retrained_classifier_answers_the_champions_label_type(client, store_url):
    """Version 1 answers ints (its signature says long), its reference holds the labels as
    floats, and the traffic's labels come back from the log: the retrained version still
    answers 0 and 1, never 0.0 and 1.0, and its classes are the champion's."""
    name = "users-binary-int-labels"
    version, unseen = register(client, name, "binary", float_reference=True)
    log_traffic(store_url, name, version, unseen.astype({"high": "float64"}), "high")
    assert retrain_now(name, store_url, "DataDriftDetected:types") == 0
    new = max(client.search_model_versions(f"name='{name}'"), key=lambda v: int(v.version))
    assert new.version == str(int(version) + 1)
    x = unseen.drop(columns="high").head(5)
    answers = {
        v: mlflow.pyfunc.load_model(f"models:/{name}/{v}").predict(x)
        for v in (version, new.version)
    }
    assert answers[version].dtype.kind == "i" and answers[new.version].dtype.kind == "i", answers
    model = mlflow.sklearn.load_model(f"models:/{name}/{new.version}")
    assert model.classes_.tolist() == [0, 1] and model.classes_.dtype.kind == "i"
    outputs = mlflow.models.get_model_info(f"models:/{name}/{new.version}").signature.outputs
    assert outputs.numpy_types()[0].kind == "i"
