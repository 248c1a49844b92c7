"""A version's calculators: every one its monitoring reference supports, fitted on it.

The reference (`modelwatch.monitoring.reference`) is data; this is where it meets the
calculators. The monitor, `modelwatch onboard` and the batch command build a version's
suite here, and the thresholds onboarding writes beside the reference come from it.

>>> import numpy as np, pandas as pd
>>> from modelwatch.monitoring.reference import MonitoringReference
>>> rng = np.random.default_rng(0)
>>> x = rng.normal(size=3000); y = (x + rng.normal(size=3000) > 0).astype(int)
>>> p = 1 / (1 + np.exp(-1.6 * x))
>>> reference = MonitoringReference.from_scores(
...     pd.DataFrame({"x": x}), y, (p > .5).astype(int), np.column_stack([1 - p, p]),
...     classes=[0, 1], target="y")
>>> results = [c.calculate(reference.scored()) for c in fit_calculators(reference, 500)]
>>> names = [m.name for r in results for m in r.metrics]
>>> sorted(n for n in names if n.startswith(("live", "estimated")))
... # doctest: +NORMALIZE_WHITESPACE
['estimated_accuracy', 'estimated_f1', 'estimated_roc_auc',
 'live_accuracy', 'live_f1', 'live_roc_auc']
"""

from __future__ import annotations

from modelwatch.monitoring.calculators.bounded import DEFAULT_CHUNK_ROWS, BoundedCalculator
from modelwatch.monitoring.calculators.classification import (
    EstimatedClassification,
    RealizedClassification,
)
from modelwatch.monitoring.calculators.concept import ConceptDrift
from modelwatch.monitoring.calculators.fairness import Fairness
from modelwatch.monitoring.calculators.inputs import (
    FeatureDrift,
    Integrity,
    MultivariateDrift,
    PredictionDrift,
)
from modelwatch.monitoring.calculators.regression import EstimatedRegression, RealizedRegression
from modelwatch.monitoring.calculators.segments import Segments
from modelwatch.monitoring.reference import MonitoringReference


def fit_calculators(
    reference: MonitoringReference,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
    segments: tuple[str, ...] = (),
    sensitive: tuple[str, ...] = (),
    fairness: dict | None = None,
) -> list:
    """Every calculator `reference` supports, fitted on it. Performance needs labels,
    and its estimate needs probabilities (classification) or labels (regression).
    `segments` and `sensitive` name feature columns judged per segment and, with
    labels, per group (`fairness`: Fairness's threshold arguments)."""
    scored = reference.scored()
    out = [
        FeatureDrift(reference.profile, chunk_rows, independent=not reference.profile_of_sample),
        Integrity(reference.profile),
        MultivariateDrift(),
        PredictionDrift(),
    ]
    if reference.has_labels and reference.task == "regression":
        out += [RealizedRegression(chunk_rows), EstimatedRegression(chunk_rows)]
    elif reference.has_labels:
        out += _classification(chunk_rows, estimates=scored.proba is not None)
    fitted = [c.fit(scored) for c in out]
    if segments:
        performance = [c for c in fitted if isinstance(c, BoundedCalculator)]
        fitted.append(Segments(list(segments), performance, chunk_rows).fit(scored))
    if sensitive and reference.has_labels:
        fitted.append(Fairness(list(sensitive), **(fairness or {})).fit(scored))
    return fitted


def _classification(chunk_rows: int, estimates: bool) -> list:
    """Realized performance, its estimate when the model gives probabilities, and concept
    drift (which reads the estimate's calibration when there is one)."""
    estimator = EstimatedClassification(chunk_rows) if estimates else None
    return [
        RealizedClassification(chunk_rows),
        *([estimator] if estimator else []),
        ConceptDrift(estimator),
    ]


def thresholds(calculators: list) -> dict:
    """The performance bounds, per metric: how they were fitted, and the lower and upper
    bound the monitor applies to a full window (of the chunk size or more)."""
    out = {}
    for calculator in calculators:
        if isinstance(calculator, BoundedCalculator):
            out |= {
                name: b.to_dict() | {"lower": b.lower(b.chunk_rows), "upper": b.upper(b.chunk_rows)}
                for name, b in calculator.bounds.items()
                if b is not None
            }
    return out
