"""GET /health, /ready, /model, /metrics, /openapi.json."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify, request
from modelwatch.serving.openapi import openapi_document
from modelwatch.serving.routes import state
from modelwatch.serving.routes.mlflow import params_schema

from modelwatch.web.errors import ApiError

bp = Blueprint("ops", __name__)


@bp.get("/health")
def health():
    return jsonify({"status": "ok"})


@bp.get("/ready")
def ready():
    model = state().models.current
    if model is None:
        raise ApiError(
            503,
            "not_ready",
            "no model (and no fallback) is being served yet",
            {"last_error": state().models.last_error},
            headers={"Retry-After": "5"},
        )
    return jsonify({"status": "ready", "model": model.describe()})


@bp.get("/model")
def model_info():
    """The served model (and the shadow challenger). /version is MLflow's (routes/mlflow.py)."""
    st = state()
    model = st.models.current
    if model is None:
        raise ApiError(
            503, "no_model", "no model is being served", {"last_error": st.models.last_error}
        )
    out = model.describe()
    challenger = st.models.challenger
    out["challenger"] = challenger.describe() if challenger and st.config.shadow else None
    return jsonify(out)


@bp.get("/metrics")
def metrics():
    # content_type=, not mimetype=: Flask appends a second charset to a mimetype, and
    # Prometheus 3 refuses to scrape a Content-Type it cannot parse.
    body, content_type = state().metrics.exposition(request.headers.get("Accept", ""))
    return Response(body, content_type=content_type)


@bp.get("/openapi.json")
def openapi():
    model = state().models.current
    return jsonify(openapi_document(state(), params_schema(model) if model is not None else None))
