"""The calculators' contract: fitted on a reference, they judge windows against bounds
grounded in it, for every task; what was not computed is absent."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from modelwatch.monitoring.calculators.base import Bounds, reference_chunks
from modelwatch.monitoring.calculators.classification import (
    EstimatedClassification,
    RealizedClassification,
)
from modelwatch.monitoring.calculators.regression import EstimatedRegression, RealizedRegression
from modelwatch.monitoring.reference import MonitoringReference
from modelwatch.monitoring.suite import fit_calculators
from sklearn import metrics as skm
from sklearn.isotonic import IsotonicRegression

from modelwatch.log.scored import Scored


def calibrated_binary(n: int, seed: int, threshold: float = 0.5, shift: float = 0.0) -> Scored:
    """A model whose probabilities are calibrated: y ~ Bernoulli(p). `shift` moves the
    inputs (covariate shift: P(y | x) holds, so the estimate must follow accuracy)."""
    rng = np.random.default_rng(seed)
    x = rng.normal(loc=shift, size=n)
    p = 1 / (1 + np.exp(-2 * x))
    y = (rng.uniform(size=n) < p).astype(int)
    pred = (p > threshold).astype(int)
    return Scored(
        pd.DataFrame({"x": x}),
        pred.astype(str).astype(object),
        y.astype(str).astype(object),
        "binary",
        np.column_stack([1 - p, p]),
        ["0", "1"],
    )


def calibrated_multiclass(n: int, seed: int, k: int = 4) -> Scored:
    rng = np.random.default_rng(seed)
    logits = rng.normal(scale=1.5, size=(n, k))
    p = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    y = np.array([rng.choice(k, p=row) for row in p])
    classes = [str(c) for c in range(k)]
    return Scored(
        pd.DataFrame({"x": logits[:, 0]}),
        np.array(classes, dtype=object)[p.argmax(axis=1)],
        np.array(classes, dtype=object)[y],
        "multiclass",
        p,
        classes,
    )


def test_chunks_are_disjoint_when_the_reference_is_large_and_bootstrapped_otherwise():
    big = reference_chunks(12_000, 2000)
    assert len(big) == 6 and np.array_equal(np.sort(np.concatenate(big)), np.arange(12_000))
    small = reference_chunks(3000, 2000)
    assert len(small) == 30 and all(len(c) == 2000 and c.max() < 3000 for c in small)


def test_bounds_widen_for_a_small_window_and_clip_to_the_metric_range():
    b = Bounds.from_chunks(
        [0.95, 0.97, 0.99, 0.96], chunk_rows=1000, direction="higher", floor=0.0, ceiling=1.0
    )
    assert b.lower(100) < b.lower(1000) < b.mean and b.upper(1000) is None
    assert Bounds.from_chunks([0.5], chunk_rows=10) is None  # one chunk: no spread to judge by
    error = Bounds.from_chunks([10.0, 12.0, 11.0], chunk_rows=500, direction="lower", floor=0.0)
    assert error.lower(500) is None and error.upper(500) > 12


@pytest.mark.parametrize("threshold", [0.5, 0.65])
def test_estimated_binary_metrics_follow_realized_ones_at_the_served_threshold(threshold):
    estimator = EstimatedClassification(chunk_rows=2000).fit(
        calibrated_binary(20_000, 0, threshold)
    )
    for seed, shift in ((1, 0.0), (2, 0.8), (3, -1.0)):
        window = calibrated_binary(5000, seed, threshold, shift)
        got = {m.name: m.value for m in estimator.calculate(window).metrics}
        y, pred = window.label == "1", window.prediction == "1"
        assert got["estimated_accuracy"] == pytest.approx(np.mean(y == pred), abs=0.02)
        assert got["estimated_f1"] == pytest.approx(skm.f1_score(y, pred), abs=0.03)
        assert got["estimated_roc_auc"] == pytest.approx(
            skm.roc_auc_score(y, window.proba[:, 1]), abs=0.02
        )


def test_estimate_uses_the_served_predictions_not_the_argmax():
    estimator = EstimatedClassification(chunk_rows=2000).fit(calibrated_binary(20_000, 0))
    window = calibrated_binary(8000, 4, threshold=0.8)
    argmax = Scored(
        window.features,
        (window.proba[:, 1] > 0.5).astype(int).astype(str).astype(object),
        window.label,
        "binary",
        window.proba,
        window.classes,
    )
    served = estimator.calculate(window).get("estimated_accuracy").value
    realized = float(np.mean(window.label == window.prediction))
    assert served == pytest.approx(realized, abs=0.015)
    assert abs(estimator.calculate(argmax).get("estimated_accuracy").value - realized) > 0.03


def test_multiclass_estimates_accuracy_and_macro_f1():
    estimator = EstimatedClassification(chunk_rows=2000).fit(calibrated_multiclass(12_000, 0))
    window = calibrated_multiclass(5000, 1)
    got = {m.name: m.value for m in estimator.calculate(window).metrics}
    assert "estimated_roc_auc" not in got  # binary only
    assert got["estimated_accuracy"] == pytest.approx(
        np.mean(window.label == window.prediction), abs=0.02
    )
    macro = skm.f1_score(window.label.astype(str), window.prediction.astype(str), average="macro")
    assert got["estimated_f1"] == pytest.approx(macro, abs=0.03)


def nannyml_half_width(realized: list[float], chunk_rows: int, reference_rows: int) -> float:
    """NannyML's StandardDeviationThreshold (mean +- 3 * np.std of the realized metric on
    the reference chunks), with modelwatch's two documented differences: the unbiased
    std (ddof=1) and the widening by the reference mean's own sampling error."""
    n = len(realized)
    return 3 * np.std(realized) * np.sqrt(n / (n - 1)) * np.sqrt(1 + chunk_rows / reference_rows)


