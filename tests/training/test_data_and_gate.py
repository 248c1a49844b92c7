"""Data checks and the gate's rule, on their own (the real runs are in test_project.py)."""

import numpy as np
import pandas as pd
import pytest

from training import data, gate
from training.evaluate import evaluate, expected_calibration_error


def test_text_in_a_numeric_column_is_named(tmp_path):
    frame = pd.DataFrame({"x": [str(i) for i in range(100)], "y": [0, 1] * 50})
    frame.loc[[3, 7], "x"] = ["abc", "n/a!"]
    with pytest.raises(data.DataError, match=r"column 'x' looks numeric but 2 of 100 values are not numbers"):
        data.prepare(frame, "y", "test")


def test_identifier_column_is_refused():
    frame = pd.DataFrame({"id": [f"c{i}x" for i in range(300)], "y": [0, 1] * 150})
    with pytest.raises(data.DataError, match="'id' is text with 300 distinct values"):
        data.prepare(frame, "y", "test")


def test_features_are_cast_for_a_stable_signature():
    frame = pd.DataFrame({"n": range(60), "flag": [True, False] * 30, "c": ["a", None, "b"] * 20, "y": [0, 1] * 30})
    ds = data.prepare(frame, "y", "test")
    assert ds.numeric == ["n"] and ds.categorical == ["flag", "c"]
    assert ds.frame["n"].dtype == "float64"
    assert ds.frame["c"].isna().sum() == 20 and set(ds.frame["flag"]) == {"True", "False"}


def test_digest_follows_the_content():
    frame = pd.DataFrame({"n": np.arange(60.0), "y": [0, 1] * 30})
    first = data.prepare(frame, "y", "a").digest
    assert first == data.prepare(frame.copy(), "y", "b").digest
    frame.loc[0, "n"] = 99.0
    assert data.prepare(frame, "y", "a").digest != first


def test_gate_floor_tolerance_and_champion():
    assert gate.decide("roc_auc", 0.80, 0.6, 0.01).approved
    below = gate.decide("roc_auc", 0.55, 0.6, 0.01)
    assert not below.approved and below.status.startswith("rejected: roc_auc 0.5500 is below the floor")
    assert gate.decide("roc_auc", 0.795, 0.6, 0.01, champion=0.80, champion_version="3").approved
    worse = gate.decide("roc_auc", 0.78, 0.6, 0.01, champion=0.80, champion_version="3")
    assert not worse.approved and "champion version 3" in worse.reason
    assert not gate.decide("roc_auc", float("nan"), 0.6, 0.01).approved


def test_promote_modes():
    ok, bad = gate.decide("m", 1.0, 0.0, 0.0), gate.decide("m", 0.0, 0.5, 0.0)
    assert gate.alias_for(ok, "auto") == "production" and gate.alias_for(bad, "auto") == "challenger"
    assert gate.alias_for(bad, "always") == "production" and gate.alias_for(ok, "never") == "challenger"
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
    conf = np.array([0.8, 0.9, 0.6, 0.9, 0.7]); correct = np.array([1, 1, 0, 1, 1])
    by_hand = sum(abs(correct[b].sum() - conf[b].sum()) for b in ([0], [1, 3], [2], [4])) / 5
    assert expected_calibration_error(y, proba, np.array([0, 1])) == pytest.approx(by_hand)


def test_multiclass_metrics():
    y = np.array(["a", "b", "c", "a"])
    proba = np.array([[0.7, 0.2, 0.1], [0.1, 0.8, 0.1], [0.5, 0.2, 0.3], [0.6, 0.3, 0.1]])
    m = evaluate(y, proba, np.array(["a", "b", "c"]))
    assert m["accuracy"] == pytest.approx(0.75) and 0 <= m["roc_auc"] <= 1
