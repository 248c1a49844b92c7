"""The one contract every monitor follows: fit on the reference, calculate on a window.

A calculator is fitted once per model version on the reference (held-out rows the model
scored, with their labels) and then applied to each window of the prediction log. Each
returns a :class:`Result`: its :class:`Metric` values, each with the bounds it is judged
against and whether it alerts, plus typed `details` for people. Each metric is declared
once (:class:`MetricDeclaration`: name, help, labels, direction, range, how it is
reported), in the calculator's `declares`; a :class:`Metric` carries its declaration. The
Prometheus exporter, ``/status``, the built-in alert rules and the MLflow logging read
`Result.metrics` and their declarations and nothing else, so a new signal is one new
calculator.

Bounds come from the reference as NannyML computes its thresholds: the metric on chunks
of the reference the size of a monitor window, mean +- 3 standard deviations. A window
smaller than a chunk is noisier, so its bounds widen by sqrt(chunk rows / window rows),
the way a sampling error grows; and the reference's mean is itself a sample, so a small
reference widens them by sqrt(1 + chunk rows / reference rows).

>>> import numpy as np
>>> bounds = Bounds.from_chunks([0.80, 0.82, 0.81, 0.79, 0.83], chunk_rows=1000, direction="higher")
>>> round(bounds.lower(1000), 4), bounds.upper(1000)
(0.7626, None)
>>> round(bounds.lower(250), 4)   # a window a quarter of a chunk: twice the spread
0.7151
>>> accuracy = MetricDeclaration("accuracy", "Accuracy.", direction="higher", floor=0, ceiling=1)
>>> m = Metric(accuracy, 0.70, lower=bounds.lower(1000))
>>> m.name, m.alert
('accuracy', True)
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Protocol, TypeVar

import numpy as np
from modelwatch.monitoring.calculators.mergeable import combine

from modelwatch.log.scored import Scored

N_SIGMA = 3.0  # NannyML's default threshold: mean +- 3 standard deviations of the chunks
MIN_CHUNKS = 6  # fewer disjoint chunks than this give no spread worth the name: bootstrap
BOOTSTRAP_CHUNKS = 30
AnyDetails = TypeVar("AnyDetails", bound="Details")


@dataclass(frozen=True)
class Verdict:
    """A 0/1 series exported beside a metric: 1 where the metric alerts."""

    name: str
    help: str
    labels: tuple[str, ...] = ()


@dataclass(frozen=True)
class MetricDeclaration:
    """Everything the readers of a metric need to know, said once.

    ``labels``: its Prometheus labels besides model_version. ``direction`` says which way
    is bad ("higher" is better: alert below the lower bound; "lower": above the upper one;
    "both"), and ``floor``/``ceiling`` the range its bounds cannot leave; None: the metric
    has no bounds fitted from the reference. ``performance``: `/status` reports it by name
    (``last_window.metrics``); ``log_bounds``: MLflow gets its bounds beside it.
    ``verdict``: its 0/1 series, if it has one.
    """

    name: str
    help: str
    labels: tuple[str, ...] = ()
    direction: str | None = None
    floor: float | None = None
    ceiling: float | None = None
    performance: bool = False
    log_bounds: bool = False
    verdict: Verdict | None = None


@dataclass(frozen=True)
class Bounds:
    """A metric's expected range, from its values on reference chunks.

    ``direction`` says which way is bad: "higher" (accuracy: alert below the lower bound),
    "lower" (an error: alert above the upper bound) or "both".
    """

    mean: float
    std: float
    chunk_rows: int
    direction: str = "both"
    floor: float | None = None  # the metric's natural range (accuracy in [0, 1]) clips the bounds
    ceiling: float | None = None
    reference_rows: int | None = None  # the rows the mean rests on; None: as if unlimited

    @classmethod
    def from_chunks(
        cls,
        values: Sequence[float],
        chunk_rows: int,
        direction: str = "both",
        floor: float | None = None,
        ceiling: float | None = None,
        reference_rows: int | None = None,
    ) -> Bounds | None:
        finite = np.asarray([v for v in values if v is not None and math.isfinite(v)], dtype=float)
        if len(finite) < 2:
            return None
        return cls(
            float(finite.mean()),
            float(finite.std(ddof=1)),
            int(chunk_rows),
            direction,
            floor,
            ceiling,
            reference_rows,
        )

    def _spread(self, rows: int) -> float:
        # A window's metric strays from the truth by the chunk spread (wider for a smaller
        # window); the reference's mean strays too, by the spread of that many rows.
        window = self.chunk_rows / rows if 0 < rows < self.chunk_rows else 1.0
        reference = self.chunk_rows / self.reference_rows if self.reference_rows else 0.0
        return N_SIGMA * self.std * math.sqrt(window + reference)

    def lower(self, rows: int) -> float | None:
        if self.direction == "lower":
            return None
        value = self.mean - self._spread(rows)
        return value if self.floor is None else max(value, self.floor)

    def upper(self, rows: int) -> float | None:
        if self.direction == "higher":
            return None
        value = self.mean + self._spread(rows)
        return value if self.ceiling is None else min(value, self.ceiling)

    def to_dict(self) -> dict:
        return {
            "mean": self.mean,
            "std": self.std,
            "chunk_rows": self.chunk_rows,
            "direction": self.direction,
        }


@dataclass(frozen=True)
class Metric:
    """One number a calculator computed on a window, and the bounds it is held to.

    ``labels`` name what the number is about (a feature, a kind of issue), as Prometheus
    labels. ``flagged`` is a verdict the calculator reached by itself (a drift test's own
    threshold) for metrics without bounds.
    """

    declaration: MetricDeclaration
    value: float
    lower: float | None = None
    upper: float | None = None
    labels: tuple[tuple[str, str], ...] = ()
    flagged: bool = False

    @property
    def name(self) -> str:
        return self.declaration.name

    @property
    def alert(self) -> bool:
        return bool(
            self.flagged
            or (self.lower is not None and self.value < self.lower)
            or (self.upper is not None and self.value > self.upper)
        )

    def to_dict(self) -> dict:
        return {"value": self.value, "lower": self.lower, "upper": self.upper, "alert": self.alert}


class Details:
    """A calculator's findings for people, beside its metrics: one dataclass a calculator.

    `to_dict` is the JSON a window's record and `/status` show: the fields, less the
    optional ones that are empty (`OPTIONAL`).
    """

    OPTIONAL: tuple[str, ...] = ()

    def to_dict(self) -> dict:
        found = asdict(self)  # a dataclass's: every Details is one
        return {k: v for k, v in found.items() if k not in self.OPTIONAL or v}


@dataclass
class Result:
    calculator: str
    metrics: list[Metric] = field(default_factory=list)
    details: Details | None = None

    def get(self, name: str) -> Metric | None:
        return next((m for m in self.metrics if m.name == name and not m.labels), None)

    def details_of(self, kind: type[AnyDetails]) -> AnyDetails | None:
        """The details if they are of `kind` (e.g. `DriftDetails`), else None."""
        return self.details if isinstance(self.details, kind) else None

    def details_dict(self) -> dict:
        return self.details.to_dict() if self.details is not None else {}


class Calculator(Protocol):
    """`fit(reference)` once per model version, then `calculate(window)` per window.

    `calculate` splits into `partial(rows) -> aggregate` on any part of a window,
    `merge(a, b) -> aggregate` and `finish(aggregate) -> Result`, with
    `calculate(s) == finish(partial(s))` (see `modelwatch.monitoring.calculators.mergeable`).
    """

    name: str
    declares: tuple[MetricDeclaration, ...]  # every metric its results may hold
    mergeable: bool  # False: it needs the whole window's rows at once (no partial/merge)

    def fit(self, reference: Scored) -> Calculator: ...

    def calculate(self, window: Scored) -> Result: ...

    def partial(self, rows: Scored): ...

    def merge(self, a, b): ...

    def finish(self, aggregate) -> Result: ...


class Mergeable:
    """`calculate` as the one-partition case of partial, merge and finish."""

    mergeable = True  # a batch may split the window's rows into parts (monitoring/batch)

    def calculate(self, window: Scored) -> Result:
        return self.finish(self.partial(window))

    def merge(self, a, b):
        return combine(a, b)


def reference_chunks(n_rows: int, chunk_rows: int, seed: int = 0) -> list[np.ndarray]:
    """Row indices of the reference chunks a metric's bounds are computed on.

    Disjoint chunks of ``chunk_rows`` when the reference holds at least MIN_CHUNKS of them
    (as NannyML does); otherwise bootstrap resamples of that size, whose spread estimates
    the same sampling error from a smaller reference.
    """
    chunk_rows = max(1, min(chunk_rows, n_rows))
    if n_rows // chunk_rows >= MIN_CHUNKS:
        return [
            np.arange(i * chunk_rows, (i + 1) * chunk_rows) for i in range(n_rows // chunk_rows)
        ]
    rng = np.random.default_rng(seed)
    return [rng.integers(0, n_rows, chunk_rows) for _ in range(BOOTSTRAP_CHUNKS)]
