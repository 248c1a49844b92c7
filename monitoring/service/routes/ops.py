"""GET /metrics, /health, /status."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify, request
from modelwatch.monitoring.service.routes import state
from modelwatch.monitoring.window import window_status
from prometheus_client.exposition import choose_encoder

from modelwatch.redaction import masked
from modelwatch.web.errors import ApiError

bp = Blueprint("ops", __name__)


@bp.get("/metrics")
def prometheus_metrics():
    # OpenMetrics when asked; content_type=, not mimetype= (Flask would append a second
    # charset, and Prometheus 3 refuses to scrape a Content-Type it cannot parse).
    encoder, content_type = choose_encoder(request.headers.get("Accept", ""))
    return Response(encoder(state().metrics.registry), content_type=content_type)


@bp.get("/health")
def health():
    return jsonify({"status": "ok"})


@bp.get("/status")
def status():
    """What the monitor last saw, for `modelwatch status` and for people: every watched
    model's document, or with `?model=NAME` that model's alone."""
    st = state()
    models = st.models  # one read: a model found meanwhile is in the next answer
    name = request.args.get("model")
    # masked: an error's text may name a URL with its credentials
    if name is not None:
        if name not in models:
            raise ApiError(
                404,
                "unknown_model",
                f"this monitor does not watch {name!r}",
                {"watched": sorted(models)},
            )
        return jsonify(masked(model_status(models[name])))
    return jsonify(
        masked(
            {
                "models": {n: model_status(w) for n, w in sorted(models.items())},
                "watched": sorted(models),
                "discovers": st.discovers,
                "discovered_at": st.discovered_at,
            }
        )
    )


def model_status(watched) -> dict:
    """One model's document: which version, whether it is judged (and why not), the last
    error and failure, retraining, the built-in rules firing and the last window."""
    monitor, trigger, rules = watched.monitor, watched.trigger, watched.rules
    context, result = monitor.context, monitor.last_result
    return {
        "model": watched.config.model_name,
        "version": context.version if context else None,
        "last_error": monitor.last_error,
        "last_failure": monitor.last_failure,
        "retraining": trigger.running,
        "last_retrain": trigger.last,
        # queued, cooling_down, waiting_for_labels or held
        "retrain_pending": trigger.pending,
        "builtin_alerts_firing": rules.firing if rules is not None else None,
        "monitored": context is not None,
        "not_monitored": monitor.unmonitored,
        "last_window": None if result is None else _window(monitor),
    }


def _window(monitor) -> dict:
    context = monitor.context
    reference = context.reference if context else None
    estimates = bool(context and context.estimates)
    return window_status(monitor.last_result, reference, estimates) | monitor.progress()
