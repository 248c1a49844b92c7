"""`modelwatch status`: what the stack is doing, gathered from its own endpoints."""

from __future__ import annotations

import requests

from modelwatch.cli.stack import Stack


def report(stack: Stack) -> dict:
    components = stack.status()
    info = {
        "components": components,
        "served": _get(stack, "serving", "/model") if components["serving"]["healthy"] else None,
        "monitor": _get(stack, "monitor", "/status") if components["monitor"]["healthy"] else None,
        "alerts": _firing(stack) if components["alertmanager"]["healthy"] else None,
    }
    info["monitored"] = _monitored(info["served"], info["monitor"])
    info["healthy"] = (
        all(c["healthy"] for c in components.values() if c["running"])
        and components["serving"]["healthy"]
        and info["monitored"] is not False
    )
    info["text"] = _text(info)
    return info


def _monitored(served: dict | None, monitor: dict | None) -> bool | None:
    """False while serving answers with a version the monitor cannot judge; None when
    either is not there to ask, or serving has no model (a fallback has no version)."""
    if not served or not monitor or served.get("fallback") or served.get("version") is None:
        return None  # nothing served yet: nothing to judge
    return bool(monitor.get("monitored")) and str(monitor.get("version")) == str(
        served.get("version")
    )


def _get(stack: Stack, name: str, path: str):
    try:
        return requests.get(stack.url(name) + path, timeout=3).json()
    except (requests.RequestException, ValueError):
        return None


def _firing(stack: Stack) -> list[dict] | None:
    alerts = _get(
        stack, "alertmanager", "/api/v2/alerts?active=true&silenced=false&inhibited=false"
    )
    if alerts is None:
        return None
    return [
        {
            "alertname": a["labels"].get("alertname"),
            "severity": a["labels"].get("severity"),
            "since": a.get("startsAt"),
        }
        for a in alerts
    ]


def _text(info: dict) -> str:
    lines = []
    for name, c in info["components"].items():
        state = "healthy" if c["healthy"] else "running, not healthy" if c["running"] else "stopped"
        lines.append(f"{name:<13} {state:<21} {c['url']}")
    served = info["served"]
    if served:
        lines.append(
            f"serving       {served.get('name')} version {served.get('version')} "
            f"({'fallback' if served.get('fallback') else served.get('source')}), "
            f"loaded {served.get('loaded_at')}"
        )
    monitor = info["monitor"]
    if monitor:
        window = monitor.get("last_window") or {}
        lines.append(
            f"monitor       version {monitor.get('version')}; "
            f"last window {window.get('rows', 0)} rows ({window.get('new_rows', 0)} new), "
            f"drifted {window.get('drifted_features') or 'nothing'}, "
            f"live accuracy {_pct(window.get('live_accuracy'))}, "
            f"estimated {_pct(window.get('estimated_accuracy'))}"
        )
        if window.get("skipped_windows"):
            lines.append(
                f"              no new rows in the last {window['skipped_windows']} intervals: "
                "the last window's verdicts stand, no alert advances"
            )
        lines.append(
            f"retraining    {monitor.get('retraining') or 'none running'}; "
            f"last: {monitor.get('last_retrain') or 'none yet'}"
        )
        pending = monitor.get("retrain_pending")
        if pending:
            lines.append(
                f"              pending {pending['reason']}: {pending['state'].replace('_', ' ')}"
                + (
                    f" ({pending['labelled_rows']} of {pending['min_rows']} labelled rows)"
                    if pending["state"] == "waiting_for_labels"
                    else ""
                )
            )
        if info["monitored"] is False:
            reason = monitor.get("not_monitored") or {}
            lines.append(
                f"NOT MONITORED served version {(info['served'] or {}).get('version')}: "
                + str(
                    reason.get("message")
                    or monitor.get("last_error")
                    or "the monitor judges another version"
                )
            )
    if info["alerts"] is not None:
        firing = ", ".join(f"{a['alertname']} ({a['severity']})" for a in info["alerts"]) or "none"
        lines.append(f"alerts        {firing}")
    return "\n".join(lines)


def _pct(value) -> str:
    return "-" if value is None else f"{value:.1%}"
