"""Judged windows made by hand, for tests of what reads them (rules, webhook, status)."""

from modelwatch.monitoring.calculators.base import Metric, Result
from modelwatch.monitoring.calculators.classification import LIVE_ACCURACY
from modelwatch.monitoring.calculators.inputs import (
    DATASET_DRIFT_SHARE,
    DRIFT_SHARE,
    DriftDetails,
    IntegrityDetails,
)
from modelwatch.monitoring.window import WindowResult


def judged_window(
    drift_share: float = 0.0,
    integrity: list | None = None,
    live_accuracy: float | None = 0.79,
    lower: float = 0.76,
    version: str = "1",
    rows: int = 1000,
) -> WindowResult:
    drift = {"dataset_drift": False, "drift_share": drift_share, "columns": {}}
    results = [
        Result(
            "feature_drift",
            [Metric(DATASET_DRIFT_SHARE, drift_share, upper=DRIFT_SHARE)],
            DriftDetails(drift),
        ),
        Result("integrity", [], IntegrityDetails(integrity or [])),
    ]
    if live_accuracy is not None:
        results.append(
            Result("realized_classification", [Metric(LIVE_ACCURACY, live_accuracy, lower=lower)])
        )
    return WindowResult(version, rows, results)
