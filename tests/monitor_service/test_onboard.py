"""Models modelwatch did not train, onboarded with `modelwatch onboard` and monitored.

Each model is logged the way a plain script does it (`mlflow.sklearn.log_model(...,
registered_model_name=..., signature=..., input_example=...)`, alias set with
MlflowClient) into a real MLflow server, on a data set scikit-learn ships: wine
(multi-class), diabetes (regression), breast cancer (binary). The real serving app
answers /predict and /feedback into a real SQLite log; the real monitor judges windows.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
from mlflow import MlflowClient
from mlflow.models import infer_signature
from modelwatch.monitoring.reference import MANIFEST
from modelwatch.monitoring.registry import (
    TAG_REFERENCE_RUN,
    TAG_REPLACED_RUNS,
    TAG_TARGET,
    TAG_TASK,
)
from modelwatch.monitoring.service.app import create_app
from modelwatch.monitoring.service.config import MonitorConfig
from modelwatch.serving.app import create_app as create_serving_app
from modelwatch.serving.app import shutdown_app
from sklearn import datasets
from sklearn.ensemble import RandomForestRegressor
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from modelwatch.log import open_store
from tests.monitor_service.runners import RecordingRunner
from tests.monitor_service.test_monitor_real import parse_metrics

ROOT = Path(__file__).resolve().parents[2]
WINDOW = 400


def log_like_a_plain_script(
    tracking_uri: str, name: str, model, X: pd.DataFrame, y, trusted=None
) -> str:
    """What a data scientist's own script does; returns the version under `production`.
    `trusted`: the skops types MLflow 3.17's error tells the user to trust (trees)."""
    mlflow.set_tracking_uri(tracking_uri)
    # By id, not mlflow.set_experiment: that sets MLFLOW_EXPERIMENT_ID in this process's
    # environment, and every later `mlflow run` of the session would inherit it.
    client = MlflowClient(tracking_uri)
    experiment = client.get_experiment_by_name(f"their-experiment-{name}")
    experiment_id = (
        experiment.experiment_id
        if experiment
        else client.create_experiment(f"their-experiment-{name}")
    )
    model.fit(X, y)
    with mlflow.start_run(experiment_id=experiment_id):
        info = mlflow.sklearn.log_model(
            model,
            name="model",
            registered_model_name=name,
            signature=infer_signature(X, model.predict(X)),
            input_example=X.head(3),
            skops_trusted_types=trusted,
        )
    version = str(info.registered_model_version)
    client.set_registered_model_alias(name, "production", version)
    return version


def onboard(tracking_uri: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "modelwatch.cli", "onboard", *args],
        cwd=ROOT,
        env={**os.environ, "MLFLOW_TRACKING_URI": tracking_uri},
        capture_output=True,
        text=True,
        timeout=600,
    )


@dataclass
class Case:
    name: str
    version: str
    X_ref: pd.DataFrame
    y_ref: pd.Series
    reference_file: Path


def make_case(tracking_uri: str, tmp: Path, loader, model, stratify: bool, trusted=None) -> Case:
    data = loader(as_frame=True)
    X, y = data.data, data.target
    if not stratify:
        y = y.astype(float)
    X_train, X_ref, y_train, y_ref = train_test_split(
        X, y, test_size=0.5, random_state=0, stratify=y if stratify else None
    )
    name = f"{loader.__name__.removeprefix('load_')}-{uuid.uuid4().hex[:6]}"
    version = log_like_a_plain_script(tracking_uri, name, model, X_train, y_train, trusted)
    reference_file = tmp / f"{name}-reference.parquet"
    X_ref.assign(target=y_ref.to_numpy()).to_parquet(reference_file)
    return Case(name, version, X_ref, y_ref, reference_file)


