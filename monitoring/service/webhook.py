"""`POST /alerts`: Alertmanager's webhook (format version 4) -> retraining requests.

Only firing alerts labelled `action="retrain"` ask for a retraining; resolved ones and
any other action are acknowledged and ignored. The answer comes at once: the retraining
runs in the background, so Alertmanager never times out and retries.
"""

from __future__ import annotations

import hmac
import json

from flask import Blueprint, current_app, jsonify, request
from modelwatch.monitoring.calculators import feedback
from werkzeug.exceptions import RequestEntityTooLarge

bp = Blueprint("alerts", __name__)
# Largest body of `POST /alerts` (the app's MAX_CONTENT_LENGTH: a larger one is a 413
# before it is read). Alertmanager sends one group of alerts, grouped by alert name and
# model version; an alert with its labels and annotations is about 2 KiB, so this holds a
# group of over a hundred.
MAX_BODY_BYTES = 256 * 1024


@bp.post("/alerts")
def receive_alerts():
    token = current_app.config["MONITOR"].webhook_token
    if token:
        given = request.headers.get("Authorization", "")
        if not given.startswith("Bearer "):
            return _error(401, "unauthorized", "a bearer token is required")
        if not hmac.compare_digest(given.removeprefix("Bearer ").encode(), token.encode()):
            return _error(403, "forbidden", "the bearer token is wrong")
    payload, problem = _parse_body()
    problem = problem or _check_payload(payload)
    if problem:
        return _error(400, "bad_payload", problem)
    trigger = current_app.extensions["retrain_trigger"]
    broken = _integrity_issues()
    suspect = _suspect_labels()
    results = []
    for alert in payload["alerts"]:
        labels = alert.get("labels", {})
        name = labels.get("alertname", "unnamed")
        if (
            alert.get("status", payload.get("status")) != "firing"
            or labels.get("action") != "retrain"
        ):
            results.append({"alert": name, "result": "ignored"})
            continue
        if broken:
            # Alertmanager's inhibition should have held this back; if timing let it
            # through, the monitor refuses too: retraining on broken data makes it worse.
            results.append({"alert": name, "result": "held", "reason": f"data integrity: {broken}"})
            continue
        if (
            suspect
        ):  # FeedbackSuspect's inhibition, likewise: retraining on lying labels learns the lie
            results.append({"alert": name, "result": "held", "reason": suspect})
            continue
        # The alert name is the reason: one drift that fires for many series makes one run.
        reason = f"{name}:{alert.get('fingerprint', '')}"
        results.append(
            {
                "alert": name,
                "result": trigger.request(reason, key=name, version=labels.get("model_version")),
            }
        )
    return jsonify({"results": results}), 202


def _integrity_issues() -> str:
    monitor = current_app.extensions.get("monitor")
    result = monitor.last_result if monitor is not None else None
    if result is None or not result.integrity:
        return ""
    return "; ".join(f"{i['kind']} on {'+'.join(i['columns'])}" for i in result.integrity)


def _suspect_labels() -> str:
    monitor = current_app.extensions.get("monitor")
    result = monitor.last_result if monitor is not None else None
    return "" if result is None else feedback.hold_reason(result.details(feedback.NAME))


def _parse_body() -> tuple[object, str | None]:
    """The body as JSON, or why it is not: parsed here rather than by Flask, whose parser
    lets a too deeply nested document's RecursionError through as a 500."""
    if not request.is_json:
        return (
            None,
            "expected a JSON object in Alertmanager's webhook format (Content-Type: application/json)",
        )
    body = request.get_data()  # a Content-Length over the limit is a 413 here
    if request.content_length is None and len(body) >= MAX_BODY_BYTES:
        raise RequestEntityTooLarge()  # chunked: Werkzeug stops reading at the limit, silently
    try:
        payload = json.loads(body)
        json.dumps(
            payload, ensure_ascii=False
        ).encode()  # lone surrogates: no text a label can hold
    except RecursionError:
        return (
            None,
            "expected a JSON object in Alertmanager's webhook format: the body is nested too deeply",
        )
    except ValueError as exc:  # not JSON, not UTF-8, or a lone surrogate (UnicodeError is one)
        return None, f"expected a JSON object in Alertmanager's webhook format: {_reason(exc)}"
    return payload, None


def _reason(exc: ValueError) -> str:
    if isinstance(exc, UnicodeDecodeError):
        return "the body is not UTF-8 text"
    if isinstance(exc, UnicodeEncodeError):
        return "it holds a lone surrogate (\\ud800-\\udfff), which is no text"
    return f"the body is not JSON ({exc})"


def _check_payload(payload) -> str | None:
    if not isinstance(payload, dict):
        return "expected a JSON object in Alertmanager's webhook format"
    if not isinstance(payload.get("alerts"), list):
        return "the payload has no `alerts` list"
    if not all(isinstance(a, dict) for a in payload["alerts"]):
        return "every entry of `alerts` must be an object"
    for i, alert in enumerate(payload["alerts"]):
        labels = alert.get("labels", {})
        if not isinstance(labels, dict) or not all(isinstance(v, str) for v in labels.values()):
            return f"`alerts[{i}].labels` must be an object of strings"
        for name in ("status", "fingerprint"):
            if alert.get(name) is not None and not isinstance(alert[name], str):
                return f"`alerts[{i}].{name}` must be a string"
    if payload.get("status") is not None and not isinstance(payload["status"], str):
        return "`status` must be a string"
    return None


def _error(status: int, code: str, message: str):
    return jsonify({"error": {"code": code, "message": message, "details": {}}}), status
