"""Per-column data drift and the dataset drift verdict.

``detect_drift(reference, current)`` tests every reference column in the current window.
By default each column gets the test and threshold Evidently's DataDriftPreset would pick
(see :func:`modelwatch.monitoring.drift.stattests.default_stattest`), and the dataset counts as
drifted once at least ``drift_share`` (0.5) of the tested columns drift, so that verdicts
agree with Evidently's on the same frames. Any column can be given another test.

>>> from modelwatch.training.simulator import generate
>>> from modelwatch.monitoring.drift import ReferenceProfile, detect_drift
>>> reference = generate(5000, "baseline", seed=1).drop(columns="defaulted")
>>> profile = ReferenceProfile.from_frame(reference)
>>> result = detect_drift(profile, generate(2000, "covariate", seed=2))
>>> result.drifted_columns
['income', 'region']
>>> result.to_dict()["columns"]["income"]["test"], result.dataset_drift
('wasserstein', False)
>>> current = generate(2000, "covariate", seed=2)
>>> detect_drift(profile, current, tests={"income": "psi"}).columns["income"].test
'psi'

The method follows Evidently's data drift preset (Evidently AI, "Data drift", 2024, and
Rabanser, Guennemann and Lipton, "Failing loudly: an empirical study of methods for
detecting dataset shift", NeurIPS 2019, on univariate two-sample tests per feature
aggregated into a dataset verdict).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

import pandas as pd
from modelwatch.monitoring.drift.profile import ColumnProfile, ReferenceProfile
from modelwatch.monitoring.drift.stattests import StatTest, default_stattest, get_stattest

DEFAULT_DRIFT_SHARE = 0.5


def _finite_or_none(x: float | None) -> float | None:
    if x is None:
        return None
    x = float(x)
    return x if math.isfinite(x) else None


@dataclass
class ColumnDrift:
    """The drift test of one column."""

    column: str
    test: str
    statistic: float
    p_value: float | None
    threshold: float
    drifted: bool
    kind: str = ""

    @property
    def score(self) -> float:
        """What the threshold is compared with: the p-value, or else the statistic
        (Evidently's ``drift_score``)."""
        return self.p_value if self.p_value is not None else self.statistic

    def to_dict(self) -> dict:
        # Infinite or undefined numbers (a chi-square against a category the reference
        # never had) become None: the result must stay valid JSON.
        return {
            "test": self.test,
            "statistic": _finite_or_none(self.statistic),
            "p_value": _finite_or_none(self.p_value),
            "threshold": float(self.threshold),
            "drifted": bool(self.drifted),
        }


@dataclass
class DriftResult:
    """Drift of a window: per-column tests, the share of drifted columns, the verdict."""

    columns: dict[str, ColumnDrift]
    drift_share: float
    dataset_drift: bool
    drift_share_threshold: float = DEFAULT_DRIFT_SHARE
    skipped: dict[str, str] = field(default_factory=dict)
    n_current: int = 0

    @property
    def drifted_columns(self) -> list[str]:
        return [name for name, c in self.columns.items() if c.drifted]

    def to_dict(self) -> dict:
        return {
            "dataset_drift": bool(self.dataset_drift),
            "drift_share": float(self.drift_share),
            "drift_share_threshold": float(self.drift_share_threshold),
            "columns": {name: c.to_dict() for name, c in self.columns.items()},
        }


def column_drift(
    ref: ColumnProfile,
    cur: ColumnProfile,
    test: str | StatTest | None = None,
    threshold: float | None = None,
) -> ColumnDrift:
    """Run one test (Evidently's choice when None) on two profiles of the same column."""
    if isinstance(test, str):
        test = get_stattest(test)
    if test is None:
        test = default_stattest(ref, cur)
    if ref.kind not in test.kinds:
        raise ValueError(
            f"column {ref.name!r}: test {test.name!r} does not apply to {ref.kind} columns"
        )
    threshold = test.default_threshold if threshold is None else float(threshold)
    statistic, p_value = test.compute(ref, cur)
    return ColumnDrift(
        ref.name,
        test.name,
        statistic,
        p_value,
        threshold,
        test.drifted(statistic, p_value, threshold),
        ref.kind,
    )


def _per_column(option, name: str):
    if isinstance(option, Mapping):
        return option.get(name)
    return option


def detect_drift(
    reference: ReferenceProfile | pd.DataFrame,
    current: pd.DataFrame,
    tests: Mapping[str, str] | str | None = None,
    thresholds: Mapping[str, float] | float | None = None,
    drift_share: float = DEFAULT_DRIFT_SHARE,
    columns: list[str] | None = None,
    categorical: list[str] | None = None,
) -> DriftResult:
    """Test each reference column for drift in ``current``.

    ``reference`` is a saved :class:`ReferenceProfile` or a DataFrame (profiled here, with
    ``categorical`` as in :meth:`ReferenceProfile.from_frame`). ``tests`` and
    ``thresholds`` are one value for all columns or a mapping column -> value; unnamed
    columns get Evidently's default. ``columns`` limits the columns tested. A column
    absent from ``current``, or without a single non-missing value on one side, is
    skipped (listed in ``result.skipped``; integrity checks report it) instead of failing
    the whole window.
    """
    profile = (
        reference
        if isinstance(reference, ReferenceProfile)
        else ReferenceProfile.from_frame(reference, categorical=categorical)
    )
    if not all(isinstance(c, str) for c in current.columns):
        current = current.rename(columns=str)  # profiles name columns as strings
    names = list(profile.columns) if columns is None else list(columns)
    for name in names:
        if name not in profile.columns:
            raise KeyError(f"column {name!r} is not in the reference profile")
    profiles = {
        name: ColumnProfile.from_series(current[name].rename(name), profile.columns[name].kind)
        for name in names
        if name in current.columns
    }
    return drift_of_profiles(profile, profiles, len(current), tests, thresholds, drift_share, names)


def drift_of_profiles(
    profile: ReferenceProfile,
    current: Mapping[str, ColumnProfile],
    n_current: int,
    tests=None,
    thresholds=None,
    drift_share: float = DEFAULT_DRIFT_SHARE,
    names: list[str] | None = None,
) -> DriftResult:
    """`detect_drift` on profiles of the current columns (of a whole window, or merged
    from its partitions); a column without a profile is missing from the current data."""
    results: dict[str, ColumnDrift] = {}
    skipped: dict[str, str] = {}
    for name in list(profile.columns) if names is None else names:
        if name not in current:
            skipped[name] = "missing from current data"
            continue
        ref, cur = profile.columns[name], current[name]
        if ref.n == 0 or cur.n == 0:
            skipped[name] = "no non-missing values in " + (
                "reference" if ref.n == 0 else "current data"
            )
            continue
        results[name] = column_drift(
            ref, cur, _per_column(tests, name), _per_column(thresholds, name)
        )
    n_drifted = sum(c.drifted for c in results.values())
    share = n_drifted / len(results) if results else 0.0
    return DriftResult(
        results, share, bool(results) and share >= drift_share, drift_share, skipped, int(n_current)
    )
