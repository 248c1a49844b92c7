"""Generate the provisioned Grafana dashboards (monitoring/grafana/dashboards/*.json).

Dashboards as code: edit this file, then run

    .venv/bin/python monitoring/grafana/generate.py

and commit the JSON it writes. tests/stack_config checks the JSON is what this script makes,
that every panel is bound to the provisioned datasource uid, and that every metric a
query names is one of docs/DESIGN.md's metrics or a recording rule.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

DATASOURCE_UID = "modelwatch-prometheus"  # provisioning/datasources/prometheus.yml
DS = {"type": "prometheus", "uid": DATASOURCE_UID}
SCHEMA_VERSION = 39  # Grafana 11
OUT = Path(__file__).resolve().parent / "dashboards"

PROBES = 'endpoint!~"/?(metrics|health|ready|version)"'  # as in the recording rules
M = 'model=~"$model"'  # every modelwatch series names its registered model
MV = 'model_version=~"$model_version"'
W = f"{M}, {MV}"  # a window series of the chosen models and versions

# The constants of the Prometheus rules (monitoring/prometheus/rules/) that a panel's fixed
# threshold mirrors. A model's bounds are never constants here: they are the series the
# monitor exports (modelwatch_*_threshold), drawn beside the value.
# tests/stack_config/test_grafana.py checks each constant is in its rule's expression.
RULE_BOUNDS = {
    "HighErrorRate": 0.05,
    "HighLatencyP99": 1,
    "LowLabelCoverage": 0.1,
    "MonitorStale": 600,
    "HighSaturation": 0.9,
}
# The burn rates of the multi-window alerts, and the error budgets of the SLOs.
BURN_RATES = (1, 6, 14.4)
AVAILABILITY_BUDGET, LATENCY_BUDGET = 0.001, 0.01
# A count's steps: anything counted (a firing alert, a drifted feature) colours it.
PRESENCE = [(None, "green"), (1, "red")]


class Layout:
    """Panels left to right in a 24-column grid, wrapping to a new line when full."""

    def __init__(self) -> None:
        self.panels: list[dict] = []
        self.x = self.y = self.line_h = 0

    def row(self, title: str) -> None:
        self._newline()
        self.panels.append(
            {
                "type": "row",
                "title": title,
                "collapsed": False,
                "panels": [],
                "gridPos": {"h": 1, "w": 24, "x": 0, "y": self.y},
            }
        )
        self.y += 1

    def add(self, panel: dict, w: int, h: int) -> None:
        if self.x + w > 24:
            self._newline()
        panel["gridPos"] = {"h": h, "w": w, "x": self.x, "y": self.y}
        self.panels.append(panel)
        self.x += w
        self.line_h = max(self.line_h, h)

    def _newline(self) -> None:
        self.y += self.line_h
        self.x = self.line_h = 0

    def numbered(self) -> list[dict]:
        for i, panel in enumerate(self.panels, start=1):
            panel["id"] = i
        return self.panels


def target(expr: str, legend: str = "", instant: bool = False, fmt: str | None = None) -> dict:
    t = {
        "datasource": DS,
        "editorMode": "code",
        "expr": expr,
        "legendFormat": legend or "__auto",
        "range": not instant,
        "instant": instant,
    }
    if fmt:
        t["format"] = fmt
    return t


def _with_refids(targets: list[dict]) -> list[dict]:
    for i, t in enumerate(targets):
        t["refId"] = chr(ord("A") + i)
    return targets


def _thresholds(steps: list[tuple[float | None, str]]) -> dict:
    return {"mode": "absolute", "steps": [{"color": c, "value": v} for v, c in steps]}


def rule_steps(rule: str, below: bool = False) -> list[tuple[float | None, str]]:
    """Red past the constant of `rule` (below it with `below`)."""
    value = RULE_BOUNDS[rule]
    return [(None, "red"), (value, "green")] if below else [(None, "green"), (value, "red")]


def said_by(rule: str) -> str:
    """The sentence naming the rule a panel's fixed threshold mirrors (the test reads it)."""
    return f" Threshold: the {rule} rule's."


def bound(expr: str, legend: str) -> dict:
    """A bound series drawn as a threshold: a dashed red line beside the value."""
    return {**target(expr, legend), "bound": True}


def _bound_overrides(targets: list[dict]) -> list[dict]:
    return [
        {
            "matcher": {"id": "byFrameRefID", "options": t["refId"]},
            "properties": [
                {"id": "custom.lineStyle", "value": {"fill": "dash", "dash": [10, 10]}},
                {"id": "color", "value": {"mode": "fixed", "fixedColor": "red"}},
                {"id": "custom.fillOpacity", "value": 0},
            ],
        }
        for t in targets
        if t.pop("bound", False)
    ]


def timeseries(
    title: str,
    targets: list[dict],
    unit: str = "short",
    description: str = "",
    minimum: float | None = None,
    maximum: float | None = None,
    thresholds: list[tuple[float | None, str]] | None = None,
    bars: bool = False,
    stack: bool = False,
    rule: str = "",
) -> dict:
    """`targets` made with bound() are drawn as thresholds; `rule` names the rule whose
    constant `thresholds` mirrors."""
    targets = _with_refids(targets)
    custom = {
        "drawStyle": "bars" if bars else "line",
        "lineWidth": 1,
        "fillOpacity": 30 if bars else 10,
        "showPoints": "never",
        "spanNulls": False,
        "stacking": {"mode": "normal" if stack else "none", "group": "A"},
        "thresholdsStyle": {"mode": "line" if thresholds else "off"},
    }
    defaults: dict = {
        "unit": unit,
        "custom": custom,
        "thresholds": _thresholds(thresholds or [(None, "green")]),
    }
    if minimum is not None:
        defaults["min"] = minimum
    if maximum is not None:
        defaults["max"] = maximum
    return {
        "type": "timeseries",
        "title": title,
        "description": description + (said_by(rule) if rule else ""),
        "datasource": DS,
        "targets": targets,
        "fieldConfig": {"defaults": defaults, "overrides": _bound_overrides(targets)},
        "options": {
            "legend": {"displayMode": "list", "placement": "bottom", "showLegend": True},
            "tooltip": {"mode": "multi", "sort": "desc"},
        },
    }


def stat(
    title: str,
    targets: list[dict],
    unit: str = "short",
    description: str = "",
    thresholds: list[tuple[float | None, str]] | None = None,
    mappings: list[dict] | None = None,
    text_mode: str = "auto",
    decimals: int | None = None,
    rule: str = "",
    threshold: str = "",
) -> dict:
    """`threshold`: a query of the bound series that colours the value (Grafana's "config
    from query results": red past it); `rule` names the rule whose constant `thresholds`
    mirrors."""
    transformations = []
    if threshold:
        targets = [*targets, target(threshold, "Threshold", instant=True)]
        transformations = [
            {
                "id": "configFromData",
                "options": {
                    "configRefId": chr(ord("A") + len(targets) - 1),
                    "mappings": [{"fieldName": "Threshold", "handlerKey": "threshold1"}],
                    "applyTo": {"id": "byType", "options": "number"},
                },
            }
        ]
        thresholds = thresholds or [(None, "green")]
    defaults: dict = {
        "unit": unit,
        "thresholds": _thresholds(thresholds or [(None, "green")]),
        "mappings": mappings or [],
    }
    if decimals is not None:
        defaults["decimals"] = decimals
    return {
        "type": "stat",
        "title": title,
        "description": description + (said_by(rule) if rule else ""),
        "datasource": DS,
        "targets": _with_refids(targets),
        "transformations": transformations,
        "fieldConfig": {"defaults": defaults, "overrides": []},
        "options": {
            "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
            "colorMode": "background" if thresholds or mappings else "value",
            "graphMode": "none",
            "justifyMode": "auto",
            "orientation": "auto",
            "textMode": text_mode,
            "wideLayout": True,
        },
    }


