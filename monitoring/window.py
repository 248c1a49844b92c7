"""One window of the prediction log, judged by the version's calculators.

`evaluate` turns the log's rows into the calculators' shape (`Scored`) and runs each
fitted calculator on them. The result is their `Result`s and nothing else: the exporter,
`/status`, the built-in rules and the MLflow logging all read `WindowResult.metrics` and
each metric's declaration (`performance`: /status reports it by name; `log_bounds`: MLflow
gets its bounds), and the calculators' details by their type (`details_of`).
"""

from __future__ import annotations

import json
import math
import re
import time
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from modelwatch.monitoring.calculators import coverage, feedback
from modelwatch.monitoring.calculators.base import AnyDetails, Metric, Result
from modelwatch.monitoring.calculators.classification import ESTIMATED_ACCURACY, LIVE_ACCURACY
from modelwatch.monitoring.calculators.concept import CONCEPT_DRIFT_DETECTED
from modelwatch.monitoring.calculators.fairness import FairnessDetails
from modelwatch.monitoring.calculators.inputs import (
    DATASET_DRIFT_SHARE,
    DRIFT_OUT_OF_RANGE_RATIO,
    DRIFT_SCORE,
    DRIFT_SCORE_THRESHOLD,
    DriftDetails,
    IntegrityDetails,
)
from modelwatch.monitoring.calculators.segments import SegmentsDetails
from modelwatch.monitoring.reference import MonitoringReference

NO_DRIFT = {"dataset_drift": False, "drift_share": 0.0, "columns": {}}  # no drift computed


@dataclass
class WindowResult:
    version: str
    rows: int
    results: list[Result] = field(default_factory=list)
    latency_ms: dict[str, float] = field(default_factory=dict)
    evaluated_at: float = field(default_factory=time.time)
    drift_began: bool = False

    @property
    def metrics(self) -> list[Metric]:
        return [m for r in self.results for m in r.metrics]

    def metric(self, name: str) -> Metric | None:
        return next((m for m in self.metrics if m.name == name and not m.labels), None)

    def value(self, name: str) -> float | None:
        m = self.metric(name)
        return None if m is None else m.value

    def details_of(self, kind: type[AnyDetails]) -> AnyDetails | None:
        """The first result's details of `kind` (e.g. `DriftDetails`), or None."""
        return next((d for r in self.results if (d := r.details_of(kind)) is not None), None)

    @property
    def drift(self) -> dict:
        found = self.details_of(DriftDetails)
        return found.drift if found else dict(NO_DRIFT, columns={})

    @property
    def integrity(self) -> list[dict]:
        found = self.details_of(IntegrityDetails)
        return found.issues if found else []

    @property
    def concept_drift(self) -> bool:
        return bool(self.value(CONCEPT_DRIFT_DETECTED.name))

    @property
    def any_drift(self) -> bool:
        return bool(
            self.drift["dataset_drift"] or any(c["drifted"] for c in self.drift["columns"].values())
        )

    @property
    def segments(self) -> dict[str, dict]:
        """{"COLUMN=VALUE": {"rows", "share", "drift_share", "metrics", ...}}: judged segments."""
        found = self.details_of(SegmentsDetails)
        return found.segments if found else {}

    @property
    def fairness(self) -> dict[str, dict]:
        """{attribute: {gaps..., "by_group", "alert", ...}} on the window's labelled rows."""
        found = self.details_of(FairnessDetails)
        return found.fairness if found else {}

    @property
    def performance(self) -> dict[str, dict]:
        """{name: {"value", "lower", "upper", "alert"}} of every performance metric computed."""
        return {
            m.name: m.to_dict() for m in self.metrics if m.declaration.performance and not m.labels
        }

    def flat(self) -> dict[str, float]:
        """The window as MLflow metrics: one number per name (labels joined with dots)."""
        out = {"window_rows": float(self.rows), "integrity_issues": float(len(self.integrity))}
        for m in self.metrics:
            names = [v for k, v in m.labels if k != "test"]
            key = ".".join([m.name, *names])
            out[key] = m.value
            if m.declaration.verdict:  # the verdict itself, as /metrics exports it
                out[".".join([m.declaration.verdict.name, *names])] = float(m.alert)
            if m.declaration.log_bounds:  # the bounds it was judged by, beside it in the UI
                out[f"{key}.lower"], out[f"{key}.upper"] = m.lower, m.upper
        out |= {f"latency_{q}_ms": v for q, v in self.latency_ms.items()}
        return {
            _mlflow_key(k): float(v)
            for k, v in out.items()
            if v is not None and math.isfinite(float(v))
        }

    def to_json(self) -> str:
        doc = {
            "version": self.version,
            "rows": self.rows,
            "evaluated_at": self.evaluated_at,
            "drift": self.drift,
            "integrity": self.integrity,
            "metrics": self.performance,
            "results": {r.calculator: r.details_dict() for r in self.results},
        }
        return json.dumps(doc, default=_plain, indent=1)