class Monitored:
    """The real serving app and monitor on one registered model."""

    def __init__(self, tracking_uri: str, tmp: Path, model_name: str):
        self.model_name = model_name
        store_url = f"sqlite:///{tmp / f'{model_name}.db'}"
        self.serving = create_serving_app(
            {
                "tracking_uri": tracking_uri,
                "model_name": model_name,
                "store_url": store_url,
                "spill_dir": str(tmp / f"spill-{model_name}"),
                "model_cache_dir": str(tmp / f"cache-{model_name}"),
                "reload_interval": 1.0,
                "feedback_wait": 0.3,
            }
        )
        self.state = self.serving.extensions["modelwatch"]
        assert self.state.models.ready.wait(120), self.state.models.last_error
        self.store = open_store(store_url)
        config = MonitorConfig.from_env(
            tracking_uri=tracking_uri,
            model_name=model_name,
            store_url=store_url,
            window_rows=WINDOW,
            window_seconds=3600,
            min_window_rows=100,
            log_to_mlflow=False,
            interval_seconds=0.01,
        )
        self.runner = RecordingRunner()
        self.app = create_app(config, store=self.store, runner=self.runner, start=False)
        self.monitor, self.client = (
            self.app.extensions["modelwatch"].monitor,
            self.app.test_client(),
        )

    def send(self, X: pd.DataFrame, y) -> None:
        """POST /predict, then /feedback with every true label."""
        client = self.serving.test_client()
        r = client.post("/predict", json={"records": X.to_dict("records")})
        assert r.status_code == 200, r.get_data(as_text=True)
        ids = r.json["prediction_ids"]
        assert self.state.log.flush(30)
        labels = [
            {"prediction_id": i, "label": float(v) if isinstance(v, float) else int(v)}
            for i, v in zip(ids, y)
        ]
        fb = client.post("/feedback", json={"feedback": labels})
        assert fb.status_code == 200 and fb.json["accepted"] == len(ids), fb.get_data(as_text=True)

    def judge(self):
        result = self.monitor.run_once()
        return (
            result,
            self.client.get(f"/status?model={self.model_name}").json,
            parse_metrics(self.client.get("/metrics").get_data(as_text=True)),
        )

    def close(self) -> None:
        shutdown_app(self.serving)
        self.store.close()


def window_of(case: Case, seed: int, shift: dict | None = None) -> tuple[pd.DataFrame, pd.Series]:
    """WINDOW rows drawn from the held-out rows; `shift` multiplies features (drift)."""
    rows = np.random.default_rng(seed).integers(0, len(case.X_ref), WINDOW)
    X, y = (
        case.X_ref.iloc[rows].reset_index(drop=True).copy(),
        case.y_ref.iloc[rows].reset_index(drop=True),
    )
    for column, factor in (shift or {}).items():
        X[column] = X[column] * factor
    return X, y


def series(metrics: dict, name: str, **labels) -> list[float]:
    return [
        v for lab, v in metrics.get(name, []) if all(lab.get(k) == w for k, w in labels.items())
    ]


