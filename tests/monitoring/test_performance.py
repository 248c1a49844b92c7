import json

import numpy as np
import pandas as pd
import pytest
from sklearn import metrics
from sklearn.isotonic import IsotonicRegression

from monitoring.performance import estimate_performance, join_labels, realized_performance
from training.calibration import ConfidenceCalibrator


@pytest.fixture
def binary():
    rng = np.random.default_rng(41)
    p = rng.beta(2, 3, 4000)
    y = (rng.random(4000) < p).astype(int)
    proba = np.column_stack([1 - p, p])
    return p, y, proba, (p > 0.5).astype(int)


def test_realized_metrics_match_sklearn_on_labelled_rows(binary):
    p, y, proba, pred = binary
    rng = np.random.default_rng(0)
    labels = pd.Series(y, dtype="Int64")
    labels[rng.random(len(y)) < 0.3] = pd.NA
    known = labels.notna().to_numpy()
    out = realized_performance(labels, pred, proba)
    yk, pk = y[known], pred[known]
    assert out["n_predictions"] == 4000 and out["n_labelled"] == known.sum()
    assert out["label_coverage"] == pytest.approx(known.mean())
    assert out["accuracy"] == pytest.approx(metrics.accuracy_score(yk, pk))
    assert out["precision"] == pytest.approx(metrics.precision_score(yk, pk))
    assert out["recall"] == pytest.approx(metrics.recall_score(yk, pk))
    assert out["f1"] == pytest.approx(metrics.f1_score(yk, pk))
    assert out["roc_auc"] == pytest.approx(metrics.roc_auc_score(yk, p[known]))
    # labels as floats (a NaN-padded column) and 1-D probabilities work the same
    out2 = realized_performance(labels.astype(float), pred, p)
    assert out2 == out


def test_no_labels_and_multiclass():
    out = realized_performance([None, None], [0, 1])
    assert out["label_coverage"] == 0 and out["accuracy"] is None
    y = np.array(["a", "b", "c", "a", "b", "c", "a"])
    pred = np.array(["a", "b", "b", "a", "c", "c", "a"])
    proba = np.eye(3)[[0, 1, 1, 0, 2, 2, 0]] * 0.7 + 0.1
    out = realized_performance(y, pred, proba, classes=["a", "b", "c"])
    assert out["f1"] == pytest.approx(metrics.f1_score(y, pred, average="macro"))
    assert out["roc_auc"] == pytest.approx(metrics.roc_auc_score(y, proba, multi_class="ovr"))


def test_join_labels_keeps_unlabelled_and_last_feedback():
    preds = pd.DataFrame({"prediction_id": ["a", "b", "c"], "prediction": [1, 0, 1]})
    labels = pd.DataFrame({"prediction_id": ["a", "c", "c"], "label": [1, 1, 0]})
    joined = join_labels(preds, labels)
    assert joined["label"].isna().tolist() == [False, True, False]
    assert joined.loc[2, "label"] == 0


def test_calibrator_is_isotonic_regression_and_roundtrips(tmp_path, binary):
    p, y, proba, _ = binary
    cal = ConfidenceCalibrator.fit(proba, y, classes=[0, 1])
    iso = IsotonicRegression(y_min=0, y_max=1, out_of_bounds="clip").fit(p, y)
    grid = np.linspace(-0.1, 1.1, 301)
    np.testing.assert_allclose(cal.positive_probability(grid), iso.predict(grid))
    path = cal.save(tmp_path / "cal")
    assert json.loads(path.read_text())["mode"] == "binary"  # plain JSON
    loaded = ConfidenceCalibrator.load(tmp_path / "cal")
    np.testing.assert_array_equal(loaded.expected_correct(proba), cal.expected_correct(proba))
    # expected correctness: calibrated P(positive) when predicting positive, else 1 - it
    ec = cal.expected_correct(proba)
    q = iso.predict(p)
    np.testing.assert_allclose(ec, np.where(p > 0.5, q, 1 - q))


def test_top_class_calibrator_for_multiclass():
    rng = np.random.default_rng(5)
    logits = rng.normal(size=(3000, 3)) * 2
    proba = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    y = np.array([rng.choice(3, p=row) for row in proba])
    cal = ConfidenceCalibrator.fit(proba, y, classes=[0, 1, 2])
    assert cal.mode == "top_class"
    est = estimate_performance(proba, cal)
    assert est["estimated_accuracy"] == pytest.approx((proba.argmax(1) == y).mean(), abs=0.01)
    assert est["estimated_precision"] is None


def test_estimation_tracks_accuracy_on_fresh_data_within_its_error(binary):
    p, y, proba, pred = binary
    cal = ConfidenceCalibrator.fit(proba, y, classes=[0, 1])
    rng = np.random.default_rng(9)
    p2 = rng.beta(2, 3, 4000)
    y2 = (rng.random(4000) < p2).astype(int)
    est = estimate_performance(np.column_stack([1 - p2, p2]), cal)
    real = realized_performance(y2, (p2 > 0.5).astype(int), p2)
    assert abs(est["estimated_accuracy"] - real["accuracy"]) < 4 * est["estimated_accuracy_se"] + 0.01
    assert abs(est["estimated_f1"] - real["f1"]) < 0.04
