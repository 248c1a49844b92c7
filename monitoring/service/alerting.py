"""The model alerts, evaluated by the monitor itself where no Prometheus runs.

The embedded stack starts Prometheus and Alertmanager when the machine has them; without
them, the monitor applies the model rules of `monitoring/prometheus/rules/alerts.yml` to
each window it computes and hands the retrain ones to the same trigger the webhook uses.
The thresholds and `for:` durations here are those of the rules file, and a test holds
the two in agreement.

>>> rules = RuleEvaluator(clock=iter([0, 30, 61]).__next__)
>>> signals = {"drift_share": 0.18, "dataset_drift": False, "concept_drift": False,
...            "accuracy": None, "estimated_accuracy": None, "reference_accuracy": 0.79,
...            "integrity_issues": 0}
>>> rules.evaluate(signals), rules.evaluate(signals), rules.evaluate(signals)
([], [], ['DataDriftDetected'])
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable

DRIFT_SHARE = 0.15  # DataDriftDetected: modelwatch_dataset_drift_share >= 0.15
ACCURACY_MARGIN = 0.05  # ModelAccuracyDegraded: accuracy < reference accuracy - 0.05


@dataclass(frozen=True)
class Rule:
    name: str
    severity: str
    action: str
    for_seconds: float
    holds: Callable[[dict], bool]


def _accuracy_degraded(s: dict) -> bool:
    bar = s["reference_accuracy"]
    return bar is not None and any(v is not None and v < bar - ACCURACY_MARGIN
                                   for v in (s["accuracy"], s["estimated_accuracy"]))


RULES = (
    Rule("DataDriftDetected", "major", "retrain", 60,
         lambda s: s["dataset_drift"] or s["drift_share"] >= DRIFT_SHARE),
    Rule("ConceptDriftDetected", "major", "retrain", 60, lambda s: s["concept_drift"]),
    Rule("ModelAccuracyDegraded", "critical", "retrain", 60, _accuracy_degraded),
    Rule("DataIntegrityViolation", "major", "page", 30, lambda s: s["integrity_issues"] > 0),
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


def signals(result, reference_accuracy: float | None) -> dict:
    """What the rules look at, from a WindowResult."""
    return {
        "drift_share": result.drift["drift_share"],
        "dataset_drift": result.drift["dataset_drift"],
        "concept_drift": result.concept_drift,
        "accuracy": result.realized.get("accuracy"),
        "estimated_accuracy": result.estimated_accuracy,
        "reference_accuracy": reference_accuracy,
        "integrity_issues": len(result.integrity),
    }
