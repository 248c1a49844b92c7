"""Any model in the registry, for every task: models a plain script registered (sklearn
binary, multiclass and regression, a custom pyfunc) are served with their task, logged
with their class probabilities, and counted with bounded metrics; the model cache keeps
registries apart, and "no such alias" is not an outage."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import requests
import yaml
from mlflow import MlflowClient
from modelwatch.serving.logwriter.batch import LogBatch
from modelwatch.serving.metrics import VALUE_BUCKETS
from modelwatch.serving.model import load_local
from modelwatch.serving.model.loader import UntrustedTypes
from modelwatch.serving.validation import validate
from sklearn.datasets import load_breast_cancer, load_diabetes, load_wine

from modelwatch.log import open_store
from tests import services
from tests.serving import modelkit
from tests.serving.conftest import ROOT, gunicorn, metric_total
from tests.serving.modelkit import feature_rows

PREFIX = "plain"
DATASETS = {
    "binary": load_breast_cancer,
    "multiclass": load_wine,
    "pyfunc": load_wine,
    "regression": load_diabetes,
}
EXPECTED = {
    "binary": ("binary", [0, 1], "sklearn"),
    "multiclass": ("multiclass", [0, 1, 2], "sklearn"),
    "pyfunc": ("multiclass", [0, 1, 2], "pyfunc"),
    "regression": ("regression", None, "sklearn"),
}


@pytest.fixture(scope="module")
def plain(mlflow_url, tmp_path_factory):
    """The models of tests/serving/plain_script.py, registered by running it."""
    log = tmp_path_factory.mktemp("plain") / "script.log"
    with open(log, "wb") as out:
        done = subprocess.run(
            [sys.executable, str(ROOT / "tests/serving/plain_script.py"), PREFIX],
            env={**os.environ, "MLFLOW_TRACKING_URI": mlflow_url},
            stdout=out,
            stderr=subprocess.STDOUT,
            timeout=600,
        )
    assert done.returncode == 0, log.read_text()[-3000:]
    return mlflow_url


def rows_of(task: str, n: int) -> list[dict]:
    """`n` rows spread over the data set (its rows are sorted by class)."""
    X = DATASETS[task](as_frame=True).data
    return X.iloc[:: len(X) // n][:n].to_dict(orient="records")


@pytest.mark.parametrize("task", list(EXPECTED))
def test_a_plain_scripts_model_is_served_and_logged_with_its_task(make_app, plain, task):
    want_task, want_classes, engine = EXPECTED[task]
    app = make_app(tracking_uri=plain, model_name=f"{PREFIX}-{task}")
    client = app.test_client()
    info = app.extensions["modelwatch"].models.current.describe()  # modelwatch's model info
    assert (info["task"], info["classes"], info["engine"]) == (want_task, want_classes, engine)

    r = client.post("/predict", json={"records": rows_of(task, 20)})
    assert r.status_code == 200, r.get_data(as_text=True)
    body = r.get_json()
    metrics = client.get("/metrics").get_data(as_text=True)
    counted = set(
        re.findall(
            r'^modelwatch_predictions_total\{model="[^"]*",model_version="1",'
            r'predicted_class="([^"]*)"\}',
            metrics,
            re.M,
        )
    )
    assert counted == ({""} if want_task == "regression" else {str(p) for p in body["predictions"]})
    state = app.extensions["modelwatch"]
    assert state.log.flush(10)
    logged = state.store.read_window(model_version="1").set_index("prediction_id")
    logged = logged.loc[body["prediction_ids"]]
    if want_task == "regression":
        assert logged["probabilities"].isna().all() and logged["probability"].isna().all()
        assert body["probabilities"] is None
        values = np.asarray(body["predictions"], dtype="float64")
        assert len(set(values)) > 10 and ((25 <= values) & (values <= 346)).all()
        assert (logged["prediction"].to_numpy() == values).all()  # repr: every digit kept
        return
    vectors = np.array([json.loads(text) for text in logged["probabilities"]])
    assert vectors.shape == (20, len(want_classes))
    np.testing.assert_allclose(vectors.sum(axis=1), 1.0)
    top = vectors.argmax(axis=1)
    assert body["predictions"] == [want_classes[i] for i in top]
    assert (logged["prediction"].to_numpy() == np.array(want_classes)[top]).all()
    expected = vectors[:, -1] if want_task == "binary" else vectors.max(axis=1)
    np.testing.assert_allclose(logged["probability"].to_numpy(), expected, rtol=0, atol=0)
    np.testing.assert_allclose(body["probabilities"], expected, rtol=0, atol=0)
    if want_task == "multiclass":
        assert len(set(body["predictions"])) >= 2


def test_a_regression_models_metrics_stay_bounded_after_1000_distinct_predictions(plain, tmp_path):
    env = {"MLFLOW_TRACKING_URI": plain, "MODELWATCH_MODEL_NAME": f"{PREFIX}-regression"}
    X = load_diabetes(as_frame=True).data
    rng = np.random.default_rng(0)
    with gunicorn(tmp_path, env, workers=2, ready_version="1") as srv:
        seen, sent = set(), 0
        while len(seen) < 1000:
            assert sent < 5000, f"only {len(seen)} distinct values in {sent} predictions"
            batch = X.sample(100, replace=True, random_state=sent) + rng.normal(
                0, 0.02, (100, X.shape[1])
            )
            r = requests.post(
                f"{srv.url}/predict", json={"records": batch.to_dict(orient="records")}, timeout=30
            )
            assert r.status_code == 200, r.text
            seen.update(r.json()["predictions"])
            sent += 100
        text = requests.get(f"{srv.url}/metrics", timeout=10).text
    counted = [
        line for line in text.splitlines() if line.startswith("modelwatch_predictions_total{")
    ]
    assert len(counted) == 1 and 'predicted_class=""' in counted[0]
    assert metric_total(text, "modelwatch_predictions_total") == sent
    buckets = [
        line for line in text.splitlines() if line.startswith("modelwatch_predicted_value_bucket{")
    ]
    assert len(buckets) == len(VALUE_BUCKETS) + 1  # +Inf
    assert metric_total(text, "modelwatch_predicted_value_count", model_version="1") == sent
    assert metric_total(text, "modelwatch_predicted_value_bucket", le="+Inf") == sent
    assert 25 * sent < metric_total(text, "modelwatch_predicted_value_sum") < 346 * sent
    assert metric_total(text, "modelwatch_prediction_score_count") == 0


# -- the cache keeps registries apart -------------------------------------------------------


@pytest.fixture(scope="module")
def other_registry(tmp_path_factory):
    """A second MLflow server: another registry, with models of the same names."""
    with services.mlflow_server(tmp_path_factory.mktemp("other-mlflow")) as url:
        yield url


def served_scores(app, rows) -> list[float]:
    r = app.test_client().post("/predict", json={"records": rows})
    assert r.status_code == 200, r.get_data(as_text=True)
    return r.get_json()["probabilities"]


def test_a_model_recreated_in_another_registry_is_never_answered_from_the_old_files(
    make_app, mlflow_url, other_registry, tmp_path
):
    name = "credit-default-serving-test-recreated"
    old = modelkit.register_version(mlflow_url, name, seed=1, alias="production")
    new = modelkit.register_version(other_registry, name, seed=2, alias="production")
    assert old == new == "1"
    rows = feature_rows(20)
    cache = str(tmp_path / "shared-cache")
    first = make_app(tracking_uri=mlflow_url, model_name=name, model_cache_dir=cache)
    old_scores = served_scores(first, rows)

    second = make_app(tracking_uri=other_registry, model_name=name, model_cache_dir=cache)
    fresh = make_app(
        tracking_uri=other_registry, model_name=name, model_cache_dir=str(tmp_path / "fresh-cache")
    )
    served = second.extensions["modelwatch"].models.current
    run_id = MlflowClient(other_registry).get_model_version(name, "1").run_id
    assert (served.version, served.run_id, served.source) == ("1", run_id, "registry")
    assert served_scores(second, rows) == served_scores(fresh, rows) != old_scores
    assert served.path != first.extensions["modelwatch"].models.current.path


def not_found_polls(app) -> float:
    return app.extensions["modelwatch"].metrics.reloads.labels("not_found")._value.get()


def assert_never_ready(app) -> None:
    """The poller asked the registry a few times and serves nothing: /ready is a 503."""
    services.wait_for(lambda: not_found_polls(app) >= 3, 30, "three not-found answers")
    models = app.extensions["modelwatch"].models
    assert models.current is None and "production" in models.last_error
    r = app.test_client().get("/ready")
    assert r.status_code == 503 and "production" in r.get_json()["error"]["details"]["last_error"]


def test_no_such_alias_is_not_an_outage_the_cache_does_not_answer(
    make_app, mlflow_url, other_registry, tmp_path
):
    name = "credit-default-serving-test-no-alias"
    modelkit.register_version(mlflow_url, name, seed=1, alias="production")
    cache = str(tmp_path / "cache")
    make_app(tracking_uri=mlflow_url, model_name=name, model_cache_dir=cache)  # cached

    # Another registry, which has never heard of the model: nothing is served.
    assert_never_ready(
        make_app(wait=False, tracking_uri=other_registry, model_name=name, model_cache_dir=cache)
    )
    # The same registry, once the alias is gone: nothing either, though it is cached.
    MlflowClient(mlflow_url).delete_registered_model_alias(name, "production")
    assert_never_ready(
        make_app(wait=False, tracking_uri=mlflow_url, model_name=name, model_cache_dir=cache)
    )


# -- skops types --------------------------------------------------------------------------


def test_a_skops_model_with_untrusted_types_is_refused_naming_them(tmp_path):
    """A forest whose MLmodel does not trust skops's Tree (as one saved by an older skops,
    which trusted it by default): refused with the type named and the setting to use;
    loaded, with the same answers, once the operator trusts it."""
    import mlflow.sklearn
    from mlflow.models import infer_signature
    from sklearn.ensemble import RandomForestRegressor

    X, y = load_diabetes(return_X_y=True, as_frame=True)
    forest = RandomForestRegressor(n_estimators=5, random_state=0).fit(X, y)
    path = tmp_path / "forest"
    mlflow.sklearn.save_model(
        forest,
        str(path),
        signature=infer_signature(X, forest.predict(X)),
        input_example=X.head(3),
        pip_requirements=["scikit-learn"],
        skops_trusted_types=["sklearn.tree._tree.Tree"],
    )
    meta = yaml.safe_load((path / "MLmodel").read_text())
    del meta["flavors"]["sklearn"]["skops_trusted_types"]
    (path / "MLmodel").write_text(yaml.safe_dump(meta))
    where = {
        "name": "forest",
        "version": "1",
        "alias": "production",
        "run_id": None,
        "source": "registry",
    }
    with pytest.raises(UntrustedTypes, match="sklearn.tree._tree.Tree") as refused:
        load_local(path, **where)
    assert "MODELWATCH_SKOPS_TRUSTED_TYPES=sklearn.tree._tree.Tree" in str(refused.value)
    model = load_local(path, **where, trusted_types=("sklearn.tree._tree.Tree",))
    served = model.predict(validate(X.head(10), model.spec))
    assert model.task == "regression"
    np.testing.assert_array_equal(served.labels, forest.predict(X.head(10)))


# -- the log's schema migration ---------------------------------------------------------------

OLD_SCHEMA = """CREATE TABLE predictions (prediction_id TEXT PRIMARY KEY, ts REAL NOT NULL,
    model_name TEXT NOT NULL, model_version TEXT NOT NULL, model_alias TEXT NOT NULL,
    features TEXT NOT NULL, prediction TEXT, probability REAL, latency_ms REAL, shadow_of TEXT);
