"""A new metric is one calculator: its declaration is all the exporter, /status, MLflow's
window record and the built-in rules need; and every product metric is documented."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
from modelwatch.monitoring.calculators.base import (
    Mergeable,
    Metric,
    MetricDeclaration,
    Result,
    Verdict,
)
from modelwatch.monitoring.calculators.catalog import CALCULATORS, DECLARATIONS
from modelwatch.monitoring.reference import MonitoringReference
from modelwatch.monitoring.service.alerting import signals
from modelwatch.monitoring.service.metrics import MonitorMetrics
from modelwatch.monitoring.window import evaluate, window_status
from prometheus_client import generate_latest

from modelwatch.log.scored import Scored
from tests.test_design_doc import doc_metrics

POSITIVE_SHARE = MetricDeclaration(
    "positive_share",
    "Share of the window's predictions that are the positive class.",
    direction="higher",
    floor=0.0,
    ceiling=1.0,
    performance=True,
    log_bounds=True,
    verdict=Verdict("positive_share_low", "1 if the positive share fell below its bound."),
)


class PositiveShare(Mergeable):
    """The new signal: the share of positive predictions, held above the reference's."""

    name = "positive_share"
    declares = (POSITIVE_SHARE,)

    def fit(self, reference: Scored) -> PositiveShare:
        self.lower = float(np.mean(reference.prediction == "1")) - 0.1
        return self

    def partial(self, rows: Scored) -> dict:
        return {"rows": len(rows), "positive": int(np.sum(rows.prediction == "1"))}

    def finish(self, aggregate: dict) -> Result:
        share = aggregate["positive"] / aggregate["rows"]
        return Result(self.name, [Metric(POSITIVE_SHARE, share, lower=self.lower)])


def _reference_and_window(positive: float) -> tuple[MonitoringReference, pd.DataFrame]:
    rng = np.random.default_rng(0)
    x = rng.normal(size=2000)
    y = (x > 0).astype(int)
    reference = MonitoringReference.from_scores(
        pd.DataFrame({"x": x}), y, y, classes=[0, 1], target="y"
    )
    window = pd.DataFrame(
        {
            "ts": np.arange(1000.0),
            "x": x[:1000],
            "prediction": np.where(np.arange(1000) < positive * 1000, "1", "0"),
            "label": None,
        }
    )
    return reference, window


def test_a_new_metric_is_one_calculator():
    reference, window = _reference_and_window(positive=0.2)  # the reference's is 0.5
    calculator = PositiveShare().fit(reference.scored())
    result = evaluate("1", [calculator], reference, window)

    metrics = MonitorMetrics().model("m")
    metrics.publish("1", result.metrics)
    text = generate_latest(metrics.registry).decode()
    assert (
        "# HELP modelwatch_positive_share "
        "Share of the window's predictions that are the positive class." in text
    )
    assert 'modelwatch_positive_share{model="m",model_version="1"} 0.2' in text
    assert 'modelwatch_positive_share_low{model="m",model_version="1"} 1.0' in text
    lower = calculator.lower
    assert (
        'modelwatch_metric_value{metric="positive_share",model="m",model_version="1"} 0.2' in text
    )
    assert (
        "modelwatch_metric_lower_threshold"
        f'{{metric="positive_share",model="m",model_version="1"}} {lower}' in text
    )

    status = window_status(result, reference, estimates=False)
    assert status["metrics"]["positive_share"] == {
        "value": 0.2,
        "lower": lower,
        "upper": None,
        "alert": True,
    }
    flat = result.flat()
    assert flat["positive_share"] == 0.2 and flat["positive_share.lower"] == lower
    assert signals(result)["degraded"] == ["positive_share"]

    # a window that does not compute it leaves it no series
    metrics.publish("1", evaluate("1", [], reference, window).metrics)
    assert not re.search(
        r"^modelwatch_positive_share", generate_latest(metrics.registry).decode(), re.M
    )


def test_a_version_change_clears_the_window_series():
    reference, window = _reference_and_window(positive=0.5)
    shared = MonitorMetrics()
    metrics, other = shared.model("a"), shared.model("b")
    for view in (metrics, other):
        view.publish(
            "1", evaluate("1", [PositiveShare().fit(reference.scored())], reference, window).metrics
        )
        view.window_rows.labels(model_version="1").set(1000)
    assert 'model="a",model_version="1"' in generate_latest(shared.registry).decode()
    metrics.clear_version()
    text = generate_latest(shared.registry).decode()
    assert 'model="a",model_version="1"' not in text
    # another model's version is not this one's: its series stay
    assert 'modelwatch_positive_share{model="b",model_version="1"} 0.5' in text
    assert 'modelwatch_monitor_window_rows{model="b",model_version="1"} 1000.0' in text


def test_every_declared_metric_is_documented():
    documented = doc_metrics("Monitor")
    for d in DECLARATIONS:
        assert documented.get(f"modelwatch_{d.name}") == {"model", "model_version", *d.labels}, (
            d.name
        )
        if d.verdict:
            verdict = documented.get(f"modelwatch_{d.verdict.name}")
            assert verdict == {"model", "model_version", *d.verdict.labels}, d.verdict.name


def test_each_metric_is_declared_once():
    names = [d.name for d in DECLARATIONS] + [d.verdict.name for d in DECLARATIONS if d.verdict]
    assert len(names) == len(set(names))
    assert all(c.declares for c in CALCULATORS)
