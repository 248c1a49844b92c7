"""The model alerts, evaluated by the monitor itself where no Prometheus runs.

The embedded stack starts Prometheus and Alertmanager when the machine has them; without
them, the monitor applies the model rules of `monitoring/prometheus/rules/alerts.yml` to
each window it computes and hands the retrain ones to the same trigger the webhook uses.
The rules are read from that file at start (`load_rules`): their names, severity, action
and `for:` durations are the file's. Their conditions are the monitor's own verdicts,
which is what the Prometheus expressions compare too (each metric against the bounds the
monitor computed from the version's reference). The serving and monitor-health alerts
need Prometheus (`not_evaluated`).

>>> rules = RuleEvaluator(clock=iter([0, 30, 61]).__next__)
>>> signals = {"dataset_drift": True, "concept_drift": False, "degraded": [], "integrity_issues": 0}
>>> rules.evaluate(signals), rules.evaluate(signals), rules.evaluate(signals)
([], [], ['DataDriftDetected'])
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import yaml
from modelwatch.monitoring.calculators.feedback import FEEDBACK_SUSPECT
from modelwatch.monitoring.calculators.inputs import DATASET_DRIFT_SHARE

from modelwatch.settings import duration_seconds


@dataclass(frozen=True)
class Rule:
    name: str
    severity: str
    action: str
    for_seconds: float
    holds: Callable[[dict], bool]


# What each model alert of alerts.yml asks, read off the monitor's own window: the rules
# there compare the verdicts and bounds this monitor exports, so the condition here is the
# same one. Names, severity, action and `for:` come from the file at run time.
CONDITIONS: dict[str, Callable[[dict], bool]] = {
    "DataDriftDetected": lambda s: s["dataset_drift"],
    "ConceptDriftDetected": lambda s: s["concept_drift"],
    "ModelAccuracyDegraded": lambda s: bool(s["degraded"]),
    "DataIntegrityViolation": lambda s: s["integrity_issues"] > 0,
    "FeedbackSuspect": lambda s: bool(s.get("feedback_suspect")),
    "SegmentDegraded": lambda s: bool(s.get("segments_degraded")),
    "FairnessGapExceeded": lambda s: bool(s.get("fairness_gaps")),
}
ALERTS_FILE = Path(__file__).resolve().parents[1] / "prometheus" / "rules" / "alerts.yml"


def load_rules(path: Path = ALERTS_FILE) -> tuple[Rule, ...]:
    """The alerts of `path` the monitor can evaluate itself, in the file's order."""
    rules: dict[str, Rule] = {}
    for rule in _alerts(path):
        name = rule["alert"]
        if (
            name in CONDITIONS and name not in rules
        ):  # one alert, several expressions: one condition
            rules[name] = Rule(
                name,
                rule["labels"]["severity"],
                rule["labels"]["action"],
                duration_seconds(rule.get("for", "0s")),
                CONDITIONS[name],
            )
    return tuple(rules.values())


def not_evaluated(path: Path = ALERTS_FILE) -> list[str]:
    """The alerts only Prometheus evaluates (serving, SLOs, the monitor's own health)."""
    return sorted({r["alert"] for r in _alerts(path)} - set(CONDITIONS))


def _alerts(path: Path) -> list[dict]:
    groups = yaml.safe_load(path.read_text())["groups"]
    return [rule for group in groups for rule in group["rules"] if "alert" in rule]


RULES = load_rules()


class RuleEvaluator:
    """Pending and firing, as Prometheus does it: a rule fires once its condition has held
    for its `for:` duration, and stops the first time it does not hold."""

    def __init__(
        self, rules: tuple[Rule, ...] = RULES, clock: Callable[[], float] = time.monotonic
    ):
        self.rules = rules
        self._clock = clock
        self.firing: list[str] = []  # as of the last evaluation
        self._since: dict[str, float] = {}

    def evaluate(self, signals: dict) -> list[str]:
        """The names of the rules firing now, given one window's signals."""
        now = self._clock()
        firing = []
        for rule in self.rules:
            if not rule.holds(signals):
                self._since.pop(rule.name, None)
                continue
            since = self._since.setdefault(rule.name, now)
            if now - since >= rule.for_seconds:
                firing.append(rule.name)
        self.firing = firing
        return firing

    def clear(self) -> None:
        """Forget every pending and firing rule: the verdicts they held on are gone (the
        version changed) or are not new (a window without new rows; Prometheus's rules
        stop holding then too, on `modelwatch_monitor_window_new_rows > 0`)."""
        self.firing = []
        self._since.clear()

    def action(self, name: str) -> str:
        return next(r.action for r in self.rules if r.name == name)


def signals(result) -> dict:
    """What the rules look at, from a WindowResult: each rule's metric against its bounds,
    as the Prometheus rules compare `modelwatch_metric_value` with its thresholds.
    "degraded" is every performance metric (its declaration says so) out of its bounds."""
    share = result.metric(DATASET_DRIFT_SHARE.name)
    return {
        "dataset_drift": bool(share and share.alert),
        "concept_drift": result.concept_drift,
        "degraded": [name for name, m in result.performance.items() if m["alert"]],
        "integrity_issues": len(result.integrity),
        "feedback_suspect": bool(result.value(FEEDBACK_SUSPECT.name)),
        "segments_degraded": segments_degraded(result),
        "fairness_gaps": [a for a, found in result.fairness.items() if found["alert"]],
    }


def _outside(m) -> bool:
    return (m.lower is not None and m.value < m.lower) or (
        m.upper is not None and m.value > m.upper
    )


def segments_degraded(result) -> list[tuple[str, str]]:
    """(segment, metric) pairs out of the segment's bounds while the population's same
    metric is within its own: the failure the whole-population view hides."""
    population = {m.name for m in result.metrics if not m.labels and _outside(m)}
    return [
        (dict(m.labels)["segment"], m.name)
        for m in result.metrics
        if dict(m.labels).get("segment") and _outside(m) and m.name not in population
    ]