CREATE TABLE feedback (prediction_id TEXT PRIMARY KEY, label TEXT NOT NULL, ts REAL NOT NULL);
INSERT INTO predictions VALUES ('old-1', 1700000000.0, 'm', '1', 'production', '{"x": 1}',
    '1', 0.9, 2.0, NULL);
"""


def old_log(store_url: str) -> None:
    if store_url.startswith("sqlite"):
        import sqlite3

        with sqlite3.connect(store_url[len("sqlite:///") :]) as conn:
            conn.executescript(OLD_SCHEMA)
        return
    import psycopg

    with psycopg.connect(store_url, autocommit=True) as conn:
        conn.execute("DROP TABLE IF EXISTS predictions, feedback")
        for statement in OLD_SCHEMA.replace("REAL", "DOUBLE PRECISION").split(";"):
            if statement.strip():
                conn.execute(statement)


def assert_migrated(store_url: str) -> None:
    old_log(store_url)
    store = open_store(store_url)
    batch = LogBatch(
        ids=["new-1", "new-2"],
        ts=1_700_000_001.0,
        model_name="m",
        model_version="2",
        model_alias="production",
        features=validate(pd.DataFrame(feature_rows(2)), None),
        predictions=[1, 0],
        probabilities=[0.75, 0.5],
        latency_ms=1.0,
        class_probabilities=np.array([[0.25, 0.75], [0.5, 0.5]]),
    )
    store.insert_predictions(batch.rows())
    window = store.read_window().set_index("prediction_id")
    store.close()
    assert window.loc["old-1", "probabilities"] is None
    assert window.loc["old-1", "probability"] == 0.9
    assert [json.loads(window.loc[i, "probabilities"]) for i in batch.ids] == [
        [0.25, 0.75],
        [0.5, 0.5],
    ]


def test_an_older_sqlite_log_gets_the_probabilities_column(tmp_path):
    assert_migrated(f"sqlite:///{tmp_path / 'old.db'}")


def test_an_older_postgres_log_gets_the_probabilities_column(cluster):
    assert_migrated(cluster.url)
