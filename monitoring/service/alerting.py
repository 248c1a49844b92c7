"""The model alerts, evaluated by the monitor itself where no Prometheus runs.

The embedded stack starts Prometheus and Alertmanager when the machine has them; without
them, the monitor applies the model rules of `monitoring/prometheus/rules/alerts.yml` to
each window it computes and hands the retrain ones to the same trigger the webhook uses.
Both compare each metric with the bounds the monitor computed from the version's
reference; the `for:` durations here are those of the rules file, and a test holds the
two in agreement.

>>> rules = RuleEvaluator(clock=iter([0, 30, 61]).__next__)
>>> signals = {"dataset_drift": True, "concept_drift": False, "degraded": [], "integrity_issues": 0}
>>> rules.evaluate(signals), rules.evaluate(signals), rules.evaluate(signals)
([], [], ['DataDriftDetected'])
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable


@dataclass(frozen=True)
class Rule:
    name: str
    severity: str
    action: str
    for_seconds: float
    holds: Callable[[dict], bool]


RULES = (
    Rule("DataDriftDetected", "major", "retrain", 60, lambda s: s["dataset_drift"]),
    Rule("ConceptDriftDetected", "major", "retrain", 60, lambda s: s["concept_drift"]),
    Rule("ModelAccuracyDegraded", "critical", "retrain", 60, lambda s: bool(s["degraded"])),
    Rule("DataIntegrityViolation", "major", "page", 30, lambda s: s["integrity_issues"] > 0),
    Rule("SegmentDegraded", "major", "page", 60, lambda s: bool(s.get("segments_degraded"))),
    Rule("FairnessGapExceeded", "major", "page", 60, lambda s: bool(s.get("fairness_gaps"))),
)


class RuleEvaluator:
    """Pending and firing, as Prometheus does it: a rule fires once its condition has held
    for its `for:` duration, and stops the first time it does not hold."""

    def __init__(self, rules: tuple[Rule, ...] = RULES, clock: Callable[[], float] = time.monotonic):
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

    def action(self, name: str) -> str:
        return next(r.action for r in self.rules if r.name == name)


def signals(result) -> dict:
    """What the rules look at, from a WindowResult: each rule's metric against its bounds,
    as the Prometheus rules compare `modelwatch_metric_value` with its thresholds."""
    share = result.metric("dataset_drift_share")
    return {
        "dataset_drift": bool(share and share.alert),
        "concept_drift": result.concept_drift,
        "degraded": [name for name, m in result.performance.items() if m["alert"]],
        "integrity_issues": len(result.integrity),
        "segments_degraded": segments_degraded(result),
        "fairness_gaps": [a for a, found in result.fairness.items() if found["alert"]],
    }


def _outside(m) -> bool:
    return (m.lower is not None and m.value < m.lower) or (m.upper is not None and m.value > m.upper)


def segments_degraded(result) -> list[tuple[str, str]]:
    """(segment, metric) pairs out of the segment's bounds while the population's same
    metric is within its own: the failure the whole-population view hides."""
    population = {m.name for m in result.metrics if not m.labels and _outside(m)}
    return [(dict(m.labels)["segment"], m.name) for m in result.metrics
            if dict(m.labels).get("segment") and _outside(m) and m.name not in population]
