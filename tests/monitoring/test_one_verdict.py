"""One verdict: each decision is made once, in its calculator, and every surface reads it.

For windows of every task (binary, multiclass, regression; healthy and drifted), the
verdicts `/status` shows (`window_status`), the exported /metrics text (the real registry,
rendered) and what MLflow gets (`WindowResult.flat()`) are the same, metric by metric. The
issue's case is a regressor whose drifted share (0.25) is past its bound (0.15) but short
of Evidently's default 0.5: every surface must say "dataset drift".
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest
from modelwatch.monitoring.calculators.inputs import DRIFT_SHARE, FeatureDrift, Integrity
from modelwatch.monitoring.reference import MonitoringReference
from modelwatch.monitoring.report import judged_drift_report, judged_snapshot, snapshot_verdicts
from modelwatch.monitoring.service.metrics import MonitorMetrics
from modelwatch.monitoring.suite import fit_calculators
from modelwatch.monitoring.window import evaluate, window_status
from prometheus_client import generate_latest
from threadpoolctl import threadpool_limits

FEATURES = ("x", "y", "z", "w")  # one of four drifted: a share of 0.25
TASKS = ("binary", "multiclass", "regression")


def _inputs(n: int, seed: int, shift: float = 0.0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({name: rng.normal(size=n) for name in FEATURES})
    frame["x"] += shift
    return frame


def _outputs(task: str, frame: pd.DataFrame, seed: int):
    """(label, prediction, probabilities or None, classes) of a model that is right often."""
    rng = np.random.default_rng(seed + 100)
    score = frame["y"] + 0.5 * frame["z"]
    if task == "regression":
        label = 1000 + 300 * score + rng.normal(scale=50, size=len(frame))
        return label, 1000 + 300 * score, None, None
    k = 2 if task == "binary" else 3
    edges = [0.0] if k == 2 else [-0.5, 0.5]
    prediction = np.digitize(score, edges)
    label = np.where(
        rng.uniform(size=len(frame)) < 0.85, prediction, rng.integers(0, k, len(frame))
    )
    proba = np.full((len(frame), k), 0.15 / (k - 1))
    proba[np.arange(len(frame)), prediction] = 0.85
    return label, prediction, proba, list(range(k))


def _reference(task: str) -> MonitoringReference:
    frame = _inputs(6000, seed=1)
    label, prediction, proba, classes = _outputs(task, frame, seed=1)
    return MonitoringReference.from_scores(frame, label, prediction, proba, classes, target="t")


def _window(task: str, shift: float, seed: int = 7) -> pd.DataFrame:
    """Rows of the prediction log: inputs, what was served, labels."""
    frame = _inputs(1000, seed, shift)
    label, prediction, proba, _ = _outputs(task, frame, seed)
    rows = frame.assign(ts=np.arange(len(frame), dtype=float), label=label)
    rows["prediction"] = prediction
    if proba is not None:
        rows["probabilities"] = [list(p) for p in proba]
    return rows


@pytest.fixture(scope="module")
def suites() -> dict:
    """Each task's reference and its calculators, fitted once."""
    out = {}
    with threadpool_limits(1):  # OpenMP's spinning threads make a busy machine's fit 50x slower
        for task in TASKS:
            reference = _reference(task)
            out[task] = (reference, fit_calculators(reference, 1000))
    return out


def _exported(result) -> str:
    metrics = MonitorMetrics()
    # one model's series (the `model` label), or the one-model monitor's before it
    per_model = metrics.model("m") if hasattr(metrics, "model") else metrics
    per_model.publish(result.version, result.metrics)
    return generate_latest(metrics.registry).decode()


def _series(text: str, name: str) -> dict[frozenset, float]:
    """{frozenset of (label, value) pairs: value} of one family in exposition text."""
    found = {}
    for labels, value in re.findall(rf"^modelwatch_{name}\{{(.*?)\}} (\S+)$", text, re.M):
        found[frozenset(re.findall(r'(\w+)="([^"]*)"', labels))] = float(value)
    return found


def _one(text: str, name: str, **labels) -> float | None:
    wanted = set(labels.items())
    hits = [v for k, v in _series(text, name).items() if wanted <= set(k)]
    return hits[0] if hits else None


