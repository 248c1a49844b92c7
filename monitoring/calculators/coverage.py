"""Label coverage: the share of the window's predictions that have their label.

Computed by whoever holds the window's row counts (`evaluate` online, the batch plan's
finish) rather than by a calculator class: its metric is declared here.

>>> coverage(150, 200).get("label_coverage_ratio").value
0.75
"""

from __future__ import annotations

from modelwatch.monitoring.calculators.base import Metric, MetricDeclaration, Result

NAME = "labels"
LABEL_COVERAGE_RATIO = MetricDeclaration(
    "label_coverage_ratio", "Share of the window's predictions with a label."
)
DECLARES = (LABEL_COVERAGE_RATIO,)


def coverage(labelled: int, rows: int) -> Result:
    """The window's label coverage, of `labelled` rows out of `rows` (0 of none)."""
    return Result(NAME, [Metric(LABEL_COVERAGE_RATIO, labelled / rows if rows else 0.0)])
