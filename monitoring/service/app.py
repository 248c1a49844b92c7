"""The monitor service's app factory, built as serving's is (serving/app.py).

    from modelwatch.monitoring.service.app import create_app
    app = create_app(runner=run_retraining)                 # settings from the environment
    app = create_app({"store_url": "sqlite:////tmp/p.db"}, runner=run_retraining)

Each app owns its state (`app.extensions["modelwatch"]`, a MonitorState: config, metrics,
and per watched model (MODELWATCH_MODELS, or MODELWATCH_MODEL_NAME alone) a `Watched`: its
monitor loop, retraining trigger and built-in alert rules); the routes are in
routes/ by concern, the errors are modelwatch.web's. The loop and the retraining trigger
run in background threads of this process; the HTTP side only reads what they produced,
so it answers at once. The monitor does not know how a retraining runs: it is given a
`runner` (modelwatch.monitoring.service.trigger.Runner), or `runner_for(model)` giving each
model's (the command line passes modelwatch.training.retrain_run.project_runner's).
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Callable

from flask import Flask
from mlflow import MlflowClient
from modelwatch.monitoring.calculators import feedback
from modelwatch.monitoring.registry import TAG_REFERENCE_RUN
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
# With MODELWATCH_MODELS=*, the registry is searched for newly onboarded models every this
# many intervals: a search of every model version, too much for every window.
DISCOVER_INTERVALS = 10


class Watched:
    """One watched model: its loop, retraining trigger, built-in rules and MLflow logger,
    none shared with another model's, so one model's failure or retraining stops no other.
    `config` is the model's own (`MonitorConfig.for_model`)."""

    def __init__(self, config: MonitorConfig, metrics: MonitorMetrics, store, runner: Runner):
        self.config = config
        self.store = store
        self.rules = RuleEvaluator() if config.builtin_alerts else None
        self.monitor = Monitor(
            config,
            metrics,
            store,
            self._run_logger(metrics.model(config.model_name)),
            on_window=self._on_window if self.rules else None,
            on_reset=self.rules.clear if self.rules else None,
        )
        self.trigger = RetrainTrigger(
            runner,
            config.retrain_cooldown_seconds,
            on_event=_retrain_listener(self.monitor.metrics),
            labelled_rows=self._labelled_rows,
            min_rows=config.retrain_min_rows,
            recheck_seconds=config.interval_seconds,
            served_version=lambda: self.monitor.context.version if self.monitor.context else None,
            held=lambda: _held(self.monitor.last_result),
        )

    def _run_logger(self, metrics) -> MonitoringRunLogger | None:
        if not self.config.log_to_mlflow:
            return None
        return MonitoringRunLogger(
            self.config.tracking_uri,
            self.config.model_name,
            on_error=metrics.errors.labels(dependency="mlflow").inc,
        )

    def _labelled_rows(self, since: float) -> int:
        rows = self.store.read_window(
            model_name=self.config.model_name,
            labelled=True,
            since=since,
            limit=self.config.retrain_min_rows,
        )
        return len(rows)

    def _on_window(self, result, context) -> None:
        """The same decisions Prometheus and Alertmanager make, for a machine without them:
        a firing retrain rule asks the trigger, unless the data has integrity errors."""
        firing = self.rules.evaluate(alert_signals(result))
        if "DataIntegrityViolation" in firing or "FeedbackSuspect" in firing or _held(result):
            # broken data or a suspect label feed, firing or not yet: the webhook holds it
            # the same way
            return
        for name in firing:
            if self.rules.action(name) == "retrain":
                self.trigger.request(f"{name}:builtin", key=name, version=result.version)

    def stop(self) -> None:
        """Stop the loop and flush pending MLflow writes."""
        self.monitor.stop()
        if self.monitor.run_logger is not None:
            self.monitor.run_logger.flush(timeout=10)


