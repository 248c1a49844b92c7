"""The shared half of the performance calculators: metrics on chunks of the reference.

A performance calculator says how to compute its metrics on some scored rows
(`values`) and how many rows their precision rests on (`rows`: the labelled ones for
realized metrics, all of them for estimates); fitting then computes the same metrics on
reference chunks to get each metric's :class:`Bounds`, and calculating reports each
metric with the bounds for the window's size.

The metrics are computed from sums (`sums`: counts, confusion and calibration tallies,
sums of errors) that add up over the parts of a window, so `partial` is the sums of some
rows, `merge` adds them and `finish` turns them into the metrics (`metrics_of`).
"""

from __future__ import annotations

from dataclasses import dataclass

from modelwatch.monitoring.calculators.base import (
    Bounds,
    Mergeable,
    Metric,
    Result,
    reference_chunks,
)

from modelwatch.log.scored import Scored

BOUND = "_error_bound"  # metrics_of's key for the largest error of an approximate metric
DEFAULT_CHUNK_ROWS = 2000  # the monitor's default window (MODELWATCH_MONITOR_WINDOW_ROWS)


@dataclass(frozen=True)
class MetricSpec:
    """How a metric is judged: which way is bad, and the range it cannot leave."""

    direction: str  # "higher" is better (alert below the lower bound), or "lower" is better
    floor: float | None = 0.0
    ceiling: float | None = None


SCORE = MetricSpec("higher", 0.0, 1.0)  # accuracy, F1, ROC AUC
ERROR = MetricSpec("lower", 0.0, None)  # MAE, RMSE, MAPE


class BoundedCalculator(Mergeable):
    name = "bounded"
    specs: dict[str, MetricSpec] = {}

    def __init__(self, chunk_rows: int = DEFAULT_CHUNK_ROWS):
        self.chunk_rows = int(chunk_rows)
        self.bounds: dict[str, Bounds | None] = {}

    def sums(self, scored: Scored) -> dict:  # pragma: no cover - abstract
        raise NotImplementedError

    def metrics_of(self, sums: dict) -> dict[str, float | None]:  # pragma: no cover - abstract
        raise NotImplementedError

    def values(self, scored: Scored) -> dict[str, float | None]:
        return self.metrics_of(self.sums(scored))

    def rows(self, scored: Scored) -> int:
        return len(scored)

    def fit_bounds(self, reference: Scored) -> None:
        chunks = reference_chunks(len(reference), self.chunk_rows)
        per_chunk = [self.values(reference.take(rows)) for rows in chunks]
        chunk_rows = len(chunks[0]) if chunks else self.chunk_rows
        self.bounds = {
            name: Bounds.from_chunks(
                [v.get(name) for v in per_chunk],
                chunk_rows,
                spec.direction,
                spec.floor,
                spec.ceiling,
                self.rows(reference),
            )
            for name, spec in self.specs.items()
        }

    def partial(self, rows: Scored) -> dict:
        return {"rows": self.rows(rows), "sums": self.sums(rows)}

    def finish(self, aggregate: dict) -> Result:
        rows = aggregate["rows"]
        values = self.metrics_of(aggregate["sums"])
        metrics = []
        for name, value in values.items():
            if value is None or name.endswith(BOUND):
                continue  # not computed: absent, never 0
            bounds = self.bounds.get(name)
            metrics.append(
                Metric(
                    name,
                    float(value),
                    lower=bounds.lower(rows) if bounds else None,
                    upper=bounds.upper(rows) if bounds else None,
                )
            )
        details = {"rows": rows}
        # An approximate metric (a ranking of binned scores) says how far off it may be.
        errors = {
            name[: -len(BOUND)]: v for name, v in values.items() if name.endswith(BOUND) and v
        }
        if errors:
            details["error_bounds"] = errors
        return Result(self.name, metrics, details)
