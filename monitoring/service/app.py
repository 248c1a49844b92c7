"""The monitor service's app factory: `/metrics`, `/health`, `/status`, `POST /alerts`.

The loop and the retraining trigger run in background threads of this process; the
HTTP side only reads what they produced, so it answers at once.
"""

from __future__ import annotations

import logging
import signal
import threading
import time

from flask import Blueprint, Flask, Response, current_app, jsonify, request
from modelwatch.monitoring.calculators import feedback
from modelwatch.monitoring.service import webhook
from modelwatch.monitoring.service.alerting import RuleEvaluator
from modelwatch.monitoring.service.alerting import signals as alert_signals
from modelwatch.monitoring.service.config import MonitorConfig
from modelwatch.monitoring.service.metrics import MonitorMetrics
from modelwatch.monitoring.service.mlflow_log import MonitoringRunLogger
from modelwatch.monitoring.service.monitor import Monitor
from modelwatch.monitoring.service.retrain import RetrainTrigger
from modelwatch.monitoring.service.retrain_job import project_runner
from modelwatch.monitoring.window import window_status
from prometheus_client.exposition import choose_encoder
from werkzeug.exceptions import HTTPException

from modelwatch.redaction import RedactingFormatter, masked, redact_logs

log = logging.getLogger(__name__)
ops = Blueprint("ops", __name__)


def create_app(
    config: MonitorConfig | None = None, store=None, runner=None, start: bool = True
) -> Flask:
    """`store` and `runner` default to the configured prediction log and `mlflow run`."""
    config = config or MonitorConfig()
    redact_logs("modelwatch")  # MLflow's errors name the tracking URI, credentials and all
    metrics = MonitorMetrics()
    if store is None:
        from modelwatch.log import open_store

        store = open_store(config.store_url)
    run_logger = (
        MonitoringRunLogger(
            config.tracking_uri,
            config.model_name,
            on_error=metrics.errors.labels(dependency="mlflow").inc,
        )
        if config.log_to_mlflow
        else None
    )
    trigger = RetrainTrigger(
        runner or project_runner(config.tracking_uri, config.model_name, config.retrain_window),
        config.retrain_cooldown_seconds,
        on_event=_retrain_listener(metrics),
        labelled_rows=lambda since: len(
            store.read_window(
                model_name=config.model_name,
                labelled=True,
                since=since,
                limit=config.retrain_min_rows,
            )
        ),
        min_rows=config.retrain_min_rows,
        recheck_seconds=config.interval_seconds,
        served_version=lambda: monitor.context.version if monitor.context else None,
        held=lambda: _held(monitor.last_result),
    )
    rules = RuleEvaluator() if config.builtin_alerts else None
    monitor = Monitor(
        config,
        metrics,
        store,
        run_logger,
        on_window=_builtin_alerts(rules, trigger) if rules else None,
        on_reset=rules.clear if rules else None,
    )
    app = Flask("monitoring")
    app.config["MONITOR"] = config
    app.config["MAX_CONTENT_LENGTH"] = webhook.MAX_BODY_BYTES  # /alerts is the only body it takes
    app.extensions.update(
        monitor=monitor, retrain_trigger=trigger, monitor_metrics=metrics, alert_rules=rules
    )
    app.register_blueprint(ops)
    app.register_blueprint(webhook.bp)
    app.register_error_handler(404, lambda e: _error(404, "not_found", "no such endpoint"))
    app.register_error_handler(405, lambda e: _error(405, "method_not_allowed", str(e.description)))
    app.register_error_handler(
        413,
        lambda e: _error(
            413, "payload_too_large", f"the body is larger than {webhook.MAX_BODY_BYTES} bytes"
        ),
    )
    app.register_error_handler(
        HTTPException, lambda e: _error(e.code, f"http_{e.code}", str(e.description))
    )
    app.register_error_handler(Exception, _unexpected)
    if start:
        monitor.start()
    return app


def _builtin_alerts(rules: RuleEvaluator, trigger: RetrainTrigger):
    """The same decisions Prometheus and Alertmanager make, for a machine without them:
    a firing retrain rule asks the trigger, unless the data has integrity errors."""

    def on_window(result, context) -> None:
        firing = rules.evaluate(alert_signals(result))
        if "DataIntegrityViolation" in firing or "FeedbackSuspect" in firing or _held(result):
            return  # broken data or a suspect label feed, firing or not yet: the webhook holds it the same way
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
    return feedback.hold_reason(result.details(feedback.NAME))


