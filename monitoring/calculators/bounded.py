"""The shared half of the performance calculators: metrics on chunks of the reference.

A performance calculator says how to compute its metrics on some scored rows
(`values`) and how many rows their precision rests on (`rows`: the labelled ones for
realized metrics, all of them for estimates); fitting then computes the same metrics on
reference chunks to get each metric's :class:`Bounds`, and calculating reports each
metric with the bounds for the window's size.
"""

from __future__ import annotations

from dataclasses import dataclass

from modelwatch.monitoring.calculators.base import Bounds, Metric, Result, Scored, reference_chunks

DEFAULT_CHUNK_ROWS = 2000  # the monitor's default window (MODELWATCH_MONITOR_WINDOW_ROWS)


@dataclass(frozen=True)
class MetricSpec:
    """How a metric is judged: which way is bad, and the range it cannot leave."""

    direction: str  # "higher" is better (alert below the lower bound), or "lower" is better
    floor: float | None = 0.0
    ceiling: float | None = None


SCORE = MetricSpec("higher", 0.0, 1.0)  # accuracy, F1, ROC AUC
ERROR = MetricSpec("lower", 0.0, None)  # MAE, RMSE, MAPE


class BoundedCalculator:
    name = "bounded"
    specs: dict[str, MetricSpec] = {}

    def __init__(self, chunk_rows: int = DEFAULT_CHUNK_ROWS):
        self.chunk_rows = int(chunk_rows)
        self.bounds: dict[str, Bounds | None] = {}

    def values(self, scored: Scored) -> dict[str, float | None]:  # pragma: no cover - abstract
        raise NotImplementedError

    def rows(self, scored: Scored) -> int:
        return len(scored)

    def fit_bounds(self, reference: Scored) -> None:
        chunks = reference_chunks(len(reference), self.chunk_rows)
        per_chunk = [self.values(reference.take(rows)) for rows in chunks]
        chunk_rows = len(chunks[0]) if chunks else self.chunk_rows
        self.bounds = {name: Bounds.from_chunks([v.get(name) for v in per_chunk], chunk_rows,
                                                spec.direction, spec.floor, spec.ceiling, self.rows(reference))
                       for name, spec in self.specs.items()}

    def calculate(self, window: Scored) -> Result:
        rows = self.rows(window)
        metrics = []
        for name, value in self.values(window).items():
            if value is None:
                continue  # not computed: absent, never 0
            bounds = self.bounds.get(name)
            metrics.append(Metric(name, float(value),
                                  lower=bounds.lower(rows) if bounds else None,
                                  upper=bounds.upper(rows) if bounds else None))
        return Result(self.name, metrics, {"rows": rows})
