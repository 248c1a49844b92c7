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
MV = 'model_version=~"$model_version"'


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
) -> dict:
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
        "description": description,
        "datasource": DS,
        "targets": _with_refids(targets),
        "fieldConfig": {"defaults": defaults, "overrides": []},
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
) -> dict:
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
        "description": description,
        "datasource": DS,
        "targets": _with_refids(targets),
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
    "(max by (model, version, alias) (modelwatch_model_info) == 1)"
    " unless (max by (model, version, alias) (modelwatch_model_info offset 1m) == 1)",
    "{{model}} version {{version}} now serves as {{alias}}",
    "version,alias",
    "blue",
)
RELOADS = annotation(
    "Model reloads",
    "sum by (result) (increase(modelwatch_model_reloads_total[1m])) > 0",
    "Model reload: {{result}}",
    "result",
    "purple",
)
RETRAININGS = annotation(
    "Retrainings",
    "sum by (result) (increase(modelwatch_retrains_total[1m])) > 0",
    "Retraining finished: {{result}}",
    "result",
    "orange",
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
            [target("sum(job:modelwatch_http_requests:rate5m)", instant=True)],
            "reqps",
            "Served requests per second (probes excluded), 5m rate.",
        ),
        4,
        4,
    )
    g.add(
        stat(
            "5xx ratio",
            [target("max(job:modelwatch_http_request_errors:ratio_rate5m)", instant=True)],
            "percentunit",
            "Share of served requests answered with a 5xx, 5m.",
            thresholds=[(None, "green"), (0.01, "orange"), (0.05, "red")],
        ),
        4,
        4,
    )
    g.add(
        stat(
            "p99 latency",
            [
                target(
                    f"max(endpoint:modelwatch_http_request_duration_seconds:p99_rate5m{{{PROBES}}})",
                    instant=True,
                )
            ],
            "s",
            "Worst endpoint's 99th percentile latency, 5m.",
            thresholds=[(None, "green"), (0.5, "orange"), (1, "red")],
        ),
        4,
        4,
    )
    g.add(
        stat(
            "In flight",
            [target("sum(job:modelwatch_http_requests_in_flight:sum)", instant=True)],
            "short",
            "Requests being answered now, all replicas.",
        ),
        4,
        4,
    )
    g.add(
        stat(
            "Replicas up",
            [target('sum(up{job="serving"})', instant=True)],
            "short",
            "Serving targets Prometheus scrapes successfully.",
            thresholds=[(None, "red"), (1, "green")],
        ),
        4,
        4,
    )
    g.add(
        stat(
            "Firing alerts",
            [target('count(ALERTS{alertstate="firing"}) or vector(0)', instant=True)],
            "short",
            "Alerts firing now (all severities).",
            thresholds=[(None, "green"), (1, "red")],
        ),
        4,
        4,
    )

    g.row("Traffic")
    g.add(
        timeseries(
            "Requests by endpoint",
            [target("endpoint:modelwatch_http_requests:rate5m", "{{endpoint}}")],
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
                    "sum by (status) (rate(modelwatch_http_requests_total[$__rate_interval]))",
                    "{{status}}",
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
                    "model_version_predicted_class:modelwatch_predictions:rate5m",
                    "v{{model_version}} class {{predicted_class}}",
                )
            ],
            "rowsps",
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
            [target("endpoint:modelwatch_http_request_errors:ratio_rate5m", "{{endpoint}}")],
            "percentunit",
            minimum=0,
            thresholds=[(None, "green"), (0.05, "red")],
        ),
        8,
        8,
    )
    g.add(
        timeseries(
            "4xx ratio (client errors)",
            [target("job:modelwatch_http_client_errors:ratio_rate5m", "{{job}}")],
            "percentunit",
            minimum=0,
        ),
        8,
        8,
    )
    g.add(
        timeseries(
            "Input errors by reason",
            [target("reason:modelwatch_input_errors:rate5m", "{{reason}}")],
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
                    f"endpoint:modelwatch_http_request_duration_seconds:p50_rate5m{{{PROBES}}}",
                    "p50 {{endpoint}}",
                ),
                target(
                    f"endpoint:modelwatch_http_request_duration_seconds:p95_rate5m{{{PROBES}}}",
                    "p95 {{endpoint}}",
                ),
                target(
                    f"endpoint:modelwatch_http_request_duration_seconds:p99_rate5m{{{PROBES}}}",
                    "p99 {{endpoint}}",
                ),
            ],
            "s",
            minimum=0,
            thresholds=[(None, "green"), (1, "red")],
        ),
        8,
        8,
    )
    g.add(
        timeseries(
            "Model predict duration (p50, p99)",
            [
                target("job:modelwatch_model_predict_duration_seconds:p50_rate5m", "p50"),
                target("job:modelwatch_model_predict_duration_seconds:p99_rate5m", "p99"),
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
            f"modelwatch_http_request_duration_seconds_bucket{{{PROBES}}}[$__rate_interval]))",
            "s",
            "Served requests per latency bucket.",
        ),
        8,
        8,
    )

    g.row("Saturation")
    g.add(
        timeseries(
            "Requests in flight",
            [
                target("job:modelwatch_http_requests_in_flight:sum", "now"),
                target("job:modelwatch_http_requests_in_flight:max_over_time5m", "max over 5m"),
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
            [target("sum by (instance) (modelwatch_http_requests_in_flight)", "{{instance}}")],
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
                    "1 - max(job:modelwatch_slo_availability_errors:ratio_rate1h)",
                    "1h",
                    instant=True,
                ),
                target(
                    "1 - max(job:modelwatch_slo_availability_errors:ratio_rate1d)",
                    "1d",
                    instant=True,
                ),
                target(
                    "1 - max(job:modelwatch_slo_availability_errors:ratio_rate3d)",
                    "3d",
                    instant=True,
                ),
            ],
            "percentunit",
            "Share of served requests without a 5xx. Objective 99.9%.",
            thresholds=[(None, "red"), (0.999, "green")],
            decimals=3,
        ),
        6,
        7,
    )
    g.add(
        stat(
            "Within 0.5s",
            [
                target(
                    "1 - max(job:modelwatch_slo_latency_errors:ratio_rate1h)", "1h", instant=True
                ),
                target(
                    "1 - max(job:modelwatch_slo_latency_errors:ratio_rate1d)", "1d", instant=True
                ),
                target(
                    "1 - max(job:modelwatch_slo_latency_errors:ratio_rate3d)", "3d", instant=True
                ),
            ],
            "percentunit",
            "Share of served requests answered within 0.5s. Objective 99%.",
            thresholds=[(None, "red"), (0.99, "green")],
            decimals=2,
        ),
        6,
        7,
    )
    burn_targets = [
        ("5m", "ratio_rate5m"),
        ("1h", "ratio_rate1h"),
        ("6h", "ratio_rate6h"),
        ("3d", "ratio_rate3d"),
    ]
    g.add(
        timeseries(
            "Availability error budget burn rate",
            [
                target(f"job:modelwatch_slo_availability_errors:{r} / 0.001", w)
                for w, r in burn_targets
            ],
            "x",
            "Error ratio over the window divided by the budget (0.1%). Pages at 14.4x (1h and 5m) "
            "and 6x (6h and 30m).",
            minimum=0,
            thresholds=[(None, "green"), (1, "yellow"), (6, "orange"), (14.4, "red")],
        ),
        6,
        7,
    )
    g.add(
        timeseries(
            "Latency error budget burn rate",
            [target(f"job:modelwatch_slo_latency_errors:{r} / 0.01", w) for w, r in burn_targets],
            "x",
            "Share of requests slower than 0.5s over the window divided by the budget (1%).",
            minimum=0,
            thresholds=[(None, "green"), (1, "yellow"), (6, "orange"), (14.4, "red")],
        ),
        6,
        7,
    )

    return dashboard(
        "modelwatch-golden-signals",
        "modelwatch / Serving: golden signals and SLOs",
        "Traffic, errors, latency and saturation of the serving replicas, and the SLOs.",
        g,
        annotations=[VERSION_CHANGES, RELOADS],
    )