def bargauge(
    title: str,
    targets: list[dict],
    unit: str = "short",
    description: str = "",
    maximum: float | None = None,
    thresholds: list[tuple[float | None, str]] | None = None,
) -> dict:
    """`targets` made with bound() are shown as bars of their own (a bar gauge draws no
    line)."""
    for t in targets:
        t.pop("bound", None)
    defaults: dict = {
        "unit": unit,
        "min": 0,
        "thresholds": _thresholds(thresholds or [(None, "green")]),
    }
    if maximum is not None:
        defaults["max"] = maximum
    return {
        "type": "bargauge",
        "title": title,
        "description": description,
        "datasource": DS,
        "targets": _with_refids(targets),
        "fieldConfig": {"defaults": defaults, "overrides": []},
        "options": {
            "displayMode": "gradient",
            "orientation": "horizontal",
            "showUnfilled": True,
            "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
        },
    }


def heatmap(title: str, expr: str, unit: str, description: str = "") -> dict:
    return {
        "type": "heatmap",
        "title": title,
        "description": description,
        "datasource": DS,
        "targets": _with_refids([target(expr, "{{le}}", fmt="heatmap")]),
        "fieldConfig": {
            "defaults": {"custom": {"scaleDistribution": {"type": "linear"}}},
            "overrides": [],
        },
        "options": {
            "calculate": False,
            "cellGap": 1,
            "yAxis": {"axisPlacement": "left", "unit": unit},
            "rowsFrame": {"layout": "auto"},
            "color": {
                "mode": "scheme",
                "scheme": "Oranges",
                "steps": 64,
                "exponent": 0.5,
                "fill": "dark-orange",
                "reverse": False,
                "scale": "exponential",
            },
            "tooltip": {"show": True, "yHistogram": False},
            "legend": {"show": True},
            "exemplars": {"color": "rgba(255,0,255,0.7)"},
            "filterValues": {"le": 1e-9},
        },
    }


def flag_mappings(ok: str, bad: str) -> list[dict]:
    return [
        {
            "type": "value",
            "options": {
                "0": {"text": ok, "color": "green", "index": 0},
                "1": {"text": bad, "color": "red", "index": 1},
            },
        }
    ]


def variable(name: str, label: str, query: str, multi: bool = True) -> dict:
    return {
        "name": name,
        "label": label,
        "type": "query",
        "datasource": DS,
        "definition": query,
        "query": {
            "query": query,
            "refId": "PrometheusVariableQueryEditor-VariableQuery",
            "qryType": 1,
        },
        "refresh": 2,
        "includeAll": True,
        "multi": multi,
        "allValue": ".*",
        "sort": 3,
        "current": {"selected": True, "text": ["All"], "value": ["$__all"]},
        "options": [],
        "hide": 0,
        "regex": "",
        "skipUrlSync": False,
    }


def annotation(name: str, expr: str, title: str, tags: str, color: str, text: str = "") -> dict:
    return {
        "name": name,
        "datasource": DS,
        "enable": True,
        "hide": False,
        "iconColor": color,
        "expr": expr,
        "step": "1m",
        "titleFormat": title,
        "textFormat": text,
        "tagKeys": tags,
        "useValueForTime": False,
    }


BUILTIN_ANNOTATION = {
    "builtIn": 1,
    "datasource": {"type": "grafana", "uid": "-- Grafana --"},
    "enable": True,
    "hide": True,
    "iconColor": "rgba(0, 211, 255, 1)",
    "name": "Annotations & Alerts",
    "type": "dashboard",
}

VERSION_CHANGES = annotation(
    "Model version changes",
    f"(max by (model, version, alias) (modelwatch_model_info{{{M}}}) == 1)"
    f" unless (max by (model, version, alias) (modelwatch_model_info{{{M}}} offset 1m) == 1)",
    "{{model}} version {{version}} now serves as {{alias}}",
    "model,version,alias",
    "blue",
)
RELOADS = annotation(
    "Model reloads",
    f"sum by (model, result) (increase(modelwatch_model_reloads_total{{{M}}}[1m])) > 0",
    "{{model}} reload: {{result}}",
    "model,result",
    "purple",
)
RETRAININGS = annotation(
    "Retrainings",
    f"sum by (model, result) (increase(modelwatch_retrains_total{{{M}}}[1m])) > 0",
    "{{model}} retraining finished: {{result}}",
    "model,result",
    "orange",
)

# The model picker: the models serving loaded (serving's dashboards) or the monitor
# watches (the monitor's). Each version picker offers the chosen models' versions.
SERVED_MODELS = variable("model", "Model", "label_values(modelwatch_model_info, model)")
WATCHED_MODELS = variable("model", "Model", "label_values(modelwatch_model_monitored, model)")
VERSIONS = variable(
    "model_version",
    "Model version",
    f"label_values(modelwatch_monitor_window_rows{{{M}}}, model_version)",
)


def dashboard(
    uid: str,
    title: str,
    description: str,
    layout: Layout,
    variables: list[dict] = (),
    annotations: list[dict] = (),
) -> dict:
    return {
        "uid": uid,
        "title": title,
        "description": description,
        "tags": ["modelwatch"],
        "timezone": "browser",
        "editable": True,
        "graphTooltip": 1,
        "schemaVersion": SCHEMA_VERSION,
        "version": 1,
        "refresh": "10s",
        "liveNow": False,
        "time": {"from": "now-1h", "to": "now"},
        "timepicker": {},
        "fiscalYearStartMonth": 0,
        "links": [
            {
                "type": "dashboards",
                "tags": ["modelwatch"],
                "asDropdown": True,
                "title": "modelwatch",
                "includeVars": False,
                "keepTime": True,
                "icon": "external link",
                "targetBlank": False,
                "tooltip": "",
                "url": "",
            }
        ],
        "annotations": {"list": [BUILTIN_ANNOTATION, *annotations]},
        "templating": {"list": list(variables)},
        "panels": layout.numbered(),
    }


# --- the dashboards --------------------------------------------------------------------


