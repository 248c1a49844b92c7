"""Mergeable aggregates: what one partition of a window hands on, and how two combine.

Every calculator splits `calculate(window)` into `partial(rows) -> aggregate` (any rows:
a whole window, one Parquet file, one Spark partition), `merge(a, b) -> aggregate` and
`finish(aggregate) -> Result`, with `calculate(s) == finish(partial(s))`: the in-process
monitor is the one-partition case. An aggregate is small and picklable: counts, sums and
the sketches here.

A window column is a :class:`~modelwatch.monitoring.drift.sketch.ColumnSketch` (category
counts, or numeric values exactly or on reference bins, with the error bounds that costs).

:class:`ScoreSketch` does the same for ranking metrics (ROC AUC): raw scores while at most
EXACT_ROWS rows, then weighted counts on SCORE_BINS equal bins of [0, 1], rows in one bin
counted as ties. The within-bin pairs are the only ones whose order is unknown, so the
AUC is off by at most half their weight (`auc_bound`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

EXACT_ROWS = 20_000  # rows whose raw scores a ScoreSketch keeps
SCORE_BINS = 4000


def combine(a, b):
    """Two aggregates of the same calculator as one: numbers and arrays add, dicts merge
    key by key, sketches merge, None is nothing."""
    if a is None:
        return b
    if b is None:
        return a
    if isinstance(a, dict):
        return {k: combine(a.get(k), b.get(k)) for k in dict.fromkeys([*a, *b])}
    if hasattr(a, "merge"):
        return a.merge(b)
    if isinstance(a, bool):
        return a or b
    return a + b


@dataclass
class ScoreSketch:
    """Scores with a positive weight each (a label indicator, or a calibrated
    probability), for ROC AUC: raw while small, weighted counts on [0, 1] bins after."""

    scores: np.ndarray  # (n, m): m ranked columns (binary: one; one-vs-rest: a class each)
    positive: np.ndarray  # (n, m) weights in [0, 1]; negative weight is 1 - positive
    bins_positive: np.ndarray | None = None  # (SCORE_BINS, m) once binned
    bins_negative: np.ndarray | None = None

    @property
    def exact(self) -> bool:
        return self.bins_positive is None

    @classmethod
    def of(cls, scores: np.ndarray, positive: np.ndarray) -> ScoreSketch:
        sketch = cls(
            np.asarray(scores, float).reshape(len(scores), -1),
            np.asarray(positive, float).reshape(len(scores), -1),
        )
        return sketch._binned() if len(scores) > EXACT_ROWS else sketch

    def _binned(self) -> ScoreSketch:
        if not self.exact:
            return self
        m = self.scores.shape[1]
        index = np.clip((self.scores * SCORE_BINS).astype(int), 0, SCORE_BINS - 1)
        pos = np.stack(
            [np.bincount(index[:, j], self.positive[:, j], SCORE_BINS) for j in range(m)], axis=1
        )
        neg = np.stack(
            [np.bincount(index[:, j], 1 - self.positive[:, j], SCORE_BINS) for j in range(m)],
            axis=1,
        )
        return ScoreSketch(np.empty((0, m)), np.empty((0, m)), pos, neg)

    def merge(self, other: ScoreSketch) -> ScoreSketch:
        if self.exact and other.exact and len(self.scores) + len(other.scores) <= EXACT_ROWS:
            return ScoreSketch(
                np.vstack([self.scores, other.scores]), np.vstack([self.positive, other.positive])
            )
        a, b = self._binned(), other._binned()
        return ScoreSketch(
            a.scores,
            a.positive,
            a.bins_positive + b.bins_positive,
            a.bins_negative + b.bins_negative,
        )

    def binned_auc(self, column: int = 0) -> tuple[float | None, float]:
        """(AUC, its largest error) from the bins: a pair in one bin counts half."""
        pos, neg = self.bins_positive[:, column], self.bins_negative[:, column]
        total_pos, total_neg = pos.sum(), neg.sum()
        if total_pos <= 0 or total_neg <= 0:
            return None, 0.0
        below = np.concatenate([[0.0], np.cumsum(neg)[:-1]])  # negatives scored lower
        auc = float((pos @ below + 0.5 * pos @ neg) / (total_pos * total_neg))
        return auc, float(0.5 * pos @ neg / (total_pos * total_neg))
