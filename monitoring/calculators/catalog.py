"""Every calculator the monitor can run, and so every metric it can export.

The exporter describes its families from `DECLARATIONS` (a family exists, empty, before
any window computes it), and the docs' Metrics section lists them
(tests/monitoring/test_declarations.py). A new calculator joins `CALCULATORS`.
"""

from __future__ import annotations

from modelwatch.monitoring.calculators import coverage, feedback
from modelwatch.monitoring.calculators.base import MetricDeclaration
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

CALCULATORS = (
    FeatureDrift,
    Integrity,
    MultivariateDrift,
    PredictionDrift,
    RealizedClassification,
    EstimatedClassification,
    RealizedRegression,
    EstimatedRegression,
    ConceptDrift,
    Segments,
    Fairness,
)
DECLARATIONS: tuple[MetricDeclaration, ...] = (
    *(d for calculator in CALCULATORS for d in calculator.declares),
    *coverage.DECLARES,
    *feedback.DECLARES,
)