@pytest.fixture(scope="module")
def wine(mlflow_url, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("onboard-wine")
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
    case = make_case(mlflow_url, tmp, datasets.load_wine, model, stratify=True)
    monitored = Monitored(mlflow_url, tmp, case.name)
    yield case, monitored
    monitored.close()


def test_a_version_without_reference_is_reported_not_monitored_everywhere(wine, mlflow_url):
    case, m = wine
    m.send(*window_of(case, 1))
    result, status, metrics = m.judge()
    assert result is None
    assert status["monitored"] is False and status["not_monitored"]["reason"] == "not_onboarded"
    assert "modelwatch onboard" in status["last_error"] and "no version" not in status["last_error"]
    assert series(metrics, "modelwatch_model_monitored", model_version=case.version) == [0.0]
    assert series(metrics, "modelwatch_monitor_not_monitored_total", reason="not_onboarded")[0] >= 1
    # nothing was computed, so nothing is exported: no 0 that an alert could read
    for name in (
        "modelwatch_estimated_accuracy",
        "modelwatch_live_accuracy",
        "modelwatch_live_roc_auc",
    ):
        assert name not in metrics or not metrics[name], name
    assert series(metrics, "modelwatch_monitor_errors_total", dependency="mlflow") == [0.0]


def test_onboarding_refuses_a_reference_that_does_not_fit_and_attaches_nothing(
    wine, mlflow_url, tmp_path
):
    case, _ = wine
    broken = tmp_path / "broken.parquet"
    case.X_ref.drop(columns=["alcohol", "magnesium"]).assign(
        target=case.y_ref.to_numpy()
    ).to_parquet(broken)
    done = onboard(
        mlflow_url, "--model-name", case.name, "--reference", str(broken), "--target", "target"
    )
    assert done.returncode == 2
    assert (
        "alcohol" in done.stderr
        and "magnesium" in done.stderr
        and "nothing was attached" in done.stderr
    )
    no_target = onboard(
        mlflow_url,
        "--model-name",
        case.name,
        "--reference",
        str(case.reference_file),
        "--target",
        "quality",
    )
    assert no_target.returncode == 2 and "'quality'" in no_target.stderr
    ref = ("--model-name", case.name, "--reference", str(case.reference_file))
    not_json = tmp_path / "domain.json"
    not_json.write_text("{alcohol: positive}")
    done = onboard(mlflow_url, *ref, "--target", "target", "--domain", str(not_json))
    assert done.returncode == 2 and f"--domain {not_json}" in done.stderr, done.stderr
    no_column = tmp_path / "no-column.json"
    no_column.write_text('{"acidity": {"min": 0}}')
    done = onboard(mlflow_url, *ref, "--target", "target", "--domain", str(no_column))
    assert done.returncode == 2 and "'acidity' is not a column" in done.stderr, done.stderr
    tags = MlflowClient(mlflow_url).get_model_version(case.name, case.version).tags
    assert TAG_REFERENCE_RUN not in tags


def test_onboarded_multiclass_model_is_judged_and_quiet_on_healthy_traffic(wine, mlflow_url):
    case, m = wine
    done = onboard(
        mlflow_url,
        "--model-name",
        case.name,
        "--alias",
        "production",
        "--reference",
        str(case.reference_file),
        "--target",
        "target",
    )
    assert done.returncode == 0, done.stderr
    assert "multiclass" in done.stdout and "estimated_accuracy" in done.stdout
    mv = MlflowClient(mlflow_url).get_model_version(case.name, case.version)
    assert mv.tags[TAG_TASK] == "multiclass" and mv.tags[TAG_TARGET] == "target"
    assert mv.tags[TAG_REFERENCE_RUN] != mv.run_id  # a run of its own: the user's run is untouched
    assert not MlflowClient(mlflow_url).get_run(mv.run_id).data.tags.get(TAG_REFERENCE_RUN)

    m.monitor.unmonitored["at"] = 0  # look again now, not after the recheck interval
    for seed in (2, 3):
        m.send(*window_of(case, seed))
        result, status, metrics = m.judge()
        assert result is not None, m.monitor.last_error
        window = status["last_window"]
        assert status["monitored"] and window["task"] == "multiclass"
        got = window["metrics"]
        assert {"live_accuracy", "estimated_accuracy", "live_f1", "estimated_f1"} <= set(got)
        assert "estimated_roc_auc" not in got and "live_mae" not in got  # not for this task
        assert abs(got["estimated_accuracy"]["value"] - got["live_accuracy"]["value"]) < 0.08
        assert not any(v["alert"] for v in got.values()), got
        assert window["drifted_features"] == [] and isinstance(window["evaluated_at"], float)
        assert series(metrics, "modelwatch_model_monitored", model_version=case.version) == [1.0]
        assert series(metrics, "modelwatch_metric_lower_threshold", metric="estimated_accuracy")
        assert (
            not m.app.extensions["modelwatch"].rules
            or not m.app.extensions["modelwatch"].rules.firing
        )


def test_drift_in_two_features_is_named_and_alerts_against_the_reference(wine, mlflow_url):
    """Far out of the reference (proline x 1.8) the model stays confident, so CBPE hardly
    moves (its known limit): the labels show the fall, against bounds from 89 rows."""
    case, m = wine
    m.send(*window_of(case, 4, shift={"proline": 1.8, "flavanoids": 0.3}))
    result, status, metrics = m.judge()
    window = status["last_window"]
    assert {"proline", "flavanoids"} <= set(window["drifted_features"])
    got = window["metrics"]
    assert got["live_accuracy"]["alert"] and got["live_f1"]["alert"], got
    value = series(metrics, "modelwatch_metric_value", metric="live_accuracy")[0]
    lower = series(metrics, "modelwatch_metric_lower_threshold", metric="live_accuracy")[0]
    assert value < lower  # what ModelAccuracyDegraded compares


def printed_bounds(stdout: str) -> dict[str, tuple[str, float]]:
    """{metric: (side, bound)} as `modelwatch onboard` prints them."""
    found = re.findall(r"^\s+(\w+)\s+reference \S+, (lower|upper) bound (\S+) ", stdout, re.M)
    return {name: (side, float(bound)) for name, side, bound in found}


def test_onboarding_again_keeps_the_old_reference_and_prints_the_bounds_applied(
    wine, mlflow_url, tmp_path
):
    """Wine's 89 reference rows are fewer than the monitor's window: onboarding warns and
    names the window its bounds are of. Onboarded again, the version keeps the run it
    replaces and says so; the bounds printed are the ones the monitor applies."""
    case, m = wine
    client = MlflowClient(mlflow_url)
    first = client.get_model_version(case.name, case.version).tags.get(TAG_REFERENCE_RUN)
    if first is None:  # run alone: the earlier test onboarded it first
        args = ("--reference", str(case.reference_file), "--target", "target")
        assert onboard(mlflow_url, "--model-name", case.name, *args).returncode == 0
        first = client.get_model_version(case.name, case.version).tags[TAG_REFERENCE_RUN]
    done = onboard(
        mlflow_url,
        "--model-name",
        case.name,
        "--version",
        case.version,
        "--reference",
        str(case.reference_file),
        "--target",
        "target",
        "--chunk-rows",
        str(WINDOW),
    )
    assert done.returncode == 0, done.stderr
    rows = len(case.X_ref)
    assert f"holds {rows} rows, fewer than one monitor window of {WINDOW}" in done.stderr
    assert f"the bounds of {rows}-row windows" in done.stderr
    assert f"replaces reference run {first}" in done.stdout
    tags = client.get_model_version(case.name, case.version).tags
    second = tags[TAG_REFERENCE_RUN]
    assert second != first and tags[TAG_REPLACED_RUNS] == first
    assert client.get_run(first).info.lifecycle_stage == "active"  # kept, with its reference
    assert [f.path for f in client.list_artifacts(first, "reference")]
    manifest = json.loads(
        Path(client.download_artifacts(second, f"reference/{MANIFEST}", str(tmp_path))).read_text()
    )

    if m.monitor.unmonitored:  # run alone: look again now, not after the recheck interval
        m.monitor.unmonitored["at"] = 0
    m.send(*window_of(case, 6))
    result, _, _ = m.judge()
    assert result is not None, m.monitor.last_error
    applied = m.client.get(f"/status?model={case.name}").json["last_window"]["metrics"]
    printed = printed_bounds(done.stdout)
    assert {"live_accuracy", "estimated_accuracy", "live_f1"} <= set(printed)
    for name, (side, bound) in printed.items():
        assert bound == float(f"{applied[name][side]:.4g}"), (name, bound, applied[name])
        assert manifest["thresholds"][name][side] == pytest.approx(applied[name][side], rel=1e-12)


def test_the_alias_moved_to_an_unonboarded_version_stops_the_old_gauges(wine, mlflow_url):
    case, m = wine
    X, y = case.X_ref, case.y_ref
    new_version = log_like_a_plain_script(
        mlflow_url, case.name, make_pipeline(StandardScaler(), LogisticRegression(C=0.1)), X, y
    )
    m.send(*window_of(case, 5))
    result, status, metrics = m.judge()
    assert result is None and status["not_monitored"]["version"] == new_version
    assert status["not_monitored"]["reason"] == "not_onboarded" and status["last_window"] is None
    assert series(metrics, "modelwatch_model_monitored", model_version=new_version) == [0.0]
    assert not series(metrics, "modelwatch_estimated_accuracy", model_version=case.version)
    assert not series(metrics, "modelwatch_model_monitored", model_version=case.version)


@pytest.fixture(scope="module")
def diabetes(mlflow_url, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("onboard-diabetes")
    case = make_case(
        mlflow_url,
        tmp,
        datasets.load_diabetes,
        RandomForestRegressor(n_estimators=50, min_samples_leaf=5, random_state=0),
        stratify=False,
        trusted=["sklearn.tree._tree.Tree"],
    )
    done = onboard(
        mlflow_url,
        "--model-name",
        case.name,
        "--reference",
        str(case.reference_file),
        "--target",
        "target",
    )
    assert done.returncode == 0, done.stderr
    assert "regression" in done.stdout
    monitored = Monitored(mlflow_url, tmp, case.name)
    yield case, monitored
    monitored.close()


def test_regression_model_gets_realized_and_estimated_errors(diabetes):
    case, m = diabetes
    m.send(*window_of(case, 1))
    result, status, metrics = m.judge()
    assert result is not None, m.monitor.last_error
    got = status["last_window"]["metrics"]
    assert {"live_mae", "live_rmse", "live_mape", "estimated_mae", "estimated_rmse"} <= set(got)
    assert "live_accuracy" not in got and "estimated_accuracy" not in got
    assert not any(v["alert"] for v in got.values()), got
    assert got["live_mae"]["upper"] > got["live_mae"]["value"] and got["live_mae"]["lower"] is None
    assert 0.6 < got["estimated_mae"]["value"] / got["live_mae"]["value"] < 1.6
    assert (
        not metrics.get("modelwatch_live_accuracy")
        and not metrics.get("modelwatch_label_coverage_ratio") == []
    )


def test_regression_error_rise_alerts_against_its_reference(diabetes):
    case, m = diabetes
    X, y = window_of(case, 2)
    m.send(X, y * 1.6)  # the truth moved: the model's errors grow
    result, status, metrics = m.judge()
    got = status["last_window"]["metrics"]
    assert got["live_mae"]["alert"] and got["live_rmse"]["alert"], got
    assert (
        series(metrics, "modelwatch_metric_upper_threshold", metric="live_mae")[0]
        < got["live_mae"]["value"]
    )


def test_binary_without_target_is_drift_and_integrity_only(mlflow_url, tmp_path):
    case = make_case(
        mlflow_url,
        tmp_path,
        datasets.load_breast_cancer,
        make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000)),
        stratify=True,
    )
    done = onboard(mlflow_url, "--model-name", case.name, "--reference", str(case.reference_file))
    assert done.returncode == 0, done.stderr
    assert "drift and integrity only" in done.stdout
    m = Monitored(mlflow_url, tmp_path, case.name)
    try:
        m.send(*window_of(case, 1))
        result, status, metrics = m.judge()
        assert result is not None, m.monitor.last_error
        assert status["last_window"]["metrics"] == {}
        assert "no target" in status["last_window"]["performance"]
        assert series(metrics, "modelwatch_dataset_drift_share", model_version=case.version)
        assert not metrics.get("modelwatch_label_coverage_ratio")
    finally:
        m.close()


