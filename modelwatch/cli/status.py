"""`modelwatch status`: what the stack is doing, gathered from its own endpoints.

For a person, a table: each component's health, then per watched model its version,
its last window's time (local time, with the zone), each verdict with its value and the
bound it is held to, and the alerts firing for it (Alertmanager's when it answers, else
the monitor's built-in rules'). `--json` gives the raw documents (serving's /model, the
monitor's /status, Alertmanager's alerts) for scripts.

Serving and the monitor are found at MODELWATCH_SERVING_URL and MODELWATCH_MONITOR_URL
when those are set (services `modelwatch up` did not start), else through the stack's
own pid files and ports.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from datetime import datetime

import requests

from modelwatch.cli.stack import HEALTH, Stack
from modelwatch.settings import read

# The components a user may run outside the stack, and the variable that finds each.
FOUND_BY = {"serving": "MODELWATCH_SERVING_URL", "monitor": "MODELWATCH_MONITOR_URL"}


def report(stack: Stack, env: Mapping[str, str] | None = None) -> dict:
    components = stack.status()
    components |= _external(os.environ if env is None else env, components)
    info = {
        "components": components,
        "served": _get(components["serving"], "/model") if _up(components, "serving") else None,
        "monitor": _get(components["monitor"], "/status") if _up(components, "monitor") else None,
        "alerts": _firing(components["alertmanager"]) if _up(components, "alertmanager") else None,
    }
    info["monitored"] = _monitored(info["served"], info["monitor"])
    info["healthy"] = (
        all(c["healthy"] for c in components.values() if c["running"])
        and components["serving"]["healthy"]
        and info["monitored"] is not False
    )
    info["text"] = _text(info)
    return info


def _external(env: Mapping[str, str], stack: dict[str, dict]) -> dict[str, dict]:
    """The components a variable points elsewhere than the stack: asked there, whatever
    the pid files say (the stack's own URL, which its services are given, is the stack's)."""
    out = {}
    for name, variable in FOUND_BY.items():
        url = read(variable, env).rstrip("/")
        if env.get(variable, "").strip() and url != stack[name]["url"]:
            healthy = _answers(url + HEALTH[name])
            out[name] = {
                "running": healthy,
                "pid": None,
                "url": url,
                "healthy": healthy,
                "found_by": variable,
            }
    return out


def _answers(url: str) -> bool:
    try:
        return requests.get(url, timeout=2).ok
    except requests.RequestException:
        return False


def _up(components: dict, name: str) -> bool:
    return name in components and components[name]["healthy"]


def _get(component: dict, path: str):
    try:
        return requests.get(component["url"] + path, timeout=3).json()
    except (requests.RequestException, ValueError):
        return None


def _firing(component: dict) -> list[dict] | None:
    alerts = _get(component, "/api/v2/alerts?active=true&silenced=false&inhibited=false")
    if alerts is None:
        return None
    return [
        {
            "alertname": a["labels"].get("alertname"),
            "severity": a["labels"].get("severity"),
            "model": a["labels"].get("model"),
            "since": a.get("startsAt"),
        }
        for a in alerts
    ]


def _models(monitor: dict | None) -> dict[str, dict]:
    """The monitor's per-model documents, by name (contract C3: {"models": {name: doc}})."""
    return (monitor or {}).get("models") or {}


def _monitored(served: dict | None, monitor: dict | None) -> bool | None:
    """False while serving answers with a version the monitor cannot judge; None when
    either is not there to ask, or serving has no model (a fallback has no version)."""
    if not served or not monitor or served.get("fallback") or served.get("version") is None:
        return None  # nothing served yet: nothing to judge
    doc = _models(monitor).get(served.get("name"))
    if doc is None:
        return False  # the monitor does not watch the served model
    return bool(doc.get("monitored")) and str(doc.get("version")) == str(served.get("version"))


def local_time(value) -> str:
    """An epoch (seconds) or an ISO 8601 time as this machine's local time, with the zone."""
    if value is None:
        return "-"
    if isinstance(value, int | float):
        moment = datetime.fromtimestamp(value).astimezone()
    else:
        moment = datetime.fromisoformat(str(value).replace("Z", "+00:00")).astimezone()
    return moment.strftime("%Y-%m-%d %H:%M:%S %Z")


def _text(info: dict) -> str:
    lines = []
    for name, c in info["components"].items():
        state = "healthy" if c["healthy"] else "running, not healthy" if c["running"] else "stopped"
        where = f" (from {c['found_by']})" if c.get("found_by") else ""
        lines.append(f"{name:<13} {state:<21} {c['url']}{where}")
    served, monitor = info["served"], info["monitor"]
    if served is None and monitor is None:
        lines += ["", "nothing is serving or monitoring: start the stack with `modelwatch up`"]
        return "\n".join(lines)
    lines += ["", *_served_lines(served)]
    if monitor is None:
        lines.append("monitor       not answering: no model is watched")
    for name, doc in sorted(_models(monitor).items()):
        lines += ["", *_model_lines(name, doc, info)]
    others = [a for a in info["alerts"] or [] if a.get("model") not in _models(monitor)]
    if others:  # a service's alerts (ServingDown) or a model this monitor does not watch
        lines += ["", "alerts of no watched model: " + _alert_list(others)]
    return "\n".join(lines)


