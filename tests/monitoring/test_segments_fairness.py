"""Segments and fairness calculators: fairlearn's numbers, bounded series, the hidden failure."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest
from fairlearn.metrics import (
    MetricFrame,
    demographic_parity_difference,
    demographic_parity_ratio,
    equalized_odds_difference,
    false_positive_rate,
    selection_rate,
    true_positive_rate,
)
from modelwatch.monitoring.calculators.fairness import Fairness
from modelwatch.monitoring.calculators.segments import MAX_SEGMENTS
from modelwatch.monitoring.reference import MonitoringReference
from modelwatch.monitoring.service.alerting import segments_degraded
from modelwatch.monitoring.service.metrics import MonitorMetrics
from modelwatch.monitoring.suite import fit_calculators
from modelwatch.monitoring.window import evaluate
from prometheus_client import generate_latest
from sklearn.metrics import accuracy_score, mean_absolute_error

from modelwatch.log.scored import Scored


def binary(n: int, seed: int, bias: float = 0.0) -> Scored:
    rng = np.random.default_rng(seed)
    group = rng.choice(["a", "b", "c"], size=n, p=[0.5, 0.35, 0.15])
    score = rng.uniform(size=n)
    y = (rng.uniform(size=n) < np.clip(score + bias * (group == "c"), 0, 1)).astype(int)
    pred = (score > 0.55).astype(int)
    return Scored(
        pd.DataFrame({"group": group, "age": rng.integers(18, 80, n).astype(float)}),
        np.where(pred == 1, "yes", "no").astype(object),
        np.where(y == 1, "yes", "no").astype(object),
        "binary",
        classes=["no", "yes"],
    )


@pytest.mark.parametrize("bias", [0.0, 0.3])
def test_fairness_numbers_equal_metricframes_on_the_same_rows(bias):
    window = binary(3000, seed=1, bias=bias)
    window.label[::7] = None  # unlabelled rows are left out, as the monitor sees them
    found = Fairness(["group", "age"]).fit(binary(5000, seed=0)).calculate(window).details.fairness

    known = window.labelled
    y = (window.label[known] == "yes").astype(int)
    pred = (window.prediction[known] == "yes").astype(int)
    group = window.features["group"].to_numpy()[known]
    g = found["group"]
    assert g["demographic_parity_difference"] == pytest.approx(
        demographic_parity_difference(y, pred, sensitive_features=group)
    )
    assert g["demographic_parity_ratio"] == pytest.approx(
        demographic_parity_ratio(y, pred, sensitive_features=group)
    )
    assert g["equalized_odds_difference"] == pytest.approx(
        equalized_odds_difference(y, pred, sensitive_features=group)
    )
    frame = MetricFrame(
        metrics={
            "selection_rate": selection_rate,
            "tpr": true_positive_rate,
            "fpr": false_positive_rate,
            "accuracy": accuracy_score,
        },
        y_true=y,
        y_pred=pred,
        sensitive_features=group,
    )
    for name, row in frame.by_group.iterrows():
        mine = g["by_group"][name]
        assert mine["rows"] == (group == name).sum()
        for metric in ("selection_rate", "tpr", "fpr", "accuracy"):
            assert mine[metric] == pytest.approx(row[metric]), (name, metric)
    # group c has under 1,000 labelled rows: the verdict rests on intervals around the numbers
    lo, hi = g["intervals"]["equalized_odds_difference"]
    assert lo <= g["equalized_odds_difference"] <= hi
    assert g["alert"] is (bias > 0)
    # a numeric attribute is grouped by reference quartiles: four groups, never more
    assert len(found["age"]["by_group"]) == 4 and not found["age"]["alert"]


def test_regression_gets_per_group_error_gaps():
    rng = np.random.default_rng(3)
    n = 4000
    region = rng.choice(["north", "south"], size=n)
    x = rng.normal(size=n)
    y = 2 * x + rng.normal(scale=np.where(region == "south", 3.0, 1.0))
    scored = Scored(pd.DataFrame({"region": region, "x": x}), 2 * x, y.astype(object), "regression")
    found = Fairness(["region"]).fit(scored).calculate(scored).details.fairness["region"]
    frame = MetricFrame(
        metrics=mean_absolute_error, y_true=y, y_pred=2 * x, sensitive_features=region
    )
    assert found["error_gap"] == pytest.approx(frame.difference())
    assert found["error_ratio"] == pytest.approx(frame.ratio())
    assert found["by_group"]["south"]["mae"] == pytest.approx(frame.by_group["south"])
    assert found["alert"]  # south's errors are three times north's


def shops(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    return pd.DataFrame(
        {
            "x": x,
            "shop": [f"shop-{i}" for i in rng.integers(0, 10_000, n)],
            "amount": rng.exponential(100, n),
            "y": (x + rng.normal(size=n) > 0).astype(int),
        }
    )


def test_series_stay_under_the_cap_with_10000_distinct_segment_values():
    ref = shops(20_000, seed=0)
    p = 1 / (1 + np.exp(-1.6 * ref["x"].to_numpy()))
    reference = MonitoringReference.from_scores(
        ref[["x", "shop", "amount"]],
        ref["y"],
        (p > 0.5).astype(int),
        np.column_stack([1 - p, p]),
        classes=[0, 1],
        target="y",
    )
    calculators = fit_calculators(reference, segments=("shop", "amount"))
    window = shops(2000, seed=1)
    q = 1 / (1 + np.exp(-1.6 * window["x"].to_numpy()))
    log = window[["x", "shop", "amount"]].assign(
        ts=np.arange(len(window)),
        prediction=(q > 0.5).astype(int).astype(str),
        probability=q,
        label=window["y"].astype(str),
    )
    result = evaluate("1", calculators, reference, log)
    metrics = MonitorMetrics().model("m")
    metrics.publish("1", result.metrics)
    text = generate_latest(metrics.registry).decode()
    segments = set(re.findall(r'segment="([^"]*)"', text))
    # the shops are spread over 10,000 ids (about 2 rows each): none has 200 reference rows,
    # so all of them are `other`; the amounts give their four quartile bins
    assert {s for s in segments if s.startswith("shop=")} == {"shop=other"}
    assert len([s for s in segments if s.startswith("amount=")]) == 4
    per_segment = (
        2 + 3 * 8
    )  # rows and share; each bounded metric's value and (at most) two thresholds
    series = [
        line for line in text.splitlines() if 'segment="' in line and not line.startswith("#")
    ]
    assert len(series) <= 2 * MAX_SEGMENTS * per_segment
    assert set(result.segments) == segments
    web = result.segments["shop=other"]
    assert (
        web["rows"] == 2000
        and web["share"] == 1.0
        and set(web["metrics"]) >= {"live_accuracy", "estimated_accuracy"}
    )


def test_segment_degraded_only_when_the_population_holds():
    ref = shops(20_000, seed=0).assign(
        channel=lambda f: np.where(np.arange(len(f)) % 10 == 0, "broker", "web")
    )
    p = 1 / (1 + np.exp(-1.6 * ref["x"].to_numpy()))
    features = ["x", "channel"]
    reference = MonitoringReference.from_scores(
        ref[features],
        ref["y"],
        (p > 0.5).astype(int),
        np.column_stack([1 - p, p]),
        classes=[0, 1],
        target="y",
    )
    calculators = fit_calculators(reference, segments=("channel",))

    def window(broken: float, channels=("broker",)):
        w = shops(2000, seed=2).assign(
            channel=lambda f: np.where(np.arange(len(f)) % 10 == 0, "broker", "web")
        )
        rng = np.random.default_rng(5)
        # the model sees noise for a share of the broker rows: its answers there are guesses
        seen = np.where(
            w["channel"].isin(channels) & (rng.uniform(size=len(w)) < broken),
            rng.normal(size=len(w)),
            w["x"],
        )
        q = 1 / (1 + np.exp(-1.6 * seen))
        return w[features].assign(
            x=seen,
            ts=np.arange(len(w)),
            prediction=(q > 0.5).astype(int).astype(str),
            probability=q,
            label=w["y"].astype(str),
        )

    assert segments_degraded(evaluate("1", calculators, reference, window(0.0))) == []
    degraded = segments_degraded(evaluate("1", calculators, reference, window(1.0)))
    assert {s for s, _ in degraded} == {"channel=broker"}
    assert {m for _, m in degraded} & {"live_accuracy", "live_roc_auc"}
    # every channel broken: the population's own alerts say it, not SegmentDegraded
    everywhere = evaluate("1", calculators, reference, window(0.6, ("broker", "web")))
    assert everywhere.metric("live_roc_auc").alert
    assert not [m for _, m in segments_degraded(everywhere) if m == "live_roc_auc"]


def test_the_cli_offers_every_simulator_scenario():
    from modelwatch.training import simulator

    from modelwatch import cli

    assert cli.SCENARIOS == simulator.SCENARIOS


def test_segment_and_group_metrics_are_valid_mlflow_metric_names():
    from mlflow.utils.validation import _validate_metric_name

    window = binary(3000, seed=1)
    reference = MonitoringReference.from_scores(
        window.features,
        window.label,
        window.prediction,
        np.tile([0.5, 0.5], (len(window), 1)),
        classes=["no", "yes"],
        target="y",
    )
    calculators = fit_calculators(reference, segments=("group", "age"), sensitive=("age",))
    log = window.features.assign(
        ts=np.arange(len(window)), prediction=window.prediction, probability=0.5, label=window.label
    )
    flat = evaluate("1", calculators, reference, log).flat()
    assert any(k.startswith("live_accuracy.age_") for k in flat) and any(
        "fairness_group_tpr.age" in k for k in flat
    )
    for key in flat:
        _validate_metric_name(key)
