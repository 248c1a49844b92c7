"""The real `mlflow run .` against a real `mlflow server`: register, gate, bad input."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
from mlflow import MlflowClient
from modelwatch.training.simulator import generate
from sklearn.datasets import load_diabetes, load_wine

ROOT = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent


def mlflow_run(url: str, experiment: str, **params) -> subprocess.CompletedProcess:
    args = [
        str(VENV_BIN / "mlflow"),
        "run",
        str(ROOT),
        "--env-manager",
        "local",
        "--experiment-name",
        experiment,
    ]
    for key, value in params.items():
        args += ["-P", f"{key}={value}"]
    env = {
        **os.environ,
        "MLFLOW_TRACKING_URI": url,
        "PATH": f"{VENV_BIN}{os.pathsep}{os.environ['PATH']}",
    }
    return subprocess.run(args, env=env, capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def client(mlflow_url):
    mlflow.set_tracking_uri(mlflow_url)
    return MlflowClient(mlflow_url)


@pytest.fixture(scope="module")
def simulated(mlflow_url, client):
    """The default entry point on the simulator, with fewer rows to keep the suite quick."""
    done = mlflow_run(mlflow_url, "train-sim", n_rows=6000, model_name="credit-sim")
    assert done.returncode == 0, done.stderr[-3000:]
    return client.get_model_version_by_alias("credit-sim", "production")


def test_simulated_model_is_registered_and_promoted(simulated, client):
    assert simulated.version == "1"
    assert simulated.tags["validation_status"] == "approved"
    assert simulated.tags["trigger"] == "manual" and len(simulated.tags["data_digest"]) == 16
    run = client.get_run(simulated.run_id)
    for metric in (
        "accuracy",
        "precision",
        "recall",
        "f1",
        "roc_auc",
        "log_loss",
        "expected_calibration_error",
    ):
        assert metric in run.data.metrics
    assert run.data.metrics["roc_auc"] > 0.7
    assert run.data.params["model_type"] == "gbm" and run.data.params["n_rows"] == "6000"


def test_model_has_signature_example_and_loads(simulated):
    model = mlflow.pyfunc.load_model("models:/credit-sim@production")
    inputs = {c.name: c.type.name for c in model.metadata.get_input_schema().inputs}
    assert inputs["income"] == "double" and inputs["region"] == "string" and len(inputs) == 11
    sample = generate(50, "baseline", seed=123).drop(columns="defaulted")
    assert set(np.unique(model.predict(sample))) <= {0, 1}
    native = mlflow.sklearn.load_model("models:/credit-sim@production")
    assert native.predict_proba(sample).shape == (50, 2)


def test_datasets_and_reference_artifacts_are_logged(simulated, client):
    run = client.get_run(simulated.run_id)
    contexts = {
        tag.value
        for d in run.inputs.dataset_inputs
        for tag in d.tags
        if tag.key == "mlflow.data.context"
    }
    assert contexts == {"training", "evaluation"}
    local = Path(mlflow.artifacts.download_artifacts(run_id=simulated.run_id, artifact_path=""))
    profile = json.loads((local / "reference" / "profile.json").read_text())
    assert "income" in json.dumps(profile) and "region" in json.dumps(profile)
    sample = pd.read_parquet(local / "reference" / "sample.parquet")
    # the held-out rows as the model scored them: what the monitor's calculators are fitted on
    assert {"income", "defaulted", "__prediction__", "__proba__0", "__proba__1"} <= set(
        sample.columns
    )
    assert len(sample) == 900
    manifest = json.loads((local / "reference" / "reference.json").read_text())
    assert (manifest["task"], manifest["target"], manifest["classes"]) == (
        "binary",
        "defaulted",
        ["0", "1"],
    )
    assert simulated.tags["modelwatch.reference_run"] == simulated.run_id
    assert (
        simulated.tags["modelwatch.task"] == "binary"
        and simulated.tags["modelwatch.target"] == "defaulted"
    )
    decision = json.loads((local / "gate" / "decision.json").read_text())
    assert decision["approved"] and decision["metric"] == "roc_auc"


def test_user_csv_with_its_own_target(mlflow_url, client, tmp_path):
    frame = generate(3000, "baseline", seed=5).rename(columns={"defaulted": "bad_loan"})
    frame["bad_loan"] = frame["bad_loan"].map({0: "repaid", 1: "default"})
    path = tmp_path / "loans.csv"
    frame.to_csv(path, index=False)
    done = mlflow_run(
        mlflow_url,
        "train-csv",
        data=path,
        target="bad_loan",
        model_name="user-csv",
        model_type="logreg",
    )
    assert done.returncode == 0, done.stderr[-3000:]
    version = client.get_model_version_by_alias("user-csv", "production")
    assert version.tags["validation_status"] == "approved"
    model = mlflow.sklearn.load_model("models:/user-csv@production")
    assert set(model.classes_) == {"default", "repaid"}


def test_gate_refuses_a_worse_candidate(mlflow_url, client, tmp_path):
    """A champion from good data; then a candidate trained on shuffled labels, scored on
    the same trusted holdout: it is rejected, takes `challenger`, and production stays."""
    good = generate(4000, "baseline", seed=11)
    holdout = generate(1500, "baseline", seed=12)
    shuffled = good.assign(
        defaulted=np.random.default_rng(0).permutation(good["defaulted"].to_numpy())
    )
    for name, frame in (("good", good), ("shuffled", shuffled), ("holdout", holdout)):
        frame.to_parquet(tmp_path / f"{name}.parquet", index=False)
    first = mlflow_run(
        mlflow_url,
        "gate",
        data=tmp_path / "good.parquet",
        model_name="gated",
        holdout=tmp_path / "holdout.parquet",
    )
    assert first.returncode == 0, first.stderr[-3000:]
    worse = mlflow_run(
        mlflow_url,
        "gate",
        data=tmp_path / "shuffled.parquet",
        model_name="gated",
        holdout=tmp_path / "holdout.parquet",
    )
    assert worse.returncode == 0, worse.stderr[-3000:]  # a rejection is a verdict, not a failure
    assert client.get_model_version_by_alias("gated", "production").version == "1"
    challenger = client.get_model_version_by_alias("gated", "challenger")
    assert challenger.version == "2"
    assert challenger.tags["validation_status"].startswith("rejected: roc_auc")
    champion_auc = client.get_run(challenger.run_id).data.metrics["champion_roc_auc"]
    assert champion_auc > 0.7
    print(
        f"gate decision on the shuffled-label candidate: {challenger.tags['validation_status']}; "
        f"champion roc_auc on the same holdout {champion_auc:.4f}"
    )


def test_a_regression_target_trains_and_is_gated_on_rmse(mlflow_url, client, tmp_path):
    """A float target with many values, from a table sklearn ships: inferred as regression."""
    load_diabetes(as_frame=True).frame.to_csv(tmp_path / "diabetes.csv", index=False)
    for model_type in ("linear", "gbm"):
        done = mlflow_run(
            mlflow_url,
            "regression",
            data=tmp_path / "diabetes.csv",
            target="target",
            model_name="diabetes",
            model_type=model_type,
        )
        assert done.returncode == 0, done.stderr[-3000:]
    first, second = (client.get_model_version("diabetes", v) for v in ("1", "2"))
    assert first.tags["modelwatch.task"] == "regression" and first.tags["gate_metric"] == "rmse"
    run = client.get_run(first.run_id)
    assert {"rmse", "mae", "mape", "r2"} <= set(run.data.metrics) and run.data.metrics["r2"] > 0.3
    decision = json.loads(
        Path(
            mlflow.artifacts.download_artifacts(
                run_id=second.run_id, artifact_path="gate/decision.json"
            )
        ).read_text()
    )
    # the ceiling is the RMSE of predicting the training mean; the champion is version 1
    assert decision["candidate"] < decision["floor"] and decision["champion_version"] == "1"
    assert decision["champion"] == pytest.approx(run.data.metrics["rmse"])
    assert second.tags["validation_status"].startswith("approved") == decision["approved"]
    predicted = mlflow.sklearn.load_model("models:/diabetes/1").predict(
        load_diabetes(as_frame=True).data.head(5)
    )
    assert predicted.dtype == np.float64 and len(set(predicted)) == 5


def test_multiclass_with_segments_and_sensitive_columns(mlflow_url, client, tmp_path):
    frame = load_wine(as_frame=True).frame
    frame["cellar"] = np.where(frame["alcohol"] > 13, "north", "south")
    frame.to_csv(tmp_path / "wine.csv", index=False)
    done = mlflow_run(
        mlflow_url,
        "multiclass",
        data=tmp_path / "wine.csv",
        target="target",
        model_name="wine",
        model_type="rf",
        segments="cellar",
        sensitive="alcohol, cellar",
    )
    assert done.returncode == 0, done.stderr[-3000:]
    version = client.get_model_version_by_alias("wine", "production")
    assert (
        version.tags["modelwatch.task"] == "multiclass"
        and version.tags["gate_metric"] == "accuracy"
    )
    assert (
        version.tags["modelwatch.segments"] == "cellar"
        and version.tags["modelwatch.sensitive"] == "alcohol,cellar"
    )
    assert version.tags["validation_status"] == "approved"
    assert client.get_run(version.run_id).data.metrics["accuracy"] > 0.8


def _bad_inputs(tmp: Path) -> dict[str, tuple[dict, str]]:
    (tmp / "empty.csv").write_text("")
    (tmp / "garbage.parquet").write_bytes(b"\x00not parquet at all")
    one_class = generate(200, "baseline", seed=1).assign(defaulted=0)
    one_class.to_csv(tmp / "one_class.csv", index=False)
    texty = generate(200, "baseline", seed=1)
    texty["income"] = texty["income"].astype(object)
    texty.loc[:20, "income"] = "unknown"
    texty.to_csv(tmp / "texty.csv", index=False)
    generate(200, "baseline", seed=1).to_csv(tmp / "ok.csv", index=False)
    ok = {"data": tmp / "ok.csv"}
    return {
        "missing": ({"data": tmp / "nope.csv"}, "data file not found"),
        "empty": ({"data": tmp / "empty.csv"}, "data file is empty"),
        "unreadable": ({"data": tmp / "garbage.parquet"}, "cannot read"),
        "no_target": (
            {"data": tmp / "ok.csv", "target": "churned"},
            "target column 'churned' not found",
        ),
        "one_class": ({"data": tmp / "one_class.csv"}, "single class"),
        "text_in_numbers": ({"data": tmp / "texty.csv"}, "column 'income' looks numeric"),
        "text_regression": (
            ok | {"target": "region", "task": "regression"},
            "target 'region' is not numeric",
        ),
        "classifier_for_regression": (
            ok | {"target": "income", "model_type": "logreg"},
            "model_type 'logreg' is not for regression",
        ),
        "unknown_segment": (
            ok | {"segments": "region,planet"},
            "--segments: 'planet' is not a feature column",
        ),
        "unknown_task": (ok | {"task": "ranking"}, "unknown task 'ranking'"),
    }


@pytest.mark.parametrize(
    "case",
    [
        "missing",
        "empty",
        "unreadable",
        "no_target",
        "one_class",
        "text_in_numbers",
        "text_regression",
        "classifier_for_regression",
        "unknown_segment",
        "unknown_task",
    ],
)
def test_bad_input_fails_clearly_and_registers_nothing(case, mlflow_url, client, tmp_path):
    params, message = _bad_inputs(tmp_path)[case]
    name = f"bad-{case.replace('_', '-')}"
    done = mlflow_run(mlflow_url, "bad-input", model_name=name, **params)
    assert done.returncode != 0
    assert message in done.stderr
    assert client.search_model_versions(f"name='{name}'") == []
