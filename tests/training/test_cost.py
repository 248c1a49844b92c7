"""Training's cost logging: a real MLflow run gets its CPU-seconds, peak memory and cost,
and the real `mlflow run .` logs them for every training (retraining calls the same run)."""

from __future__ import annotations

import re
import time

import mlflow
import pytest
from mlflow import MlflowClient

from modelwatch import cost
from tests.training.test_project import mlflow_run

GB = 2**30


def burn(seconds: float) -> None:
    end = time.process_time() + seconds
    while time.process_time() < end:
        pass


def vm_hwm_bytes() -> int:
    with open("/proc/self/status") as f:
        return int(re.search(r"VmHWM:\s+(\d+) kB", f.read()).group(1)) * 1024


@pytest.fixture(scope="module")
def experiment(mlflow_url) -> str:
    """An experiment passed by id: mlflow.set_experiment would leave MLFLOW_EXPERIMENT_ID
    in the environment, and `mlflow run` refuses it beside --experiment-name."""
    mlflow.set_tracking_uri(mlflow_url)
    return MlflowClient(mlflow_url).create_experiment("cost")


@pytest.mark.slow
def test_a_run_logs_what_its_block_cost(mlflow_url, experiment):
    prices = cost.Prices(per_cpu_hour=3.6, per_gb_hour=0.9)
    with mlflow.start_run(experiment_id=experiment) as run:
        started = time.monotonic()
        with cost.logged_to_mlflow(prices):
            burn(0.5)
        wall = time.monotonic() - started
    logged = MlflowClient(mlflow_url).get_run(run.info.run_id).data.metrics
    assert logged["cpu_seconds"] == pytest.approx(0.5, rel=0.05)
    assert logged["peak_rss_bytes"] == pytest.approx(vm_hwm_bytes(), rel=0.05)
    most = logged["cpu_seconds"] / 3600 * 3.6 + logged["peak_rss_bytes"] / GB * wall / 3600 * 0.9
    assert most * 0.9 <= logged["cost"] <= most


@pytest.mark.slow
def test_no_price_no_cost(mlflow_url, experiment, monkeypatch):
    monkeypatch.delenv("MODELWATCH_COST_PER_CPU_HOUR", raising=False)
    monkeypatch.delenv("MODELWATCH_COST_PER_GB_HOUR", raising=False)
    with mlflow.start_run(experiment_id=experiment) as run, cost.logged_to_mlflow():
        burn(0.05)
    logged = MlflowClient(mlflow_url).get_run(run.info.run_id).data.metrics
    assert "cpu_seconds" in logged and "peak_rss_bytes" in logged and "cost" not in logged


def test_prices_from_the_environment():
    assert cost.Prices.from_env({}) == cost.Prices(None, None)
    env = {"MODELWATCH_COST_PER_CPU_HOUR": "0.04", "MODELWATCH_COST_PER_GB_HOUR": ""}
    assert cost.Prices.from_env(env) == cost.Prices(0.04, None)
    assert cost.cost(7200, GB, 3600, cost.Prices(0.04, None)) == pytest.approx(0.08)
    assert cost.cost(0, 2 * GB, 1800, cost.Prices(None, 0.01)) == pytest.approx(0.01)


@pytest.mark.slow
def test_mlflow_run_of_the_project_logs_its_cost(mlflow_url, monkeypatch):
    monkeypatch.setenv("MODELWATCH_COST_PER_CPU_HOUR", "0.04")
    done = mlflow_run(mlflow_url, "train-cost", n_rows=3000, model_name="credit-cost")
    assert done.returncode == 0, done.stderr[-3000:]
    client = MlflowClient(mlflow_url)
    version = client.get_model_version_by_alias("credit-cost", "production")
    logged = client.get_run(version.run_id).data.metrics
    assert 0 < logged["cpu_seconds"] and logged["peak_rss_bytes"] > 50 * 2**20
    assert logged["cost"] == pytest.approx(logged["cpu_seconds"] / 3600 * 0.04)
