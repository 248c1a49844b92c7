"""docs/DESIGN.md's contracts as data, and PromQL helpers, for the stack configuration tests.

The lists below are what the configs are written against. test_contract.py checks that the
services export them; tests/test_design_doc.py checks docs/DESIGN.md against the code.
"""

from __future__ import annotations

import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
DESIGN_MD = ROOT / "docs" / "DESIGN.md"
PROMETHEUS_DIR = ROOT / "monitoring" / "prometheus"
ALERTMANAGER_DIR = ROOT / "monitoring" / "alertmanager"
GRAFANA_DIR = ROOT / "monitoring" / "grafana"
COMPOSE_FILE = ROOT / "docker-compose.yml"
DATASOURCE_UID = "modelwatch-prometheus"

PREFIX = "modelwatch_"
SERVING_METRICS = {
    "http_requests_total": ("endpoint", "method", "status"),
    "http_request_duration_seconds": ("endpoint",),
    "http_requests_in_flight": (),
    "predictions_total": ("model_version", "predicted_class"),
    "prediction_score": ("model_version",),
    "model_predict_duration_seconds": (),
    "input_errors_total": ("reason",),
    "model_info": ("model", "version", "alias"),
    "model_reloads_total": ("result",),
    "fallback_active": (),
    "prediction_log_records_total": ("outcome",),
    # Cost and saturation (issue 13). Under gunicorn the gauges also carry `pid`, one
    # series per live worker.
    "process_cpu_seconds_total": (),
    "process_resident_memory_bytes": (),
    "worker_busy_threads": (),
    "worker_threads": (),
    "price": ("per",),
    "cost_budget": ("per",),
}
MONITOR_METRICS = {
    "drift_score": ("feature", "test"),
    "drift_score_threshold": ("feature", "test"),
    "drift_detected": ("feature",),
    "dataset_drift_share": (),
    "dataset_drift_share_threshold": (),
    "dataset_drift_detected": (),
    "prediction_drift_score": (),
    "live_accuracy": (),
    "live_f1": (),
    "live_roc_auc": (),
    "label_coverage_ratio": (),
    "estimated_accuracy": (),
    "concept_drift_detected": (),
    "feedback_suspect": (),
    "integrity_missing_ratio": ("feature",),
    "integrity_out_of_domain_ratio": ("feature",),
    "drift_out_of_range_ratio": ("feature",),
    "integrity_issue": ("kind", "feature"),
    "monitor_window_rows": (),
    "monitor_last_run_timestamp_seconds": (),
    "monitor_window_new_rows": (),
    "monitor_newest_row_timestamp_seconds": (),
    "monitor_run_duration_seconds": (),
    "retrains_total": ("result",),
    "retrain_in_progress": (),
    "retrain_last_success_timestamp_seconds": (),
    "reference_accuracy": (),
    "multivariate_drift_detected": (),
    "monitor_errors_total": ("dependency",),
    # Issue 11: every task's performance metrics, their reference bounds, and whether the
    # served version is judged at all.
    "estimated_f1": (),
    "estimated_roc_auc": (),
    "live_mae": (),
    "live_rmse": (),
    "live_mape": (),
    "estimated_mae": (),
    "estimated_rmse": (),
    "multivariate_reconstruction_error": (),
    "metric_value": ("metric",),
    "metric_lower_threshold": ("metric",),
    "metric_upper_threshold": ("metric",),
    "model_monitored": (),
    "monitor_not_monitored_total": ("reason",),
    # Issue 13: segments (at most 10 per segment column) and fairness per sensitive attribute.
    "segment_rows": ("segment",),
    "segment_share": ("segment",),
    "segment_metric_value": ("segment", "metric"),
    "segment_metric_lower_threshold": ("segment", "metric"),
    "segment_metric_upper_threshold": ("segment", "metric"),
    "fairness_demographic_parity_difference": ("attribute",),
    "fairness_demographic_parity_ratio": ("attribute",),
    "fairness_equalized_odds_difference": ("attribute",),
    "fairness_accuracy_difference": ("attribute",),
    "fairness_error_gap": ("attribute",),
    "fairness_error_ratio": ("attribute",),
    "fairness_group_mae": ("attribute", "group"),
    "fairness_group_rows": ("attribute", "group"),
    "fairness_group_selection_rate": ("attribute", "group"),
    "fairness_group_tpr": ("attribute", "group"),
    "fairness_group_fpr": ("attribute", "group"),
    "fairness_group_accuracy": ("attribute", "group"),
    "fairness_gap_exceeded": ("attribute",),
}
HISTOGRAMS = {"http_request_duration_seconds", "prediction_score", "model_predict_duration_seconds"}
# Series Prometheus itself makes.
PROMETHEUS_SERIES = {"up", "ALERTS", "ALERTS_FOR_STATE", "scrape_duration_seconds"}

