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
...                   y.astype(str).astype(object), "binary", np.column_stack([1 - p, p]), ["0", "1"],
...                   np.arange(start, start + n).astype(str))
>>> concept = ConceptDrift(EstimatedClassification().fit(scored(5000)))
>>> concept.calculate(scored(2000)).get("concept_drift_detected").value
0.0
>>> concept.calculate(scored(2000, flip=0.3, start=2000)).get("concept_drift_detected").value
1.0
"""

from __future__ import annotations

import collections

import numpy as np

from modelwatch.monitoring.calculators.base import Metric, Result, Scored
from modelwatch.monitoring.concept import ErrorStreamDetector, accuracy_divergence

HOLD_WINDOWS = 10
MIN_LABELLED_FOR_DIVERGENCE = 200
SEEN_IDS = 200_000  # labelled predictions remembered, so none feeds the detector twice


class ConceptDrift:
    name = "concept_drift"

    def __init__(self, estimator=None):
        """`estimator` is the fitted EstimatedClassification of the same version, or None."""
        self.estimator = estimator
        self.detector = ErrorStreamDetector()
        self.seen: collections.OrderedDict = collections.OrderedDict()
        self.windows = 0
        self.last_detection: int | None = None

    def fit(self, reference: Scored) -> "ConceptDrift":
        return self  # the error stream starts with the version; nothing to learn beforehand

    def calculate(self, window: Scored) -> Result:
        self.windows += 1
        known = window.labelled
        errors = (window.label[known].astype(str) != window.prediction[known].astype(str))
        fresh = self._unseen(window.ids[known]) if window.ids is not None else np.ones(len(errors), dtype=bool)
        if self.detector.update_many(errors[fresh].astype(float)):
            self.last_detection = self.windows
        divergence = self._divergence(window, known, errors)
        held = self.last_detection is not None and self.windows - self.last_detection < HOLD_WINDOWS
        diverged = divergence["drifted"] and known.sum() >= MIN_LABELLED_FOR_DIVERGENCE
        detected = bool(held or diverged)
        return Result(self.name, [Metric("concept_drift_detected", float(detected), flagged=detected)],
                      {"divergence": divergence, "detector": self.detector.state()})

    def _unseen(self, ids: np.ndarray) -> np.ndarray:
        fresh = np.array([i not in self.seen for i in ids], dtype=bool)
        for i in ids[fresh]:
            self.seen[i] = None
        while len(self.seen) > SEEN_IDS:
            self.seen.popitem(last=False)
        return fresh

    def _divergence(self, window: Scored, known: np.ndarray, errors: np.ndarray) -> dict:
        labelled = window.take(np.flatnonzero(known))
        if self.estimator is None or not len(labelled) or labelled.proba is None:
            return accuracy_divergence(None, None, 0)
        estimated = self.estimator.values(labelled)["estimated_accuracy"]
        return accuracy_divergence(float(1 - errors.mean()), estimated, len(labelled),
                                   se=self.estimator.sampling_error(labelled))