def golden_signals() -> dict:
    g = Layout()
    g.row("Overview")
    g.add(
        stat(
            "Request rate",
            [
                target(
                    f"sum by (model) (job:modelwatch_http_requests:rate5m{{{M}}})",
                    "{{model}}",
                    instant=True,
                )
            ],
            "reqps",
            "Served requests per second (probes excluded), 5m rate.",
        ),
        4,
        4,
    )
    g.add(
        stat(
            "5xx ratio",
            [
                target(
                    f"max by (model) (job:modelwatch_http_request_errors:ratio_rate5m{{{M}}})",
                    "{{model}}",
                    instant=True,
                )
            ],
            "percentunit",
            "Share of served requests answered with a 5xx, 5m.",
            thresholds=rule_steps("HighErrorRate"),
            rule="HighErrorRate",
        ),
        4,
        4,
    )
    g.add(
        stat(
            "p99 latency",
            [
                target(
                    "max by (model) (endpoint:modelwatch_http_request_duration_seconds"
                    f":p99_rate5m{{{PROBES}, {M}}})",
                    "{{model}}",
                    instant=True,
                )
            ],
            "s",
            "Worst endpoint's 99th percentile latency, 5m.",
            thresholds=rule_steps("HighLatencyP99"),
            rule="HighLatencyP99",
        ),
        4,
        4,
    )
    g.add(
        stat(
            "In flight",
            [
                target(
                    f"sum by (model) (job:modelwatch_http_requests_in_flight:sum{{{M}}})",
                    "{{model}}",
                    instant=True,
                )
            ],
            "short",
            "Requests being answered now, all replicas.",
        ),
        4,
        4,
    )
    g.add(
        stat(
            "Replicas up",
            [
                target(
                    'sum by (model) (up{job="serving"} * on (job, instance) group_left (model)'
                    " max by (job, instance, model)"
                    f" (last_over_time(modelwatch_model_info{{{M}}}[1h])))",
                    "{{model}}",
                    instant=True,
                )
            ],
            "short",
            "Serving targets Prometheus scrapes successfully, by the model they served in the "
            "last hour.",
            thresholds=[(None, "red"), (1, "green")],
        ),
        4,
        4,
    )
    g.add(
        stat(
            "Firing alerts",
            [target(f'count(ALERTS{{alertstate="firing", {M}}}) or vector(0)', instant=True)],
            "short",
            "Alerts firing now for the chosen models (all severities).",
            thresholds=PRESENCE,
        ),
        4,
        4,
    )

    g.row("Traffic")
    g.add(
        timeseries(
            "Requests by endpoint",
            [
                target(
                    f"sum by (model, endpoint) (endpoint:modelwatch_http_requests:rate5m{{{M}}})",
                    "{{model}} {{endpoint}}",
                )
            ],
            "reqps",
            "All endpoints, probes included.",
            minimum=0,
        ),
        8,
        8,
    )
    g.add(
        timeseries(
            "Responses by status",
            [
                target(
                    "sum by (model, status) "
                    f"(rate(modelwatch_http_requests_total{{{M}}}[$__rate_interval]))",
                    "{{model}} {{status}}",
                )
            ],
            "reqps",
            minimum=0,
            stack=True,
        ),
        8,
        8,
    )
    g.add(
        timeseries(
            "Rows scored by version and class",
            [
                target(
                    f"model_version_predicted_class:modelwatch_predictions:rate5m{{{M}}}",
                    "{{model}} v{{model_version}} {{predicted_class}}",
                )
            ],
            "rowsps",
            "A regression's rows have no class.",
            minimum=0,
            stack=True,
        ),
        8,
        8,
    )

    g.row("Errors")
    g.add(
        timeseries(
            "5xx ratio by endpoint",
            [
                target(
                    f"endpoint:modelwatch_http_request_errors:ratio_rate5m{{{M}}}",
                    "{{model}} {{endpoint}}",
                )
            ],
            "percentunit",
            minimum=0,
            thresholds=rule_steps("HighErrorRate"),
            rule="HighErrorRate",
        ),
        8,
        8,
    )
    g.add(
        timeseries(
            "4xx ratio (client errors)",
            [target(f"job:modelwatch_http_client_errors:ratio_rate5m{{{M}}}", "{{model}} {{job}}")],
            "percentunit",
            minimum=0,
        ),
        8,
        8,
    )
    g.add(
        timeseries(
            "Input errors by reason",
            [target(f"reason:modelwatch_input_errors:rate5m{{{M}}}", "{{model}} {{reason}}")],
            "reqps",
            minimum=0,
            stack=True,
        ),
        8,
        8,
    )

    g.row("Latency")
    g.add(
        timeseries(
            "Latency by endpoint (p50, p95, p99)",
            [
                target(
                    "endpoint:modelwatch_http_request_duration_seconds"
                    f":{q}_rate5m{{{PROBES}, {M}}}",
                    f"{q} {{{{model}}}} {{{{endpoint}}}}",
                )
                for q in ("p50", "p95", "p99")
            ],
            "s",
            minimum=0,
            thresholds=rule_steps("HighLatencyP99"),
            rule="HighLatencyP99",
        ),
        8,
        8,
    )
    g.add(
        timeseries(
            "Model predict duration (p50, p99)",
            [
                target(
                    f"job:modelwatch_model_predict_duration_seconds:{q}_rate5m{{{M}}}",
                    f"{q} {{{{model}}}}",
                )
                for q in ("p50", "p99")
            ],
            "s",
            "Time in the model's predict call alone.",
            minimum=0,
        ),
        8,
        8,
    )
    g.add(
        heatmap(
            "Request latency distribution",
            "sum by (le) (increase("
            f"modelwatch_http_request_duration_seconds_bucket{{{PROBES}, {M}}}[$__rate_interval]))",
            "s",
            "Served requests of the chosen models per latency bucket.",
        ),
        8,
        8,
    )

    g.row("Saturation")
    g.add(
        timeseries(
            "Requests in flight",
            [
                target(f"job:modelwatch_http_requests_in_flight:sum{{{M}}}", "{{model}} now"),
                target(
                    f"job:modelwatch_http_requests_in_flight:max_over_time5m{{{M}}}",
                    "{{model}} max over 5m",
                ),
            ],
            "short",
            minimum=0,
        ),
        12,
        7,
    )
    g.add(
        timeseries(
            "In flight per replica",
            [
                target(
                    f"sum by (model, instance) (modelwatch_http_requests_in_flight{{{M}}})",
                    "{{model}} {{instance}}",
                )
            ],
            "short",
            minimum=0,
        ),
        12,
        7,
    )

    g.row("SLOs: availability 99.9% (no 5xx), latency 99% within 0.5s")
    g.add(
        stat(
            "Availability",
            [
                target(
                    "1 - max by (model) "
                    f"(job:modelwatch_slo_availability_errors:ratio_rate{w}{{{M}}})",
                    f"{{{{model}}}} {w}",
                    instant=True,
                )
                for w in ("1h", "1d", "3d")
            ],
            "percentunit",
            "Share of served requests without a 5xx. Objective 99.9% (1 - the error budget "
            "the burn-rate rules divide by).",
            thresholds=[(None, "red"), (1 - AVAILABILITY_BUDGET, "green")],
            decimals=3,
            rule="SLOAvailabilityBudgetBurn",
        ),
        6,
        7,
    )
    g.add(
        stat(
            "Within 0.5s",
            [
                target(
                    f"1 - max by (model) (job:modelwatch_slo_latency_errors:ratio_rate{w}{{{M}}})",
                    f"{{{{model}}}} {w}",
                    instant=True,
                )
                for w in ("1h", "1d", "3d")
            ],
            "percentunit",
            "Share of served requests answered within 0.5s. Objective 99%.",
            thresholds=[(None, "red"), (1 - LATENCY_BUDGET, "green")],
            decimals=2,
            rule="SLOLatencyBudgetBurn",
        ),
        6,
        7,
    )
    burn_steps = list(zip((None, *BURN_RATES), ("green", "yellow", "orange", "red"), strict=True))
    for title, sli, budget, rule, text in (
        (
            "Availability error budget burn rate",
            "availability",
            AVAILABILITY_BUDGET,
            "SLOAvailabilityBudgetBurn",
            "Error ratio over the window divided by the budget (0.1%). Pages at 14.4x (1h and "
            "5m) and 6x (6h and 30m).",
        ),
        (
            "Latency error budget burn rate",
            "latency",
            LATENCY_BUDGET,
            "SLOLatencyBudgetBurn",
            "Share of requests slower than 0.5s over the window divided by the budget (1%).",
        ),
    ):
        g.add(
            timeseries(
                title,
                [
                    target(
                        f"job:modelwatch_slo_{sli}_errors:ratio_rate{w}{{{M}}} / {budget}",
                        f"{{{{model}}}} {w}",
                    )
                    for w in ("5m", "1h", "6h", "3d")
                ],
                "x",
                text,
                minimum=0,
                thresholds=burn_steps,
                rule=rule,
            ),
            6,
            7,
        )

    return dashboard(
        "modelwatch-golden-signals",
        "modelwatch / Serving: golden signals and SLOs",
        "Traffic, errors, latency and saturation of the serving replicas of each model, and "
        "the SLOs.",
        g,
        variables=[SERVED_MODELS],
        annotations=[VERSION_CHANGES, RELOADS],
    )


