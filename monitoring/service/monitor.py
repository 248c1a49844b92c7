"""The monitor loop: every interval, the served version's newest window is judged,
if it has rows the window judged before it did not: a log that stops growing is not
judged again and again (no verdict, MLflow step or alert `for:` advances on old rows).

Each step talks to MLflow (which version serves; its reference, once) and to the
prediction log; either may be down. A failure is counted and logged, the loop goes on,
and what was last known keeps being exported.
"""

from __future__ import annotations

import logging
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

from mlflow import MlflowClient
from mlflow.exceptions import MlflowException
from modelwatch.monitoring.registry import NotOnboarded
from modelwatch.monitoring.report import judged_drift_report
from modelwatch.monitoring.service.config import MonitorConfig, fail_fast_mlflow
from modelwatch.monitoring.service.context import VersionContext
from modelwatch.monitoring.service.metrics import MonitorMetrics
from modelwatch.monitoring.service.mlflow_log import MonitoringRunLogger, WindowRecord
from modelwatch.monitoring.window import WindowResult, evaluate

from modelwatch.redaction import redact_credentials

log = logging.getLogger(__name__)
# A version found not monitorable is looked at again after this many intervals (it may
# be onboarded meanwhile) rather than at every interval (a download and a fit each).
RECHECK_INTERVALS = 2


