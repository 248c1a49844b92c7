"""One window of the prediction log, judged: drift, integrity, performance, concept.

`evaluate` is a pure function of the version's context and the window's rows (apart
from feeding the context's error-stream detector), so the loop, the tests and a user
with their own frame all get the same verdicts.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from monitoring.concept import accuracy_divergence
from monitoring.drift import detect_drift
from monitoring.drift.prediction import prediction_drift
from monitoring.integrity import ERROR, check_integrity
from monitoring.performance import estimate_performance, realized_performance
from monitoring.service.context import VersionContext

# A concept-drift detection stays raised for this many windows, so an alert rule with a
# `for:` duration sees it; a single error burst does not hold it up longer.
CONCEPT_HOLD_WINDOWS = 10
MIN_LABELLED_FOR_DIVERGENCE = 200


@dataclass
class WindowResult:
    version: str
    rows: int
    drift: dict
    multivariate: dict | None
    prediction_drift: float | None
    integrity: list[dict]
    missing_ratio: dict[str, float]
    out_of_range_ratio: dict[str, float]
    realized: dict
    estimated_accuracy: float | None
    divergence: dict
    concept_drift: bool
    latency_ms: dict[str, float]
    drift_began: bool = False
    metrics: dict[str, float] = field(default_factory=dict)

    @property
    def any_drift(self) -> bool:
        return self.drift["dataset_drift"] or any(c["drifted"] for c in self.drift["columns"].values())

    def to_json(self) -> str:
        return json.dumps({k: v for k, v in vars(self).items() if k != "metrics"}, default=_plain, indent=1)


def evaluate(context: VersionContext, window: pd.DataFrame) -> WindowResult:
    features = window.reindex(columns=context.features)
    drift = detect_drift(context.profile, features).to_dict()
    proba = _proba_matrix(window["probability"].to_numpy(dtype=float), context)
    classes = context.calibrator.classes
    realized = realized_performance(window["label"].to_numpy(dtype=object), window["prediction"].to_numpy(dtype=object),
                                    proba, positive_label=classes[-1], classes=classes)
    estimated = estimate_performance(proba, context.calibrator)["estimated_accuracy"] if proba is not None else None
    concept, divergence = _concept(context, window, proba, realized)
    integrity = [i for i in check_integrity(context.profile, features) if i["severity"] == ERROR]
    result = WindowResult(
        version=context.version,
        rows=len(window),
        drift=drift,
        multivariate=context.multivariate.detect(features) if context.multivariate else None,
        prediction_drift=_prediction_drift(context, window),
        integrity=integrity,
        missing_ratio={c: float(features[c].isna().mean()) for c in context.features},
        out_of_range_ratio=_out_of_range(context, features),
        realized=realized,
        estimated_accuracy=estimated,
        divergence=divergence,
        concept_drift=concept,
        latency_ms=_latency(window),
    )
    result.drift_began = result.any_drift and not context.drifting
    context.drifting = result.any_drift
    result.metrics = flatten(result, context)
    return result


def flatten(result: WindowResult, context: VersionContext) -> dict[str, float]:
    """The window as MLflow metrics: one number per name."""
    m = {
        "window_rows": result.rows,
        "dataset_drift_share": result.drift["drift_share"],
        "dataset_drift_detected": float(result.drift["dataset_drift"]),
        "prediction_drift_score": result.prediction_drift,
        "live_accuracy": result.realized.get("accuracy"),
        "live_f1": result.realized.get("f1"),
        "live_roc_auc": result.realized.get("roc_auc"),
        "label_coverage": result.realized.get("label_coverage"),
        "estimated_accuracy": result.estimated_accuracy,
        "concept_drift_detected": float(result.concept_drift),
        "integrity_issues": len(result.integrity),
        "multivariate_reconstruction_error": (result.multivariate or {}).get("reconstruction_error"),
    }
    m |= {f"latency_{q}_ms": v for q, v in result.latency_ms.items()}
    for name, column in result.drift["columns"].items():
        m[f"drift_score.{name}"] = column["statistic"]
    for name, share in result.missing_ratio.items():
        m[f"missing_ratio.{name}"] = share
    return {k: float(v) for k, v in m.items() if v is not None and math.isfinite(float(v))}


def _proba_matrix(positive: np.ndarray, context: VersionContext) -> np.ndarray | None:
    """The served probability is the positive class's for binary models; for others only
    the top class's is logged, too little to rebuild the matrix CBPE needs."""
    if len(context.calibrator.classes) != 2:
        return None
    return np.column_stack([1.0 - positive, positive])


def _prediction_drift(context: VersionContext, window: pd.DataFrame) -> float | None:
    if "probability" not in context.sample or window["probability"].isna().all():
        return None
    return prediction_drift(context.sample["probability"], window["probability"]).statistic


def _concept(context: VersionContext, window: pd.DataFrame, proba, realized: dict) -> tuple[bool, dict]:
    context.windows += 1
    fresh = context.unseen_labelled(window)
    errors = ~same_labels(fresh["label"], fresh["prediction"])
    if context.detector.update_many(errors.astype(float)):
        context.last_detection_window = context.windows
    labelled = window["label"].notna().to_numpy()
    estimated_on_labelled = None
    if proba is not None and labelled.sum():
        estimated_on_labelled = estimate_performance(proba[labelled], context.calibrator)
    divergence = accuracy_divergence(
        realized.get("accuracy"),
        estimated_on_labelled["estimated_accuracy"] if estimated_on_labelled else None,
        int(labelled.sum()),
        se=estimated_on_labelled["estimated_accuracy_se"] if estimated_on_labelled else None,
    )
    held = (context.last_detection_window is not None
            and context.windows - context.last_detection_window < CONCEPT_HOLD_WINDOWS)
    diverged = divergence["drifted"] and labelled.sum() >= MIN_LABELLED_FOR_DIVERGENCE
    return bool(held or diverged), divergence


def same_labels(a: pd.Series, b: pd.Series) -> np.ndarray:
    """Element-wise equality of two label columns that may differ in type (1, 1.0, "1")."""
    x, y = pd.to_numeric(a, errors="coerce"), pd.to_numeric(b, errors="coerce")
    if x.notna().all() and y.notna().all():
        return x.to_numpy(dtype=float) == y.to_numpy(dtype=float)
    return a.astype(str).to_numpy() == b.astype(str).to_numpy()


def _out_of_range(context: VersionContext, features: pd.DataFrame) -> dict[str, float]:
    out = {}
    for name, column in context.profile.columns.items():
        if column.kind != "numeric" or not len(column.values):
            continue
        values = pd.to_numeric(features[name], errors="coerce").to_numpy(dtype=float)
        known = values[np.isfinite(values)]
        outside = (known < column.values[0]) | (known > column.values[-1])
        out[name] = float(outside.mean()) if len(known) else 0.0
    return out


def _latency(window: pd.DataFrame) -> dict[str, float]:
    latency = window["latency_ms"].dropna().to_numpy(dtype=float)
    if not len(latency):
        return {}
    p50, p95, p99 = np.percentile(latency, [50, 95, 99])
    return {"p50": float(p50), "p95": float(p95), "p99": float(p99)}


def _plain(value):
    if isinstance(value, (np.generic,)):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return str(value)
