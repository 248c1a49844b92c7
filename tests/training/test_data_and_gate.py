"""Data checks and the gate's rule, on their own (the real runs are in test_project.py)."""

import numpy as np
import pandas as pd
import pytest
from modelwatch.training import data, gate, pipeline
from modelwatch.training.evaluate import evaluate, evaluate_regression, expected_calibration_error


def test_text_in_a_numeric_column_is_named(tmp_path):
    frame = pd.DataFrame({"x": [str(i) for i in range(100)], "y": [0, 1] * 50})
    frame.loc[[3, 7], "x"] = ["abc", "n/a!"]
    with pytest.raises(
        data.DataError, match=r"column 'x' looks numeric but 2 of 100 values are not numbers"
    ):
        data.prepare(frame, "y", "test", "auto")


def test_identifier_column_is_refused():
    frame = pd.DataFrame({"id": [f"c{i}x" for i in range(300)], "y": [0, 1] * 150})
    with pytest.raises(data.DataError, match="'id' is text with 300 distinct values"):
        data.prepare(frame, "y", "test", "auto")


def test_features_are_cast_for_a_stable_signature():
    frame = pd.DataFrame(
        {"n": range(60), "flag": [True, False] * 30, "c": ["a", None, "b"] * 20, "y": [0, 1] * 30}
    )
    ds = data.prepare(frame, "y", "test", "auto")
    assert ds.numeric == ["n"] and ds.categorical == ["flag", "c"]
    assert ds.frame["n"].dtype == "float64"
    assert ds.frame["c"].isna().sum() == 20 and set(ds.frame["flag"]) == {"True", "False"}


def test_digest_follows_the_content():
    frame = pd.DataFrame({"n": np.arange(60.0), "y": [0, 1] * 30})
    first = data.prepare(frame, "y", "a", "auto").digest
    assert first == data.prepare(frame.copy(), "y", "b", "auto").digest
    frame.loc[0, "n"] = 99.0
    assert data.prepare(frame, "y", "a", "auto").digest != first


def test_gate_floor_tolerance_and_champion():
    assert gate.decide("roc_auc", 0.80, 0.6, 0.01).approved
    below = gate.decide("roc_auc", 0.55, 0.6, 0.01)
    assert not below.approved and below.status.startswith(
        "rejected: roc_auc 0.5500 is below the floor"
    )
    assert gate.decide("roc_auc", 0.795, 0.6, 0.01, champion=0.80, champion_version="3").approved
    worse = gate.decide("roc_auc", 0.78, 0.6, 0.01, champion=0.80, champion_version="3")
    assert not worse.approved and "champion version 3" in worse.reason
    assert not gate.decide("roc_auc", float("nan"), 0.6, 0.01).approved


def test_promote_modes():
    ok, bad = gate.decide("m", 1.0, 0.0, 0.0), gate.decide("m", 0.0, 0.5, 0.0)
    assert (
        gate.alias_for(ok, "auto") == "production" and gate.alias_for(bad, "auto") == "challenger"
    )
    assert (
        gate.alias_for(bad, "always") == "production"
        and gate.alias_for(ok, "never") == "challenger"
    )
    with pytest.raises(ValueError, match="unknown promote mode 'sometimes'"):
        gate.alias_for(ok, "sometimes")


def test_metrics_against_their_definitions():
    y = np.array([0, 1, 1, 0, 1])
    proba1 = np.array([0.2, 0.9, 0.4, 0.1, 0.7])
    proba = np.column_stack([1 - proba1, proba1])
    m = evaluate(y, proba, np.array([0, 1]))
    assert m["accuracy"] == pytest.approx(0.8) and m["precision"] == pytest.approx(1.0)
    assert m["recall"] == pytest.approx(2 / 3) and m["roc_auc"] == pytest.approx(1.0)
    # ECE by hand: bins of top-class confidence .8,.9,.6,.9,.7 -> |acc - conf| weighted.
    conf = np.array([0.8, 0.9, 0.6, 0.9, 0.7])
    correct = np.array([1, 1, 0, 1, 1])
    by_hand = sum(abs(correct[b].sum() - conf[b].sum()) for b in ([0], [1, 3], [2], [4])) / 5
    assert expected_calibration_error(y, proba, np.array([0, 1])) == pytest.approx(by_hand)


def test_multiclass_metrics():
    y = np.array(["a", "b", "c", "a"])
    proba = np.array([[0.7, 0.2, 0.1], [0.1, 0.8, 0.1], [0.5, 0.2, 0.3], [0.6, 0.3, 0.1]])
    m = evaluate(y, proba, np.array(["a", "b", "c"]))
    assert m["accuracy"] == pytest.approx(0.75) and 0 <= m["roc_auc"] <= 1


def test_the_task_follows_the_target():
    rng = np.random.default_rng(0)
    x = np.arange(200.0)
    cases = {
        "regression": rng.normal(size=200),  # floats, all distinct
        "binary": rng.integers(0, 2, 200),
        "multiclass": rng.choice(["low", "mid", "high"], 200),
    }
    for task, y in cases.items():
        assert data.prepare(pd.DataFrame({"x": x, "y": y}), "y", "test", "auto").task == task
    counts = data.prepare(
        pd.DataFrame({"x": x, "y": rng.integers(0, 500, 200)}), "y", "test", "auto"
    )
    assert counts.task == "regression" and counts.frame["y"].dtype == "float64"
    # few distinct numbers are class labels unless the user says otherwise
    grades = pd.DataFrame({"x": x, "y": rng.integers(1, 6, 200)})
    assert data.prepare(grades, "y", "test", "auto").task == "multiclass"
    assert data.prepare(grades, "y", "test", "regression").task == "regression"