class Monitor:
    def __init__(
        self,
        config: MonitorConfig,
        metrics: MonitorMetrics,
        store,
        run_logger: MonitoringRunLogger | None,
        on_window: Callable[[WindowResult, VersionContext], None] | None = None,
        on_reset: Callable[[], None] | None = None,
    ):
        """The loop of one model, `config.model_name`, writing its series into the shared
        `metrics` (every one labelled with the model). `on_window` is called with each
        judged window (the built-in alert rules); `on_reset` when no verdict holds any
        more: the version changed or cannot be judged, or an interval found no new window."""
        self.config = config
        self.on_window = on_window
        self.on_reset = on_reset
        self.metrics = metrics.model(config.model_name)
        self.store = store
        self.run_logger = run_logger
        fail_fast_mlflow()  # an MLflow outage must not stall the windows
        self.client = MlflowClient(config.tracking_uri)
        self.context: VersionContext | None = None
        self.last_result: WindowResult | None = None
        self.last_error: str | None = None  # what failed in the latest window, if anything
        self.last_failure: dict | None = None  # the most recent failure, kept after recovery
        # Why the alias's version is not judged ({"version", "reason", "message", "at"}), or None.
        self.unmonitored: dict | None = None
        self._judged_ids: frozenset = frozenset()  # the prediction ids of the last judged window
        self._judged_labelled: frozenset = frozenset()  # those of them that had a label
        self.new_rows: int | None = None  # of the last judged window
        self.skipped_windows = 0  # intervals since the last judged window that judged nothing
        self.checked_at: float | None = None  # when the log was last read
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(
            target=self._loop, name=f"monitor {self.config.model_name}", daemon=True
        )
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
            return self.metrics.measured(self._run_once)
        except Exception as exc:  # keep the loop alive whatever one window does
            log.exception("window of %s failed", self.config.model_name)
            self._record_failure(f"window failed: {exc}")
            if self.context is not None:
                self._judged_nothing(self.context.version)
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
                model_version=context.version,
                model_name=self.config.model_name,
                since=time.time() - self.config.window_seconds,
                limit=self.config.window_rows,
            )
            self._saw_newest(context.version, window)
        except Exception as exc:
            self._failed("store", exc)
            self._judged_nothing(context.version)  # the last verdicts are no newer for the outage
            return None
        self.checked_at = time.time()
        self.metrics.window_rows.labels(model_version=context.version).set(len(window))
        new_rows = self._new_rows(window)
        if new_rows == 0 or len(window) < self.config.min_window_rows:
            self._judged_nothing(context.version)
            return None
        result = evaluate(context.version, context.calculators, context.reference, window)
        labelled = window["label"].notna()
        self._judged_ids, self._judged_labelled = (
            frozenset(window["prediction_id"]),
            frozenset(window["prediction_id"][labelled]),
        )
        self.new_rows, self.skipped_windows = new_rows, 0
        self.metrics.window_new_rows.labels(model_version=context.version).set(new_rows)
        context.windows += 1
        result.drift_began = result.any_drift and not context.drifting
        context.drifting = result.any_drift
        self.metrics.publish(context.version, result.metrics)
        self._log_to_mlflow(result, context, window)
        self.last_result = result
        if self.on_window is not None:
            self.on_window(result, context)
        return result

    def _new_rows(self, window) -> int:
        """Rows the last judged window did not hold, or held without the label they have now
        (labels often come long after their predictions, when traffic may have stopped). By
        prediction id, not by time: a row replayed from the spill is logged late."""
        if not len(window):
            return 0
        ids = window["prediction_id"]
        newly_labelled = window["label"].notna() & ~ids.isin(self._judged_labelled)
        return int((~ids.isin(self._judged_ids) | newly_labelled).sum())

    def _saw_newest(self, version: str, window) -> None:
        """The newest logged row's time; with none in the window, the log's newest row of
        the version (one row of the window index), so a log that stopped long ago shows."""
        if not len(window):
            window = self.store.read_window(
                model_version=version, model_name=self.config.model_name, limit=1
            )
        if len(window):
            self.metrics.newest_row.labels(model_version=version).set(
                window["ts"].max().timestamp()
            )

    def _judged_nothing(self, version: str) -> None:
        """No new rows, too few to judge, or no window read: what was last exported stays as
        it was, and nothing may advance on it (the rules' guard reads the 0; the built-in
        ones reset)."""
        self.metrics.window_new_rows.labels(model_version=version).set(0)
        if self.last_result is not None:
            self.skipped_windows += 1
        self._reset()

    def progress(self) -> dict:
        """For /status: how new the last judged window was, and whether the monitor waits
        for rows."""
        return {
            "new_rows": self.new_rows,
            "skipped_windows": self.skipped_windows,
            "checked_at": self.checked_at,
        }

    def _reset(self) -> None:
        if self.on_reset is not None:
            self.on_reset()

    def _current_context(self) -> VersionContext | None:
        """The served version's context; reloaded when the alias moves. None while the
        alias's version cannot be judged (and nothing of an older version is exported)."""
        name, alias = self.config.model_name, self.config.model_alias
        try:
            version = self.client.get_model_version_by_alias(name, alias).version
        except MlflowException as exc:
            if no_such_alias(exc):  # nothing registered (or aliased) yet: no outage
                self._not_monitored(None, "no_alias", f"no version of {name} has alias {alias}")
                return None
            self._failed("mlflow", exc)
            return self.context  # the last known one while MLflow is away
        except Exception as exc:
            self._failed("mlflow", exc)
            return self.context
        if self.context is not None and self.context.version == version:
            self._watching(version)
            return self.context
        if (
            self.unmonitored
            and self.unmonitored.get("version") == version
            and time.time() - self.unmonitored["at"]
            < self.config.interval_seconds * RECHECK_INTERVALS
        ):
            self._not_monitored(version, self.unmonitored["reason"], self.unmonitored["message"])
            return None
        try:
            context = VersionContext.load(
                self.client, name, version, self.config.window_rows, self.config
            )
        except NotOnboarded as exc:
            self._not_monitored(version, "not_onboarded", str(exc))
            return None
        except MlflowException as exc:
            if exc.error_code != "RESOURCE_DOES_NOT_EXIST":  # else: the reference's run is gone
                self._failed("mlflow", exc)
                return None
            self._not_monitored(
                version, "unloadable", f"cannot judge {name} version {version}: {exc}"
            )
            return None
        except Exception as exc:  # a reference this monitor cannot read or fit
            log.exception("cannot load the reference of %s version %s", name, version)
            self._not_monitored(
                version, "unloadable", f"cannot judge {name} version {version}: {exc}"
            )
            return None
        self._switch_to(context)
        return context

    def _switch_to(self, context: VersionContext) -> None:
        log.info("monitoring %s version %s", context.model_name, context.version)
        self.metrics.clear_version()  # the old version's series must not keep alerts firing
        self._forget_windows()
        self._retire()
        self.context = context
        self._watching(context.version)

    def _watching(self, version: str) -> None:
        self.unmonitored = None
        self.metrics.model_monitored.labels(model_version=version).set(1)
        accuracy = self.context.reference_accuracy
        if accuracy is not None:
            self.metrics.reference_accuracy.labels(model_version=version).set(accuracy)

    def _not_monitored(self, version: str | None, reason: str, message: str) -> None:
        """The alias's version cannot be judged: say why everywhere, export none of the
        old version's verdicts, and (with a version) raise ModelNotMonitored."""
        message = redact_credentials(message)  # a reference's download error names the URI
        if (
            self.context is not None
            or self.unmonitored is None
            or self.unmonitored.get("version") != version
        ):
            log.warning("not monitoring %s: %s", self.config.model_name, message)
            self.metrics.clear_version()
            self._retire()
            self.context = None
            self._forget_windows()
            self.unmonitored = {
                "version": version,
                "reason": reason,
                "message": message,
                "at": time.time(),
            }
        self.last_error = message
        self.metrics.not_monitored.labels(reason=reason).inc()
        if version is not None:
            self.metrics.model_monitored.labels(model_version=version).set(0)

    def _forget_windows(self) -> None:
        """A version's windows say nothing of the next one: its first window is all new."""
        self.last_result, self.new_rows, self.skipped_windows = None, None, 0
        self._judged_ids = self._judged_labelled = frozenset()
        self._reset()

    def _failed(self, dependency: str, exc: Exception) -> None:
        log.warning("%s unavailable for %s: %s", dependency, self.config.model_name, exc)
        self.metrics.errors.labels(dependency=dependency).inc()
        self._record_failure(f"{dependency} unavailable: {exc}")

    def _record_failure(self, message: str) -> None:
        message = redact_credentials(message)  # /status shows it
        self.last_error = message
        self.last_failure = {"error": message, "at": time.time()}

    def _log_to_mlflow(self, r: WindowResult, context: VersionContext, window) -> None:
        if self.run_logger is None:
            return
        artifacts = {}
        if r.drift_began:  # written under the window's step: windows/000012/
            artifacts["drift.json"] = r.to_json()
            artifacts["drift_report.html"] = lambda: _report_html(context, window, r.drift)
        self.run_logger.submit(WindowRecord(context.version, r.evaluated_at, r.flat(), artifacts))

    def _retire(self) -> None:
        """The watched version left the alias: its MLflow monitoring run ends."""
        if self.context is not None and self.run_logger is not None:
            self.run_logger.retire(self.context.version)


def no_such_alias(exc: MlflowException) -> bool:
    """The registry's two answers for "nothing under that alias": no such model
    (RESOURCE_DOES_NOT_EXIST), or a model without the alias (INVALID_PARAMETER_VALUE,
    "Registered model alias ... not found")."""
    return exc.error_code == "RESOURCE_DOES_NOT_EXIST" or (
        exc.error_code == "INVALID_PARAMETER_VALUE" and "not found" in exc.message
    )


def _report_html(context: VersionContext, window, drift: dict) -> str:
    """Evidently's report of the window, stating modelwatch's verdict and bounds."""
    with tempfile.TemporaryDirectory() as tmp:
        path = judged_drift_report(
            context.profile,
            window.reindex(columns=context.features),
            drift,
            Path(tmp, "report.html"),
        )
        return path.read_text()
