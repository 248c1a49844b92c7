"""The monitor's built-in rules are the Prometheus rules: same names, thresholds, `for:`."""

import re
from pathlib import Path

import pytest
import yaml

from monitoring.service.alerting import RULES, RuleEvaluator

ALERTS = Path(__file__).resolve().parents[2] / "monitoring" / "prometheus" / "rules" / "alerts.yml"


def _prometheus_rules() -> dict[str, list[dict]]:
    rules: dict[str, list[dict]] = {}
    for group in yaml.safe_load(ALERTS.read_text())["groups"]:
        for rule in group["rules"]:
            if "alert" in rule:
                rules.setdefault(rule["alert"], []).append(rule)
    return rules


def _seconds(duration: str) -> float:
    value, unit = re.fullmatch(r"(\d+)([smh])", duration).groups()
    return int(value) * {"s": 1, "m": 60, "h": 3600}[unit]


@pytest.mark.parametrize("rule", RULES, ids=lambda r: r.name)
def test_each_builtin_rule_matches_its_prometheus_twin(rule):
    twins = _prometheus_rules()[rule.name]
    for twin in twins:
        assert twin["labels"]["severity"] == rule.severity
        assert twin["labels"]["action"] == rule.action
        assert _seconds(twin["for"]) == rule.for_seconds


def test_both_compare_with_the_bounds_the_monitor_exports():
    """Neither side has a threshold of its own: both read the monitor's verdicts."""
    rules = _prometheus_rules()
    assert rules["DataDriftDetected"][0]["expr"].strip() == "max by (model_version) (modelwatch_dataset_drift_detected) == 1"
    for twin in rules["ModelAccuracyDegraded"]:
        assert "modelwatch_metric_lower_threshold" in twin["expr"] and "modelwatch_metric_upper_threshold" in twin["expr"]


def _signals(**changes):
    base = {"dataset_drift": False, "concept_drift": False, "degraded": [], "integrity_issues": 0}
    return base | changes


def test_pending_then_firing_then_resolved():
    now = [0.0]
    rules = RuleEvaluator(clock=lambda: now[0])
    assert rules.evaluate(_signals(dataset_drift=True)) == []  # pending
    now[0] = 59
    assert rules.evaluate(_signals(dataset_drift=True)) == []
    now[0] = 61
    assert rules.evaluate(_signals(dataset_drift=True)) == ["DataDriftDetected"]
    now[0] = 65
    assert rules.evaluate(_signals(dataset_drift=False)) == []  # one feature: not enough
    now[0] = 70
    assert rules.evaluate(_signals(dataset_drift=True)) == []  # pending again from scratch


def test_accuracy_is_held_to_the_versions_own_bar():
    now = [0.0]
    rules = RuleEvaluator(clock=lambda: now[0])
    rules.evaluate(_signals(degraded=["live_accuracy"]))
    now[0] = 60
    assert rules.evaluate(_signals(degraded=["live_accuracy"])) == ["ModelAccuracyDegraded"]
    now[0] = 61
    assert rules.evaluate(_signals()) == []
    rules.evaluate(_signals(degraded=["estimated_rmse"]))
    now[0] = 200
    assert rules.evaluate(_signals(degraded=["estimated_rmse"])) == ["ModelAccuracyDegraded"]


def test_integrity_fires_sooner_than_the_retrain_alerts():
    now = [0.0]
    rules = RuleEvaluator(clock=lambda: now[0])
    broken = _signals(dataset_drift=True, integrity_issues=2)
    rules.evaluate(broken)
    now[0] = 30
    assert rules.evaluate(broken) == ["DataIntegrityViolation"]
    assert rules.action("DataIntegrityViolation") == "page"
