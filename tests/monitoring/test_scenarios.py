"""Every simulator scenario gets the right verdict from the monitor's calculators.

A real sklearn model trained on baseline data, its monitoring reference built from a
separate holdout (as training builds it), and each scenario's window judged by
`modelwatch.monitoring.window.evaluate`, the monitor's own path.
"""

import numpy as np
import pandas as pd
import pytest
from modelwatch.monitoring.calculators.classification import EstimatedClassification
from modelwatch.monitoring.calculators.concept import ConceptDetails, ConceptDrift
from modelwatch.monitoring.concept import calibration_drift
from modelwatch.monitoring.integrity import check_integrity
from modelwatch.monitoring.reference import MonitoringReference
from modelwatch.monitoring.suite import fit_calculators
from modelwatch.monitoring.window import evaluate
from modelwatch.training.simulator import (
    CATEGORICAL_FEATURES,
    FEATURES,
    NUMERIC_FEATURES,
    TARGET,
    generate,
)
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, StandardScaler

CHUNK_ROWS = 2000  # the monitor's default window


@pytest.fixture(scope="module")
def model():
    """Imputes as training's pipeline does: the integrity scenarios serve missing values."""
    train = generate(20000, "baseline", seed=11)

    def logs(x):
        x = x.copy()
        x["income"], x["loan_amount"] = np.log(x["income"]), np.log(x["loan_amount"])
        return x

    pre = ColumnTransformer(
        [
            (
                "num",
                make_pipeline(
                    FunctionTransformer(logs), SimpleImputer(strategy="median"), StandardScaler()
                ),
                NUMERIC_FEATURES,
            ),
            ("cat", OneHotEncoder(handle_unknown="ignore"), CATEGORICAL_FEATURES),
        ]
    )
    return make_pipeline(pre, LogisticRegression(max_iter=1000)).fit(train[FEATURES], train[TARGET])


@pytest.fixture(scope="module")
def reference(model):
    """Holdout rows the model scored, with labels; the drift profile of baseline inputs."""
    holdout = generate(10000, "baseline", seed=12)
    proba = model.predict_proba(holdout[FEATURES])
    return MonitoringReference.from_scores(
        holdout[FEATURES],
        holdout[TARGET],
        model.classes_[proba.argmax(axis=1)],
        proba,
        model.classes_,
        TARGET,
        profile_rows=generate(10000, "baseline", seed=1)[FEATURES],
    )


@pytest.fixture(scope="module")
def calculators(reference):
    """Fitted once; the stateful concept-drift calculator is left out (see `judge`)."""
    return [c for c in fit_calculators(reference, CHUNK_ROWS) if c.name != "concept_drift"]


@pytest.fixture
def judge(model, reference, calculators):
    """Evaluate a scenario frame as a window of the prediction log, every row labelled,
    with a concept-drift calculator of its own (its error stream spans windows)."""
    estimator = next(c for c in calculators if isinstance(c, EstimatedClassification))

    def run(frame: pd.DataFrame):
        return evaluate(
            "1", calculators + [ConceptDrift(estimator)], reference, log_rows(model, frame)
        )

    return run


def log_rows(model, frame: pd.DataFrame) -> pd.DataFrame:
    """Rows as the prediction log returns them."""
    proba = model.predict_proba(frame[FEATURES])
    rows = frame[FEATURES].reset_index(drop=True)
    rows["prediction_id"] = [f"p{i}" for i in range(len(rows))]
    rows["ts"] = np.arange(len(rows), dtype=float)
    rows["prediction"] = model.classes_[proba.argmax(axis=1)]
    rows["probability"] = proba[:, 1]
    rows["label"] = frame[TARGET].to_numpy() if TARGET in frame else None
    return rows


def alerts(result) -> list[str]:
    return sorted({m.name for m in result.metrics if m.alert})


def drifted(result) -> list[str]:
    return [name for name, column in result.drift["columns"].items() if column["drifted"]]


def test_baseline_nothing(judge, reference):
    current = generate(2000, "baseline", seed=2)
    result = judge(current)
    assert alerts(result) == [] and drifted(result) == []
    assert check_integrity(reference.profile, current[FEATURES]) == []  # not even a warning


def test_covariate_income_and_region_drift(judge, reference):
    current = generate(2000, "covariate", seed=3)
    result = judge(current)
    assert drifted(result) == ["income", "region"]
    assert result.drift["columns"]["income"]["test"] == "wasserstein"
    assert result.drift["columns"]["region"]["test"] == "jensenshannon"
    # two columns of eleven: past the monitor's 15% (not Evidently's 50%), one verdict
    share = result.metric("dataset_drift_share")
    assert result.drift["drift_share"] == share.value == pytest.approx(2 / 11)
    assert result.drift["dataset_drift"] and share.alert
    assert result.drift["drift_share_threshold"] == share.upper < 2 / 11
    assert result.integrity == []  # new market: drift, not broken data
    kinds = {
        (i["kind"], tuple(i["columns"]), i["severity"])
        for i in check_integrity(reference.profile, current)
    }
    assert kinds == {("unseen_category", ("region",), "warning")}


def test_covariate_estimated_performance_tracks_realized(judge):
    result = judge(generate(10000, "covariate", seed=10))
    assert abs(result.value("estimated_accuracy") - result.value("live_accuracy")) <= 0.03
    assert abs(result.value("estimated_f1") - result.value("live_f1")) <= 0.05
    assert abs(result.value("estimated_roc_auc") - result.value("live_roc_auc")) <= 0.03
    assert not result.concept_drift  # P(y | x) held: estimate and labels agree