def _realized_and_estimated(metric: str, side: str) -> list[dict]:
    """The realized and estimated `metric` of each chosen model, with their `side` bounds."""
    targets, bounds = [], []
    for kind in ("live", "estimated"):
        name = f"{kind}_{metric}"
        word = "realized" if kind == "live" else "estimated"
        targets.append(
            target(
                f'modelwatch_metric_value{{{W}, metric="{name}"}}',
                f"{word} {{{{model}}}} v{{{{model_version}}}}",
            )
        )
        bounds.append(
            bound(
                f'modelwatch_metric_{side}_threshold{{{W}, metric="{name}"}}',
                f"{word} bound {{{{model}}}} v{{{{model_version}}}}",
            )
        )
    return targets + bounds


def model_quality() -> dict:
    g = Layout()
    g.row("Now")
    g.add(
        stat(
            "Serving model",
            [
                target(
                    f"max by (model, version, alias) (modelwatch_model_info{{{M}}}) == 1",
                    "{{model}} v{{version}} ({{alias}})",
                    instant=True,
                )
            ],
            "short",
            "The version each model's replicas have loaded.",
            text_mode="name",
        ),
        6,
        4,
    )
    g.add(
        stat(
            "Metrics out of their bounds",
            [
                target(
                    f"count by (model) (modelwatch_metric_value{{{W}}}"
                    " < on (model, model_version, metric) modelwatch_metric_lower_threshold"
                    f" or modelwatch_metric_value{{{W}}}"
                    " > on (model, model_version, metric) modelwatch_metric_upper_threshold)"
                    f" or 0 * max by (model) (modelwatch_monitor_window_rows{{{W}}})",
                    "{{model}}",
                    instant=True,
                )
            ],
            "short",
            "Performance metrics of the last window past the bounds of the version's reference "
            "(ModelAccuracyDegraded fires for each after 1m).",
            thresholds=PRESENCE,
        ),
        6,
        4,
    )
    g.add(
        stat(
            "Label coverage",
            [
                target(
                    f"min by (model) (modelwatch_label_coverage_ratio{{{W}}})",
                    "{{model}}",
                    instant=True,
                )
            ],
            "percentunit",
            "Share of the window's predictions with a label.",
            thresholds=rule_steps("LowLabelCoverage", below=True),
            rule="LowLabelCoverage",
        ),
        6,
        4,
    )
    g.add(
        stat(
            "Fallback",
            [
                target(
                    f"max by (model) (modelwatch_fallback_active{{{M}}})", "{{model}}", instant=True
                )
            ],
            "short",
            "1 while the rule-based fallback answers instead of a model.",
            mappings=flag_mappings("model", "FALLBACK"),
        ),
        6,
        4,
    )

    g.row("Classification: each metric alerts below its lower bound")
    g.add(
        timeseries(
            "Accuracy: reference vs realized vs estimated",
            [
                target(
                    f"modelwatch_reference_accuracy{{{W}}}",
                    "reference {{model}} v{{model_version}}",
                ),
                target(f"modelwatch_live_accuracy{{{W}}}", "realized {{model}} v{{model_version}}"),
                target(
                    f"modelwatch_estimated_accuracy{{{W}}}",
                    "estimated {{model}} v{{model_version}}",
                ),
                bound(
                    f'modelwatch_metric_lower_threshold{{{W}, metric="live_accuracy"}}',
                    "realized bound {{model}} v{{model_version}}",
                ),
                bound(
                    f'modelwatch_metric_lower_threshold{{{W}, metric="estimated_accuracy"}}',
                    "estimated bound {{model}} v{{model_version}}",
                ),
            ],
            "percentunit",
            "Reference: the version's accuracy on its reference rows. Each bound (dashed) is the "
            "mean - 3 standard deviations of that accuracy on reference chunks the size of a "
            "window (wider for a smaller window). ModelAccuracyDegraded fires when realized or "
            "estimated accuracy stays below its bound for 1m.",
        ),
        24,
        9,
    )
    g.add(
        timeseries(
            "Accuracy: realized vs estimated",
            [
                target(f"modelwatch_live_accuracy{{{W}}}", "realized {{model}} v{{model_version}}"),
                target(
                    f"modelwatch_estimated_accuracy{{{W}}}",
                    "estimated {{model}} v{{model_version}}",
                ),
            ],
            "percentunit",
            "A gap between the two (realized below estimated) is the signature of concept drift.",
        ),
        8,
        8,
    )
    for title, metric in (("F1", "f1"), ("ROC AUC", "roc_auc")):
        g.add(
            timeseries(
                f"{title}: realized vs estimated, with lower bounds",
                _realized_and_estimated(metric, "lower"),
                "percentunit",
                f"{title} on labelled feedback (realized) and estimated from calibrated "
                "probabilities without labels; dashed: each one's lower bound.",
                maximum=1,
            ),
            8,
            8,
        )

    g.add(
        timeseries(
            "Concept drift detected",
            [target(f"modelwatch_concept_drift_detected{{{W}}}", "{{model}} v{{model_version}}")],
            "short",
            "1 when the relation between the inputs and the labels changed (a classifier's "
            "labelled window; ConceptDriftDetected fires after 1m).",
            minimum=0,
            maximum=1,
        ),
        24,
        7,
    )

    g.row("Regression: each error alerts above its upper bound")
    for title, metric in (("MAE", "mae"), ("RMSE", "rmse")):
        g.add(
            timeseries(
                f"{title}: realized vs estimated, with upper bounds",
                _realized_and_estimated(metric, "upper"),
                "none",
                f"{title} in the target's unit on labelled feedback (realized) and estimated "
                "without labels (DLE); dashed: each one's upper bound.",
                minimum=0,
            ),
            8,
            8,
        )
    g.add(
        timeseries(
            "MAPE (realized), with its upper bound",
            [
                target(
                    f'modelwatch_metric_value{{{W}, metric="live_mape"}}',
                    "realized {{model}} v{{model_version}}",
                ),
                bound(
                    f'modelwatch_metric_upper_threshold{{{W}, metric="live_mape"}}',
                    "bound {{model}} v{{model_version}}",
                ),
            ],
            "percentunit",
            "Mean absolute percentage error on labelled feedback; dashed: its upper bound.",
            minimum=0,
        ),
        8,
        8,
    )
    g.add(
        heatmap(
            "Predicted value distribution",
            f"sum by (le) (increase(modelwatch_predicted_value_bucket{{{M}}}[$__rate_interval]))",
            "none",
            "Scored rows per bucket of the regression's prediction (serving's histogram).",
        ),
        12,
        8,
    )
    g.add(
        timeseries(
            "Mean predicted value",
            [
                target(
                    "sum by (model, model_version) "
                    f"(rate(modelwatch_predicted_value_sum{{{M}}}[$__rate_interval]))"
                    " / sum by (model, model_version) "
                    f"(rate(modelwatch_predicted_value_count{{{M}}}[$__rate_interval]))",
                    "{{model}} v{{model_version}}",
                )
            ],
            "none",
            "The mean of what the regression predicted, as served.",
        ),
        12,
        8,
    )

    g.row("Labels and the monitor's window")
    g.add(
        timeseries(
            "Label coverage",
            [target(f"modelwatch_label_coverage_ratio{{{W}}}", "{{model}} v{{model_version}}")],
            "percentunit",
            minimum=0,
            maximum=1,
            thresholds=[(None, "orange"), (RULE_BOUNDS["LowLabelCoverage"], "transparent")],
            rule="LowLabelCoverage",
        ),
        12,
        7,
    )
    g.add(
        timeseries(
            "Rows in the monitor's window",
            [target(f"modelwatch_monitor_window_rows{{{W}}}", "{{model}} v{{model_version}}")],
            "short",
            minimum=0,
        ),
        12,
        7,
    )

    g.row("Versions")
    g.add(
        timeseries(
            "Serving model version",
            [
                target(
                    f"max by (model, version) (modelwatch_model_info{{{M}}}) == 1",
                    "{{model}} v{{version}}",
                )
            ],
            "short",
            "Which version served when; hot reloads show as a switch without a gap.",
            minimum=0,
            maximum=1,
        ),
        12,
        7,
    )
    g.add(
        timeseries(
            "Model reloads by result",
            [
                target(
                    "sum by (model, result) "
                    f"(increase(modelwatch_model_reloads_total{{{M}}}[$__rate_interval]))",
                    "{{model}} {{result}}",
                )
            ],
            "short",
            minimum=0,
            bars=True,
        ),
        12,
        7,
    )

    return dashboard(
        "modelwatch-model-quality",
        "modelwatch / Model quality",
        "Each model's realized and estimated performance against the bounds of its reference "
        "(classifiers and regressions), labels, concept drift; model versions as annotations.",
        g,
        variables=[WATCHED_MODELS, VERSIONS],
        annotations=[VERSION_CHANGES, RELOADS, RETRAININGS],
    )