def test_estimates_are_bounded_by_the_realized_metrics_spread_as_nannyml_does():
    reference = calibrated_multiclass(12_000, 0)
    estimator = EstimatedClassification(chunk_rows=2000).fit(reference)
    chunks = [reference.take(rows) for rows in reference_chunks(len(reference), 2000)]
    realized = [np.mean(c.label == c.prediction) for c in chunks]
    bounds = estimator.bounds["estimated_accuracy"]
    assert bounds.mean == pytest.approx(np.mean(realized))
    assert bounds.mean - bounds.lower(2000) == pytest.approx(
        nannyml_half_width(realized, 2000, 12_000)
    )
    scores = {"estimated_accuracy": 1.0, "estimated_f1": 1.0}
    assert {n: b.ceiling for n, b in estimator.bounds.items() if b} == scores  # clipped to [0, 1]
    regression_reference = regression(6000, 0)
    dle = EstimatedRegression(chunk_rows=1000)
    dle.fit_bounds(regression_reference)  # the bounds alone: the loss models are not needed
    errors = [
        np.mean(np.abs(c.label.astype(float) - c.prediction))
        for c in (regression_reference.take(r) for r in reference_chunks(6000, 1000))
    ]
    mae = dle.bounds["estimated_mae"]
    assert mae.mean == pytest.approx(np.mean(errors))
    assert mae.upper(1000) - mae.mean == pytest.approx(nannyml_half_width(errors, 1000, 6000))
    assert mae.lower(1000) is None and mae.floor == 0.0


def test_healthy_windows_do_not_alert_and_a_drop_of_a_few_points_does():
    reference = calibrated_binary(20_000, 0)
    realized = RealizedClassification(chunk_rows=1000).fit(reference)
    estimated = EstimatedClassification(chunk_rows=1000).fit(reference)
    alerts = [
        m.name
        for seed in range(10, 40)
        for c in (realized, estimated)
        for m in c.calculate(calibrated_binary(1000, seed)).metrics
        if m.alert
    ]
    assert alerts == []
    # covariate shift towards the decision boundary: accuracy falls about 4 points
    shifted = calibrated_binary(1000, 50, shift=0.0)
    shifted.proba = np.clip(shifted.proba * 0.6 + 0.2, 0, 1)  # scores squeezed toward 0.5
    assert estimated.calculate(shifted).get("estimated_accuracy").alert


def test_no_labels_means_no_realized_metric_rather_than_zero():
    realized = RealizedClassification(chunk_rows=1000).fit(calibrated_binary(5000, 0))
    window = calibrated_binary(500, 1)
    window.label = np.full(500, None, dtype=object)
    assert realized.calculate(window).metrics == []


def test_realized_metrics_are_sklearns_on_the_labelled_rows():
    window = calibrated_binary(4000, 41)
    window.label[np.random.default_rng(0).random(4000) < 0.3] = None  # labels that have not arrived
    known = window.labelled
    realized = RealizedClassification(chunk_rows=1000).fit(calibrated_binary(5000, 0))
    got = {m.name: m.value for m in realized.calculate(window).metrics}
    y, pred = window.label[known] == "1", window.prediction[known] == "1"
    assert realized.calculate(window).details.rows == known.sum()
    assert got["live_accuracy"] == pytest.approx(skm.accuracy_score(y, pred))
    assert got["live_f1"] == pytest.approx(skm.f1_score(y, pred))
    assert got["live_roc_auc"] == pytest.approx(skm.roc_auc_score(y, window.proba[known, 1]))


def test_realized_multiclass_is_macro_f1_and_one_vs_rest_auc():
    reference, window = calibrated_multiclass(3000, 0), calibrated_multiclass(2000, 1)
    got = {
        m.name: m.value
        for m in RealizedClassification(chunk_rows=500).fit(reference).calculate(window).metrics
    }
    y, pred = window.label.astype(str), window.prediction.astype(str)
    assert got["live_f1"] == pytest.approx(skm.f1_score(y, pred, average="macro"))
    assert got["live_roc_auc"] == pytest.approx(
        skm.roc_auc_score(y, window.proba, multi_class="ovr")
    )
    missing = window.take(np.flatnonzero(window.label != "3"))  # a class with no example: no AUC
    assert (
        RealizedClassification(chunk_rows=500).fit(reference).calculate(missing).get("live_roc_auc")
        is None
    )


