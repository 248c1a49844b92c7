"""Frames for the batch engines' tests: a reference and prediction-log rows of one model.

Each case trains a small model on packaged data (sklearn's breast_cancer, wine and
diabetes, and the credit simulator), takes a monitoring reference from one part of the
rows and makes log rows (as `read_window` answers them) of the rest, some labels missing
and, where asked, a drift or a broken column.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
from modelwatch.monitoring.reference import MonitoringReference
from modelwatch.training.simulator import generate
from sklearn.compose import make_column_transformer
from sklearn.datasets import load_breast_cancer, load_diabetes, load_wine
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

CASES = ("breast_cancer", "wine", "diabetes", "credit")


def dataset(name: str, rows: int = 6000, seed: int = 0) -> tuple[pd.DataFrame, str, str]:
    """(frame, target, task) of a packaged data set or the simulator."""
    if name == "credit":
        return generate(rows, "baseline", seed=seed), "defaulted", "binary"
    loader, task = {
        "breast_cancer": (load_breast_cancer, "binary"),
        "wine": (load_wine, "multiclass"),
        "diabetes": (load_diabetes, "regression"),
    }[name]
    frame = loader(as_frame=True).frame
    return frame.sample(frac=1.0, random_state=seed).reset_index(drop=True), "target", task


def model_for(frame: pd.DataFrame, task: str):
    categorical = [c for c in frame.columns if not pd.api.types.is_numeric_dtype(frame[c])]
    numeric = [c for c in frame.columns if c not in categorical]
    encode = make_column_transformer(
        (StandardScaler(), numeric), (OneHotEncoder(handle_unknown="ignore"), categorical)
    )
    return make_pipeline(
        encode, Ridge() if task == "regression" else LogisticRegression(max_iter=2000)
    )


def case(
    name: str,
    rows: int = 6000,
    seed: int = 0,
    drift: bool = False,
    label_share: float = 0.8,
    start: float = 1_764_576_000.0,
):
    """(reference, log rows) of one case. `drift`: the window's first numeric feature is
    shifted and its first categorical one (if any) swapped for one value."""
    frame, target, task = dataset(name, rows, seed)
    half = len(frame) // 2
    train, window = frame.iloc[:half], frame.iloc[half:].reset_index(drop=True)
    X, y = train.drop(columns=target), train[target]
    model = model_for(X, task).fit(X, y)
    proba = None if task == "regression" else model.predict_proba(X)
    reference = MonitoringReference.from_scores(
        X,
        y,
        model.predict(X),
        proba,
        classes=None if proba is None else list(model.classes_),
        target=target,
        task=task,
    )
    return reference, log_rows(model, window, target, task, drift, label_share, start, seed)


def log_rows(
    model,
    window: pd.DataFrame,
    target: str,
    task: str,
    drift: bool,
    label_share: float,
    start: float,
    seed: int,
) -> pd.DataFrame:
    rng = np.random.default_rng(seed + 1)
    X = window.drop(columns=target).copy()
    if drift:
        numeric = [c for c in X.columns if pd.api.types.is_numeric_dtype(X[c])]
        X[numeric[0]] = X[numeric[0]] + 2 * X[numeric[0]].std()
        categorical = [c for c in X.columns if c not in numeric]
        if categorical:
            X.loc[X.index[: len(X) // 2], categorical[0]] = "somewhere new"
    rows = X.copy()
    n = len(rows)
    rows["prediction_id"] = [f"p{seed}-{i}" for i in range(n)]
    rows["ts"] = pd.to_datetime(start + np.sort(rng.uniform(0, 3 * 3600, n)), unit="s", utc=True)
    labelled = rng.uniform(size=n) < label_share
    if task == "regression":
        rows["prediction"] = [repr(float(v)) for v in model.predict(X)]
        rows["probability"], rows["probabilities"] = np.nan, None
        rows["label"] = [repr(float(v)) if k else None for v, k in zip(window[target], labelled)]
    else:
        proba = model.predict_proba(X)
        classes = [str(c) for c in model.classes_]
        rows["prediction"] = [classes[i] for i in proba.argmax(axis=1)]
        rows["probability"] = proba[:, -1] if len(classes) == 2 else proba.max(axis=1)
        rows["probabilities"] = [json.dumps(p.tolist()) for p in proba]
        rows["label"] = [str(v) if k else None for v, k in zip(window[target], labelled)]
    rows["latency_ms"] = rng.uniform(1, 5, n)
    rows["model_name"], rows["model_version"], rows["model_alias"], rows["shadow_of"] = (
        "m",
        "1",
        "production",
        None,
    )
    return rows


def verdicts(window) -> dict:
    """Every verdict of a window: each metric's alert, the drifted columns, the integrity
    findings."""
    return {
        "alerts": {(m.name, m.labels): m.alert for m in window.metrics},
        "drifted": sorted(n for n, c in window.drift["columns"].items() if c["drifted"]),
        "dataset_drift": window.drift["dataset_drift"],
        "integrity": sorted((i["kind"], tuple(i["columns"]), i["count"]) for i in window.integrity),
    }


def statistics(window) -> dict:
    return {(m.name, m.labels): m.value for m in window.metrics}


def log_records(
    rows: pd.DataFrame, features: list[str], model_name: str = "m", version: str = "1"
) -> list[tuple]:
    """Log rows as the store's insert_predictions takes them."""
    from modelwatch.log import PREDICTION_COLUMNS

    out = []
    for r in rows.to_dict("records"):
        values = {k: None if isinstance(r[k], float) and np.isnan(r[k]) else r[k] for k in features}
        record = {
            "prediction_id": r["prediction_id"],
            "ts": r["ts"].timestamp(),
            "model_name": model_name,
            "model_version": version,
            "model_alias": "production",
            "features": json.dumps(values),
            "prediction": r["prediction"],
            "probability": None if np.isnan(r["probability"]) else r["probability"],
            "latency_ms": r["latency_ms"],
            "shadow_of": None,
            "probabilities": r["probabilities"],
        }
        out.append(tuple(record.get(c) for c in PREDICTION_COLUMNS))
    return out