def drift() -> dict:
    feat = 'feature=~"$feature"'
    g = Layout()
    g.row("Now")
    g.add(
        stat(
            "Dataset drift",
            [
                target(
                    f"max by (model) (modelwatch_dataset_drift_detected{{{W}}})",
                    "{{model}}",
                    instant=True,
                )
            ],
            "short",
            "The monitor's verdict on the last window: the drifted share past its bound "
            "(DataDriftDetected fires after 1m).",
            mappings=flag_mappings("none", "DRIFT"),
        ),
        4,
        4,
    )
    g.add(
        stat(
            "Drifted share of features",
            [
                target(
                    f"max by (model) (modelwatch_dataset_drift_share{{{W}}})",
                    "{{model}}",
                    instant=True,
                )
            ],
            "percentunit",
            "Red past the share the monitor judges by: modelwatch_dataset_drift_share_threshold "
            "(pick one model to colour it by that model's bound).",
            threshold=f"max by (model) (modelwatch_dataset_drift_share_threshold{{{W}}})",
        ),
        5,
        4,
    )
    g.add(
        stat(
            "Features drifted",
            [
                target(
                    f"count by (model) (modelwatch_drift_detected{{{W}}} == 1)"
                    f" or 0 * max by (model) (modelwatch_drift_detected{{{W}}})",
                    "{{model}}",
                    instant=True,
                )
            ],
            "short",
            "Features whose test crossed its threshold in the last window.",
            thresholds=PRESENCE,
        ),
        5,
        4,
    )
    g.add(
        stat(
            "Prediction drift score",
            [
                target(
                    f"max by (model) (modelwatch_prediction_drift_score{{{W}}})",
                    "{{model}}",
                    instant=True,
                )
            ],
            "short",
            "Drift of the model's output distribution against the reference.",
        ),
        5,
        4,
    )
    g.add(
        stat(
            "Integrity issues",
            [
                target(
                    f"count by (model) (modelwatch_integrity_issue{{{W}}} > 0)"
                    f" or 0 * max by (model) (modelwatch_monitor_window_rows{{{W}}})",
                    "{{model}}",
                    instant=True,
                )
            ],
            "short",
            "Values that cannot be right in the current window. These page; they never retrain.",
            thresholds=PRESENCE,
        ),
        5,
        4,
    )

    g.row("Input drift")
    g.add(
        timeseries(
            "Drift score per feature, against its test's threshold",
            [
                target(
                    f"modelwatch_drift_score{{{W}, {feat}}}", "{{model}} {{feature}} ({{test}})"
                ),
                bound(
                    f"modelwatch_drift_score_threshold{{{W}, {feat}}}",
                    "threshold {{model}} {{feature}} ({{test}})",
                ),
            ],
            "short",
            "Each feature's drift statistic, with the test the monitor chose for it, and "
            "(dashed) that test's threshold. A p-value test (ks, chisquare, z) flags drift below "
            "its threshold; a distance (wasserstein, psi, jensenshannon) above it.",
        ),
        16,
        9,
    )
    g.add(
        bargauge(
            "Drift score per feature, now, and its threshold",
            [
                target(
                    f"max by (model, feature, test) (modelwatch_drift_score{{{W}, {feat}}})",
                    "{{model}} {{feature}} ({{test}})",
                    instant=True,
                ),
                target(
                    "max by (model, feature, test) "
                    f"(modelwatch_drift_score_threshold{{{W}, {feat}}})",
                    "threshold {{model}} {{feature}} ({{test}})",
                    instant=True,
                ),
            ],
            "short",
        ),
        8,
        9,
    )
    g.add(
        timeseries(
            "Drifted share of features, against its bound",
            [
                target(
                    f"modelwatch_dataset_drift_share{{{W}}}", "share {{model}} v{{model_version}}"
                ),
                target(
                    f"modelwatch_dataset_drift_detected{{{W}}}",
                    "dataset drift {{model}} v{{model_version}}",
                ),
                bound(
                    f"modelwatch_dataset_drift_share_threshold{{{W}}}",
                    "bound {{model}} v{{model_version}}",
                ),
            ],
            "percentunit",
            "The dataset drifts when the share of drifted features passes its bound (dashed): "
            "15%, or higher when the version's own reference chunks drift that much.",
            minimum=0,
            maximum=1,
        ),
        12,
        7,
    )
    g.add(
        timeseries(
            "Features flagged as drifted",
            [
                target(
                    f"max by (model, feature) (modelwatch_drift_detected{{{W}, {feat}}})",
                    "{{model}} {{feature}}",
                )
            ],
            "short",
            minimum=0,
            maximum=1,
            stack=True,
        ),
        12,
        7,
    )

    g.add(
        timeseries(
            "Values past the reference's range",
            [
                target(
                    f"modelwatch_drift_out_of_range_ratio{{{W}, {feat}}}",
                    "{{model}} {{feature}}",
                )
            ],
            "percentunit",
            "Share of each feature's values past the range its reference shows: evidence of "
            "drift (a market that moved), not of broken data.",
            minimum=0,
            maximum=1,
        ),
        24,
        7,
    )

    g.row("Output drift")
    g.add(
        timeseries(
            "Prediction drift score",
            [target(f"modelwatch_prediction_drift_score{{{W}}}", "{{model}} v{{model_version}}")],
            "short",
            "Drift statistic of the model's outputs against its reference's.",
            minimum=0,
        ),
        24,
        7,
    )

    g.row("Output of a classification")
    g.add(
        heatmap(
            "Prediction score distribution",
            f"sum by (le) (increase(modelwatch_prediction_score_bucket{{{M}}}[$__rate_interval]))",
            "percentunit",
            "Scored rows per bucket of P(positive class) (binary) or of P(predicted class) "
            "(multiclass), all versions.",
        ),
        12,
        8,
    )
    g.add(
        timeseries(
            "Mean score",
            [
                target(
                    "sum by (model, model_version) "
                    f"(rate(modelwatch_prediction_score_sum{{{M}}}[$__rate_interval]))"
                    " / sum by (model, model_version) "
                    f"(rate(modelwatch_prediction_score_count{{{M}}}[$__rate_interval]))",
                    "{{model}} v{{model_version}}",
                )
            ],
            "percentunit",
            minimum=0,
            maximum=1,
        ),
        12,
        8,
    )

    g.row("Data integrity: values that cannot be right")
    g.add(
        timeseries(
            "Missing values",
            [target(f"modelwatch_integrity_missing_ratio{{{W}, {feat}}}", "{{model}} {{feature}}")],
            "percentunit",
            minimum=0,
            maximum=1,
        ),
        8,
        7,
    )
    g.add(
        timeseries(
            "Values outside the valid domain",
            [
                target(
                    f"modelwatch_integrity_out_of_domain_ratio{{{W}, {feat}}}",
                    "{{model}} {{feature}}",
                )
            ],
            "percentunit",
            "Share of each feature's values that cannot be right (a sign, integer-ness, a "
            "[0, 1] ratio or a declared domain broken): out_of_domain issues.",
            minimum=0,
            maximum=1,
        ),
        8,
        7,
    )
    g.add(
        timeseries(
            "Integrity issues",
            [
                target(
                    f"max by (model, kind, feature) (modelwatch_integrity_issue{{{W}}}) > 0",
                    "{{model}} {{kind}}: {{feature}}",
                )
            ],
            "short",
            minimum=0,
            bars=True,
        ),
        8,
        7,
    )

    return dashboard(
        "modelwatch-drift",
        "modelwatch / Drift and data integrity",
        "Each model's per-feature input drift against each test's threshold, output drift, "
        "data integrity.",
        g,
        variables=[
            WATCHED_MODELS,
            VERSIONS,
            variable("feature", "Feature", f"label_values(modelwatch_drift_score{{{M}}}, feature)"),
        ],
        annotations=[VERSION_CHANGES, RETRAININGS],
    )


