"""Logging windows to MLflow: one monitoring run per model version, a step per window.

The monitor loop only enqueues; a background thread writes, and keeps what it could not
write (up to a bound) to retry when MLflow is back, so an MLflow outage never blocks a
window and loses nothing short of the bound.
"""

from __future__ import annotations

import collections
import logging
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from mlflow import MlflowClient
from mlflow.entities import Metric
from modelwatch.monitoring.service.config import fail_fast_mlflow

log = logging.getLogger(__name__)
MAX_PENDING = 10_000
RETRY_SECONDS = 5.0


@dataclass
class WindowRecord:
    model_version: str
    training_run_id: str
    step: int
    timestamp: float
    metrics: dict[str, float]
    # artifact path -> its text, or a function making it: the logger thread pays for
    # slow ones (an Evidently report) instead of the monitor loop.
    artifacts: dict[str, str | Callable[[], str]] = field(default_factory=dict)


class MonitoringRunLogger:
    def __init__(self, tracking_uri: str, model_name: str, on_error=lambda: None):
        fail_fast_mlflow()  # it retries every RETRY_SECONDS itself
        self._client = MlflowClient(tracking_uri)
        self._model_name = model_name
        self._on_error = on_error
        self._pending: collections.deque[WindowRecord] = collections.deque(maxlen=MAX_PENDING)
        self._wake = threading.Event()
        self._stopped = threading.Event()
        self._runs: dict[str, str] = {}  # model version -> monitoring run id
        self._thread = threading.Thread(target=self._loop, name="mlflow-log", daemon=True)
        self._thread.start()

    @property
    def experiment_name(self) -> str:
        return f"{self._model_name}-monitoring"

    def submit(self, record: WindowRecord) -> None:
        self._pending.append(record)
        self._wake.set()

    def pending(self) -> int:
        return len(self._pending)

    def flush(self, timeout: float = 30.0) -> bool:
        deadline = time.monotonic() + timeout
        while self._pending and time.monotonic() < deadline:
            self._wake.set()
            time.sleep(0.05)
        return not self._pending

    def close(self) -> None:
        self._stopped.set()
        self._wake.set()
        self._thread.join(timeout=10)

    def _loop(self) -> None:
        while not self._stopped.is_set():
            self._wake.wait(RETRY_SECONDS)
            self._wake.clear()
            while self._pending:
                record = self._pending[0]
                try:
                    self._write(record)
                except Exception as exc:  # MLflow down or refusing: keep it, try later
                    log.warning("cannot log window %s to MLflow yet: %s", record.step, exc)
                    self._on_error()
                    break
                self._pending.popleft()

    def _write(self, record: WindowRecord) -> None:
        run_id = self._run_for(record.model_version, record.training_run_id)
        ms = int(record.timestamp * 1000)
        metrics = [
            Metric(k, float(v), ms, record.step)
            for k, v in record.metrics.items()
            if v is not None and math.isfinite(v)
        ]
        for i in range(0, len(metrics), 900):  # MLflow takes at most 1000 metrics a batch
            self._client.log_batch(run_id, metrics=metrics[i : i + 900])
        for path, text in list(record.artifacts.items()):
            if callable(text):
                record.artifacts[path] = text = text()  # made once, even if the upload is retried
            self._client.log_text(run_id, text, path)

    def _run_for(self, version: str, training_run_id: str) -> str:
        if version in self._runs:
            return self._runs[version]
        experiment = self._client.get_experiment_by_name(self.experiment_name)
        experiment_id = (
            experiment.experiment_id
            if experiment
            else self._client.create_experiment(self.experiment_name)
        )
        found = self._client.search_runs(
            [experiment_id], f"tags.`modelwatch.model_version` = '{version}'", max_results=1
        )
        if found:
            run_id = found[0].info.run_id
        else:
            run_id = self._client.create_run(
                experiment_id,
                run_name=f"monitor {self._model_name} v{version}",
                tags={
                    "modelwatch.model_name": self._model_name,
                    "modelwatch.model_version": version,
                    "modelwatch.training_run_id": training_run_id,
                },
            ).info.run_id
        self._runs[version] = run_id
        return run_id
