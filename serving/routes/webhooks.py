"""POST /webhooks/mlflow: MLflow 3's registry webhooks, so that a moved alias serves at once.

The protocol is MLflow's own (mlflow/webhooks/delivery.py and constants.py, 3.17): a JSON
body `{"entity", "action", "timestamp", "data"}` with headers `X-MLflow-Delivery-Id`,
`X-MLflow-Timestamp` (Unix seconds) and `X-MLflow-Signature`, which is
`v1,` + base64(HMAC-SHA256(secret, f"{delivery_id}.{timestamp}.{body}")).

A delivery is only a hint that the alias moved: serving asks the registry which version
the alias names, as the poll does, and never loads the version the body names. So a
replayed delivery (within the timestamp window) can at most cause one more registry call.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import threading
import time

from flask import Blueprint, jsonify, request
from mlflow.webhooks.constants import (
    WEBHOOK_DELIVERY_ID_HEADER,
    WEBHOOK_SIGNATURE_HEADER,
    WEBHOOK_SIGNATURE_VERSION,
    WEBHOOK_TIMESTAMP_HEADER,
)
from modelwatch.serving.routes import state

from modelwatch.web.errors import ApiError

log = logging.getLogger(__name__)
bp = Blueprint("webhooks", __name__, url_prefix="/webhooks")

# Seconds a delivery's signed timestamp may be away from our clock: the Standard Webhooks
# replay window MLflow's delivery follows. MLflow's retries resend the same headers, and
# their backoff stays well inside it.
MAX_SKEW = 300
ALIAS_CREATED = ("model_version_alias", "created")


def signature(secret: str, delivery_id: str, timestamp: str, body: bytes) -> str:
    """The signature MLflow sends, over the raw body bytes as received."""
    signed = f"{delivery_id}.{timestamp}.".encode() + body
    digest = hmac.new(secret.encode(), signed, hashlib.sha256).digest()
    return f"{WEBHOOK_SIGNATURE_VERSION},{base64.b64encode(digest).decode()}"


def _refuse(message: str) -> ApiError:
    return ApiError(403, "forbidden", message, {})


def verify(secret: str | None, body: bytes) -> None:
    """401 without MLflow's three headers; 403 when off, forged or stale."""
    if not secret:
        raise _refuse("registry webhooks are off: MODELWATCH_MLFLOW_WEBHOOK_SECRET is not set")
    names = (WEBHOOK_DELIVERY_ID_HEADER, WEBHOOK_TIMESTAMP_HEADER, WEBHOOK_SIGNATURE_HEADER)
    delivery_id, timestamp, sent = (request.headers.get(n, "") for n in names)
    if not (delivery_id and timestamp and sent):
        raise ApiError(
            401,
            "unauthorized",
            "a signed MLflow webhook delivery is required",
            {"headers": list(names)},
        )
    expected = signature(secret, delivery_id, timestamp, body)
    # Space-separated signatures are allowed (Standard Webhooks, for secret rotation).
    if not any(hmac.compare_digest(s.encode(), expected.encode()) for s in sent.split()):
        raise _refuse("the webhook signature is not valid")
    if not timestamp.isdigit() or abs(time.time() - int(timestamp)) > MAX_SKEW:
        raise _refuse(f"the webhook timestamp is more than {MAX_SKEW} s away from now")


def _event(body: bytes) -> tuple[tuple, dict]:
    try:
        payload = json.loads(body)
        kind = (payload["entity"], payload["action"])
        data = payload.get("data") or {}
    except (ValueError, TypeError, KeyError):
        raise ApiError(400, "bad_request", "not an MLflow webhook payload", {}) from None
    if not isinstance(data, dict):
        raise ApiError(400, "bad_request", "the payload's data is not an object", {})
    return kind, data


def _why_ignored(kind: tuple, data: dict, cfg) -> str | None:
    if kind != ALIAS_CREATED:
        return f"event {'.'.join(map(str, kind))} does not move an alias"
    aliases = {cfg.model_alias} | ({cfg.challenger_alias} if cfg.shadow else set())
    if data.get("name") != cfg.model_name or data.get("alias") not in aliases:
        return (
            f"serving {cfg.model_name}@{cfg.model_alias}, "
            f"not {data.get('name')}@{data.get('alias')}"
        )
    return None


@bp.post("/mlflow")
def mlflow_webhook():
    body = request.get_data()
    cfg = state().config
    verify(cfg.mlflow_webhook_secret, body)
    kind, data = _event(body)
    reason = _why_ignored(kind, data, cfg)
    if reason is not None:
        return jsonify({"result": "ignored", "reason": reason})
    log.info(
        "webhook: %s@%s moved to version %s, reloading",
        data.get("name"),
        data.get("alias"),
        data.get("version"),
    )
    # Off the request thread: MLflow waits for the answer. reload_now touches the reload
    # stamp first, so every other gunicorn worker reloads within its stamp check too.
    threading.Thread(target=state().models.reload_now, name="webhook-reload", daemon=True).start()
    return jsonify({"result": "reloading"}), 202