def retraining() -> dict:
    g = Layout()
    g.row("Now")
    g.add(
        stat(
            "Retraining",
            [
                target(
                    f"max by (model) (modelwatch_retrain_in_progress{{{M}}})",
                    "{{model}}",
                    instant=True,
                )
            ],
            "short",
            mappings=flag_mappings("idle", "RUNNING"),
        ),
        4,
        4,
    )
    g.add(
        stat(
            "Last successful retraining",
            [
                target(
                    "max by (model) "
                    f"(modelwatch_retrain_last_success_timestamp_seconds{{{M}}} > 0) * 1000",
                    "{{model}}",
                    instant=True,
                )
            ],
            "dateTimeFromNow",
        ),
        5,
        4,
    )
    g.add(
        stat(
            "Retrainings in range, by result",
            [
                target(
                    "sum by (model, result) "
                    f"(increase(modelwatch_retrains_total{{{M}}}[$__range]))",
                    "{{model}} {{result}}",
                    instant=True,
                )
            ],
            "short",
            decimals=0,
        ),
        10,
        4,
    )
    g.add(
        stat(
            "Retrain alerts firing",
            [
                target(
                    f'count(ALERTS{{action="retrain", alertstate="firing", {M}}}) or vector(0)',
                    instant=True,
                )
            ],
            "short",
            "Retrain alerts firing now for the chosen models.",
            thresholds=PRESENCE,
        ),
        5,
        4,
    )

    g.row("History")
    g.add(
        timeseries(
            "Retrainings by result",
            [
                target(
                    "sum by (model, result) "
                    f"(increase(modelwatch_retrains_total{{{M}}}[$__rate_interval]))",
                    "{{model}} {{result}}",
                )
            ],
            "short",
            "promoted: took the production alias; rejected: the gate kept the champion; failed.",
            minimum=0,
            bars=True,
            stack=True,
        ),
        12,
        8,
    )
    g.add(
        timeseries(
            "Retraining in progress",
            [
                target(
                    f"max by (model) (modelwatch_retrain_in_progress{{{M}}})",
                    "{{model}} in progress",
                )
            ],
            "short",
            minimum=0,
            maximum=1,
        ),
        12,
        8,
    )
    g.add(
        timeseries(
            "Retrain alerts",
            [
                target(
                    f'ALERTS{{action="retrain", alertstate="firing", {M}}}',
                    "{{alertname}} {{model}} v{{model_version}}",
                )
            ],
            "short",
            "The alerts Alertmanager routes to the monitor's webhook.",
            minimum=0,
            maximum=1,
        ),
        12,
        8,
    )
    g.add(
        timeseries(
            "Serving model version",
            [
                target(
                    f"max by (model, version) (modelwatch_model_info{{{M}}}) == 1",
                    "{{model}} v{{version}}",
                )
            ],
            "short",
            minimum=0,
            maximum=1,
        ),
        12,
        8,
    )
    g.add(
        timeseries(
            "Time since last successful retraining",
            [
                target(
                    "time() - max by (model) "
                    f"(modelwatch_retrain_last_success_timestamp_seconds{{{M}}} > 0)",
                    "{{model}} since last success",
                )
            ],
            "s",
            minimum=0,
        ),
        12,
        7,
    )
    g.add(
        timeseries(
            "Monitor runs",
            [
                target(
                    "time() - max by (model) "
                    f"(modelwatch_monitor_last_run_timestamp_seconds{{{M}}} > 0)",
                    "{{model}} age of last run",
                ),
                target(
                    f"max by (model) (modelwatch_monitor_run_duration_seconds{{{M}}})",
                    "{{model}} run duration",
                ),
            ],
            "s",
            "MonitorStale fires when the last run is older than 10 minutes.",
            minimum=0,
            thresholds=rule_steps("MonitorStale"),
            rule="MonitorStale",
        ),
        12,
        7,
    )

    return dashboard(
        "modelwatch-retraining",
        "modelwatch / Retraining",
        "Retrainings the alerts started for each model, their results, and the versions they "
        "promoted.",
        g,
        variables=[WATCHED_MODELS],
        annotations=[VERSION_CHANGES, RETRAININGS],
    )


