"""MonitoringRunLogger against the real MLflow server: one run per model version, a step
per window numbered on across restarts, retries that neither lose nor duplicate anything;
the run is linked from its version, names the run that logged the model, carries each
metric's bounds at the metric's step, and ends when the version leaves the alias."""

from __future__ import annotations

import math
import time
import uuid

import numpy as np
import pandas as pd
from mlflow import MlflowClient
from modelwatch.monitoring.calculators.classification import RealizedClassification
from modelwatch.monitoring.registry import TAG_REFERENCE_RUN
from modelwatch.monitoring.service.mlflow_log import (
    TAG_MONITORING_RUN,
    MonitoringRunLogger,
    WindowRecord,
)
from modelwatch.monitoring.window import WindowResult

from modelwatch.log.scored import Scored


class FlakyUploads:
    """The real client, but the first `failures` artifact uploads fail as if MLflow went
    away mid-write (after the window's metrics were logged)."""

    def __init__(self, client, failures: int):
        self._client, self.failures = client, failures

    def log_text(self, *args, **kwargs):
        if self.failures:
            self.failures -= 1
            raise ConnectionError("MLflow went away during the upload")
        return self._client.log_text(*args, **kwargs)

    def __getattr__(self, name):
        return getattr(self._client, name)


def record(version: str, n: int, **artifacts) -> WindowRecord:
    """The `n`th window of `version` (its drift share says which)."""
    return WindowRecord(
        version,
        time.time(),
        {
            "window_rows": 500.0,  # every window logs it: its last step is the run's
            "dataset_drift_share": n / 10,
            "live_accuracy": 0.8,
            "nan_metric": math.nan,
        },
        artifacts,
    )


def register(mlflow_url: str, model: str, versions: int) -> list[str]:
    """`versions` versions of `model`, each logged by a run of its own; their run ids."""
    client = MlflowClient(mlflow_url)
    client.create_registered_model(model)
    experiment = client.create_experiment(f"{model}-training")
    runs = []
    for _ in range(versions):
        run = client.create_run(experiment)
        client.create_model_version(model, f"{run.info.artifact_uri}/model", run.info.run_id)
        runs.append(run.info.run_id)
    return runs


def scored(n: int, seed: int) -> Scored:
    rng = np.random.default_rng(seed)
    p = rng.uniform(size=n)
    y = (rng.uniform(size=n) < p).astype(int).astype(str).astype(object)
    pred = (p > 0.5).astype(int).astype(str).astype(object)
    return Scored(
        pd.DataFrame(index=range(n)), pred, y, "binary", np.column_stack([1 - p, p]), ["0", "1"]
    )


def runs_of(client: MlflowClient, model: str):
    experiment = client.get_experiment_by_name(f"{model}-monitoring")
    return {
        r.data.tags["modelwatch.model_version"]: r
        for r in client.search_runs([experiment.experiment_id])
    }


def test_a_failure_part_way_is_retried_and_nothing_is_lost(mlflow_url):
    model = f"logger-{uuid.uuid4().hex[:8]}"
    register(mlflow_url, model, 1)
    errors = []
    logger = MonitoringRunLogger(mlflow_url, model, on_error=lambda: errors.append(1))
    try:
        logger._client = FlakyUploads(logger._client, failures=1)
        made = []
        logger.submit(
            record(
                "1",
                1,
                **{
                    "drift.json": '{"drift": true}',
                    "drift_report.html": lambda: made.append(1) or "<html></html>",
                },
            )
        )
        logger.submit(record("1", 2))
        assert logger.flush(30) and logger.pending() == 0
        assert errors == [1]
        assert made == [1]  # the slow report is made once, not once per attempt

        client = MlflowClient(mlflow_url)
        run = runs_of(client, model)["1"]
        history = client.get_metric_history(run.info.run_id, "dataset_drift_share")
        assert sorted((m.step, m.value) for m in history) == [(1, 0.1), (2, 0.2)]
        assert "nan_metric" not in run.data.metrics  # non-finite values are not MLflow metrics
        files = {f.path for f in client.list_artifacts(run.info.run_id, "windows/000001")}
        assert files == {"windows/000001/drift.json", "windows/000001/drift_report.html"}
    finally:
        logger.close()


def test_one_run_per_version_found_again_after_a_restart(mlflow_url):
    model = f"logger-{uuid.uuid4().hex[:8]}"
    register(mlflow_url, model, 2)
    first = MonitoringRunLogger(mlflow_url, model)
    first.submit(record("1", 1))
    first.submit(record("2", 1))
    assert first.flush(30)
    first.close()

    # a restarted monitor keeps writing into the same runs
    second = MonitoringRunLogger(mlflow_url, model)
    second.submit(record("2", 2))
    assert second.flush(30)
    second.close()

    client = MlflowClient(mlflow_url)
    runs = runs_of(client, model)
    assert set(runs) == {"1", "2"}
    assert runs["2"].data.tags["modelwatch.model_name"] == model
    steps = [m.step for m in client.get_metric_history(runs["2"].info.run_id, "live_accuracy")]
    assert sorted(steps) == [1, 2]
    assert (
        len(
            client.search_runs([client.get_experiment_by_name(f"{model}-monitoring").experiment_id])
        )
        == 2
    )


def test_the_run_is_a_record_linked_from_its_version_and_ended_when_the_alias_moves(mlflow_url):
    model = f"logger-{uuid.uuid4().hex[:8]}"
    training = register(mlflow_url, model, 2)
    client = MlflowClient(mlflow_url)
    client.set_model_version_tag(model, "1", TAG_REFERENCE_RUN, "an-onboarding-run")
    accuracy = RealizedClassification(chunk_rows=500).fit(scored(3000, 0))
    logger = MonitoringRunLogger(mlflow_url, model)
    try:
        for seed in (1, 2):
            window = WindowResult("1", 500, [accuracy.calculate(scored(500, seed))])
            logger.submit(WindowRecord("1", window.evaluated_at, window.flat()))
        logger.retire("1")  # the alias moved on
        logger.submit(record("2", 1))
        assert logger.flush(60)
    finally:
        logger.close()
    runs = runs_of(client, model)
    first, second = runs["1"], runs["2"]
    tags = client.get_model_version(model, "1").tags
    assert tags[TAG_MONITORING_RUN] == first.info.run_id  # the version links its record
    assert first.data.tags["modelwatch.training_run_id"] == training[0]  # not the reference's
    assert first.data.tags[TAG_REFERENCE_RUN] == "an-onboarding-run"
    assert first.info.status == "FINISHED" and second.info.status == "RUNNING"
    # each bound beside its metric: the same steps, one per window
    steps = {
        name: sorted(m.step for m in client.get_metric_history(first.info.run_id, name))
        for name in ("live_accuracy", "live_accuracy.lower", "window_rows")
    }
    assert steps == dict.fromkeys(steps, [1, 2])
    assert "live_accuracy.upper" not in first.data.metrics  # a score has no upper bound

    # the alias comes back to version 1 after a restart: its run goes on, steps never repeat
    again = MonitoringRunLogger(mlflow_url, model)
    try:
        again.submit(record("1", 3))
        assert again.flush(60)
    finally:
        again.close()
    runs = runs_of(client, model)
    assert runs["1"].info.status == "RUNNING" and runs["2"].info.status == "FINISHED"
    history = client.get_metric_history(runs["1"].info.run_id, "window_rows")
    assert sorted(m.step for m in history) == [1, 2, 3]