@pytest.mark.parametrize("task", TASKS)
@pytest.mark.parametrize("shift", [0.0, 1.0], ids=["healthy", "drifted"])
def test_status_metrics_and_mlflow_give_the_same_verdicts(suites, task, shift):
    reference, calculators = suites[task]
    result = evaluate("3", calculators, reference, _window(task, shift))
    status = window_status(result, reference, estimates=True)
    text = _exported(result)
    flat = result.flat()

    # dataset drift: one verdict, against one bound
    share = result.metric("dataset_drift_share")
    assert status["dataset_drift"] == share.alert
    assert _one(text, "dataset_drift_detected") == float(share.alert)
    assert flat["dataset_drift_detected"] == float(share.alert)
    assert status["drift"]["dataset_drift_share"]["upper"] == share.upper
    assert _one(text, "dataset_drift_share_threshold") == share.upper
    assert flat["dataset_drift_share_threshold"] == share.upper
    if shift:  # the case: 1 of 4 features, past 0.15 and short of Evidently's 0.5
        assert share.value == 0.25 and share.upper == DRIFT_SHARE and share.alert
    else:
        assert not share.alert

    # each feature's drift: its verdict and the threshold of its test
    columns = status["drift"]["features"]
    assert set(columns) == set(FEATURES)
    for name, column in columns.items():
        exported = _one(text, "drift_detected", feature=name)
        assert exported == float(column["drifted"]) == flat[f"drift_detected.{name}"], name
        assert (
            _one(text, "drift_score_threshold", feature=name, test=column["test"])
            == (column["threshold"])
        )
        assert flat[f"drift_score_threshold.{name}"] == column["threshold"]
        assert (name in status["drifted_features"]) == column["drifted"]
    assert status["drifted_features"] == (["x"] if shift else [])

    # every bounded metric: the same value, bounds and verdict
    for name, doc in status["metrics"].items():
        assert _one(text, "metric_value", metric=name) == pytest.approx(doc["value"]), name
        for side in ("lower", "upper"):
            exported = _one(text, f"metric_{side}_threshold", metric=name)
            assert exported == doc[side] == flat.get(f"{name}.{side}"), (name, side)
        assert _outside(doc) == doc["alert"], name


def _outside(doc: dict) -> bool:
    value = doc["value"]
    return (doc["lower"] is not None and value < doc["lower"]) or (
        doc["upper"] is not None and value > doc["upper"]
    )


@pytest.mark.slow  # Evidently's own report takes seconds a window
@pytest.mark.parametrize("shift", [0.0, 1.0], ids=["healthy", "drifted"])
def test_the_evidently_report_headlines_modelwatchs_verdict(suites, tmp_path, shift):
    """The HTML the monitor logs states modelwatch's rule: its headline is the window's
    dataset verdict against the version's bound, each column's verdict is modelwatch's."""
    reference, calculators = suites["regression"]
    result = evaluate("3", calculators, reference, _window("regression", shift))
    status = window_status(result, reference, estimates=True)
    rows = _window("regression", shift)
    theirs = snapshot_verdicts(judged_snapshot(reference.profile, rows, result.drift))
    assert theirs["dataset_drift"] == status["dataset_drift"] == bool(shift)
    assert {n: c["drifted"] for n, c in theirs["columns"].items()} == {
        n: c["drifted"] for n, c in status["drift"]["features"].items()
    }
    html = judged_drift_report(reference.profile, rows, result.drift, tmp_path / "r.html")
    verdict = "detected" if status["dataset_drift"] else "NOT detected"
    bound = status["drift"]["dataset_drift_share"]["upper"]
    headline = f"Dataset Drift is {verdict}. Dataset drift detection threshold is {bound}"
    assert headline in html.read_text()


def _houses(n: int, seed: int, sqft_shift: float = 0.0, income_scale: float = 1.0):
    """Listings whose square feet and incomes have the hard edges real sources have (a
    portal's size cap, a lender's income floor): a shift moves 1-2% of rows past them."""
    rng = np.random.default_rng(seed)
    sqft = np.clip(rng.normal(2000, 500, n), 600, 3700)
    income = np.clip(rng.lognormal(11, 0.35, n), 20_000, None)
    return pd.DataFrame(
        {
            "sqft": np.round(sqft + sqft_shift),
            "income": np.round(income * income_scale, -2),
            "rooms": rng.integers(1, 8, n),
        }
    )


@pytest.mark.parametrize(
    "shift", [{"sqft_shift": 600.0}, {"income_scale": 0.7}], ids=["sqft+600", "incomes lower"]
)
def test_a_market_that_moves_past_the_range_is_drift_not_integrity(shift):
    """The issue's covariate shift: a few % of a column's values past the reference's
    observed range are drift evidence under /status's drift, and no integrity error."""
    frame = _houses(6000, 1)
    reference = MonitoringReference.from_scores(
        frame, None, np.zeros(len(frame)), task="regression"
    )
    calculators = [
        c.fit(reference.scored())
        for c in (FeatureDrift(reference.profile, 2000), Integrity(reference.profile))
    ]
    window = _houses(2000, 2, **shift).assign(ts=np.arange(2000.0), label=None, prediction=0.0)
    result = evaluate("1", calculators, reference, window)
    status = window_status(result, reference, estimates=False)
    moved = "sqft" if "sqft_shift" in shift else "income"
    past = status["drift"]["features"][moved]["out_of_range_ratio"]
    assert 0.01 < past < 0.02, past  # values past the range, seen as drift evidence
    assert status["drift"]["features"][moved]["drifted"] and status["dataset_drift"]
    assert status["integrity"] == [] and result.integrity == []
    assert not any(m.alert for m in result.metrics if m.name.startswith("integrity"))

    # negative square feet cannot be: that is broken data, whatever drift says
    window.loc[:99, "sqft"] = -1.0
    broken = evaluate("1", calculators, reference, window)
    assert [(i["kind"], i["columns"]) for i in broken.integrity] == [("out_of_domain", ["sqft"])]
