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

from dataclasses import dataclass, field

from modelwatch.monitoring.calculators.base import (
    Bounds,
    Details,
    Mergeable,
    Metric,
    MetricDeclaration,
    Result,
    reference_chunks,
)

from modelwatch.log.scored import Scored

BOUND = "_error_bound"  # metrics_of's key for the largest error of an approximate metric
DEFAULT_CHUNK_ROWS = 2000  # the monitor's default window (MODELWATCH_MONITOR_WINDOW_ROWS)


def score(name: str, help: str) -> MetricDeclaration:
    """A performance score (accuracy, F1, ROC AUC): higher is better, within [0, 1]."""
    return MetricDeclaration(
        name, help, direction="higher", floor=0.0, ceiling=1.0, performance=True, log_bounds=True
    )


def error(name: str, help: str) -> MetricDeclaration:
    """A performance error (MAE, RMSE, MAPE): lower is better, never below 0."""
    return MetricDeclaration(
        name, help, direction="lower", floor=0.0, performance=True, log_bounds=True
    )


@dataclass
class BoundedDetails(Details):
    """The rows the metrics rest on, and the largest error of each approximate one."""

    OPTIONAL = ("error_bounds",)
    rows: int
    error_bounds: dict[str, float] = field(default_factory=dict)


class BoundedCalculator(Mergeable):
    name = "bounded"
    declares: tuple[MetricDeclaration, ...] = ()

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

    def chunk_values(self, chunk: Scored) -> dict[str, float | None]:
        """The values on one reference chunk that a metric's bounds are the spread of:
        the metric itself (an estimate says which realized metric instead)."""
        return self.values(chunk)

    def fit_bounds(self, reference: Scored) -> None:
        chunks = reference_chunks(len(reference), self.chunk_rows)
        per_chunk = [self.chunk_values(reference.take(rows)) for rows in chunks]
        chunk_rows = len(chunks[0]) if chunks else self.chunk_rows
        self.bounds = {
            d.name: Bounds.from_chunks(
                [v.get(d.name) for v in per_chunk],
                chunk_rows,
                d.direction,
                d.floor,
                d.ceiling,
                self.rows(reference),
            )
            for d in self.declares
        }

    def partial(self, rows: Scored) -> dict:
        return {"rows": self.rows(rows), "sums": self.sums(rows)}

    def finish(self, aggregate: dict) -> Result:
        rows = aggregate["rows"]
        values = self.metrics_of(aggregate["sums"])
        metrics = []
        for d in self.declares:
            value = values.get(d.name)
            if value is None:
                continue  # not computed: absent, never 0
            bounds = self.bounds.get(d.name)
            metrics.append(
                Metric(
                    d,
                    float(value),
                    lower=bounds.lower(rows) if bounds else None,
                    upper=bounds.upper(rows) if bounds else None,
                )
            )
        # An approximate metric (a ranking of binned scores) says how far off it may be.
        errors = {d.name: v for d in self.declares if (v := values.get(d.name + BOUND))}
        return Result(self.name, metrics, BoundedDetails(rows, errors))
