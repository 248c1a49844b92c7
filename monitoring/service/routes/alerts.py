"""`POST /alerts`: Alertmanager's webhook (format version 4) -> retraining requests.

Only firing alerts labelled `action="retrain"` ask for a retraining, of the model their
`model` label names (without one, the monitor's only model); resolved ones and any other
action are acknowledged and ignored. A retrain alert about a model this monitor does not
watch is a 422 naming it, before anything is asked. The answer comes at once: the retraining
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
# before it is read). Alertmanager sends one group of alerts, grouped by alert name, model
# and model version; an alert with its labels and annotations is about 2 KiB, so this holds a
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
    models = state().models  # one read: a model found meanwhile is in the next request
    asks = [
        _watched(alert, models) if _asks(alert, payload) else None for alert in payload["alerts"]
    ]
    results = [
        _answer(alert, watched) if watched else {"alert": _name(alert), "result": "ignored"}
        for alert, watched in zip(payload["alerts"], asks)
    ]
    return jsonify({"results": results}), 202


def _name(alert: dict) -> str:
    return alert.get("labels", {}).get("alertname", "unnamed")


def _asks(alert: dict, payload: dict) -> bool:
    """A firing retrain alert: the only kind that asks for anything."""
    firing = alert.get("status", payload.get("status")) == "firing"
    return firing and alert.get("labels", {}).get("action") == "retrain"


def _watched(alert: dict, models: dict):
    """The watched model the alert is about: its `model` label's, or without one the
    monitor's only model."""
    name = alert.get("labels", {}).get("model")
    if name is None and len(models) == 1:
        return next(iter(models.values()))
    if name not in models:
        said = f"model {name!r}" if name is not None else "no model label"
        raise ApiError(
            422,
            "unknown_model",
            f"alert {_name(alert)} names {said}; this monitor watches {', '.join(sorted(models))}",
            {"watched": sorted(models)},
        )
    return models[name]


def _answer(alert: dict, watched) -> dict:
    """What became of one retrain alert of the group, for its model."""
    labels, name = alert.get("labels", {}), _name(alert)
    broken, suspect = _integrity_issues(watched), _suspect_labels(watched)
    if broken:
        # Alertmanager's inhibition should have held this back; if timing let it
        # through, the monitor refuses too: retraining on broken data makes it worse.
        return {"alert": name, "result": "held", "reason": f"data integrity: {broken}"}
    if suspect:
        # FeedbackSuspect's inhibition, likewise: retraining on lying labels learns the lie
        return {"alert": name, "result": "held", "reason": suspect}
    # The alert name is the reason: one drift that fires for many series makes one run.
    reason = f"{name}:{alert.get('fingerprint', '')}"
    result = watched.trigger.request(reason, key=name, version=labels.get("model_version"))
    return {"alert": name, "result": result}


def _integrity_issues(watched) -> str:
    result = watched.monitor.last_result
    if result is None or not result.integrity:
        return ""
    return "; ".join(f"{i['kind']} on {'+'.join(i['columns'])}" for i in result.integrity)


def _suspect_labels(watched) -> str:
    result = watched.monitor.last_result
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
