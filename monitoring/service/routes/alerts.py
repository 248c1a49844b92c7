"""`POST /alerts`: Alertmanager's webhook (format version 4) -> retraining requests.

Only firing alerts labelled `action="retrain"` ask for a retraining; resolved ones and
any other action are acknowledged and ignored. The answer comes at once: the retraining
runs in the background, so Alertmanager never times out and retries.
"""

from __future__ import annotations

import json

from flask import Blueprint, jsonify, request
from modelwatch.monitoring.calculators import feedback
from modelwatch.monitoring.service.routes import state

from modelwatch.web.auth import require_token
from modelwatch.web.errors import ApiError

bp = Blueprint("alerts", __name__)
# Largest body of `POST /alerts` (the app's MAX_CONTENT_LENGTH: a larger one is a 413
# before it is read). Alertmanager sends one group of alerts, grouped by alert name and
# model version; an alert with its labels and annotations is about 2 KiB, so this holds a
# group of over a hundred.
MAX_BODY_BYTES = 256 * 1024
NOT_WEBHOOK = "expected a JSON object in Alertmanager's webhook format"


@bp.post("/alerts")
def receive_alerts():
    require_token(state().config.webhook_token)
    payload, problem = _parse_body()
    problem = problem or _check_payload(payload)
    if problem:
        raise ApiError(400, "bad_payload", problem)
    broken = _integrity_issues()
    suspect = _suspect_labels()
    results = [_answer(alert, payload, broken, suspect) for alert in payload["alerts"]]
    return jsonify({"results": results}), 202


def _answer(alert: dict, payload: dict, broken: str, suspect: str) -> dict:
    """What became of one alert of the group."""
    labels = alert.get("labels", {})
    name = labels.get("alertname", "unnamed")
    firing = alert.get("status", payload.get("status")) == "firing"
    if not firing or labels.get("action") != "retrain":
        return {"alert": name, "result": "ignored"}
    if broken:
        # Alertmanager's inhibition should have held this back; if timing let it
        # through, the monitor refuses too: retraining on broken data makes it worse.
        return {"alert": name, "result": "held", "reason": f"data integrity: {broken}"}
    if suspect:
        # FeedbackSuspect's inhibition, likewise: retraining on lying labels learns the lie
        return {"alert": name, "result": "held", "reason": suspect}
    # The alert name is the reason: one drift that fires for many series makes one run.
    reason = f"{name}:{alert.get('fingerprint', '')}"
    result = state().trigger.request(reason, key=name, version=labels.get("model_version"))
    return {"alert": name, "result": result}


def _integrity_issues() -> str:
    result = state().monitor.last_result
    if result is None or not result.integrity:
        return ""
    return "; ".join(f"{i['kind']} on {'+'.join(i['columns'])}" for i in result.integrity)


def _suspect_labels() -> str:
    result = state().monitor.last_result
    if result is None:
        return ""
    return feedback.hold_reason(result.details_of(feedback.FeedbackDetails))


def _parse_body() -> tuple[object, str | None]:
    """The body as JSON, or why it is not: parsed here rather than by Flask, whose parser
    lets a too deeply nested document's RecursionError through as a 500. A body over
    MAX_BODY_BYTES is a 413 (modelwatch/web/limits.py)."""
    if not request.is_json:
        return None, f"{NOT_WEBHOOK} (Content-Type: application/json)"
    body = request.get_data()
    try:
        payload = json.loads(body)
        # a lone surrogate is no text a label can hold: it fails to encode
        json.dumps(payload, ensure_ascii=False).encode()
    except RecursionError:
        return None, f"{NOT_WEBHOOK}: the body is nested too deeply"
    except ValueError as exc:  # not JSON, not UTF-8, or a lone surrogate (UnicodeError is one)
        return None, f"{NOT_WEBHOOK}: {_reason(exc)}"
    return payload, None


def _reason(exc: ValueError) -> str:
    if isinstance(exc, UnicodeDecodeError):
        return "the body is not UTF-8 text"
    if isinstance(exc, UnicodeEncodeError):
        return "it holds a lone surrogate (\\ud800-\\udfff), which is no text"
    return f"the body is not JSON ({exc})"


def _check_payload(payload) -> str | None:
    if not isinstance(payload, dict):
        return NOT_WEBHOOK
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