def fill_store(
    store, rows: pd.DataFrame, features: list[str], model_name: str = "m", version: str = "1"
) -> None:
    """The rows into a store, as the model's version's (their ids made the model's own)."""
    rows = rows.assign(prediction_id=f"{model_name}-{version}-" + rows["prediction_id"])
    store.insert_predictions(log_records(rows, features, model_name, version))
    store.store_feedback(
        {i: label for i, label in zip(rows["prediction_id"], rows["label"]) if label is not None}
    )


def register(url: str, name: str, reference=None) -> str:
    """A registered version of `name` whose monitoring reference is `reference` (None: a
    version nobody onboarded). Returns the version."""
    import tempfile
    from pathlib import Path

    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException
    from modelwatch.monitoring.registry import link_reference

    client = MlflowClient(url)
    experiment = client.get_experiment_by_name("batch-tests")
    experiment_id = (
        experiment.experiment_id if experiment else client.create_experiment("batch-tests")
    )
    run = client.create_run(experiment_id)
    if reference is not None:
        with tempfile.TemporaryDirectory() as tmp:
            client.log_artifacts(
                run.info.run_id, str(reference.save(Path(tmp, "reference"))), "reference"
            )
    client.set_terminated(run.info.run_id)
    try:
        client.create_registered_model(name)
    except MlflowException:
        pass  # exists
    version = client.create_model_version(
        name, source=f"{run.info.artifact_uri}/reference", run_id=run.info.run_id
    ).version
    if reference is not None:
        link_reference(client, reference, name, version, run.info.run_id)
    return str(version)


def assert_close(got, expected, path: str = "", rel: float = 1e-9) -> None:
    """Two JSON documents equal, their numbers within `rel`."""
    import math

    if isinstance(expected, dict):
        assert isinstance(got, dict) and got.keys() == expected.keys(), (
            path,
            sorted(got),
            sorted(expected),
        )
        for key in expected:
            assert_close(got[key], expected[key], f"{path}.{key}", rel)
    elif isinstance(expected, list):
        assert isinstance(got, list) and len(got) == len(expected), path
        for i, (g, e) in enumerate(zip(got, expected)):
            assert_close(g, e, f"{path}[{i}]", rel)
    elif isinstance(expected, float) and not isinstance(got, bool):
        assert isinstance(got, (int, float)), path
        assert (math.isnan(got) and math.isnan(expected)) or math.isclose(
            got, expected, rel_tol=rel, abs_tol=rel
        ), (path, got, expected)
    else:
        assert got == expected, (path, got, expected)
