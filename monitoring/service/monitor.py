"""The monitor loop: every interval, the served version's newest window is judged.

Each step talks to MLflow (which version serves; its reference, once) and to the
prediction log; either may be down. A failure is counted and logged, the loop goes on,
and what was last known keeps being exported.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Callable

from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from monitoring.report import drift_report
from monitoring.service.config import MonitorConfig, fail_fast_mlflow
from monitoring.service.context import VersionContext
from monitoring.service.metrics import MonitorMetrics
from monitoring.service.mlflow_log import MonitoringRunLogger, WindowRecord
from monitoring.service.window import WindowResult, evaluate

log = logging.getLogger(__name__)


class Monitor:
    def __init__(self, config: MonitorConfig, metrics: MonitorMetrics, store, run_logger: MonitoringRunLogger | None,
                 on_window: Callable[[WindowResult, VersionContext], None] | None = None):
        """`on_window` is called with each judged window (the built-in alert rules)."""
        self.config = config
        self.on_window = on_window
        self.metrics = metrics
        self.store = store
        self.run_logger = run_logger
        fail_fast_mlflow()  # an MLflow outage must not stall the windows
        self.client = MlflowClient(config.tracking_uri)
        self.context: VersionContext | None = None
        self.last_result: WindowResult | None = None
        self.last_error: str | None = None  # what failed in the latest window, if anything
        self.last_failure: dict | None = None  # the most recent failure, kept after recovery
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="monitor", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=30)

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.run_once()
            self._stop.wait(self.config.interval_seconds)

    def run_once(self) -> WindowResult | None:
        started = time.perf_counter()
        self.last_error = None
        try:
            return self._run_once()
        except Exception as exc:  # keep the loop alive whatever one window does
            log.exception("window failed")
            self._record_failure(f"window failed: {exc}")
            return None
        finally:
            self.metrics.last_run.set_to_current_time()
            self.metrics.run_duration.set(time.perf_counter() - started)

    def _run_once(self) -> WindowResult | None:
        context = self._current_context()
        if context is None:
            return None
        try:
            window = self.store.read_window(
                model_version=context.version, since=time.time() - self.config.window_seconds,
                limit=self.config.window_rows,
            )
        except Exception as exc:
            self._failed("store", exc)
            return None
        self.metrics.window_rows.labels(model_version=context.version).set(len(window))
        if len(window) < self.config.min_window_rows:
            return None
        result = evaluate(context, window)
        self._export(result, context)
        self._log_to_mlflow(result, context, window)
        self.last_result = result
        if self.on_window is not None:
            self.on_window(result, context)
        return result

    def _current_context(self) -> VersionContext | None:
        """The served version's context; reloaded when the alias moves."""
        try:
            version = self.client.get_model_version_by_alias(self.config.model_name, self.config.model_alias).version
            if self.context is None or self.context.version != version:
                context = VersionContext.load(self.client, self.config.model_name, version)
                self._switch_to(context)
        except MlflowException as exc:
            if exc.error_code == "RESOURCE_DOES_NOT_EXIST":  # nothing registered yet: no failure
                self.last_error = f"no version of {self.config.model_name} has alias {self.config.model_alias}"
            else:
                self._failed("mlflow", exc)
        except Exception as exc:
            self._failed("mlflow", exc)
        return self.context  # the last known one while MLflow is away

    def _switch_to(self, context: VersionContext) -> None:
        log.info("monitoring %s version %s", context.model_name, context.version)
        for gauge in self.metrics.per_version():
            gauge.clear()  # the old version's series must not keep alerts firing
        if context.reference_accuracy is not None:
            self.metrics.reference_accuracy.labels(model_version=context.version).set(context.reference_accuracy)
        self.context = context

    def _failed(self, dependency: str, exc: Exception) -> None:
        log.warning("%s unavailable: %s", dependency, exc)
        self.metrics.errors.labels(dependency=dependency).inc()
        self._record_failure(f"{dependency} unavailable: {exc}")

    def _record_failure(self, message: str) -> None:
        self.last_error = message
        self.last_failure = {"error": message, "at": time.time()}

    def _export(self, r: WindowResult, context: VersionContext) -> None:
        m, v = self.metrics, {"model_version": r.version}
        for name, column in r.drift["columns"].items():
            m.drift_score.labels(feature=name, test=column["test"], **v).set(column["statistic"])
            m.drift_detected.labels(feature=name, **v).set(int(column["drifted"]))
        m.dataset_drift_share.labels(**v).set(r.drift["drift_share"])
        m.dataset_drift_detected.labels(**v).set(int(r.drift["dataset_drift"]))
        if r.multivariate:
            m.multivariate_drift_detected.labels(**v).set(int(r.multivariate["drifted"]))
        _set(m.prediction_drift_score.labels(**v), r.prediction_drift)
        _set(m.live_accuracy.labels(**v), r.realized.get("accuracy"))
        _set(m.live_f1.labels(**v), r.realized.get("f1"))
        _set(m.live_roc_auc.labels(**v), r.realized.get("roc_auc"))
        m.label_coverage_ratio.labels(**v).set(r.realized.get("label_coverage") or 0.0)
        _set(m.estimated_accuracy.labels(**v), r.estimated_accuracy)
        m.concept_drift_detected.labels(**v).set(int(r.concept_drift))
        for name, share in r.missing_ratio.items():
            m.integrity_missing_ratio.labels(feature=name, **v).set(share)
        for name, share in r.out_of_range_ratio.items():
            m.integrity_out_of_range_ratio.labels(feature=name, **v).set(share)
        m.integrity_issue.clear()
        for issue in r.integrity:
            m.integrity_issue.labels(kind=issue["kind"], feature="+".join(issue["columns"]), **v).set(1)
        if context.reference_accuracy is not None:
            m.reference_accuracy.labels(**v).set(context.reference_accuracy)

    def _log_to_mlflow(self, r: WindowResult, context: VersionContext, window) -> None:
        if self.run_logger is None:
            return
        artifacts = {}
        if r.drift_began:
            step = f"windows/{context.windows:06d}"
            artifacts[f"{step}/drift.json"] = r.to_json()
            artifacts[f"{step}/drift_report.html"] = lambda: _report_html(context, window)
        self.run_logger.submit(WindowRecord(context.version, context.run_id, context.windows, time.time(),
                                            r.metrics, artifacts))


def _report_html(context: VersionContext, window) -> str:
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as tmp:
        features = context.features
        path = drift_report(context.sample[features], window.reindex(columns=features), Path(tmp, "report.html"),
                            profile=context.profile)
        return path.read_text()


def _set(gauge, value) -> None:
    if value is not None:
        gauge.set(value)