class MonitorState:
    """What one monitor app owns: the models it watches (`models`, name -> Watched), their
    shared metrics registry and prediction log. `runner_for(name)` gives the runner that
    retrains model `name`.

    Each model's loop is a thread of its own (Monitor.start) rather than one loop stepping
    each model in turn: loading a new version's reference (a download and a fit) or a
    dependency's timeout for one model then delays no other model's windows."""

    def __init__(self, config: MonitorConfig, store, runner_for: Callable[[str], Runner]) -> None:
        self.config = config
        self.metrics = MonitorMetrics()
        self.store = store
        self.runner_for = runner_for
        self.discovers = config.models == ("*",)
        names = () if self.discovers else config.models or (config.model_name,)
        self.models: dict[str, Watched] = {name: self._watched(name) for name in names}
        self.discovered_at: float | None = None  # when `*` last looked in the registry
        self._stop = threading.Event()
        self._started = False

    def _watched(self, name: str) -> Watched:
        return Watched(self.config.for_model(name), self.metrics, self.store, self.runner_for(name))

    def only(self) -> Watched:
        """The one watched model (a monitor of one model: tests, the demo)."""
        if len(self.models) != 1:
            raise LookupError(f"this monitor watches {len(self.models)} models, not one")
        return next(iter(self.models.values()))

    @property
    def monitor(self) -> Monitor:
        return self.only().monitor

    @property
    def trigger(self) -> RetrainTrigger:
        return self.only().trigger

    @property
    def rules(self) -> RuleEvaluator | None:
        return self.only().rules

    def start(self) -> None:
        self._started = True
        for watched in self.models.values():
            watched.monitor.start()
        if self.discovers:
            threading.Thread(target=self._discover_loop, name="discover", daemon=True).start()

    def _discover_loop(self) -> None:
        while not self._stop.is_set():
            self.discover()
            self._stop.wait(self.config.interval_seconds * DISCOVER_INTERVALS)

    def discover(self) -> list[str]:
        """Watch every registered model with a version modelwatch onboarded that is not
        watched yet; answers the names added. An MLflow failure is counted and retried at
        the next look."""
        try:
            found = onboarded_models(MlflowClient(self.config.tracking_uri))
        except Exception as exc:  # MLflow away: the models already watched go on
            log.warning("cannot look for onboarded models: %s", exc)
            return []
        self.discovered_at = time.time()
        added = {name: self._watched(name) for name in found if name not in self.models}
        for name, watched in added.items():
            log.info("watching %s, found onboarded in the registry", name)
            if self._started:
                watched.monitor.start()
        if added:
            self.models = self.models | added  # one assignment: a request sees one set
        return list(added)

    def shutdown(self) -> None:
        """Stop the loops and flush pending MLflow writes."""
        self._stop.set()
        for watched in self.models.values():
            watched.stop()


def onboarded_models(client: MlflowClient) -> list[str]:
    """The registered models with a version that has a monitoring reference (training
    and `modelwatch onboard` tag it), sorted."""
    versions = client.search_model_versions(f"tag.`{TAG_REFERENCE_RUN}` != ''")
    return sorted({v.name for v in versions})


def create_app(
    config: MonitorConfig | dict | None = None,
    *,
    runner: Runner | None = None,
    runner_for: Callable[[str], Runner] | None = None,
    store=None,
    start: bool = True,
) -> Flask:
    """`config`: None (the environment), a MonitorConfig, or a mapping of overrides;
    `store` defaults to the configured prediction log. Retrainings run by `runner` (one
    for every model: a test's) or `runner_for(model)` (each model's own: the command
    line's), exactly one of them."""
    if (runner is None) == (runner_for is None):
        raise TypeError("create_app takes exactly one of runner and runner_for")
    cfg = MonitorConfig.resolve(config)
    redact_logs("modelwatch")  # MLflow's errors name the tracking URI, credentials and all
    app = Flask("monitoring")
    app.request_class = LimitedRequest
    app.config["MAX_CONTENT_LENGTH"] = alerts.MAX_BODY_BYTES  # /alerts is the only body it takes
    state = MonitorState(
        cfg,
        store if store is not None else open_store(cfg.store_url),
        runner_for or (lambda name: runner),
    )
    app.extensions["modelwatch"] = state
    register_error_handlers(app)
    for bp in (ops.bp, alerts.bp):
        app.register_blueprint(bp)
    if start:
        state.start()
    return app


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


def serve(config: MonitorConfig, port: int, host: str, runner_for: Callable[[str], Runner]) -> None:
    """Run the monitor until interrupted (a threaded WSGI server: its traffic is scrapes
    and webhooks, a few requests a minute)."""
    logging.basicConfig(level=logging.INFO)
    for handler in logging.getLogger().handlers:  # every line, whoever logs it (MLflow too)
        handler.setFormatter(RedactingFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # not a line per scrape
    _refuse_open_webhook(host, port)
    app = create_app(config, runner_for=runner_for)
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
