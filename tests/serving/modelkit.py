"""Register small real models for the serving tests.

`register_version` trains a scikit-learn pipeline on the simulator's stream and logs it
the way training does (sklearn flavor, signature from the feature frame, input example),
through an `MlflowClient` bound to the given server: no global MLflow state in the test
process. `train_with_entry_point` runs the real training entry point.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
import requests
from modelwatch.serving.logwriter.batch import LogBatch
from modelwatch.serving.validation import validate
from modelwatch.training.simulator import (
    CATEGORICAL_FEATURES,
    FEATURES,
    NUMERIC_FEATURES,
    TARGET,
    generate,
)

ROOT = Path(__file__).resolve().parents[2]


def feature_rows(n: int, seed: int = 7, scenario: str = "baseline") -> list[dict]:
    df = generate(n, scenario=scenario, seed=seed)[FEATURES]
    return df.to_dict(orient="records")


def log_batch(n: int, version: str = "1", seed: int = 3):
    """A prediction log batch of `n` simulated rows, ids `id-<seed>-<i>`."""
    rows = feature_rows(n, seed=seed)
    ids = [f"id-{seed}-{i}" for i in range(n)]
    return LogBatch(
        ids=ids,
        ts=1_700_000_000.0 + seed,
        model_name="m",
        model_version=version,
        model_alias="production",
        features=validate(pd.DataFrame(rows), None),
        predictions=[i % 2 for i in range(n)],
        probabilities=[0.1 * (i % 10) for i in range(n)],
        latency_ms=2.5,
    )


def _pipeline(seed: int, flip: bool):
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline, make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    pre = ColumnTransformer(
        [
            (
                "num",
                make_pipeline(SimpleImputer(strategy="median"), StandardScaler()),
                NUMERIC_FEATURES,
            ),
            (
                "cat",
                make_pipeline(
                    SimpleImputer(strategy="constant", fill_value="__missing__"),
                    OneHotEncoder(handle_unknown="ignore"),
                ),
                CATEGORICAL_FEATURES,
            ),
        ]
    )
    return Pipeline(
        [("pre", pre), ("model", LogisticRegression(max_iter=500, C=0.01 if flip else 1.0))]
    )


def register_version(
    url: str, name: str, seed: int = 1, alias: str | None = None, n_rows: int = 2000
) -> str:
    """Train, log and register one version of `name`; set `alias` on it if given."""
    df = generate(n_rows, seed=seed)
    X, y = df[FEATURES], df[TARGET]
    pipe = _pipeline(seed, flip=seed % 2 == 0).fit(X, y)
    return register_pipeline(url, name, pipe, X, pipe.predict_proba(X)[:, 1], alias, X.head(3))


def register_pipeline(
    url: str, name: str, pipe, X, output, alias: str | None = None, input_example=None
) -> str:
    """Log the fitted sklearn `pipe` (signature from `X` and its `output`) and register it
    as a version of `name`; set `alias` on it if given."""
    import mlflow.sklearn
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException
    from mlflow.models import infer_signature

    client = MlflowClient(tracking_uri=url, registry_uri=url)
    exp = client.get_experiment_by_name("serving-tests")
    exp_id = exp.experiment_id if exp else client.create_experiment("serving-tests")
    run = client.create_run(exp_id, tags={"purpose": "serving test model"})
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "model"
        mlflow.sklearn.save_model(
            pipe,
            str(path),
            serialization_format="pickle",
            pip_requirements=["scikit-learn", "pandas"],  # no slow inference subprocess
            signature=infer_signature(X, output),
            input_example=input_example,
        )
        client.log_artifacts(run.info.run_id, str(path), "model")
    client.set_terminated(run.info.run_id)
    try:
        client.create_registered_model(name)
    except MlflowException:
        pass  # exists
    mv = client.create_model_version(
        name, source=f"{run.info.artifact_uri}/model", run_id=run.info.run_id
    )
    if alias:
        client.set_registered_model_alias(name, alias, mv.version)
    return str(mv.version)


def set_alias(url: str, name: str, alias: str, version: str, deadline: float = 60.0) -> None:
    """Point the alias at the version, again if the server dropped the connection: setting
    an alias is idempotent, and serving's registry code sets MLflow's own HTTP retries to 0
    for any process that imports it, the test process included."""
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    client = MlflowClient(tracking_uri=url, registry_uri=url)
    give_up = time.monotonic() + deadline
    while True:
        try:
            return client.set_registered_model_alias(name, alias, version)
        except (MlflowException, requests.ConnectionError):
            if time.monotonic() > give_up:
                raise
            time.sleep(0.5)


def train_with_entry_point(url: str, name: str, log: Path, n_rows: int = 2000) -> None:
    """`python -m modelwatch.training.train --n-rows N --model-name NAME --promote always`."""
    with open(log, "ab") as out:
        subprocess.run(
            [
                sys.executable,
                "-m",
                "modelwatch.training.train",
                "--n-rows",
                str(n_rows),
                "--model-name",
                name,
                "--promote",
                "always",
            ],
            cwd=ROOT,
            env={**__import__("os").environ, "MLFLOW_TRACKING_URI": url},
            stdout=out,
            stderr=subprocess.STDOUT,
            check=True,
            timeout=300,
        )


def as_frame(rows: list[dict]) -> pd.DataFrame:
    return pd.DataFrame(rows)