@pytest.mark.parametrize(
    "y, task, message",
    [
        (["a", "b", "c", "d"] * 15, "regression", "target 'y' is not numeric"),
        ([1.5] * 60, "regression", "target 'y' is constant"),
        ([0, 1, 2] * 20, "binary", "has 3 classes; binary needs exactly two"),
        (
            [f"name{i % 30}" for i in range(60)],
            "auto",
            "30 distinct values: too many for class labels",
        ),
        ([0, 1] * 30, "ordinal", "unknown task 'ordinal'"),
    ],
)
def test_a_target_that_cannot_serve_the_task_is_named(y, task, message):
    frame = pd.DataFrame({"x": np.arange(60.0), "y": y})
    with pytest.raises(data.DataError, match=message):
        data.prepare(frame, "y", "test", task)


def test_segment_and_sensitive_columns_must_be_features():
    ds = data.prepare(
        pd.DataFrame({"age": range(60), "region": ["n", "s"] * 30, "y": [0, 1] * 30}),
        "y",
        "test",
        "auto",
    )
    assert data.column_list(" region, age ,", ds, "--segments") == ("region", "age")
    assert data.column_list("", ds, "--segments") == ()
    with pytest.raises(
        data.DataError, match=r"--sensitive: 'y', 'sex' is not a feature column; .* age, region"
    ):
        data.column_list("y,sex", ds, "--sensitive")


def test_model_types_per_task():
    for task, kinds in (("regression", pipeline.REGRESSORS), ("binary", pipeline.CLASSIFIERS)):
        for kind in kinds:
            pipeline.check(kind, task)
    with pytest.raises(
        ValueError, match="'logreg' is not for regression; choose one of gbm, rf, linear"
    ):
        pipeline.check("logreg", "regression")
    with pytest.raises(ValueError, match="'linear' is not for multiclass"):
        pipeline.check("linear", "multiclass")


def test_regression_metrics_against_their_definitions():
    y, predicted = np.array([2.0, 4.0, 8.0]), np.array([3.0, 4.0, 6.0])
    m = evaluate_regression(y, predicted)
    assert m["rmse"] == pytest.approx(np.sqrt(5 / 3)) and m["mae"] == pytest.approx(1.0)
    assert m["mape"] == pytest.approx((0.5 + 0 + 0.25) / 3)
    assert m["r2"] == pytest.approx(1 - 5 / (((y - y.mean()) ** 2).sum()))


def test_gate_on_an_error_metric_lower_is_better():
    # the ceiling: the RMSE of predicting the training mean
    assert gate.decide("rmse", 2.0, 3.0, 0.01).approved
    above = gate.decide("rmse", 3.0, 3.0, 0.01)
    assert not above.approved and above.reason == "rmse 3.0000 is not below the ceiling 3.0000"
    # the tolerance is a share of the champion's error: 1% of 2.0
    assert gate.decide("rmse", 2.019, 3.0, 0.01, champion=2.0, champion_version="1").approved
    worse = gate.decide("rmse", 2.03, 3.0, 0.01, champion=2.0, champion_version="1")
    assert (
        not worse.approved
        and "worse than champion version 1's 2.0000 by more than 1% of its error" in worse.reason
    )
    assert gate.decide("rmse", 1.5, 3.0, 0.01, champion=2.0, champion_version="1").approved
    assert not gate.decide("rmse", float("nan"), 3.0, 0.01).approved


def test_review_holds_a_candidate_that_loses_on_trusted_rows():
    recent = gate.decide("roc_auc", 0.745, 0.6, 0.01, champion=0.25, champion_version="1")
    lied = gate.review(recent, trusted_candidate=0.33, trusted_champion=0.72)
    assert (
        not lied.approved
        and lied.needs_review
        and lied.status.startswith("needs_review: on the trusted holdout")
    )
    assert (
        gate.alias_for(lied, "auto") == "challenger"
        and gate.alias_for(lied, "always") == "production"
    )
    assert (
        lied.to_dict()["trusted_candidate"] == 0.33 and lied.to_dict()["trusted_champion"] == 0.72
    )
    moved = gate.review(
        recent, trusted_candidate=0.73, trusted_champion=0.746
    )  # adapted to a new market
    assert moved.approved and moved.status == "approved"
    rejected = gate.decide("roc_auc", 0.55, 0.6, 0.01)
    assert gate.review(rejected, 0.2, 0.7).status.startswith("rejected:")  # rejected stays rejected
    assert gate.review(
        recent, float("nan"), 0.7
    ).needs_review  # a score it cannot compute is no pass
    assert gate.review(recent, 0.2, None).approved  # no champion score: nothing to hold it against
    error = gate.decide("rmse", 2.0, 3.0, 0.01, champion=2.5, champion_version="4")
    assert gate.review(
        error, trusted_candidate=2.09, trusted_champion=2.0
    ).approved  # within 5% of its error
    assert gate.review(error, trusted_candidate=2.2, trusted_champion=2.0).needs_review
