"""partial, merge and finish: a window split into parts is judged as the whole window.

For each calculator and data set, the window's rows are split into k random parts, each
part's aggregate computed, the aggregates merged in a random order and finished: every
verdict must equal `calculate` on the whole window, every statistic be within the bound
the calculator states (exact below the sketches' exact limits; for binned columns and
scores, the bound in `details["error_bounds"]`, against the exact statistic).
"""

from __future__ import annotations

import copy
import json
import pickle

import numpy as np
import pandas as pd
import pytest
from modelwatch.monitoring.batch.plan import Plan
from modelwatch.monitoring.calculators import mergeable
from modelwatch.monitoring.calculators.classification import (
    EstimatedClassification,
    RealizedClassification,
    _expected_auc,
)
from modelwatch.monitoring.calculators.inputs import FeatureDrift, PredictionDrift
from modelwatch.monitoring.drift import detect_drift, sketch
from modelwatch.monitoring.drift.prediction import prediction_drift
from modelwatch.monitoring.suite import fit_calculators
from modelwatch.monitoring.window import evaluate
from sklearn import metrics as skm

from modelwatch.log.scored import Scored
from tests.monitoring.batch_frames import CASES, assert_close, case, statistics, verdicts

EXACT = 1e-9


def split_and_merge(plan: Plan, rows: pd.DataFrame, k: int, rng: np.random.Generator):
    """The plan's window of `rows` from k random parts, merged in a random order, each
    aggregate through pickle as an engine ships it."""
    assignment = rng.integers(0, k, len(rows))
    parts = [
        pickle.loads(pickle.dumps(plan.partial(rows[assignment == i].reset_index(drop=True))))
        for i in rng.permutation(k)
        if (assignment == i).any()
    ]
    total = None
    for part in parts:
        total = plan.merge(total, part)
    return plan.finish(total)


def assert_same_window(whole, merged, tolerance: float = EXACT) -> None:
    assert verdicts(merged) == verdicts(whole)
    expected, got = statistics(whole), statistics(merged)
    assert got.keys() == expected.keys()
    for key, value in expected.items():
        assert got[key] == pytest.approx(value, rel=tolerance, abs=tolerance, nan_ok=True), key


@pytest.fixture(scope="module", params=CASES)
def fitted(request):
    name = request.param
    reference, rows = case(
        name, rows=4000 if name == "credit" else 0, drift=name in ("credit", "breast_cancer")
    )
    chunk_rows = 500 if name == "credit" else 40
    segments = ("channel", "income") if name == "credit" else ()
    return name, reference, fit_calculators(reference, chunk_rows, segments=segments), rows


@pytest.mark.parametrize("k", [2, 3, 7])
def test_parts_merge_into_the_whole_window(fitted, k):
    name, reference, calculators, rows = fitted
    whole = evaluate("1", copy.deepcopy(calculators), reference, rows)
    merged = split_and_merge(Plan("1", calculators, reference), rows, k, np.random.default_rng(k))
    assert_same_window(whole, merged)
    assert merged.rows == whole.rows == len(rows)
    if name == "credit":  # the drifted case must have something to agree on, segments too
        assert verdicts(whole)["drifted"] and whole.segments
        assert_close(
            json.loads(json.dumps(merged.segments)), json.loads(json.dumps(whole.segments))
        )


def test_calculate_is_finish_of_partial(fitted):
    _, reference, calculators, rows = fitted
    scored = reference.window(rows)
    for calculator in calculators:
        one, two = copy.deepcopy(calculator), copy.deepcopy(calculator)
        a, b = one.calculate(scored), two.finish(two.partial(scored))
        assert [(m.name, m.labels, m.value, m.alert) for m in a.metrics] == [
            (m.name, m.labels, m.value, m.alert) for m in b.metrics
        ], calculator.name


def test_integrity_findings_survive_the_split():
    reference, rows = case("credit", rows=4000, seed=3)
    rows = rows.copy()
    rows[["age", "debt_to_income"]] = rows[
        ["debt_to_income", "age"]
    ].to_numpy()  # wired the wrong way round
    rows.loc[rows.index[::3], "income"] = np.nan
    calculators = fit_calculators(reference, 500)
    whole = evaluate("1", copy.deepcopy(calculators), reference, rows)
    kinds = {(i["kind"], tuple(i["columns"])) for i in whole.integrity}
    assert ("swapped_columns", ("age", "debt_to_income")) in kinds and (
        "missing",
        ("income",),
    ) in kinds
    assert_same_window(
        whole, split_and_merge(Plan("1", calculators, reference), rows, 5, np.random.default_rng(0))
    )