def test_concept_no_data_drift_but_labels_show_it(judge, calculators, model):
    current = generate(10000, "concept", seed=4)
    baseline = generate(10000, "baseline", seed=5)
    concept, base = judge(current), judge(baseline)
    assert drifted(concept) == [] and concept.integrity == []
    # estimation cannot see concept drift: it expects baseline accuracy ...
    assert abs(concept.value("estimated_accuracy") - base.value("live_accuracy")) < 0.01
    assert not concept.metric("estimated_accuracy").alert
    # ... while the labels tell another story
    assert concept.value("live_accuracy") < base.value("live_accuracy") - 0.01
    assert concept.value("live_roc_auc") < base.value("live_roc_auc") - 0.02
    assert concept.concept_drift and concept.details_of(ConceptDetails).divergence["drifted"]
    estimator = next(c for c in calculators if isinstance(c, EstimatedClassification))
    calibrated = estimator.calibrated(model.predict_proba(current[FEATURES]))[:, 1]
    assert calibration_drift(current[TARGET], calibrated)["drifted"]
    # and on baseline data neither label-based signal fires
    assert not base.concept_drift
    base_calibrated = estimator.calibrated(model.predict_proba(baseline[FEATURES]))[:, 1]
    assert not calibration_drift(baseline[TARGET], base_calibrated)["drifted"]


def test_integrity_swap_names_the_pair(judge):
    result = judge(generate(2000, "integrity_swap", seed=6))
    assert [(i["kind"], i["columns"], i["severity"]) for i in result.integrity] == [
        ("swapped_columns", ["age", "debt_to_income"], "error")
    ]
    assert result.metric("integrity_issue") is None  # labelled by kind and feature, never bare
    assert any(m.name == "integrity_issue" and m.alert for m in result.metrics)


def test_integrity_missing_income_share(judge):
    current = generate(2000, "integrity_missing", seed=7)
    result = judge(current)
    assert len(result.integrity) == 1
    issue = result.integrity[0]
    assert issue["kind"] == "missing" and issue["columns"] == ["income"]
    assert issue["share"] == pytest.approx(current["income"].isna().mean())
    assert 0.30 < issue["share"] < 0.40  # the web channel's share
    assert issue["reference_share"] == 0.0
    missing = {
        dict(m.labels)["feature"]: m.value
        for m in result.metrics
        if m.name == "integrity_missing_ratio"
    }
    assert missing["income"] == pytest.approx(issue["share"]) and missing["age"] == 0.0


def test_gradual_detected_once_it_matters(judge):
    early = judge(generate(2000, "gradual", seed=8, progress=(0.0, 0.05)))
    late = judge(generate(2000, "gradual", seed=9, progress=(0.6, 1.0)))
    assert drifted(early) == [] and not early.metric("dataset_drift_share").alert
    assert drifted(late) == ["income", "region"] and late.metric("dataset_drift_share").alert


@pytest.mark.slow  # computes for many seconds: `make test` runs it, `make test-fast` does not
def test_false_alarms_on_baseline_at_most_5_percent(judge, model):
    """Each alert the monitor raises, on small baseline windows, in at most 5% of them.

    Per-column flags are detail, not alerts: Evidently's per-column default for large
    references, normed Wasserstein >= 0.1, is a practical-size threshold, not a
    significance level, so in windows of a few hundred rows sampling noise alone reaches
    it in a few percent of columns; they are only held to 5% from windows of 2000 rows.
    """
    windows = [judge(generate(500, "baseline", seed=1000 + i)) for i in range(60)]
    counts = {}
    for result in windows:
        for name in set(alerts(result)) - {"drift_score"}:
            counts[name] = counts.get(name, 0) + 1
    assert all(n <= 0.05 * len(windows) for n in counts.values()), counts
    large = [judge(generate(2000, "baseline", seed=2000 + i)) for i in range(30)]
    assert sum(bool(drifted(r)) for r in large) <= 0.05 * len(large)


def test_a_small_reference_keeps_its_verdicts_on_baseline(model):
    """Under 1,000 rows the profile switches to p-value tests (KS / chi-square at 5% per
    column) and the bounds to bootstrap chunks: neither the dataset verdict, the drift
    share nor a performance bound fires on healthy traffic.

    A column's 5% false-positive rate is conditional on the one small reference drawn
    (Evidently's chi-square takes the reference's frequencies as exact): two columns of
    eleven flag in a quarter or more of healthy windows, so the share's bar rises above
    what half of the reference shows against the other half."""
    rows = generate(800, "baseline", seed=13)
    proba = model.predict_proba(rows[FEATURES])
    small = MonitoringReference.from_scores(
        rows[FEATURES],
        rows[TARGET],
        model.classes_[proba.argmax(axis=1)],
        proba,
        model.classes_,
        TARGET,
    )
    calculators = [c for c in fit_calculators(small, CHUNK_ROWS) if c.name != "concept_drift"]
    windows = [
        evaluate("1", calculators, small, log_rows(model, generate(500, "baseline", seed=3000 + i)))
        for i in range(30)
    ]
    assert sum(r.drift["dataset_drift"] for r in windows) <= 0.05 * len(windows)
    assert sum(r.metric("dataset_drift_share").alert for r in windows) <= 0.05 * len(windows)
    performance = [name for r in windows for name, m in r.performance.items() if m["alert"]]
    assert len(performance) <= 0.05 * len(windows), performance


def test_multivariate_and_prediction_drift_by_scenario(judge):
    for scenario, expected in [("baseline", False), ("covariate", True), ("integrity_swap", True)]:
        result = judge(generate(2000, scenario, seed=20))
        assert result.metric("multivariate_reconstruction_error").alert is expected, scenario
    # income falling raises default risk: the model's scores move with it
    assert judge(generate(2000, "covariate", seed=21)).metric("prediction_drift_score").alert
    assert not judge(generate(2000, "baseline", seed=22)).metric("prediction_drift_score").alert
