"""What the model was given: feature drift, integrity, multivariate and prediction drift.

Each wraps an engine of `modelwatch.monitoring.drift`, `modelwatch.monitoring.integrity` or
`modelwatch.monitoring.multivariate` in the calculator contract: fitted on the reference, it turns
a window's findings into :class:`Metric` values with labels.

>>> from modelwatch.training.simulator import generate
>>> import numpy as np
>>> reference = generate(4000, "baseline", seed=1)
>>> def scored(frame):
...     return Scored(frame.drop(columns="defaulted"), np.zeros(len(frame)),
...                   np.full(len(frame), None), "binary")
>>> drift = FeatureDrift().fit(scored(reference))
>>> result = drift.calculate(scored(generate(2000, "covariate", seed=2)))
>>> sorted(m.labels[0][1] for m in result.metrics if m.name == "drift_score" and m.alert)
['income', 'region']
>>> result.get("dataset_drift_share").alert
True
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from modelwatch.monitoring.calculators.base import (
    Details,
    Mergeable,
    Metric,
    MetricDeclaration,
    Result,
    Verdict,
    reference_chunks,
)
from modelwatch.monitoring.drift import ReferenceProfile, column_drift, detect_drift
from modelwatch.monitoring.drift.detect import drift_of_profiles
from modelwatch.monitoring.drift.prediction import prediction_profile
from modelwatch.monitoring.drift.sketch import ColumnSketch, edges_of
from modelwatch.monitoring.integrity import ERROR, IntegrityChecker, WindowSummary, summarize
from modelwatch.monitoring.multivariate import ReconstructionDrift

from modelwatch.log.scored import Scored

# DataDriftDetected fires at this share of drifted features (the covariate scenario moves
# 2 of 11 features: 18%), or higher when the reference's own chunks drift that much.
DRIFT_SHARE = 0.15
N_SIGMA = 3.0
SHARE_CHUNKS = 20

DRIFT_SCORE = MetricDeclaration(
    "drift_score",
    "Per-feature drift score of the last window, what its test's threshold is compared "
    "with: the p-value of a p-value test (drifts below it), else the distance (drifts at "
    "or above it).",
    ("feature", "test"),
    verdict=Verdict("drift_detected", "1 if the feature drifted in the last window.", ("feature",)),
)
DRIFT_SCORE_THRESHOLD = MetricDeclaration(
    "drift_score_threshold",
    "The threshold each feature's drift score is compared with, by its test.",
    ("feature", "test"),
)
DATASET_DRIFT_SHARE = MetricDeclaration(
    "dataset_drift_share",
    "Share of features that drifted.",
    verdict=Verdict(
        "dataset_drift_detected",
        "1 if the dataset drifted: its drift share reached its threshold.",
    ),
)
DATASET_DRIFT_SHARE_THRESHOLD = MetricDeclaration(
    "dataset_drift_share_threshold",
    "The drift share at which the dataset drifts (DataDriftDetected): 15%, or more when "
    "the reference's own chunks drift that much.",
)
INTEGRITY_MISSING_RATIO = MetricDeclaration(
    "integrity_missing_ratio", "Share of missing values per feature.", ("feature",)
)
DRIFT_OUT_OF_RANGE_RATIO = MetricDeclaration(
    "drift_out_of_range_ratio",
    "Share of a numeric feature's values past the reference's observed range (drift "
    "evidence: a market that moves, not broken data).",
    ("feature",),
)
INTEGRITY_OUT_OF_DOMAIN_RATIO = MetricDeclaration(
    "integrity_out_of_domain_ratio",
    "Share of a feature's values outside its valid domain (values it cannot take).",
    ("feature",),
)
INTEGRITY_ISSUE = MetricDeclaration(
    "integrity_issue", "1 per integrity issue found in the last window.", ("kind", "feature")
)
MULTIVARIATE_RECONSTRUCTION_ERROR = MetricDeclaration(
    "multivariate_reconstruction_error",
    "PCA reconstruction error of the last window.",
    verdict=Verdict(
        "multivariate_drift_detected", "1 if the PCA reconstruction error left its reference band."
    ),
)
PREDICTION_DRIFT_SCORE = MetricDeclaration(
    "prediction_drift_score", "Drift statistic of the model's outputs."
)


@dataclass
class DriftDetails(Details):
    """The drift tests' findings (`DriftResult.to_dict()`), and the largest error of each
    statistic read from binned sketches."""

    OPTIONAL = ("error_bounds",)
    drift: dict
    error_bounds: dict[str, float] = field(default_factory=dict)


@dataclass
class IntegrityDetails(Details):
    issues: list[dict]  # the errors found, each {"kind", "columns", "severity", "share", ...}


@dataclass
class MultivariateDetails(Details):
    multivariate: dict  # the detector's judgement: error, band, verdict


@dataclass
class PredictionDriftDetails(Details):
    OPTIONAL = ("error_bound",)
    test: str
    error_bound: float = 0.0


class FeatureDrift(Mergeable):
    """Per-feature drift tests (Evidently's choice of test) and the share that drifted."""

    name = "feature_drift"
    declares = (
        DRIFT_SCORE,
        DRIFT_SCORE_THRESHOLD,
        DATASET_DRIFT_SHARE,
        DATASET_DRIFT_SHARE_THRESHOLD,
        DRIFT_OUT_OF_RANGE_RATIO,
    )

    def __init__(
        self,
        profile: ReferenceProfile | None = None,
        chunk_rows: int = 2000,
        independent: bool = False,
    ):
        """`independent`: the profile was built from other rows than the reference's (the
        training rows, when the reference is a holdout)."""
        self.profile = profile
        self.chunk_rows = chunk_rows
        self.independent = independent and profile is not None
        self.share_upper = DRIFT_SHARE

    def fit(self, reference: Scored) -> FeatureDrift:
        if self.profile is None:
            self.profile = ReferenceProfile.from_frame(reference.features)
        profile, rows = self._held_apart(reference.features)
        tests = {
            n: c.test
            for n, c in detect_drift(self.profile, rows.head(self.chunk_rows)).columns.items()
        }
        shares = [
            detect_drift(profile, rows.iloc[chunk], tests=tests).drift_share
            for chunk in reference_chunks(len(rows), self.chunk_rows)[:SHARE_CHUNKS]
        ]
        # Healthy windows drift by chance as much as these chunks do (a small reference's
        # p-value tests flag a column in a quarter of them): the bar rises above that.
        self.share_upper = max(DRIFT_SHARE, float(np.mean(shares) + N_SIGMA * np.std(shares)))
        return self

    def _held_apart(self, features: pd.DataFrame) -> tuple[ReferenceProfile, pd.DataFrame]:
        """A profile and rows it did not see: the reference itself when the profile is of
        other rows; otherwise one half of the reference profiled, judged against the other
        (with the tests the whole profile chooses)."""
        if self.independent:
            return self.profile, features.reset_index(drop=True)
        order = np.random.default_rng(0).permutation(len(features))
        half = len(features) // 2
        return (
            ReferenceProfile.from_frame(features.iloc[order[:half]]),
            features.iloc[order[half:]].reset_index(drop=True),
        )

    def partial(self, rows: Scored) -> dict:
        """Each reference column of the rows as a sketch on the reference's fine edges."""
        features = rows.features.reindex(columns=list(self.profile.columns))
        return {
            name: ColumnSketch.of(features[name].rename(name), column.kind, edges_of(column))
            for name, column in self.profile.columns.items()
        }

    def finish(self, aggregate: dict) -> Result:
        profiles = {name: sketch.profile(name) for name, sketch in aggregate.items()}
        n_rows = next(iter(aggregate.values())).n_rows if aggregate else 0
        # The one dataset verdict: the share against this version's bound (not
        # Evidently's default 0.5); every surface reads it from the metric below.
        found = drift_of_profiles(self.profile, profiles, n_rows, drift_share=self.share_upper)
        drift = found.to_dict()
        metrics = []
        for n, c in found.columns.items():
            labels = (("feature", n), ("test", c.test))
            metrics.append(Metric(DRIFT_SCORE, c.score, labels=labels, flagged=c.drifted))
            metrics.append(Metric(DRIFT_SCORE_THRESHOLD, c.threshold, labels=labels))
        metrics += [
            Metric(
                DATASET_DRIFT_SHARE,
                found.drift_share,
                upper=self.share_upper,
                flagged=found.dataset_drift,
            ),
            Metric(DATASET_DRIFT_SHARE_THRESHOLD, self.share_upper),
        ]
        metrics += [
            Metric(DRIFT_OUT_OF_RANGE_RATIO, (s.below + s.above) / s.n, labels=(("feature", n),))
            for n, s in aggregate.items()
            if s.kind == "numeric" and s.n and self.profile[n].n
        ]
        bounds = _error_bounds(self.profile, aggregate, found.columns)
        return Result(self.name, metrics, DriftDetails(drift, bounds))


class Integrity(Mergeable):
    """Broken inputs: missing values, swapped columns, types, values outside the domain."""

    name = "integrity"
    declares = (INTEGRITY_MISSING_RATIO, INTEGRITY_OUT_OF_DOMAIN_RATIO, INTEGRITY_ISSUE)

    def __init__(self, profile: ReferenceProfile | None = None):
        self.profile = profile

    def fit(self, reference: Scored) -> Integrity:
        if self.profile is None:
            self.profile = ReferenceProfile.from_frame(reference.features)
        return self

    def partial(self, rows: Scored) -> WindowSummary:
        return summarize(self.profile, rows.features.reindex(columns=list(self.profile.columns)))

    def finish(self, summary: WindowSummary) -> Result:
        ordered = sorted(
            IntegrityChecker().judge(self.profile, summary), key=lambda i: i["severity"] != ERROR
        )
        issues = [i for i in ordered if i["severity"] == ERROR]
        rows = max(summary.n_rows, 1)
        columns = summary.columns
        # isna, not the rule's blanks: an unparseable value is missing here as it always was
        metrics = [
            Metric(
                INTEGRITY_MISSING_RATIO,
                columns[c].isna / rows if summary.n_rows else float("nan"),
                labels=(("feature", c),),
            )
            for c in self.profile.columns
        ]
        metrics += [
            Metric(
                INTEGRITY_OUT_OF_DOMAIN_RATIO,
                columns[c].invalid / columns[c].present,
                labels=(("feature", c),),
            )
            for c in self.profile.columns
            if c in columns and columns[c].present
        ]
        metrics += [
            Metric(
                INTEGRITY_ISSUE,
                1.0,
                labels=(("kind", i["kind"]), ("feature", "+".join(i["columns"]))),
                flagged=True,
            )
            for i in issues
        ]
        return Result(self.name, metrics, IntegrityDetails(issues))


class MultivariateDrift(Mergeable):
    """PCA reconstruction error, against its band on reference chunks."""

    name = "multivariate_drift"
    declares = (MULTIVARIATE_RECONSTRUCTION_ERROR,)

    def fit(self, reference: Scored) -> MultivariateDrift:
        features = reference.features
        categorical = [
            c for c in features.columns if not pd.api.types.is_numeric_dtype(features[c])
        ]
        self.detector = None
        if (
            len(features) >= 200 and features.shape[1] >= 2
        ):  # too little reference for chunked bands
            self.detector = ReconstructionDrift().fit(features, categorical=categorical)
        return self

    def partial(self, rows: Scored) -> dict | None:
        """The sum of the rows' reconstruction errors, and how many."""
        if self.detector is None:
            return None
        errors = self.detector.errors(rows.features)
        return {"rows": len(errors), "error": float(errors.sum())}

    def finish(self, aggregate: dict | None) -> Result:
        if self.detector is None or aggregate is None:
            return Result(self.name)
        found = self.detector.judge(
            aggregate["error"] / aggregate["rows"] if aggregate["rows"] else float("nan"),
            aggregate["rows"],
        )
        metric = Metric(
            MULTIVARIATE_RECONSTRUCTION_ERROR,
            found["reconstruction_error"],
            lower=found["lower"],
            upper=found["upper"],
        )
        return Result(self.name, [metric], MultivariateDetails(found))


class PredictionDrift(Mergeable):
    """Drift of the model's outputs: the positive-class score, the top class or the value."""

    name = "prediction_drift"
    declares = (PREDICTION_DRIFT_SCORE,)

    def fit(self, reference: Scored) -> PredictionDrift:
        self.profile = prediction_profile(pd.Series(_output(reference)))
        return self

    def partial(self, rows: Scored) -> ColumnSketch:
        output = pd.Series(_output(rows), name=self.profile.name).dropna()
        return ColumnSketch.of(output, self.profile.kind, edges_of(self.profile))

    def finish(self, sketch: ColumnSketch) -> Result:
        if sketch.n == 0 or self.profile.n == 0:
            return Result(self.name)
        found = column_drift(self.profile, sketch.profile(self.profile.name))
        details = PredictionDriftDetails(found.test, _bound(found.test, self.profile, sketch))
        return Result(
            self.name,
            [Metric(PREDICTION_DRIFT_SCORE, found.statistic, flagged=found.drifted)],
            details,
        )


def _bound(test: str, reference, sketch: ColumnSketch) -> float:
    """The largest error of a statistic read from a binned sketch (0 when exact)."""
    if sketch.exact:
        return 0.0
    if test == "wasserstein":
        return sketch.wasserstein_bound(reference.std)
    if test == "ks":
        return sketch.ks_bound()
    return float("nan")  # PSI, KL, Jensen-Shannon on bins: no tight bound (see mergeable)


def _error_bounds(profile: ReferenceProfile, sketches: dict, columns: dict) -> dict[str, float]:
    return {
        name: b
        for name, c in columns.items()
        if (b := _bound(c.test, profile[name], sketches[name]))
    }


def _output(scored: Scored) -> np.ndarray:
    if scored.task == "regression":
        return pd.to_numeric(pd.Series(scored.prediction), errors="coerce").to_numpy(dtype=float)
    if scored.task == "binary" and scored.proba is not None:
        return scored.proba[:, 1]
    return np.asarray(scored.prediction, dtype=object)