# alert -> (severity, action), DESIGN.md "Alerts". Burn-rate alerts: every alert named SLO*.
ALERTS = {
    "ServingDown": ("critical", "page"),
    "HighErrorRate": ("critical", "page"),
    "HighLatencyP99": ("major", "page"),
    "PredictionLogLosingData": ("critical", "page"),
    "PredictionLogSpilling": ("minor", "page"),
    "PredictionLogStalled": ("major", "page"),
    # Issue 23, parts B and C: labels that lie hold retraining; a candidate that loses on
    # the trusted holdout waits for a person.
    "FeedbackSuspect": ("major", "page"),
    "RetrainingNeedsReview": ("major", "page"),
    "DataDriftDetected": ("major", "retrain"),
    "ConceptDriftDetected": ("major", "retrain"),
    "ModelAccuracyDegraded": ("critical", "retrain"),
    "ModelNotMonitored": ("major", "page"),
    "DataIntegrityViolation": ("major", "page"),
    "LowLabelCoverage": ("minor", "page"),
    "MonitorStale": ("major", "page"),
    "RetrainingFailed": ("major", "page"),
    "MonitorDependencyFailing": ("minor", "page"),
    "HighSaturation": ("major", "page"),
    "CostOverBudget": ("minor", "page"),
    "SegmentDegraded": ("major", "page"),
    "FairnessGapExceeded": ("major", "page"),
}
SLO_ALERT = ("major", "page")
SEVERITIES = ("critical", "major", "minor")


def contract_series() -> set[str]:
    """Every series name the services expose under the contract."""
    names = set()
    for base in {**SERVING_METRICS, **MONITOR_METRICS}:
        if base in HISTOGRAMS:
            names |= {f"{PREFIX}{base}_bucket", f"{PREFIX}{base}_sum", f"{PREFIX}{base}_count"}
        else:
            names.add(PREFIX + base)
    return names


def registry_metrics(registry) -> dict[str, tuple[str, tuple[str, ...]]]:
    """{exposed base name: (type, label names)} of a prometheus_client registry."""
    out = {}
    for collector in set(registry._collector_to_names):  # noqa: SLF001 (labels of childless metrics)
        for family in collector.describe() or collector.collect():
            name = family.name + ("_total" if family.type == "counter" else "")
            # a metric object knows its label names; a custom collector's family does
            labels = getattr(collector, "_labelnames", getattr(family, "_labelnames", ()))
            out[name] = (family.type, tuple(labels))
    return out


def load_yaml(path: Path):
    with open(path) as f:
        return yaml.safe_load(f)


def rule_files() -> list[Path]:
    return sorted((PROMETHEUS_DIR / "rules").glob("*.yml"))


def rules() -> list[dict]:
    """Every rule of every shared rule file, with its group's name under `_group`."""
    out = []
    for path in rule_files():
        for group in load_yaml(path)["groups"]:
            for rule in group["rules"]:
                out.append({**rule, "_group": group["name"], "_file": path.name})
    return out


def recording_rule_names() -> set[str]:
    return {r["record"] for r in rules() if "record" in r}


def alerting_rules() -> list[dict]:
    return [r for r in rules() if "alert" in r]


# --- PromQL -----------------------------------------------------------------------------

_KEYWORDS = {
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
    "bool",
    "and",
    "or",
    "unless",
    "offset",
    "inf",
    "nan",
    "atan2",
}


def metric_names(expr: str) -> set[str]:
    """Metric names a PromQL expression selects (functions, keywords, labels left out)."""
    s = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    s = re.sub(r"'(?:[^'\\]|\\.)*'", "''", s)
    s = re.sub(r"`[^`]*`", "``", s)
    s = re.sub(r"\{[^}]*\}", " ", s)
    s = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", s)
    s = re.sub(r"\[[^\]]*\]", " ", s)
    s = re.sub(r"\boffset\s+-?[0-9a-z]+", " ", s)
    found = re.findall(r"(?<![\w:.$])([a-zA-Z_:][\w:]*)(?![\w:])(?!\s*\()", s)
    return {n for n in found if n.lower() not in _KEYWORDS}