def test_calibration_is_isotonic_regression_of_the_positive_class():
    reference = calibrated_binary(8000, 0)
    reference.proba = reference.proba ** [[1, 2]] / (reference.proba ** [[1, 2]]).sum(
        axis=1, keepdims=True
    )
    estimator = EstimatedClassification(chunk_rows=1000).fit(reference)  # an under-confident model
    iso = IsotonicRegression(y_min=0, y_max=1, out_of_bounds="clip").fit(
        reference.proba[:, 1], reference.label == "1"
    )
    grid = np.linspace(-0.1, 1.1, 301)
    calibrated = estimator.calibrated(np.column_stack([1 - grid, grid]))
    np.testing.assert_allclose(calibrated[:, 1], iso.predict(grid))
    np.testing.assert_allclose(calibrated.sum(axis=1), 1.0)
    # expected accuracy: calibrated P(positive) where the model served positive, else 1 - it
    window = calibrated_binary(3000, 1)
    q = iso.predict(window.proba[:, 1])
    expected = np.where(window.prediction == "1", q, 1 - q).mean()
    assert estimator.calculate(window).get("estimated_accuracy").value == pytest.approx(expected)


def test_realized_accuracy_falls_within_the_estimates_sampling_error():
    estimator = EstimatedClassification(chunk_rows=2000).fit(calibrated_binary(20_000, 0))
    misses = 0
    for seed in range(1, 21):
        window = calibrated_binary(2000, seed)
        c = estimator.calibrated(window.proba)[
            np.arange(2000), (window.prediction == "1").astype(int)
        ]
        se = estimator.sampling_error(window)
        assert se == pytest.approx(np.sqrt(np.sum(c * (1 - c))) / 2000)
        realized = np.mean(window.label == window.prediction)
        misses += (
            abs(estimator.calculate(window).get("estimated_accuracy").value - realized)
            > 3 * se + 0.005
        )
    assert misses <= 1


def test_a_binary_reference_round_trips_to_the_same_estimates(tmp_path):
    scored = calibrated_binary(6000, 3)
    reference = MonitoringReference.from_scores(
        scored.features, scored.label, scored.prediction, scored.proba, scored.classes, target="y"
    )
    loaded = MonitoringReference.load(reference.save(tmp_path / "reference"))
    window = calibrated_binary(2000, 4)

    def estimates(ref):
        estimator = next(
            c
            for c in fit_calculators(ref, chunk_rows=1000)
            if isinstance(c, EstimatedClassification)
        )
        return [(m.name, m.value, m.lower) for m in estimator.calculate(window).metrics]

    assert estimates(loaded) == estimates(reference)


def regression(n: int, seed: int, scale: float = 1.0) -> Scored:
    rng = np.random.default_rng(seed)
    x = rng.uniform(-1, 1, n)
    region = rng.choice(["north", "south"], n)
    noise = np.where(region == "south", 2.0, 0.5) * scale
    y = 3 * x + rng.normal(scale=noise)
    return Scored(pd.DataFrame({"x": x, "region": region}), 3 * x, y.astype(object), "regression")


@pytest.mark.slow  # computes for many seconds: `make test` runs it, `make test-fast` does not
def test_direct_loss_estimation_follows_the_error_of_a_changed_mix():
    estimator = EstimatedRegression(chunk_rows=1000).fit(regression(8000, 0))
    realized = RealizedRegression(chunk_rows=1000).fit(regression(8000, 0))
    south = regression(6000, 1)
    south = south.take(
        np.flatnonzero(south.features["region"].to_numpy() == "south")
    )  # only the noisy region
    est, real = estimator.calculate(south), realized.calculate(south)
    assert est.get("estimated_mae").value == pytest.approx(real.get("live_mae").value, rel=0.1)
    assert est.get("estimated_rmse").value == pytest.approx(real.get("live_rmse").value, rel=0.1)
    assert est.get("estimated_mae").alert and real.get("live_mae").alert


@pytest.mark.slow  # computes for many seconds: `make test` runs it, `make test-fast` does not
def test_reference_round_trips_and_fits_the_calculators_of_its_task(tmp_path):
    scored = regression(3000, 2)
    reference = MonitoringReference.from_scores(
        scored.features, scored.label, scored.prediction, target="y"
    )
    assert reference.task == "regression"
    loaded = MonitoringReference.load(reference.save(tmp_path / "reference"))
    names = {c.name for c in fit_calculators(loaded, chunk_rows=500)}
    assert {"realized_regression", "estimated_regression", "feature_drift", "integrity"} <= names
    assert "estimated_classification" not in names
    unlabelled = MonitoringReference.from_scores(
        scored.features, None, scored.prediction, task="regression"
    )
    assert {c.name for c in fit_calculators(unlabelled, 500)} == {
        "feature_drift",
        "integrity",
        "multivariate_drift",
        "prediction_drift",
    }