def window_status(
    result: WindowResult, reference: MonitoringReference | None, estimates: bool
) -> dict:
    """The window as `/status` (and `modelwatch monitor-batch`) show it."""
    return {
        "version": result.version,
        "rows": result.rows,
        "evaluated_at": result.evaluated_at,
        **_drift_status(result),
        "integrity": [
            {"kind": i["kind"], "columns": i["columns"], "share": i["share"]}
            for i in result.integrity
        ],
        LIVE_ACCURACY.name: result.value(LIVE_ACCURACY.name),
        ESTIMATED_ACCURACY.name: result.value(ESTIMATED_ACCURACY.name),
        "label_coverage": result.value(coverage.LABEL_COVERAGE_RATIO.name),
        "concept_drift": result.concept_drift,
        "task": reference.task if reference else None,
        "performance": "estimated and realized"
        if estimates
        else "realized only"
        if reference and reference.has_labels
        else "not judged: the reference has no target (drift and integrity only)",
        "metrics": result.performance,
        "segments": result.segments,
        "fairness": result.fairness,
    }


def _drift_status(result: WindowResult) -> dict:
    """The drift verdicts, read off the metrics every other surface reads: the dataset's
    share against its bound, each feature's score against its test's threshold, and the
    share of its values past the reference's range (drift evidence, not integrity)."""
    share = result.metric(DATASET_DRIFT_SHARE.name)
    fields = {
        DRIFT_SCORE.name: "score",
        DRIFT_SCORE_THRESHOLD.name: "threshold",
        DRIFT_OUT_OF_RANGE_RATIO.name: "out_of_range_ratio",
    }
    features: dict[str, dict] = {}
    for m in result.metrics:
        labels = dict(m.labels)
        if m.name in fields and "segment" not in labels:
            column = features.setdefault(labels["feature"], {})
            column[fields[m.name]] = m.value
            if "test" in labels:
                column["test"] = labels["test"]
            if m.name == DRIFT_SCORE.name:
                column["drifted"] = m.alert
    return {
        "drifted_features": [n for n, c in features.items() if c.get("drifted")],
        "drift_share": share.value if share else 0.0,
        "dataset_drift": bool(share and share.alert),
        "drift": {
            DATASET_DRIFT_SHARE.name: share.to_dict() if share else None,
            "features": features,
        },
    }


def evaluate(
    version: str, calculators: list, reference: MonitoringReference, window: pd.DataFrame
) -> WindowResult:
    """Judge `window` (rows of the prediction log) with the version's fitted calculators."""
    scored = reference.window(window)
    results = [c.calculate(scored) for c in calculators]
    if reference.has_labels:
        results.append(coverage.coverage(int(scored.labelled.sum()), len(scored)))
    results.append(feedback.check(results, calculators))  # labels that the inputs cannot explain
    return WindowResult(version, len(window), results, _latency(window))


def _latency(window: pd.DataFrame) -> dict[str, float]:
    latency = (
        window["latency_ms"].dropna().to_numpy(dtype=float)
        if "latency_ms" in window
        else np.array([])
    )
    if not len(latency):
        return {}
    p50, p95, p99 = np.percentile(latency, [50, 95, 99])
    return {"p50": float(p50), "p95": float(p95), "p99": float(p99)}


def _mlflow_key(key: str) -> str:
    """MLflow takes letters, digits, _ - . / and spaces in a metric name: a feature pair's
    "+", a segment's "=" and a bin's "[24.75, 49.5)" become "_"."""
    return re.sub(r"[^\w./ -]", "_", key)


def _plain(value):
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return str(value)