def cost_and_saturation() -> dict:
    g = Layout()
    g.row("Now")
    g.add(
        stat(
            "Cost per 1,000 predictions",
            [
                target(
                    f"sum by (model) (job:modelwatch_cost_per_1k_predictions:rate5m{{{M}}})",
                    "{{model}}",
                    instant=True,
                )
            ],
            "none",
            "CPU (and memory, if priced) of all serving workers per 1,000 scored rows, 5m. Empty "
            "without MODELWATCH_COST_PER_CPU_HOUR or MODELWATCH_COST_PER_GB_HOUR.",
            decimals=4,
        ),
        5,
        4,
    )
    g.add(
        stat(
            "Cost per hour",
            [
                target(
                    f"sum by (model) (job:modelwatch_cost_per_hour:rate5m{{{M}}})",
                    "{{model}}",
                    instant=True,
                )
            ],
            "none",
            "What the serving workers cost an hour at the current load.",
            decimals=3,
        ),
        4,
        4,
    )
    g.add(
        stat(
            "CPU per prediction",
            [
                target(
                    "max by (model) "
                    f"(job:modelwatch_cpu_seconds_per_prediction:ratio_rate5m{{{M}}})",
                    "{{model}}",
                    instant=True,
                )
            ],
            "s",
            "CPU-seconds per scored row, all the workers' work included, 5m.",
        ),
        5,
        4,
    )
    g.add(
        stat(
            "CPU cores in use",
            [
                target(
                    f"sum by (model) (job:modelwatch_process_cpu_seconds:rate5m{{{M}}})",
                    "{{model}}",
                    instant=True,
                )
            ],
            "short",
            "CPU-seconds per second of all serving workers, 5m.",
            decimals=2,
        ),
        5,
        4,
    )
    g.add(
        stat(
            "Thread pools busy",
            [
                target(
                    "max by (model) "
                    f"(instance:modelwatch_thread_pool_utilization:ratio_rate5m{{{M}}})",
                    "{{model}}",
                    instant=True,
                )
            ],
            "percentunit",
            "The busiest replica's share of busy threads, 5m. HighSaturation fires above 90% for "
            "2m.",
            thresholds=rule_steps("HighSaturation"),
            rule="HighSaturation",
        ),
        5,
        4,
    )

    g.row("Cost")
    g.add(
        timeseries(
            "Cost per 1,000 predictions vs budget",
            [
                target(
                    f"job:modelwatch_cost_per_1k_predictions:rate5m{{{M}}}",
                    "cost {{model}} {{job}}",
                ),
                bound(
                    f"max by (model, job) (modelwatch_cost_budget{{per=\"1k_predictions\", {M}}})",
                    "budget {{model}} {{job}}",
                ),
            ],
            "none",
            "CostOverBudget opens a ticket when the cost stays above the budget (dashed, "
            "MODELWATCH_COST_BUDGET_PER_1K) for 10m.",
            minimum=0,
        ),
        12,
        8,
    )
    g.add(
        timeseries(
            "Cost per hour: CPU and memory",
            [
                target(f"job:modelwatch_cpu_cost_per_hour:rate5m{{{M}}}", "CPU {{model}} {{job}}"),
                target(
                    f"job:modelwatch_memory_cost_per_hour:sum{{{M}}}", "memory {{model}} {{job}}"
                ),
            ],
            "none",
            "Memory is priced by the workers' resident memory (MODELWATCH_COST_PER_GB_HOUR).",
            minimum=0,
            stack=True,
        ),
        12,
        8,
    )
    g.add(
        timeseries(
            "CPU-seconds per prediction and per request",
            [
                target(
                    f"job:modelwatch_cpu_seconds_per_prediction:ratio_rate5m{{{M}}}",
                    "per prediction {{model}} {{job}}",
                ),
                target(
                    f"job:modelwatch_cpu_seconds_per_request:ratio_rate5m{{{M}}}",
                    "per request {{model}} {{job}}",
                ),
            ],
            "s",
            "A request may score many rows; probes are not requests here, but their CPU counts.",
            minimum=0,
        ),
        24,
        8,
    )

    g.row("CPU and memory")
    g.add(
        timeseries(
            "CPU cores by replica",
            [
                target(
                    "sum by (model, instance) "
                    f"(rate(modelwatch_process_cpu_seconds_total{{{M}}}[$__rate_interval]))",
                    "{{model}} {{instance}}",
                )
            ],
            "short",
            "CPU-seconds per second, all the replica's workers.",
            minimum=0,
            stack=True,
        ),
        12,
        8,
    )
    g.add(
        timeseries(
            "Resident memory per worker",
            [
                target(
                    f"modelwatch_process_resident_memory_bytes{{{M}}}",
                    "{{model}} {{instance}} pid {{pid}}",
                )
            ],
            "bytes",
            "One series per live worker; a restarted worker starts a new one.",
            minimum=0,
        ),
        12,
        8,
    )

    g.row("Saturation")
    g.add(
        timeseries(
            "Thread pool utilization by replica",
            [
                target(
                    f"instance:modelwatch_thread_pool_utilization:ratio_rate5m{{{M}}}",
                    "{{model}} {{instance}}",
                )
            ],
            "percentunit",
            "Request time per second over the replica's threads (Little's law), 5m.",
            minimum=0,
            maximum=1,
            thresholds=rule_steps("HighSaturation"),
            rule="HighSaturation",
        ),
        12,
        8,
    )
    g.add(
        timeseries(
            "Busy threads per worker",
            [
                target(
                    f"modelwatch_worker_busy_threads{{{M}}} / (modelwatch_worker_threads > 0)",
                    "{{model}} {{instance}} pid {{pid}}",
                )
            ],
            "percentunit",
            "Requests in flight over the worker's threads, sampled at each scrape (the "
            "scrape itself is one).",
            minimum=0,
            maximum=1,
        ),
        12,
        8,
    )

    return dashboard(
        "modelwatch-cost",
        "modelwatch / Cost and saturation",
        "What serving each model costs per 1,000 predictions and per hour, its CPU and memory, "
        "and how full its thread pools are.",
        g,
        variables=[SERVED_MODELS],
    )


