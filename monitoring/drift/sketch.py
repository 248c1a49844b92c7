"""A window column as a mergeable sketch: what the drift tests and the integrity rules read of
one partition of a window, and how two partitions' sketches combine.

A :class:`ColumnSketch` is one column of the window. A categorical column keeps its
category counts (exact at any size). A numeric column keeps its distinct values with
counts, exactly, while it has at most EXACT_VALUES of them, so a monitor window (2000
rows) is judged on exactly the numbers it always was; past that it keeps counts, sums,
minima and maxima on FINE_BINS bins whose edges were fixed from the reference at fit
time, and the drift tests read each bin as its mean. What that costs is bounded, per
window, from the sketch itself:

- normed Wasserstein: W1 is a metric, and moving a bin's rows to their mean moves W1 by
  at most their mean absolute deviation, at most half their spread (the bin's largest
  value less its smallest, kept per bin); so the error is at most
  sum(rows_i * spread_i / 2) / (rows * reference std) (`wasserstein_bound`), and 0 where
  each bin holds one value (a reference of few distinct values, a rounded column).
- KS distance: the approximate CDF agrees with the truth outside the bins' spreads, so D
  is off by at most the largest share of current rows in one bin of more than one value
  (`ks_bound`); the p-value is read from the approximate D (monotone in D, so its
  interval follows).
- PSI, KL and Jensen-Shannon on a binned numeric column are computed on the bin means and
  carry no tight bound; they are not Evidently's default for a numeric column with more
  than 5 values (Wasserstein above 1000 reference rows, KS below), so the default verdicts
  rest on bounded statistics. Categorical columns are exact.

It sits with the drift statistics, below the calculators: the integrity rules
(`modelwatch.monitoring.integrity`) summarize a window with it as the calculators do.

>>> import numpy as np, pandas as pd
>>> rng = np.random.default_rng(0)
>>> x = pd.Series(rng.normal(size=30_000), name="x")
>>> edges = fine_edges(np.sort(rng.normal(size=5000)))
>>> whole = ColumnSketch.of(x, "numeric", edges)
>>> parts = [ColumnSketch.of(x[i::3], "numeric", edges) for i in range(3)]
>>> merged = parts[0].merge(parts[1]).merge(parts[2])
>>> merged.exact, merged.n_rows == whole.n_rows, bool((merged.bin_counts == whole.bin_counts).all())
(False, True, True)
>>> small = ColumnSketch.of(x[:100], "numeric", edges)
>>> small.exact, small.profile("x").n
(True, 100)
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from modelwatch.monitoring.drift.profile import NUMERIC, ColumnProfile, jsonable, numeric_values

EXACT_VALUES = 10_000  # distinct values a numeric column keeps exactly (160 kB)
FINE_BINS = 1000  # reference quantile bins once it has more


def fine_edges(reference_values: np.ndarray, bins: int = FINE_BINS) -> np.ndarray:
    """Bin edges from a reference column's sorted distinct values: its quantiles, or the
    values themselves when it has fewer."""
    values = np.asarray(reference_values, dtype=float)
    if len(values) <= bins:
        return values.copy()
    return np.unique(np.quantile(values, np.linspace(0, 1, bins + 1)))


@dataclass
class ColumnSketch:
    """One window column: category counts, or numeric values exactly or on fixed bins."""

    kind: str
    dtype: str
    n_rows: int
    n_missing: int
    counts: dict = field(default_factory=dict)  # categorical: value -> count
    values: np.ndarray | None = None  # numeric, exact: sorted distinct values
    value_counts: np.ndarray | None = None
    edges: np.ndarray | None = None  # numeric: the reference's fine edges
    bin_counts: np.ndarray | None = None  # len(edges) + 1 bins once binned
    bin_sums: np.ndarray | None = None
    bin_lo: np.ndarray | None = None  # each bin's smallest and largest value (the error bounds)
    bin_hi: np.ndarray | None = None
    below: int = 0  # numeric: values below the reference's minimum (its first edge), exactly
    above: int = 0  # and above its maximum (its last edge): drift evidence, not broken data

    @property
    def exact(self) -> bool:
        return self.bin_counts is None

    @property
    def n(self) -> int:
        return self.n_rows - self.n_missing

    @classmethod
    def of(cls, series: pd.Series, kind: str, edges: np.ndarray | None = None) -> ColumnSketch:
        if kind != NUMERIC:
            missing = series.isna()
            vc = series[~missing].value_counts(sort=False)
            if isinstance(series.dtype, pd.CategoricalDtype):
                vc = vc[vc > 0]
            counts = {jsonable(v): int(c) for v, c in vc.items()}
            return cls(kind, str(series.dtype), len(series), int(missing.sum()), counts)
        values = numeric_values(series)
        finite = values[~np.isnan(values)]
        distinct, counts = np.unique(finite, return_counts=True)
        outside = edges is not None and len(edges)
        sketch = cls(
            kind,
            str(series.dtype),
            len(series),
            len(series) - len(finite),
            {},
            distinct,
            counts,
            edges,
            below=int((finite < edges[0]).sum()) if outside else 0,
            above=int((finite > edges[-1]).sum()) if outside else 0,
        )
        return sketch._binned() if len(distinct) > EXACT_VALUES else sketch

    def _binned(self) -> ColumnSketch:
        """The same column on the fixed bins (a no-op once binned)."""
        if not self.exact:
            return self
        counts = self.value_counts.astype(float)
        edges = self.edges if self.edges is not None and len(self.edges) else np.array([0.0])
        index = np.searchsorted(edges, self.values, side="right")  # sorted, as the values are
        size = len(edges) + 1
        lo, hi = np.full(size, np.inf), np.full(size, -np.inf)
        if len(index):
            first = np.flatnonzero(np.r_[True, index[1:] != index[:-1]])
            last = np.r_[first[1:], len(index)] - 1
            lo[index[first]], hi[index[first]] = self.values[first], self.values[last]
        return ColumnSketch(
            self.kind,
            self.dtype,
            self.n_rows,
            self.n_missing,
            {},
            None,
            None,
            edges,
            np.bincount(index, counts, size),
            np.bincount(index, counts * self.values, size),
            lo,
            hi,
            self.below,
            self.above,
        )

    def merge(self, other: ColumnSketch) -> ColumnSketch:
        dtype = (
            self.dtype
            if self.dtype == other.dtype
            else "float64"
            if self.kind == NUMERIC
            else "object"
        )
        rows, missing = self.n_rows + other.n_rows, self.n_missing + other.n_missing
        if self.kind != NUMERIC:
            counts = dict(self.counts)
            for value, count in other.counts.items():
                counts[value] = counts.get(value, 0) + count
            return ColumnSketch(self.kind, dtype, rows, missing, counts)
        if self.exact and other.exact:
            values, inverse = np.unique(
                np.concatenate([self.values, other.values]), return_inverse=True
            )
            counts = np.bincount(
                inverse, np.concatenate([self.value_counts, other.value_counts])
            ).astype(np.int64)
            merged = ColumnSketch(self.kind, dtype, rows, missing, {}, values, counts, self.edges)
            merged.below, merged.above = self.below + other.below, self.above + other.above
            return merged._binned() if len(values) > EXACT_VALUES else merged
        a, b = self._binned(), other._binned()
        return ColumnSketch(
            self.kind,
            dtype,
            rows,
            missing,
            {},
            None,
            None,
            a.edges,
            a.bin_counts + b.bin_counts,
            a.bin_sums + b.bin_sums,
            np.minimum(a.bin_lo, b.bin_lo),
            np.maximum(a.bin_hi, b.bin_hi),
            a.below + b.below,
            a.above + b.above,
        )

    def profile(self, name: str) -> ColumnProfile:
        """The column as the drift tests take it (bins read as their means)."""
        if self.kind != NUMERIC:
            ordered = sorted(self.counts.items(), key=lambda kv: -kv[1])
            values = np.array([v for v, _ in ordered], dtype=object)
            counts = np.array([c for _, c in ordered], dtype=np.int64)
            return ColumnProfile(
                name, self.kind, self.dtype, self.n_rows, self.n_missing, values, counts
            )
        if self.exact:
            values, counts = self.values.astype(np.float64), self.value_counts.astype(np.int64)
        else:
            full = self.bin_counts > 0
            values = self.bin_sums[full] / self.bin_counts[full]
            counts = self.bin_counts[full].astype(np.int64)
        total = counts.sum()
        mean = float(values @ counts / total) if total else None
        std = float(np.sqrt(max(((values - mean) ** 2) @ counts / total, 0.0))) if total else None
        return ColumnProfile(
            name, self.kind, self.dtype, self.n_rows, self.n_missing, values, counts, mean, std
        )

    def _spreads(self) -> np.ndarray:
        """Each bin's largest value less its smallest (0 for a bin of one value: exact)."""
        return np.where(self.bin_counts > 0, self.bin_hi - self.bin_lo, 0.0)

    def wasserstein_bound(self, reference_std: float | None) -> float:
        """Largest error of the normed Wasserstein distance read from this sketch."""
        if self.exact or not self.n:
            return 0.0
        w1 = float(self.bin_counts @ self._spreads() / 2 / self.n)
        return w1 / max(float(reference_std or 0.0), 0.001)

    def ks_bound(self) -> float:
        """Largest error of the KS distance read from this sketch."""
        if self.exact or not self.n:
            return 0.0
        return float(np.max(np.where(self._spreads() > 0, self.bin_counts, 0)) / self.n)


def edges_of(reference: ColumnProfile) -> np.ndarray | None:
    """A numeric reference column's fine edges, computed once and kept with it."""
    if reference.kind != NUMERIC:
        return None
    return reference.cached("fine_edges", lambda: fine_edges(reference.values))