# -- past the exact limits: binned columns and scores, within their stated bounds ----------------
@pytest.fixture(scope="module")
def big():
    """A window with more distinct values per column than a sketch keeps exactly."""
    reference, rows = case("credit", rows=8000, seed=5, drift=True)
    from modelwatch.training.simulator import generate

    extra = generate(3 * mergeable.EXACT_ROWS, "covariate", seed=9).drop(columns="defaulted")
    jitter = np.random.default_rng(9).uniform(size=len(extra))
    # the simulator rounds (incomes to the hundred): a little jitter makes them continuous
    extra["income"] += 50 * jitter
    extra["debt_to_income"] += 1e-4 * jitter
    extra["age"] += 0.5 * jitter
    assert len(extra) > sketch.EXACT_VALUES
    return reference, extra


def test_binned_feature_drift_within_its_bound(big):
    reference, extra = big
    drift = FeatureDrift(reference.profile, 2000).fit(reference.scored())
    scored = _scored(reference, extra)
    parts = [drift.partial(scored.take(np.arange(i, len(scored), 4))) for i in range(4)]
    total = parts[0]
    for part in parts[1:]:
        total = drift.merge(total, part)
    result = drift.finish(total)
    assert result.details.error_bounds, "the big window's numeric columns are binned"
    exact = detect_drift(reference.profile, extra, drift_share=drift.share_upper)
    for name, column in exact.columns.items():
        got = result.details.drift["columns"][name]
        bound = result.details.error_bounds.get(name, 0.0)
        assert abs(got["statistic"] - column.statistic) <= bound + EXACT, name
        assert got["drifted"] == column.drifted, name
    assert result.details.drift["dataset_drift"] == exact.dataset_drift
    one = drift.calculate(scored)  # the one-part case is the same sketch
    for name, column in one.details.drift["columns"].items():
        assert column["statistic"] == pytest.approx(
            result.details.drift["columns"][name]["statistic"], rel=EXACT
        )


def test_binned_scores_within_their_bound(big):
    reference, _ = big
    scored = reference.scored()
    many = scored.take(np.random.default_rng(0).integers(0, len(scored), 3 * mergeable.EXACT_ROWS))
    realized = RealizedClassification(2000).fit(scored)
    estimated = EstimatedClassification(2000).fit(scored)
    for calculator, exact in (
        (realized, _realized_auc(many)),
        (estimated, _estimated_auc(estimated, many)),
    ):
        parts = [calculator.partial(many.take(np.arange(i, len(many), 3))) for i in range(3)]
        total = calculator.merge(calculator.merge(parts[0], parts[1]), parts[2])
        result = calculator.finish(total)
        name = f"{'live' if calculator is realized else 'estimated'}_roc_auc"
        bound = result.details.error_bounds[name]
        assert 0 < bound < 0.01
        assert abs(result.get(name).value - exact) <= bound + EXACT


def test_binned_prediction_drift_within_its_bound(big):
    reference, _ = big
    scored = reference.scored()
    many = scored.take(np.random.default_rng(1).integers(0, len(scored), 3 * mergeable.EXACT_ROWS))
    many.proba = np.clip(
        many.proba + np.random.default_rng(2).normal(0, 1e-6, many.proba.shape), 0, 1
    )
    drift = PredictionDrift().fit(scored)
    result = drift.finish(
        drift.merge(
            drift.partial(many.take(np.arange(0, len(many), 2))),
            drift.partial(many.take(np.arange(1, len(many), 2))),
        )
    )
    exact = prediction_drift(drift.profile, many.proba[:, 1])
    assert (
        abs(result.get("prediction_drift_score").value - exact.statistic)
        <= result.details.error_bound + EXACT
    )
    assert result.get("prediction_drift_score").alert == exact.drifted


def _scored(reference, features: pd.DataFrame):

    n = len(features)
    return Scored(
        features.reset_index(drop=True), np.full(n, "0", dtype=object), np.full(n, None), "binary"
    )


def _realized_auc(scored) -> float:
    return float(
        skm.roc_auc_score(scored.label.astype(str) == scored.classes[1], scored.proba[:, 1])
    )


def _estimated_auc(estimator, scored) -> float:
    return _expected_auc(scored.proba[:, 1], estimator.calibrated(scored.proba)[:, 1])


def test_only_the_spark_engine_imports_pyspark():
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    importers = sorted(
        str(p.relative_to(root))
        for folder in ("modelwatch", "monitoring", "serving", "training")
        for p in (root / folder).rglob("*.py")
        if "pyspark" in p.read_text()
        and any(
            line.lstrip().startswith(("import pyspark", "from pyspark"))
            for line in p.read_text().splitlines()
        )
    )
    assert importers == ["monitoring/batch/spark.py"]
    code = (
        "import sys, modelwatch.cli, modelwatch.cli.monitor_batch, modelwatch.monitoring.batch.local; "
        "modelwatch.cli.build_parser(); assert 'pyspark' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
