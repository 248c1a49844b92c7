"""The serving app factory.

    from modelwatch.serving.app import create_app
    app = create_app()                         # settings from the environment
    app = create_app({"model_name": "m", "store_url": "sqlite:////tmp/p.db"})

Each app owns its state (`app.extensions["modelwatch"]`: config, metrics registry,
model manager, prediction log): nothing global, so tests can build as many as they like.
`create_app` starts three background threads (model loader/poller, log writer, resource
meter) unless `background=False`; call `shutdown_app(app)` (gunicorn's worker_exit
does) to stop them and flush the log.
"""

from __future__ import annotations

import logging
import threading
import time

from flask import Flask, g, request
from modelwatch.serving.config import DAY, Config
from modelwatch.serving.logwriter.writer import PredictionLog
from modelwatch.serving.metrics import Metrics
from modelwatch.serving.model import ModelManager, ShadowScorer
from modelwatch.serving.model.registry import configure_mlflow_client
from modelwatch.serving.resources import ResourceMeter
from modelwatch.serving.routes import admin, feedback, mlflow, ops, predict, webhooks

from modelwatch.log import open_store
from modelwatch.web.errors import register_error_handlers
from modelwatch.web.limits import LimitedRequest

log = logging.getLogger(__name__)
KNOWN_METHODS = {"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"}


class ServingState:
    def __init__(self, config: Config) -> None:
        self.config = config
        self.metrics = Metrics(config.model_name)
        self.metrics.set_costs(
            config.cost_per_cpu_hour, config.cost_per_gb_hour, config.cost_budget_per_1k
        )
        self.resources = ResourceMeter(self.metrics, config.resource_interval)
        self.store = open_store(config.store_url)
        self.log = PredictionLog(
            open_store(config.store_url),
            config.spill_dir,
            config.log_batch_size,
            config.store_retry_interval,
            on_outcome=lambda outcome, n: self.metrics.log_records.labels(outcome).inc(n),
            retention=config.log_retention_days * DAY,
            prune_interval=config.log_prune_interval,
            on_pruned=lambda table, n: self.metrics.log_pruned.labels(table).inc(n),
        )
        self.models = ModelManager(config=config, metrics=self.metrics)
        self.shadow = (
            ShadowScorer(manager=self.models, prediction_log=self.log, metrics=self.metrics)
            if config.shadow
            else None
        )
        # Held by the one request thread of this worker that waits for ids still being
        # logged (routes/feedback.py): a waiting thread per request starved /predict.
        self.feedback_waiter = threading.Lock()
        self._stopped = False

    def start(self) -> None:
        self.resources.start()
        self.log.start()
        if self.shadow is not None:
            self.shadow.start()
        self.models.start()

    def shutdown(self) -> None:
        """Stop polling, finish shadow work, flush the prediction log, close the stores."""
        if self._stopped:
            return
        self._stopped = True
        start = time.monotonic()
        self.models.stop()
        if self.shadow is not None:
            self.shadow.stop()
        self.log.close()
        self.log.store.close()
        self.store.close()
        self.resources.stop()
        log.info("stopped: prediction log flushed in %.2fs", time.monotonic() - start)


def create_app(config: Config | dict | None = None) -> Flask:
    cfg = Config.resolve(config)
    configure_mlflow_client(cfg)
    app = Flask("serving")
    app.request_class = LimitedRequest
    app.config["MAX_CONTENT_LENGTH"] = cfg.max_body_bytes
    app.json.sort_keys = False
    state = ServingState(cfg)
    app.extensions["modelwatch"] = state
    register_error_handlers(app, state.metrics.count_input_errors)
    for bp in (predict.bp, mlflow.bp, feedback.bp, ops.bp, admin.bp, webhooks.bp):
        app.register_blueprint(bp)
    _instrument(app, state)
    if cfg.background:
        state.start()
    return app


def shutdown_app(app: Flask) -> None:
    state = app.extensions.get("modelwatch")
    if state is not None:
        state.shutdown()


def _instrument(app: Flask, state: ServingState) -> None:
    metrics = state.metrics

    @app.before_request
    def _start():
        g.start = time.perf_counter()
        g.in_flight = True
        metrics.in_flight.inc()
        metrics.busy_threads.inc()

    @app.after_request
    def _count(response):
        rule = request.url_rule
        endpoint = rule.rule if rule is not None else "unmatched"
        method = request.method if request.method in KNOWN_METHODS else "other"
        metrics.requests.labels(endpoint, method, str(response.status_code)).inc()
        start = g.get("start")
        if start is not None:
            metrics.request_duration.labels(endpoint).observe(time.perf_counter() - start)
        return response

    @app.after_request
    def _drain(response):
        _drain_body()
        return response

    @app.teardown_request
    def _done(exc):
        if g.pop("in_flight", False):
            metrics.in_flight.dec()
            metrics.busy_threads.dec()


def _drain_body() -> None:
    """Read whatever the request left of its body (a 415, 404 or 405 answers without
    reading it). gunicorn's gthread worker, left to drain it, now and then drops the
    keep-alive connection after the answer, and the client's next request on it fails
    with "connection closed without response". Bodies over the size limit are not read:
    gunicorn closes those connections."""
    try:
        stream = request.stream
        while stream.read(64 * 1024):
            pass
    except Exception:  # too large, or the client went away
        pass