def model_quality() -> dict:
    g = Layout()
    g.row("Now")
    g.add(
        stat(
            "Serving model",
            [
                target(
                    "max by (model, version, alias) (modelwatch_model_info) == 1",
                    "{{model}} v{{version}} ({{alias}})",
                    instant=True,
                )
            ],
            "short",
            "The version each replica has loaded.",
            text_mode="name",
        ),
        6,
        4,
    )
    g.add(
        stat(
            "Realized accuracy",
            [target(f"min(modelwatch_live_accuracy{{{MV}}})", instant=True)],
            "percentunit",
            "Accuracy on labelled feedback in the monitor's window. The alert holds it "
            "to its lower bound from the version's reference (see the Accuracy row).",
        ),
        4,
        4,
    )
    g.add(
        stat(
            "Estimated accuracy",
            [target(f"min(modelwatch_estimated_accuracy{{{MV}}})", instant=True)],
            "percentunit",
            "Accuracy estimated from calibrated probabilities, no labels needed. The alert "
            "holds it to its lower bound from the version's reference.",
        ),
        4,
        4,
    )
    g.add(
        stat(
            "Label coverage",
            [target(f"min(modelwatch_label_coverage_ratio{{{MV}}})", instant=True)],
            "percentunit",
            "Share of the window's predictions with a label.",
            thresholds=[(None, "orange"), (0.1, "green")],
        ),
        4,
        4,
    )
    g.add(
        stat(
            "Concept drift",
            [target(f"max(modelwatch_concept_drift_detected{{{MV}}})", instant=True)],
            "short",
            mappings=flag_mappings("none", "DETECTED"),
        ),
        3,
        4,
    )
    g.add(
        stat(
            "Fallback",
            [target("max(modelwatch_fallback_active)", instant=True)],
            "short",
            "1 while the rule-based fallback answers instead of a model.",
            mappings=flag_mappings("model", "FALLBACK"),
        ),
        3,
        4,
    )

    g.row("Accuracy")
    g.add(
        timeseries(
            "Accuracy: reference vs realized vs estimated",
            [
                target(f"modelwatch_reference_accuracy{{{MV}}}", "reference v{{model_version}}"),
                target(
                    f'modelwatch_metric_lower_threshold{{{MV}, metric="live_accuracy"}}',
                    "realized bound v{{model_version}}",
                ),
                target(
                    f'modelwatch_metric_lower_threshold{{{MV}, metric="estimated_accuracy"}}',
                    "estimated bound v{{model_version}}",
                ),
                target(f"modelwatch_live_accuracy{{{MV}}}", "realized v{{model_version}}"),
                target(f"modelwatch_estimated_accuracy{{{MV}}}", "estimated v{{model_version}}"),
            ],
            "percentunit",
            "Reference: the version's accuracy on its reference rows. Each bound is the mean "
            "- 3 standard deviations of that accuracy on reference chunks the size of a window "
            "(wider for a smaller window). ModelAccuracyDegraded fires when realized or "
            "estimated accuracy stays below its bound for 1m.",
        ),
        24,
        9,
    )
    g.add(
        timeseries(
            "Every performance metric against its reference bounds",
            [
                target(
                    f'modelwatch_metric_value{{{MV}, metric=~"live_.*|estimated_.*"}}',
                    "{{metric}} v{{model_version}}",
                ),
                target(
                    f'modelwatch_metric_lower_threshold{{{MV}, metric=~"live_.*|estimated_.*"}}',
                    "{{metric}} lower v{{model_version}}",
                ),
            ],
            "short",
            "Whatever the task computes: accuracy, F1 and ROC AUC (classifiers, alert below the "
            "lower bound) or MAE, RMSE and MAPE (regression, alert above the upper bound, "
            "modelwatch_metric_upper_threshold). A metric that was not computed has no line.",
        ),
        24,
        9,
    )
    g.add(
        timeseries(
            "Accuracy: realized vs estimated",
            [
                target(f"modelwatch_live_accuracy{{{MV}}}", "realized v{{model_version}}"),
                target(f"modelwatch_estimated_accuracy{{{MV}}}", "estimated v{{model_version}}"),
            ],
            "percentunit",
            "A gap between the two (realized below estimated) is the signature of concept drift.",
        ),
        12,
        9,
    )
    g.add(
        timeseries(
            "F1 and ROC AUC (realized)",
            [
                target(f"modelwatch_live_f1{{{MV}}}", "F1 v{{model_version}}"),
                target(f"modelwatch_live_roc_auc{{{MV}}}", "ROC AUC v{{model_version}}"),
            ],
            "percentunit",
            maximum=1,
        ),
        12,
        9,
    )

    g.row("Labels and the monitor's window")
    g.add(
        timeseries(
            "Label coverage",
            [target(f"modelwatch_label_coverage_ratio{{{MV}}}", "v{{model_version}}")],
            "percentunit",
            minimum=0,
            maximum=1,
            thresholds=[(None, "orange"), (0.1, "transparent")],
        ),
        8,
        7,
    )
    g.add(
        timeseries(
            "Rows in the monitor's window",
            [target(f"modelwatch_monitor_window_rows{{{MV}}}", "v{{model_version}}")],
            "short",
            minimum=0,
        ),
        8,
        7,
    )
    g.add(
        timeseries(
            "Concept drift detected",
            [target(f"modelwatch_concept_drift_detected{{{MV}}}", "v{{model_version}}")],
            "short",
            minimum=0,
            maximum=1,
        ),
        8,
        7,
    )

    g.row("Versions")
    g.add(
        timeseries(
            "Serving model version",
            [target("max by (version) (modelwatch_model_info) == 1", "v{{version}}")],
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
                    "sum by (result) (increase(modelwatch_model_reloads_total[$__rate_interval]))",
                    "{{result}}",
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
        "Realized and estimated accuracy, labels, concept drift; model versions as annotations.",
        g,
        variables=[
            variable(
                "model_version",
                "Model version",
                "label_values(modelwatch_monitor_window_rows, model_version)",
            )
        ],
        annotations=[VERSION_CHANGES, RELOADS, RETRAININGS],
    )


def drift() -> dict:
    feat = 'feature=~"$feature"'
    g = Layout()
    g.row("Now")
    g.add(
        stat(
            "Dataset drift",
            [target(f"max(modelwatch_dataset_drift_detected{{{MV}}})", instant=True)],
            "short",
            mappings=flag_mappings("none", "DRIFT"),
        ),
        4,
        4,
    )
    g.add(
        stat(
            "Drifted share of features",
            [target(f"max(modelwatch_dataset_drift_share{{{MV}}})", instant=True)],
            "percentunit",
            thresholds=[(None, "green"), (0.3, "orange"), (0.5, "red")],
        ),
        5,
        4,
    )
    g.add(
        stat(
            "Features drifted",
            [target(f"count(modelwatch_drift_detected{{{MV}}} == 1) or vector(0)", instant=True)],
            "short",
            thresholds=[(None, "green"), (1, "orange")],
        ),
        5,
        4,
    )
    g.add(
        stat(
            "Prediction drift score",
            [target(f"max(modelwatch_prediction_drift_score{{{MV}}})", instant=True)],
            "short",
            "Drift of the model's output distribution against the reference.",
        ),
        5,
        4,
    )
    g.add(
        stat(
            "Integrity issues",
            [target(f"count(modelwatch_integrity_issue{{{MV}}} > 0) or vector(0)", instant=True)],
            "short",
            "Integrity issues found in the current window. These page; they never retrain.",
            thresholds=[(None, "green"), (1, "red")],
        ),
        5,
        4,
    )

    g.row("Input drift")
    g.add(
        timeseries(
            "Drift score per feature",
            [target(f"modelwatch_drift_score{{{MV}, {feat}}}", "{{feature}} ({{test}})")],
            "short",
            "Each feature's drift statistic, with the test the monitor chose for it.",
        ),
        16,
        9,
    )
    g.add(
        bargauge(
            "Drift score per feature, now",
            [
                target(
                    f"max by (feature, test) (modelwatch_drift_score{{{MV}, {feat}}})",
                    "{{feature}} ({{test}})",
                    instant=True,
                )
            ],
            "short",
        ),
        8,
        9,
    )
    g.add(
        timeseries(
            "Drifted share of features",
            [
                target(f"modelwatch_dataset_drift_share{{{MV}}}", "share v{{model_version}}"),
                target(
                    f"modelwatch_dataset_drift_detected{{{MV}}}", "dataset drift v{{model_version}}"
                ),
            ],
            "percentunit",
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
                    f"max by (feature) (modelwatch_drift_detected{{{MV}, {feat}}})", "{{feature}}"
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

    g.row("Output drift")
    g.add(
        heatmap(
            "Prediction score distribution",
            "sum by (le) (increase(modelwatch_prediction_score_bucket[$__rate_interval]))",
            "percentunit",
            "Scored rows per positive-class probability bucket, all versions.",
        ),
        12,
        8,
    )
    g.add(
        timeseries(
            "Prediction drift score and mean score",
            [
                target(
                    f"modelwatch_prediction_drift_score{{{MV}}}", "drift score v{{model_version}}"
                ),
                target(
                    "sum by (model_version) "
                    "(rate(modelwatch_prediction_score_sum[$__rate_interval]))"
                    " / sum by (model_version) "
                    "(rate(modelwatch_prediction_score_count[$__rate_interval]))",
                    "mean score v{{model_version}}",
                ),
            ],
            "short",
            minimum=0,
        ),
        12,
        8,
    )

    g.row("Data integrity")
    g.add(
        timeseries(
            "Missing values",
            [target(f"modelwatch_integrity_missing_ratio{{{MV}, {feat}}}", "{{feature}}")],
            "percentunit",
            minimum=0,
            maximum=1,
        ),
        8,
        7,
    )
    g.add(
        timeseries(
            "Out of range values",
            [target(f"modelwatch_integrity_out_of_range_ratio{{{MV}, {feat}}}", "{{feature}}")],
            "percentunit",
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
                    f"max by (kind, feature) (modelwatch_integrity_issue{{{MV}}}) > 0",
                    "{{kind}}: {{feature}}",
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
        "Per-feature input drift, output drift, data integrity.",
        g,
        variables=[
            variable(
                "model_version",
                "Model version",
                "label_values(modelwatch_monitor_window_rows, model_version)",
            ),
            variable("feature", "Feature", "label_values(modelwatch_drift_score, feature)"),
        ],
        annotations=[VERSION_CHANGES, RETRAININGS],
    )


def retraining() -> dict:
    g = Layout()
    g.row("Now")
    g.add(
        stat(
            "Retraining",
            [target("max(modelwatch_retrain_in_progress)", instant=True)],
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
                    "max(modelwatch_retrain_last_success_timestamp_seconds > 0) * 1000",
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
                    "sum by (result) (increase(modelwatch_retrains_total[$__range]))",
                    "{{result}}",
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
                    'count(ALERTS{action="retrain", alertstate="firing"}) or vector(0)',
                    instant=True,
                )
            ],
            "short",
            thresholds=[(None, "green"), (1, "orange")],
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
                    "sum by (result) (increase(modelwatch_retrains_total[$__rate_interval]))",
                    "{{result}}",
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
            [target("max(modelwatch_retrain_in_progress)", "in progress")],
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
                    'ALERTS{action="retrain", alertstate="firing"}',
                    "{{alertname}} v{{model_version}}",
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
            [target("max by (version) (modelwatch_model_info) == 1", "v{{version}}")],
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
                    "time() - max(modelwatch_retrain_last_success_timestamp_seconds > 0)",
                    "since last success",
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
                    "time() - max(modelwatch_monitor_last_run_timestamp_seconds > 0)",
                    "age of last run",
                ),
                target("max(modelwatch_monitor_run_duration_seconds)", "run duration"),
            ],
            "s",
            "MonitorStale fires when the last run is older than 10 minutes.",
            minimum=0,
            thresholds=[(None, "green"), (600, "red")],
        ),
        12,
        7,
    )

    return dashboard(
        "modelwatch-retraining",
        "modelwatch / Retraining",
        "Retrainings the alerts started, their results, and the versions they promoted.",
        g,
        annotations=[VERSION_CHANGES, RETRAININGS],
    )


