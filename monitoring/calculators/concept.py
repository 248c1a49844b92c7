"""Concept drift of a classifier: its errors rise where its confidence says they should not.

Two label-based signals (see `modelwatch.monitoring.concept`): an online detector over the stream of
per-prediction errors, fed each labelled prediction once, and realized accuracy parting
ways with the label-free estimate on the same rows. Unlike the other calculators this
one keeps state between windows (the error stream), so a detection stays raised for
HOLD_WINDOWS windows: an alert rule with a `for:` duration sees it.

>>> import numpy as np, pandas as pd
>>> from modelwatch.monitoring.calculators.classification import EstimatedClassification
>>> rng = np.random.default_rng(0)
>>> def scored(n, flip=0.0, start=0):
...     p = rng.uniform(size=n); y = (rng.uniform(size=n) < p).astype(int)
...     y = np.where(rng.uniform(size=n) < flip, 1 - y, y)     # the concept moves
...     return Scored(pd.DataFrame(index=range(n)), (p > .5).astype(int).astype(str).astype(object),
...                   y.astype(str).astype(object), "binary", np.column_stack([1 - p, p]),
...                   ["0", "1"], np.arange(start, start + n).astype(str))
>>> concept = ConceptDrift(EstimatedClassification().fit(scored(5000)))
>>> concept.calculate(scored(2000)).get("concept_drift_detected").value
0.0
>>> concept.calculate(scored(2000, flip=0.3, start=2000)).get("concept_drift_detected").value
1.0
"""

from __future__ import annotations

import collections
from dataclasses import dataclass

import numpy as np
from modelwatch.monitoring.calculators.base import (
    Details,
    Mergeable,
    Metric,
    MetricDeclaration,
    Result,
)
from modelwatch.monitoring.calculators.classification import class_index
from modelwatch.monitoring.concept import ErrorStreamDetector, accuracy_divergence

from modelwatch.log.scored import Scored

HOLD_WINDOWS = 10
MIN_LABELLED_FOR_DIVERGENCE = 200
SEEN_IDS = 200_000  # labelled predictions remembered, so none feeds the detector twice
CONCEPT_DRIFT_DETECTED = MetricDeclaration(
    "concept_drift_detected",
    "1 if the error stream or realized vs estimated accuracy says the concept moved.",
)


@dataclass
class ConceptDetails(Details):
    """Realized against estimated accuracy on the window's labelled rows, and the error
    stream detector's state."""

    divergence: dict
    detector: dict


class ConceptDrift(Mergeable):
    name = "concept_drift"
    declares = (CONCEPT_DRIFT_DETECTED,)

    def __init__(self, estimator=None):
        """`estimator` is the fitted EstimatedClassification of the same version, or None."""
        self.estimator = estimator
        self.detector = ErrorStreamDetector()
        self.seen: collections.OrderedDict = collections.OrderedDict()
        self.windows = 0
        self.last_detection: int | None = None

    def fit(self, reference: Scored) -> ConceptDrift:
        return self  # the error stream starts with the version; nothing to learn beforehand

    def partial(self, rows: Scored) -> dict:
        """The labelled rows' errors in order (small: a time, an id and a flag a row), and
        the label-free estimate's sums on them. The detector reads the stream in time
        order, so a batch engine finishes it on the driver; it is the only aggregate
        that grows with the rows (about 9 bytes a labelled row without ids)."""
        known = rows.labelled
        errors = rows.label[known].astype(str) != rows.prediction[known].astype(str)
        at = rows.ts[known] if rows.ts is not None else np.full(len(errors), np.nan)
        stream = ErrorStream(
            np.asarray(at, dtype=float), None if rows.ids is None else rows.ids[known], errors
        )
        out = {"stream": stream, "estimated": None}
        labelled = rows.take(np.flatnonzero(known))
        if self.estimator is not None and len(labelled) and labelled.proba is not None:
            correct = self.estimator.calibrated(labelled.proba)[
                np.arange(len(labelled)), class_index(labelled)
            ]
            out["estimated"] = {
                "n": len(labelled),
                "correct": float(correct.sum()),
                "variance": float(np.sum(correct * (1 - correct))),
            }
        elif len(labelled):
            out["estimated"] = {
                "n": 0
            }  # some labelled rows had nothing to estimate from: no divergence
        return out

    def finish(self, aggregate: dict) -> Result:
        self.windows += 1
        stream = aggregate["stream"].ordered()
        errors = stream.errors
        fresh = (
            self._unseen(stream.ids) if stream.ids is not None else np.ones(len(errors), dtype=bool)
        )
        if self.detector.update_many(errors[fresh].astype(float)):
            self.last_detection = self.windows
        divergence = self._divergence(aggregate.get("estimated"), errors)
        held = self.last_detection is not None and self.windows - self.last_detection < HOLD_WINDOWS
        diverged = divergence["drifted"] and len(errors) >= MIN_LABELLED_FOR_DIVERGENCE
        detected = bool(held or diverged)
        return Result(
            self.name,
            [Metric(CONCEPT_DRIFT_DETECTED, float(detected), flagged=detected)],
            ConceptDetails(divergence, self.detector.state()),
        )

    def _unseen(self, ids: np.ndarray) -> np.ndarray:
        fresh = np.array([i not in self.seen for i in ids], dtype=bool)
        for i in ids[fresh]:
            self.seen[i] = None
        while len(self.seen) > SEEN_IDS:
            self.seen.popitem(last=False)
        return fresh

    def _divergence(self, estimated: dict | None, errors: np.ndarray) -> dict:
        # A part with labelled rows but nothing to estimate from ("n": 0) leaves the whole
        # window without an estimate, as it would in one piece.
        if not estimated or estimated["n"] != len(errors) or not len(errors):
            return accuracy_divergence(None, None, 0)
        n = estimated["n"]
        return accuracy_divergence(
            float(1 - errors.mean()),
            estimated["correct"] / n,
            n,
            se=float(np.sqrt(estimated["variance"]) / n),
        )


@dataclass
class ErrorStream:
    """Labelled predictions' errors with when they were scored (and their ids)."""

    ts: np.ndarray
    ids: np.ndarray | None
    errors: np.ndarray

    def merge(self, other: ErrorStream) -> ErrorStream:
        ids = (
            None if self.ids is None or other.ids is None else np.concatenate([self.ids, other.ids])
        )
        return ErrorStream(
            np.concatenate([self.ts, other.ts]), ids, np.concatenate([self.errors, other.errors])
        )

    def ordered(self) -> ErrorStream:
        """Oldest first (parts arrive in any order); as merged where times are unknown."""
        if not len(self.ts) or np.isnan(self.ts).any():
            return self
        order = np.argsort(self.ts, kind="stable")
        return ErrorStream(
            self.ts[order], None if self.ids is None else self.ids[order], self.errors[order]
        )