def segments_and_fairness() -> dict:
    seg, attr = 'segment=~"$segment"', 'attribute=~"$attribute"'

    def by_segment(metric: str) -> str:
        return f'modelwatch_segment_metric_value{{{W}, {seg}, metric="{metric}"}}'

    g = Layout()
    g.row("Now")
    g.add(
        stat(
            "Segments judged",
            [
                target(
                    f"count by (model) (modelwatch_segment_share{{{W}}})"
                    f" or 0 * max by (model) (modelwatch_monitor_window_rows{{{W}}})",
                    "{{model}}",
                    instant=True,
                )
            ],
            "short",
            "Segments with enough rows in the window; at most 10 per segment column.",
        ),
        6,
        4,
    )
    g.add(
        stat(
            "SegmentDegraded",
            [
                target(
                    f'count(ALERTS{{alertname="SegmentDegraded", alertstate="firing", {M}}})'
                    " or vector(0)",
                    instant=True,
                )
            ],
            "short",
            "Segments out of their own bounds while the population is within its own.",
            thresholds=PRESENCE,
        ),
        6,
        4,
    )
    g.add(
        stat(
            "Attributes past the fairness bars",
            [
                target(
                    f"count by (model) (modelwatch_fairness_gap_exceeded{{{W}}} == 1)"
                    f" or 0 * max by (model) (modelwatch_fairness_gap_exceeded{{{W}}})",
                    "{{model}}",
                    instant=True,
                )
            ],
            "short",
            "FairnessGapExceeded pages for these; it never retrains.",
            thresholds=PRESENCE,
        ),
        6,
        4,
    )
    g.add(
        stat(
            "Lowest demographic parity ratio",
            [
                target(
                    f"min by (model) (modelwatch_fairness_demographic_parity_ratio{{{W}}})",
                    "{{model}}",
                    instant=True,
                )
            ],
            "percentunit",
            "Smallest over largest selection rate between groups; the four-fifths rule bars 80% "
            "(MODELWATCH_FAIRNESS_MIN_RATIO: the verdict is the monitor's, see the stat beside).",
        ),
        6,
        4,
    )

    g.row("Segments")
    g.add(
        timeseries(
            "Traffic share by segment",
            [target(f"modelwatch_segment_share{{{W}, {seg}}}", "{{model}} {{segment}}")],
            "percentunit",
            minimum=0,
            maximum=1,
            stack=True,
        ),
        12,
        8,
    )
    g.add(
        timeseries(
            "Drift share by segment, against its bound",
            [
                target(by_segment("dataset_drift_share"), "{{model}} {{segment}}"),
                bound(
                    "modelwatch_segment_metric_upper_threshold"
                    f'{{{W}, {seg}, metric="dataset_drift_share"}}',
                    "bound {{model}} {{segment}}",
                ),
            ],
            "percentunit",
            "Share of features drifted within the segment, against its own reference rows.",
            minimum=0,
            maximum=1,
        ),
        12,
        8,
    )
    g.add(
        timeseries(
            "Realized accuracy by segment",
            [
                target(by_segment("live_accuracy"), "{{model}} {{segment}}"),
                bound(
                    "modelwatch_segment_metric_lower_threshold"
                    f'{{{W}, {seg}, metric="live_accuracy"}}',
                    "lower bound {{model}} {{segment}}",
                ),
            ],
            "percentunit",
            "On the segment's labelled predictions.",
            minimum=0,
            maximum=1,
        ),
        12,
        8,
    )
    g.add(
        timeseries(
            "Estimated accuracy by segment",
            [target(by_segment("estimated_accuracy"), "{{model}} {{segment}}")],
            "percentunit",
            "Without labels (CBPE).",
            minimum=0,
            maximum=1,
        ),
        12,
        8,
    )
    g.add(
        bargauge(
            "Segment metrics above their lower bound, now",
            [
                target(
                    "max by (model, segment, metric) "
                    f"(modelwatch_segment_metric_value{{{W}, {seg}}})"
                    " - on (model, segment, metric) max by (model, segment, metric) "
                    f"(modelwatch_segment_metric_lower_threshold{{{W}, {seg}}})",
                    "{{model}} {{segment}} {{metric}}",
                    instant=True,
                )
            ],
            "short",
            "Below 0: the segment left its bounds on that metric.",
        ),
        24,
        8,
    )

    g.row("Fairness")
    g.add(
        timeseries(
            "Demographic parity ratio",
            [
                target(
                    f"modelwatch_fairness_demographic_parity_ratio{{{W}, {attr}}}",
                    "{{model}} {{attribute}}",
                )
            ],
            "percentunit",
            "Selection rate of the least selected group over the most selected one.",
            minimum=0,
            maximum=1,
        ),
        12,
        8,
    )
    g.add(
        timeseries(
            "Equalized odds difference",
            [
                target(
                    f"modelwatch_fairness_equalized_odds_difference{{{W}, {attr}}}",
                    "{{model}} {{attribute}}",
                )
            ],
            "short",
            "The larger of the groups' TPR and FPR differences; the monitor's bar is "
            "MODELWATCH_FAIRNESS_MAX_DIFFERENCE (0.1).",
            minimum=0,
        ),
        12,
        8,
    )
    for title, name in (
        ("Selection rate by group", "selection_rate"),
        ("True positive rate by group", "tpr"),
        ("False positive rate by group", "fpr"),
        ("Accuracy by group", "accuracy"),
    ):
        g.add(
            timeseries(
                title,
                [
                    target(
                        f"modelwatch_fairness_group_{name}{{{W}, {attr}}}",
                        "{{model}} {{attribute}}={{group}}",
                    )
                ],
                "percentunit",
                minimum=0,
                maximum=1,
            ),
            12,
            8,
        )

    return dashboard(
        "modelwatch-segments-fairness",
        "modelwatch / Segments and fairness",
        "Each segment against its own reference bounds, and how the model treats each "
        "group of the sensitive attributes.",
        g,
        variables=[
            WATCHED_MODELS,
            VERSIONS,
            variable(
                "segment", "Segment", f"label_values(modelwatch_segment_share{{{M}}}, segment)"
            ),
            variable(
                "attribute",
                "Sensitive attribute",
                f"label_values(modelwatch_fairness_gap_exceeded{{{M}}}, attribute)",
            ),
        ],
    )


DASHBOARDS = {
    "golden-signals.json": golden_signals,
    "model-quality.json": model_quality,
    "drift.json": drift,
    "retraining.json": retraining,
    "cost.json": cost_and_saturation,
    "segments-fairness.json": segments_and_fairness,
}


def render() -> dict[str, str]:
    """File name -> JSON text, exactly as committed."""
    return {
        name: json.dumps(build(), indent=2, sort_keys=True) + "\n"
        for name, build in DASHBOARDS.items()
    }


def main() -> int:
    OUT.mkdir(parents=True, exist_ok=True)
    for name, text in render().items():
        (OUT / name).write_text(text)
        print(f"wrote {OUT / name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