def cost_and_saturation() -> dict:
    g = Layout()
    g.row("Now")
    g.add(
        stat(
            "Cost per 1,000 predictions",
            [target("sum(job:modelwatch_cost_per_1k_predictions:rate5m)", instant=True)],
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
            [target("sum(job:modelwatch_cost_per_hour:rate5m)", instant=True)],
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
            [target("max(job:modelwatch_cpu_seconds_per_prediction:ratio_rate5m)", instant=True)],
            "s",
            "CPU-seconds per scored row, all the workers' work included, 5m.",
        ),
        5,
        4,
    )
    g.add(
        stat(
            "CPU cores in use",
            [target("sum(job:modelwatch_process_cpu_seconds:rate5m)", instant=True)],
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
            [target("max(instance:modelwatch_thread_pool_utilization:ratio_rate5m)", instant=True)],
            "percentunit",
            "The busiest replica's share of busy threads, 5m. "
            "HighSaturation fires above 90% for 2m.",
            thresholds=[(None, "green"), (0.7, "orange"), (0.9, "red")],
        ),
        5,
        4,
    )

    g.row("Cost")
    g.add(
        timeseries(
            "Cost per 1,000 predictions vs budget",
            [
                target("job:modelwatch_cost_per_1k_predictions:rate5m", "cost {{job}}"),
                target(
                    'max by (job) (modelwatch_cost_budget{per="1k_predictions"})', "budget {{job}}"
                ),
            ],
            "none",
            "CostOverBudget opens a ticket when the cost stays above the budget "
            "(MODELWATCH_COST_BUDGET_PER_1K) for 10m.",
            minimum=0,
        ),
        12,
        8,
    )
    g.add(
        timeseries(
            "Cost per hour: CPU and memory",
            [
                target("job:modelwatch_cpu_cost_per_hour:rate5m", "CPU {{job}}"),
                target("job:modelwatch_memory_cost_per_hour:sum", "memory {{job}}"),
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
                    "job:modelwatch_cpu_seconds_per_prediction:ratio_rate5m",
                    "per prediction {{job}}",
                ),
                target(
                    "job:modelwatch_cpu_seconds_per_request:ratio_rate5m", "per request {{job}}"
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
                    "sum by (instance) "
                    "(rate(modelwatch_process_cpu_seconds_total[$__rate_interval]))",
                    "{{instance}}",
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
            [target("modelwatch_process_resident_memory_bytes", "{{instance}} pid {{pid}}")],
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
            [target("instance:modelwatch_thread_pool_utilization:ratio_rate5m", "{{instance}}")],
            "percentunit",
            "Request time per second over the replica's threads (Little's law), 5m.",
            minimum=0,
            maximum=1,
            thresholds=[(None, "green"), (0.9, "red")],
        ),
        12,
        8,
    )
    g.add(
        timeseries(
            "Busy threads per worker",
            [
                target(
                    "modelwatch_worker_busy_threads / (modelwatch_worker_threads > 0)",
                    "{{instance}} pid {{pid}}",
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
        "What serving costs per 1,000 predictions and per hour, its CPU and memory, and "
        "how full its thread pools are.",
        g,
    )


def segments_and_fairness() -> dict:
    seg, attr = 'segment=~"$segment"', 'attribute=~"$attribute"'

    def by_segment(metric: str) -> str:
        return f'modelwatch_segment_metric_value{{{MV}, {seg}, metric="{metric}"}}'

    g = Layout()
    g.row("Now")
    g.add(
        stat(
            "Segments judged",
            [target(f"count(modelwatch_segment_share{{{MV}}}) or vector(0)", instant=True)],
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
                    'count(ALERTS{alertname="SegmentDegraded", alertstate="firing"}) or vector(0)',
                    instant=True,
                )
            ],
            "short",
            "Segments out of their own bounds while the population is within its own.",
            thresholds=[(None, "green"), (1, "red")],
        ),
        6,
        4,
    )
    g.add(
        stat(
            "Attributes past the fairness bars",
            [
                target(
                    f"count(modelwatch_fairness_gap_exceeded{{{MV}}} == 1) or vector(0)",
                    instant=True,
                )
            ],
            "short",
            "FairnessGapExceeded pages for these; it never retrains.",
            thresholds=[(None, "green"), (1, "red")],
        ),
        6,
        4,
    )
    g.add(
        stat(
            "Lowest demographic parity ratio",
            [target(f"min(modelwatch_fairness_demographic_parity_ratio{{{MV}}})", instant=True)],
            "percentunit",
            "Smallest over largest selection rate between groups; the four-fifths rule bars 80%.",
            thresholds=[(None, "red"), (0.8, "green")],
        ),
        6,
        4,
    )

    g.row("Segments")
    g.add(
        timeseries(
            "Traffic share by segment",
            [target(f"modelwatch_segment_share{{{MV}, {seg}}}", "{{segment}}")],
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
                target(by_segment("dataset_drift_share"), "{{segment}}"),
                target(
                    "modelwatch_segment_metric_upper_threshold"
                    f'{{{MV}, {seg}, metric="dataset_drift_share"}}',
                    "bound {{segment}}",
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
                target(by_segment("live_accuracy"), "{{segment}}"),
                target(
                    "modelwatch_segment_metric_lower_threshold"
                    f'{{{MV}, {seg}, metric="live_accuracy"}}',
                    "lower bound {{segment}}",
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
            [target(by_segment("estimated_accuracy"), "{{segment}}")],
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
                    f"max by (segment, metric) (modelwatch_segment_metric_value{{{MV}, {seg}}})"
                    " - on (segment, metric) max by (segment, metric) "
                    f"(modelwatch_segment_metric_lower_threshold{{{MV}, {seg}}})",
                    "{{segment}} {{metric}}",
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
                    f"modelwatch_fairness_demographic_parity_ratio{{{MV}, {attr}}}", "{{attribute}}"
                )
            ],
            "percentunit",
            "Selection rate of the least selected group over the most selected one.",
            minimum=0,
            maximum=1,
            thresholds=[(None, "red"), (0.8, "green")],
        ),
        12,
        8,
    )
    g.add(
        timeseries(
            "Equalized odds difference",
            [
                target(
                    f"modelwatch_fairness_equalized_odds_difference{{{MV}, {attr}}}",
                    "{{attribute}}",
                )
            ],
            "short",
            "The larger of the groups' TPR and FPR differences.",
            minimum=0,
            thresholds=[(None, "green"), (0.1, "red")],
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
                        f"modelwatch_fairness_group_{name}{{{MV}, {attr}}}",
                        "{{attribute}}={{group}}",
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
            variable(
                "model_version",
                "Model version",
                "label_values(modelwatch_monitor_window_rows, model_version)",
            ),
            variable("segment", "Segment", "label_values(modelwatch_segment_share, segment)"),
            variable(
                "attribute",
                "Sensitive attribute",
                "label_values(modelwatch_fairness_gap_exceeded, attribute)",
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