def test_no_alias_yet_is_neither_an_outage_nor_unmonitored(mlflow_url, tmp_path):
    """Before the first version is aliased (the demo's first minute): no error counted,
    no ModelNotMonitored series, and /status says what is missing."""
    name = f"empty-{uuid.uuid4().hex[:6]}"
    config = MonitorConfig.from_env(
        tracking_uri=mlflow_url,
        model_name=name,
        store_url=f"sqlite:///{tmp_path / 'p.db'}",
        log_to_mlflow=False,
    )
    app = create_app(
        config, store=open_store(config.store_url), runner=RecordingRunner(), start=False
    )
    monitor, client = app.extensions["modelwatch"].monitor, app.test_client()
    for registered in (False, True):  # no model at all, then a model without the alias
        if registered:
            MlflowClient(mlflow_url).create_registered_model(name)
        assert monitor.run_once() is None
        status = client.get(f"/status?model={name}").json
        assert (
            status["not_monitored"]["reason"] == "no_alias"
            and "has alias production" in status["last_error"]
        )
        metrics = parse_metrics(client.get("/metrics").get_data(as_text=True))
        assert series(metrics, "modelwatch_monitor_errors_total", dependency="mlflow") == [0.0]
        assert not metrics.get("modelwatch_model_monitored")