def _retrain_listener(metrics: MonitorMetrics):
    def on_event(event: str, detail: str) -> None:
        if event == "started":
            metrics.retrain_in_progress.set(1)
            return
        metrics.retrain_in_progress.set(0)
        metrics.retrains.labels(result=detail).inc()
        if detail in (
            "promoted",
            "rejected",
            "needs_review",
        ):  # a refusal (unsupported) is no success
            metrics.retrain_last_success.set(time.time())

    return on_event


@ops.get("/metrics")
def prometheus_metrics():
    # OpenMetrics when asked; content_type=, not mimetype= (Flask would append a second
    # charset, and Prometheus 3 refuses to scrape a Content-Type it cannot parse).
    registry = current_app.extensions["monitor_metrics"].registry
    encoder, content_type = choose_encoder(request.headers.get("Accept", ""))
    return Response(encoder(registry), content_type=content_type)


@ops.get("/health")
def health():
    return jsonify({"status": "ok"})


@ops.get("/status")
def status():
    """What the monitor last saw, for `modelwatch status` and for people."""
    monitor = current_app.extensions["monitor"]
    trigger = current_app.extensions["retrain_trigger"]
    result = monitor.last_result
    return jsonify(
        masked(
            {
                "model": monitor.config.model_name,
                "version": monitor.context.version if monitor.context else None,
                "last_error": monitor.last_error,
                "last_failure": monitor.last_failure,
                "retraining": trigger.running,
                "last_retrain": trigger.last,
                "retrain_pending": trigger.pending,  # queued, cooling_down, waiting_for_labels or held
                "builtin_alerts_firing": getattr(
                    current_app.extensions["alert_rules"], "firing", None
                ),
                "monitored": monitor.context is not None,
                "not_monitored": monitor.unmonitored,
                "last_window": None
                if result is None
                else window_status(
                    result,
                    monitor.context.reference if monitor.context else None,
                    bool(monitor.context and monitor.context.estimates),
                )
                | monitor.progress(),
            }
        )
    )  # masked: an error's text may name a URL with its credentials


def _error(status: int, code: str, message: str):
    return jsonify({"error": {"code": code, "message": message, "details": {}}}), status


def _unexpected(exc: Exception):
    # The last resort: a JSON answer, never Werkzeug's HTML page; the traceback goes to the log.
    log.exception("unhandled error answering %s %s", request.method, request.path)
    return _error(500, "internal_error", "the monitor failed to answer")


def serve(port: int, host: str, interval: float | None = None) -> None:
    """Run the monitor until interrupted (a threaded WSGI server: its traffic is scrapes
    and webhooks, a few requests a minute)."""
    from dataclasses import replace

    from werkzeug.serving import make_server

    logging.basicConfig(level=logging.INFO)
    for handler in logging.getLogger().handlers:  # every line, whoever logs it (MLflow too)
        handler.setFormatter(RedactingFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # not a line per scrape
    _refuse_open_webhook(host, port)
    config = MonitorConfig()
    if interval is not None:
        config = replace(config, interval_seconds=interval)
    app = create_app(config)
    server = make_server(host, port, app, threaded=True)
    # SIGTERM stops the server the way Ctrl-C does, so pending MLflow writes get flushed.
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown).start())
    log.info("monitor listening on http://%s:%s", host, port)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        monitor = app.extensions["monitor"]
        monitor.stop()
        if monitor.run_logger is not None:
            monitor.run_logger.flush(timeout=10)


def _refuse_open_webhook(host: str, port: int) -> None:
    """Before anything starts: POST /alerts on a reachable address without a token lets
    anyone start a retraining."""
    from modelwatch.tokens import MONITOR_TOKENS, ExposedWithoutTokens, check_exposure

    address = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    try:
        warning = check_exposure("the monitor", [address], MONITOR_TOKENS)
    except ExposedWithoutTokens as exc:
        raise SystemExit(f"error: {exc}") from None
    if warning:
        log.warning("%s", warning)
