"""The monitor service's app factory, built as serving's is (serving/app.py).

    from modelwatch.monitoring.service.app import create_app
    app = create_app(runner=run_retraining)                 # settings from the environment
    app = create_app({"store_url": "sqlite:////tmp/p.db"}, runner=run_retraining)

Each app owns its state (`app.extensions["modelwatch"]`, a MonitorState: config, metrics,
the monitor loop, the retraining trigger, the built-in alert rules); the routes are in
routes/ by concern, the errors are modelwatch.web's. The loop and the retraining trigger
run in background threads of this process; the HTTP side only reads what they produced,
so it answers at once. The monitor does not know how a retraining runs: it is given a
`runner` (modelwatch.monitoring.service.trigger.Runner; the command line passes
modelwatch.training.retrain_run.project_runner).
"""

from __future__ import annotations

import logging
import signal
import threading
import time

from flask import Flask
from modelwatch.monitoring.calculators import feedback
from modelwatch.monitoring.service.alerting import RuleEvaluator
from modelwatch.monitoring.service.alerting import signals as alert_signals
from modelwatch.monitoring.service.config import MonitorConfig
from modelwatch.monitoring.service.metrics import MonitorMetrics
from modelwatch.monitoring.service.mlflow_log import MonitoringRunLogger
from modelwatch.monitoring.service.monitor import Monitor
from modelwatch.monitoring.service.routes import alerts, ops
from modelwatch.monitoring.service.trigger import RetrainTrigger, Runner
from werkzeug.serving import make_server

from modelwatch.log import open_store
from modelwatch.redaction import RedactingFormatter, redact_logs
from modelwatch.tokens import MONITOR_TOKENS, ExposedWithoutTokens, check_exposure
from modelwatch.web.errors import register_error_handlers
from modelwatch.web.limits import LimitedRequest

log = logging.getLogger(__name__)


class MonitorState:
    """What one monitor app owns. `store` reads the prediction log; `runner` runs a
    retraining when the trigger decides one."""

    def __init__(self, config: MonitorConfig, store, runner: Runner) -> None:
        self.config = config
        self.metrics = MonitorMetrics()
        self.store = store
        self.rules = RuleEvaluator() if config.builtin_alerts else None
        self.trigger = RetrainTrigger(
            runner,
            config.retrain_cooldown_seconds,
            on_event=_retrain_listener(self.metrics),
            labelled_rows=self._labelled_rows,
            min_rows=config.retrain_min_rows,
            recheck_seconds=config.interval_seconds,
            served_version=lambda: self.monitor.context.version if self.monitor.context else None,
            held=lambda: _held(self.monitor.last_result),
        )
        self.monitor = Monitor(
            config,
            self.metrics,
            store,
            self._run_logger(),
            on_window=_builtin_alerts(self.rules, self.trigger) if self.rules else None,
            on_reset=self.rules.clear if self.rules else None,
        )

    def _run_logger(self) -> MonitoringRunLogger | None:
        if not self.config.log_to_mlflow:
            return None
        return MonitoringRunLogger(
            self.config.tracking_uri,
            self.config.model_name,
            on_error=self.metrics.errors.labels(dependency="mlflow").inc,
        )

    def _labelled_rows(self, since: float) -> int:
        rows = self.store.read_window(
            model_name=self.config.model_name,
            labelled=True,
            since=since,
            limit=self.config.retrain_min_rows,
        )
        return len(rows)

    def start(self) -> None:
        self.monitor.start()

    def shutdown(self) -> None:
        """Stop the loop and flush pending MLflow writes."""
        self.monitor.stop()
        if self.monitor.run_logger is not None:
            self.monitor.run_logger.flush(timeout=10)


def create_app(
    config: MonitorConfig | dict | None = None,
    *,
    runner: Runner,
    store=None,
    start: bool = True,
) -> Flask:
    """`config`: None (the environment), a MonitorConfig, or a mapping of overrides;
    `store` defaults to the configured prediction log."""
    cfg = MonitorConfig.resolve(config)
    redact_logs("modelwatch")  # MLflow's errors name the tracking URI, credentials and all
    app = Flask("monitoring")
    app.request_class = LimitedRequest
    app.config["MAX_CONTENT_LENGTH"] = alerts.MAX_BODY_BYTES  # /alerts is the only body it takes
    state = MonitorState(cfg, store if store is not None else open_store(cfg.store_url), runner)
    app.extensions["modelwatch"] = state
    register_error_handlers(app)
    for bp in (ops.bp, alerts.bp):
        app.register_blueprint(bp)
    if start:
        state.start()
    return app


def _builtin_alerts(rules: RuleEvaluator, trigger: RetrainTrigger):
    """The same decisions Prometheus and Alertmanager make, for a machine without them:
    a firing retrain rule asks the trigger, unless the data has integrity errors."""

    def on_window(result, context) -> None:
        firing = rules.evaluate(alert_signals(result))
        if "DataIntegrityViolation" in firing or "FeedbackSuspect" in firing or _held(result):
            # broken data or a suspect label feed, firing or not yet: the webhook holds it
            # the same way
            return
        for name in firing:
            if rules.action(name) == "retrain":
                trigger.request(f"{name}:builtin", key=name, version=result.version)

    return on_window


def _held(result) -> str:
    """Why the last window holds retraining: integrity errors, or labels it cannot explain."""
    if result is None:
        return ""
    if result.integrity:
        return "data integrity errors"
    return feedback.hold_reason(result.details_of(feedback.FeedbackDetails))


def _retrain_listener(metrics: MonitorMetrics):
    def on_event(event: str, detail: str) -> None:
        if event == "started":
            metrics.retrain_in_progress.set(1)
            return
        metrics.retrain_in_progress.set(0)
        metrics.retrains.labels(result=detail).inc()
        if detail in ("promoted", "rejected", "needs_review"):  # a refusal (unsupported) is none
            metrics.retrain_last_success.set(time.time())

    return on_event


def serve(config: MonitorConfig, port: int, host: str, runner: Runner) -> None:
    """Run the monitor until interrupted (a threaded WSGI server: its traffic is scrapes
    and webhooks, a few requests a minute)."""
    logging.basicConfig(level=logging.INFO)
    for handler in logging.getLogger().handlers:  # every line, whoever logs it (MLflow too)
        handler.setFormatter(RedactingFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # not a line per scrape
    _refuse_open_webhook(host, port)
    app = create_app(config, runner=runner)
    server = make_server(host, port, app, threaded=True)
    # SIGTERM stops the server the way Ctrl-C does, so pending MLflow writes get flushed.
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown).start())
    log.info("monitor listening on http://%s:%s", host, port)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        app.extensions["modelwatch"].shutdown()


def _refuse_open_webhook(host: str, port: int) -> None:
    """Before anything starts: POST /alerts on a reachable address without a token lets
    anyone start a retraining."""
    address = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    try:
        warning = check_exposure("the monitor", [address], MONITOR_TOKENS)
    except ExposedWithoutTokens as exc:
        raise SystemExit(f"error: {exc}") from None
    if warning:
        log.warning("%s", warning)
