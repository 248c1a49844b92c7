"""Classification performance, realized from labels and estimated without them (CBPE).

:class:`RealizedClassification` computes accuracy, F1 (of the positive class for binary
models, macro for multi-class ones) and ROC AUC on the window's labelled rows.
:class:`EstimatedClassification` estimates the same metrics for all rows from the
probabilities the model served: confidence-based performance estimation. Fitted on the
reference, it calibrates each class's probability (isotonic regression of "the label is
this class" on the model's probability for it), then reads the expected confusion
matrix of the predictions the model actually served (at whatever decision threshold),
so a model served at 0.65 is estimated at 0.65, not at the argmax.

>>> import numpy as np, pandas as pd
>>> rng = np.random.default_rng(0)
>>> def scored(n):
...     p = rng.uniform(size=n); y = (rng.uniform(size=n) < p).astype(int)
...     pred = (p > 0.65).astype(int)           # served at a threshold of 0.65
...     return Scored(pd.DataFrame(index=range(n)), pred.astype(str).astype(object), y.astype(str).astype(object),
...                   "binary", np.column_stack([1 - p, p]), ["0", "1"])
>>> estimator = EstimatedClassification(chunk_rows=1000).fit(scored(10_000))
>>> window = scored(4000)
>>> est = estimator.calculate(window).get("estimated_accuracy").value
>>> real = RealizedClassification().fit(scored(10_000)).calculate(window).get("live_accuracy").value
>>> abs(est - real) < 0.02
True

References: NannyML, "Confidence-based Performance Estimation" (2022),
https://nannyml.readthedocs.io/en/stable/how_it_works/performance_estimation.html;
Zadrozny and Elkan, "Transforming classifier scores into accurate multiclass probability
estimates", KDD 2002.
"""

from __future__ import annotations

import numpy as np
from sklearn import metrics as skm
from sklearn.isotonic import IsotonicRegression

from modelwatch.monitoring.calculators.base import Scored
from modelwatch.monitoring.calculators.bounded import SCORE, BoundedCalculator


def _class_index(scored: Scored) -> np.ndarray:
    """Index in `classes` of each served prediction (the top class where it is unknown)."""
    lookup = {c: i for i, c in enumerate(scored.classes)}
    index = np.array([lookup.get(p, -1) for p in scored.prediction], dtype=int)
    if scored.proba is not None and (index < 0).any():
        index = np.where(index < 0, scored.proba.argmax(axis=1), index)
    return index


class RealizedClassification(BoundedCalculator):
    """Accuracy, F1 and ROC AUC of the labelled rows."""

    name = "realized_classification"
    specs = {"live_accuracy": SCORE, "live_f1": SCORE, "live_roc_auc": SCORE}

    def fit(self, reference: Scored) -> "RealizedClassification":
        self.fit_bounds(reference)
        return self

    def rows(self, scored: Scored) -> int:
        return int(scored.labelled.sum())

    def values(self, scored: Scored) -> dict:
        known = scored.labelled
        if not known.any():
            return {}
        y, pred = scored.label[known].astype(str), scored.prediction[known].astype(str)
        classes = [str(c) for c in scored.classes]
        binary = len(classes) == 2
        kw = {"average": "binary", "pos_label": classes[-1]} if binary else {"average": "macro", "labels": classes}
        out = {"live_accuracy": float(np.mean(y == pred)),
               "live_f1": float(skm.f1_score(y, pred, zero_division=0, **kw))}
        out["live_roc_auc"] = _roc_auc(y, scored.proba[known] if scored.proba is not None else None, classes)
        return out


def _roc_auc(y: np.ndarray, proba: np.ndarray | None, classes: list[str]) -> float | None:
    present = set(y.tolist())
    if proba is None or len(present) < 2:
        return None
    if len(classes) == 2:
        return float(skm.roc_auc_score(y == classes[1], proba[:, 1]))
    if present != set(classes):
        return None  # one-vs-rest AUC is undefined for a class with no example
    return float(skm.roc_auc_score(y, proba, multi_class="ovr", labels=classes))


class EstimatedClassification(BoundedCalculator):
    """CBPE: expected accuracy, F1 and (binary) ROC AUC of all rows, without labels."""

    name = "estimated_classification"
    specs = {"estimated_accuracy": SCORE, "estimated_f1": SCORE, "estimated_roc_auc": SCORE}

    def fit(self, reference: Scored) -> "EstimatedClassification":
        if reference.proba is None:
            raise ValueError("estimating classification performance needs the class probabilities")
        y = reference.label.astype(str)
        columns = [1] if len(reference.classes) == 2 else range(len(reference.classes))
        self.calibrators = {}
        for k in columns:
            iso = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip")
            iso.fit(reference.proba[:, k], (y == str(reference.classes[k])).astype(float))
            self.calibrators[k] = (iso.X_thresholds_, iso.y_thresholds_)
        self.fit_bounds(reference)
        return self

    def calibrated(self, proba: np.ndarray) -> np.ndarray:
        """Calibrated class probabilities, rows summing to 1."""
        def calibrate(k):
            x, y = self.calibrators[k]
            return np.interp(proba[:, k], x, y) if len(x) > 1 else np.full(len(proba), y[0])

        if len(self.calibrators) == 1:  # binary: the positive class decides both
            positive = calibrate(1)
            return np.column_stack([1 - positive, positive])
        c = np.column_stack([calibrate(k) for k in range(proba.shape[1])])
        total = c.sum(axis=1, keepdims=True)
        return np.divide(c, total, out=np.full_like(c, 1 / c.shape[1]), where=total > 0)

    def values(self, scored: Scored) -> dict:
        if scored.proba is None or not len(scored):
            return {}
        c = self.calibrated(scored.proba)
        served = _class_index(scored)
        rows = np.arange(len(c))
        out = {"estimated_accuracy": float(c[rows, served].mean()),
               "estimated_f1": _expected_f1(c, served),
               "estimated_roc_auc": _expected_auc(scored.proba[:, 1], c[:, 1]) if c.shape[1] == 2 else None}
        return out

    def sampling_error(self, scored: Scored) -> float | None:
        """Standard error of realized accuracy around the estimate (Poisson-binomial)."""
        if scored.proba is None or not len(scored):
            return None
        correct = self.calibrated(scored.proba)[np.arange(len(scored)), _class_index(scored)]
        return float(np.sqrt(np.sum(correct * (1 - correct))) / len(scored))


def _expected_f1(c: np.ndarray, served: np.ndarray) -> float:
    """F1 from the expected confusion matrix: of the positive class when binary, macro else."""
    scores = []
    for k in ([1] if c.shape[1] == 2 else range(c.shape[1])):
        mine = served == k
        tp = c[mine, k].sum()
        fp = (1 - c[mine, k]).sum()
        fn = c[~mine, k].sum()
        scores.append(2 * tp / (2 * tp + fp + fn) if tp + fp + fn > 0 else 0.0)
    return float(np.mean(scores))


def _expected_auc(score: np.ndarray, p_positive: np.ndarray) -> float | None:
    """ROC AUC expected from calibrated probabilities, as NannyML's CBPE computes it: rank
    by the model's score, count each row as p positive and 1 - p negative."""
    order = np.argsort(-score, kind="stable")
    p = p_positive[order]
    tp, fp = np.cumsum(p), np.cumsum(1 - p)
    if tp[-1] <= 0 or fp[-1] <= 0:
        return None
    tpr = np.concatenate([[0.0], tp / tp[-1]])
    fpr = np.concatenate([[0.0], fp / fp[-1]])
    return float(np.trapezoid(tpr, fpr))