class ThresholdModel(mlflow.pyfunc.PythonModel):
    """A team's own wrapper: a classifier answered at its own decision threshold."""

    def __init__(self, model, threshold: float):
        self.model, self.threshold = model, threshold

    def predict(self, context, model_input, params=None):
        return (self.model.predict_proba(model_input)[:, 1] > self.threshold).astype(int)


def test_a_custom_pyfunc_is_onboarded_and_judged_on_its_labels(mlflow_url, tmp_path):
    data = datasets.load_breast_cancer(as_frame=True)
    X_train, X_ref, y_train, y_ref = train_test_split(
        data.data, data.target, test_size=0.5, random_state=1, stratify=data.target
    )
    inner = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000)).fit(X_train, y_train)
    name = f"pyfunc-{uuid.uuid4().hex[:6]}"
    mlflow.set_tracking_uri(mlflow_url)
    with mlflow.start_run():
        info = mlflow.pyfunc.log_model(
            name="model",
            python_model=ThresholdModel(inner, 0.65),
            registered_model_name=name,
            input_example=X_train.head(3),
            signature=infer_signature(X_train, inner.predict(X_train)),
        )
    MlflowClient(mlflow_url).set_registered_model_alias(
        name, "production", str(info.registered_model_version)
    )
    reference = tmp_path / "reference.parquet"
    X_ref.assign(target=y_ref.to_numpy()).to_parquet(reference)
    done = onboard(
        mlflow_url, "--model-name", name, "--reference", str(reference), "--target", "target"
    )
    assert done.returncode == 0, done.stderr
    assert (
        "binary" in done.stdout
        and "live_accuracy" in done.stdout
        and "estimated_accuracy" not in done.stdout
    )
    case = Case(
        name,
        str(info.registered_model_version),
        X_ref.reset_index(drop=True),
        y_ref.reset_index(drop=True),
        reference,
    )
    m = Monitored(mlflow_url, tmp_path, name)
    try:
        X, y = window_of(case, 1)
        m.send(X, y)
        result, status, _ = m.judge()
        assert result is not None, m.monitor.last_error
        got = status["last_window"]["metrics"]
        served = (inner.predict_proba(X)[:, 1] > 0.65).astype(int)
        assert got["live_accuracy"]["value"] == pytest.approx(
            float(np.mean(served == y.to_numpy()))
        )
        assert not got["live_accuracy"]["alert"] and "estimated_accuracy" not in got
        assert status["last_window"]["performance"] == "realized only"
    finally:
        m.close()
