"""Judged windows made by hand, for tests of what reads them (rules, webhook, status)."""

from modelwatch.monitoring.calculators.base import Metric, Result
from modelwatch.monitoring.calculators.inputs import DRIFT_SHARE
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
            [Metric("dataset_drift_share", drift_share, upper=DRIFT_SHARE)],
            {"drift": drift},
        ),
        Result("integrity", [], {"issues": integrity or []}),
    ]
    if live_accuracy is not None:
        results.append(
            Result("realized_classification", [Metric("live_accuracy", live_accuracy, lower=lower)])
        )
    return WindowResult(version, rows, results)
