"""MonitoringRunLogger against the real MLflow server: one run per model version, a step
per window, retries that neither lose nor duplicate anything."""

from __future__ import annotations

import math
import time
import uuid

from mlflow import MlflowClient
from modelwatch.monitoring.service.mlflow_log import MonitoringRunLogger, WindowRecord


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


def record(version: str, step: int, **artifacts) -> WindowRecord:
    return WindowRecord(
        version,
        "training-run",
        step,
        time.time(),
        {"dataset_drift_share": step / 10, "live_accuracy": 0.8, "nan_metric": math.nan},
        artifacts,
    )


def runs_of(client: MlflowClient, model: str):
    experiment = client.get_experiment_by_name(f"{model}-monitoring")
    return {
        r.data.tags["modelwatch.model_version"]: r
        for r in client.search_runs([experiment.experiment_id])
    }


def test_a_failure_part_way_is_retried_and_nothing_is_lost(mlflow_url):
    model = f"logger-{uuid.uuid4().hex[:8]}"
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
                    "windows/000001/drift.json": '{"drift": true}',
                    "windows/000001/drift_report.html": lambda: made.append(1) or "<html></html>",
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
