"""Logging windows to MLflow: one monitoring run per model version, a step per window.

The run is a record: a step per judged window (windows of new rows only: the loop judges
no other), numbered on from the run's last step after a restart, never repeated; each
bounded metric's bounds at the same step (`live_accuracy.lower`, from the window); the
version links it (its tag `modelwatch.monitoring_run_id`), and it names the run that
logged the model (`modelwatch.training_run_id`: the version's run, not the reference's,
which may be an onboarding run: `modelwatch.reference_run`). It ends (FINISHED) when
the version leaves the alias (`retire`), or when another version's run starts; it stays
RUNNING while the monitor is stopped, since the version is still watched, and picks up
again (RUNNING) if its version comes back.

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
from mlflow.entities import Metric, RunStatus
from mlflow.exceptions import MlflowException
from modelwatch.monitoring.registry import TAG_REFERENCE_RUN
from modelwatch.monitoring.service.config import fail_fast_mlflow

log = logging.getLogger(__name__)
MAX_PENDING = 10_000
RETRY_SECONDS = 5.0
TAG_MONITORING_RUN = "modelwatch.monitoring_run_id"  # the version's tag naming its run
STEP_METRIC = "window_rows"  # logged at every window: its last step is the run's


@dataclass
class WindowRecord:
    model_version: str
    timestamp: float
    metrics: dict[str, float]
    # file name -> its text, or a function making it, written under the window's step
    # (`windows/000012/`): the logger thread pays for slow ones (an Evidently report)
    # instead of the monitor loop.
    artifacts: dict[str, str | Callable[[], str]] = field(default_factory=dict)
    step: int | None = None  # given by the logger once, kept across retries


@dataclass(frozen=True)
class Retirement:
    """The version left the alias: its run ends, after its windows are written."""

    model_version: str


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
        self._steps: dict[str, int] = {}  # monitoring run id -> its last step
        self._thread = threading.Thread(target=self._loop, name="mlflow-log", daemon=True)
        self._thread.start()

    @property
    def experiment_name(self) -> str:
        return f"{self._model_name}-monitoring"

    def submit(self, record: WindowRecord | Retirement) -> None:
        self._pending.append(record)
        self._wake.set()

    def retire(self, version: str) -> None:
        """`version` left the alias: end its run (FINISHED) once its windows are written."""
        self.submit(Retirement(str(version)))

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
                    log.warning("cannot log %s to MLflow yet: %s", record, exc)
                    self._on_error()
                    break
                self._pending.popleft()

    def _write(self, record: WindowRecord | Retirement) -> None:
        if isinstance(record, Retirement):
            self._end(record.model_version)
            return
        run_id = self._run_for(record.model_version)
        if record.step is None:  # numbered once: a retried record keeps its step
            record.step = self._steps[run_id] = self._steps[run_id] + 1
        ms = int(record.timestamp * 1000)
        metrics = [
            Metric(k, float(v), ms, record.step)
            for k, v in record.metrics.items()
            if v is not None and math.isfinite(v)
        ]
        for i in range(0, len(metrics), 900):  # MLflow takes at most 1000 metrics a batch
            self._client.log_batch(run_id, metrics=metrics[i : i + 900])
        for name, text in list(record.artifacts.items()):
            if callable(text):
                record.artifacts[name] = text = text()  # made once, even if the upload is retried
            self._client.log_text(run_id, text, f"windows/{record.step:06d}/{name}")

    def _end(self, version: str) -> None:
        run_id = self._runs.pop(version, None) or self._find(self._experiment_id(), version)
        if run_id is not None:
            self._client.set_terminated(run_id, RunStatus.to_string(RunStatus.FINISHED))

    def _experiment_id(self) -> str:
        experiment = self._client.get_experiment_by_name(self.experiment_name)
        return (
            experiment.experiment_id
            if experiment
            else self._client.create_experiment(self.experiment_name)
        )

    def _find(self, experiment_id: str, version: str) -> str | None:
        found = self._client.search_runs(
            [experiment_id], f"tags.`modelwatch.model_version` = '{version}'", max_results=1
        )
        return found[0].info.run_id if found else None

    def _run_for(self, version: str) -> str:
        if version in self._runs:
            return self._runs[version]
        experiment_id = self._experiment_id()
        self._end_others(experiment_id, version)  # the alias moved while no monitor ran
        model_version = self._registered(version)
        run_id = self._find(experiment_id, version)
        if run_id is None:
            tags = {
                "modelwatch.model_name": self._model_name,
                "modelwatch.model_version": version,
                # the run that logged the model, not the reference's (an onboarding run)
                "modelwatch.training_run_id": (model_version and model_version.run_id) or "",
                TAG_REFERENCE_RUN: ((model_version and model_version.tags) or {}).get(
                    TAG_REFERENCE_RUN, ""
                ),
            }
            run = self._client.create_run(
                experiment_id, run_name=f"monitor {self._model_name} v{version}", tags=tags
            )
            run_id = run.info.run_id
        else:
            self._client.update_run(run_id, status="RUNNING")  # its version is back
        history = self._client.get_metric_history(run_id, STEP_METRIC)
        self._steps[run_id] = max((m.step for m in history), default=0)
        if model_version is not None:
            self._client.set_model_version_tag(
                self._model_name, version, TAG_MONITORING_RUN, run_id
            )
        self._runs[version] = run_id
        return run_id

    def _registered(self, version: str):
        """The model version, or None where this server's registry does not hold it (a
        separate registry, MLFLOW_REGISTRY_URI): the record is kept, unlinked."""
        try:
            return self._client.get_model_version(self._model_name, version)
        except MlflowException as exc:
            if exc.error_code != "RESOURCE_DOES_NOT_EXIST":
                raise  # MLflow away: the record waits
            log.warning(
                "%s version %s is not in this registry: its run is not linked",
                self._model_name,
                version,
            )
            return None

    def _end_others(self, experiment_id: str, version: str) -> None:
        """One version is under the alias: another's run still RUNNING has ended."""
        running = self._client.search_runs(
            [experiment_id],
            f"attributes.status = 'RUNNING' AND tags.`modelwatch.model_version` != '{version}'",
        )
        for run in running:
            self._client.set_terminated(run.info.run_id, RunStatus.to_string(RunStatus.FINISHED))