def _alert_list(alerts: list[dict]) -> str:
    return ", ".join(
        f"{a['alertname']} ({a['severity']}"
        + (f", {a['model']}" if a.get("model") else "")
        + f") since {local_time(a['since'])}"
        for a in alerts
    )


def _served_lines(served: dict | None) -> list[str]:
    if served is None:
        return ["serving       not answering"]
    if served.get("fallback"):
        return [
            f"serving       {served.get('name')}: no model loaded, answering with fallback rules"
        ]
    if served.get("version") is None:  # an error document (no model yet)
        message = (served.get("error") or {}).get("message", "no model loaded")
        return [f"serving       no model: {message}"]
    return [
        f"serving       {served.get('name')} version {served.get('version')} "
        f"({served.get('source')}), loaded {local_time(served.get('loaded_at'))}"
    ]


def _model_lines(name: str, doc: dict, info: dict) -> list[str]:
    window = doc.get("last_window")
    version = doc.get("version") or "-"
    if not doc.get("monitored"):
        reason = (doc.get("not_monitored") or {}).get("message") or doc.get("last_error")
        lines = [f"model {name}  version {version}  NOT MONITORED: {reason or 'not judged yet'}"]
    elif window is None:
        lines = [f"model {name}  version {version}  no window judged yet"]
    else:
        lines = [
            f"model {name}  version {version}  last window {local_time(window['evaluated_at'])}, "
            f"{window['rows']} rows ({window.get('new_rows', window['rows'])} new)"
        ]
        if window.get("skipped_windows"):
            lines.append(
                f"  no new rows in the last {window['skipped_windows']} intervals: "
                "the last window's verdicts stand, no alert advances"
            )
        lines += [f"  {'verdict':<22} {'value':>10}  {'bound':<14} state", *_verdicts(window)]
    served = info["served"] or {}
    if info["monitored"] is False and served.get("name") == name:
        lines.append(
            f"  NOT MONITORED served version {served.get('version')}: "
            + str(
                (doc.get("not_monitored") or {}).get("message")
                or doc.get("last_error")
                or "the monitor judges another version"
            )
        )
    return lines + _retraining(doc) + [_alerts(name, doc, info["alerts"])]


def _verdicts(window: dict) -> list[str]:
    rows = []
    share = (window.get("drift") or {}).get("dataset_drift_share") or {}
    if share:
        drifted = ", ".join(window.get("drifted_features") or []) or "no feature"
        rows.append(
            _row(
                "dataset drift share",
                share.get("value"),
                share.get("upper"),
                "upper",
                f"DRIFT ({drifted})" if window.get("dataset_drift") else f"ok ({drifted} drifted)",
            )
        )
    for metric, m in sorted((window.get("metrics") or {}).items()):
        side = "lower" if m.get("lower") is not None else "upper"
        rows.append(_row(metric, m["value"], m.get(side), side, "ALERT" if m["alert"] else "ok"))
    issues = window.get("integrity") or []
    rows.append(
        f"  {'integrity':<22} {len(issues):>10}  {'0 issues':<14} "
        + (
            "ALERT (" + "; ".join(f"{i['kind']} {', '.join(i['columns'])}" for i in issues) + ")"
            if issues
            else "ok"
        )
    )
    concept = window.get("concept_drift")
    if concept is not None:
        rows.append(f"  {'concept drift':<22} {'':>10}  {'':<14} {'ALERT' if concept else 'ok'}")
    return rows


def _row(name: str, value, bound, side: str, state: str) -> str:
    shown = "-" if bound is None else f"{'>=' if side == 'lower' else '<='} {_number(bound)}"
    return f"  {name:<22} {_number(value):>10}  {shown:<14} {state}"


def _number(value) -> str:
    """Four significant digits, as onboarding prints a bound; large ones (a MAE) in full."""
    if value is None:
        return "-"
    return f"{value:.4g}" if abs(value) < 10_000 else f"{value:,.0f}"


def _retraining(doc: dict) -> list[str]:
    last = doc.get("last_retrain")
    ended = (
        f"{last['result']} ({last['reason']}) at {local_time(last['finished_at'])}"
        if last
        else "none yet"
    )
    lines = [f"  retraining  {doc.get('retraining') or 'none running'}; last: {ended}"]
    pending = doc.get("retrain_pending")
    if pending:
        lines.append(
            f"  pending {pending['reason']}: {pending['state'].replace('_', ' ')}"
            + (
                f" ({pending['labelled_rows']} of {pending['min_rows']} labelled rows)"
                if pending["state"] == "waiting_for_labels"
                else ""
            )
        )
    return lines


def _alerts(name: str, doc: dict, alerts: list[dict] | None) -> str:
    """Alertmanager's alerts of this model when it answers, else the built-in rules'."""
    if alerts is not None:
        mine = [a for a in alerts if a.get("model") == name]
        return f"  alerts      {_alert_list(mine) or 'none'} (Alertmanager)"
    builtin = doc.get("builtin_alerts_firing")
    if builtin is None:
        return "  alerts      unknown: no Alertmanager answers and the built-in rules are off"
    return f"  alerts      {', '.join(builtin) or 'none'} (the monitor's built-in rules)"
