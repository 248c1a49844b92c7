"""The monitor's built-in rules are the Prometheus rules: same names, thresholds, `for:`."""

from pathlib import Path

import yaml
from modelwatch.monitoring.service.alerting import (
    CONDITIONS,
    RULES,
    RuleEvaluator,
    load_rules,
    not_evaluated,
)

ALERTS = Path(__file__).resolve().parents[2] / "monitoring" / "prometheus" / "rules" / "alerts.yml"


def _prometheus_rules() -> dict[str, list[dict]]:
    rules: dict[str, list[dict]] = {}
    for group in yaml.safe_load(ALERTS.read_text())["groups"]:
        for rule in group["rules"]:
            if "alert" in rule:
                rules.setdefault(rule["alert"], []).append(rule)
    return rules


def test_the_rules_are_read_from_the_rules_file_at_run_time(tmp_path):
    """One place for the rules: change alerts.yml and the built-in rules change with it."""
    doc = yaml.safe_load(ALERTS.read_text())
    for group in doc["groups"]:
        for rule in group["rules"]:
            if rule.get("alert") == "DataDriftDetected":
                rule["for"], rule["labels"]["severity"] = "5m", "critical"
    edited = tmp_path / "alerts.yml"
    edited.write_text(yaml.safe_dump(doc))
    (drift,) = [r for r in load_rules(edited) if r.name == "DataDriftDetected"]
    assert (drift.for_seconds, drift.severity, drift.action) == (300, "critical", "retrain")


def test_every_condition_has_its_rule_and_the_rest_are_named():
    in_file = set(_prometheus_rules())
    assert set(CONDITIONS) <= in_file
    assert [r.name for r in RULES] == [n for n in _prometheus_rules() if n in CONDITIONS]
    assert {"ServingDown", "HighLatencyP99", "MonitorStale"} <= set(not_evaluated())
    assert set(not_evaluated()) == in_file - set(CONDITIONS)


def test_both_compare_with_the_bounds_the_monitor_exports():
    """Neither side has a threshold of its own: both read the monitor's verdicts."""
    rules = _prometheus_rules()
    assert (
        rules["DataDriftDetected"][0]["expr"].split("\n")[0]
        == "max by (model, model_version) (modelwatch_dataset_drift_detected) == 1"
    )
    for twin in rules["ModelAccuracyDegraded"]:
        assert (
            "modelwatch_metric_lower_threshold" in twin["expr"]
            and "modelwatch_metric_upper_threshold" in twin["expr"]
        )


GUARD = "and on (model, model_version) modelwatch_monitor_window_new_rows > 0"


def test_window_verdicts_hold_only_on_new_windows():
    """Every rule the monitor evaluates itself reads a window's verdict: in Prometheus each
    is guarded by the window having new rows, as the built-in rules reset without one."""
    for name in CONDITIONS:
        for rule in _prometheus_rules()[name]:
            assert rule["expr"].strip().endswith(GUARD), name
    assert _prometheus_rules()["LowLabelCoverage"][0]["expr"].strip().endswith(GUARD)


def test_clear_forgets_pending_and_firing():
    now = [0.0]
    rules = RuleEvaluator(clock=lambda: now[0])
    rules.evaluate(_signals(dataset_drift=True, concept_drift=True))
    now[0] = 61
    assert rules.evaluate(_signals(dataset_drift=True, concept_drift=True)) == [
        "DataDriftDetected",
        "ConceptDriftDetected",
    ]
    rules.clear()
    assert rules.firing == []
    now[0] = 1000  # long after: pending from scratch, not carried over the gap
    assert rules.evaluate(_signals(dataset_drift=True)) == []


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
