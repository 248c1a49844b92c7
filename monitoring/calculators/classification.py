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
...     return Scored(pd.DataFrame(index=range(n)), pred.astype(str).astype(object),
...                   y.astype(str).astype(object), "binary", np.column_stack([1 - p, p]),
...                   ["0", "1"])
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
from modelwatch.monitoring.calculators.bounded import BOUND, BoundedCalculator, score
from modelwatch.monitoring.calculators.mergeable import ScoreSketch
from sklearn import metrics as skm
from sklearn.isotonic import IsotonicRegression

from modelwatch.log.scored import Scored

LIVE_ACCURACY = score("live_accuracy", "Accuracy on the window's labelled predictions.")
LIVE_F1 = score("live_f1", "F1 on the window's labelled predictions (macro for multi-class).")
LIVE_ROC_AUC = score("live_roc_auc", "ROC AUC on the window's labelled predictions.")
ESTIMATED_ACCURACY = score("estimated_accuracy", "Accuracy estimated without labels (CBPE).")
ESTIMATED_F1 = score("estimated_f1", "F1 estimated without labels (CBPE).")
ESTIMATED_ROC_AUC = score("estimated_roc_auc", "ROC AUC estimated without labels (CBPE).")


def class_index(scored: Scored) -> np.ndarray:
    """Index in `classes` of each served prediction (the top class where it is unknown)."""
    lookup = {c: i for i, c in enumerate(scored.classes)}
    index = np.array([lookup.get(p, -1) for p in scored.prediction], dtype=int)
    if scored.proba is not None and (index < 0).any():
        index = np.where(index < 0, scored.proba.argmax(axis=1), index)
    return index


class RealizedClassification(BoundedCalculator):
    """Accuracy, F1 and ROC AUC of the labelled rows.

    Accuracy and F1 come from the confusion counts, exactly at any size. ROC AUC needs
    the rows' ranking: exact on up to EXACT_ROWS labelled rows, above that from scores
    binned on [0, 1] (`ScoreSketch`; its error bound is in `BoundedDetails.error_bounds`)."""

    name = "realized_classification"
    declares = (LIVE_ACCURACY, LIVE_F1, LIVE_ROC_AUC)

    def fit(self, reference: Scored) -> RealizedClassification:
        self.fit_bounds(reference)
        return self

    def rows(self, scored: Scored) -> int:
        return int(scored.labelled.sum())

    def sums(self, scored: Scored) -> dict:
        # A window without the probabilities of every row has no AUC: nor has a part of it.
        no_proba = int(scored.proba is None and len(scored) > 0)
        known = scored.labelled
        if not known.any():
            return {"no_proba": no_proba}
        classes = [str(c) for c in scored.classes]
        y, pred = scored.label[known].astype(str), scored.prediction[known].astype(str)
        yi, pi = _index_in(y, classes), _index_in(pred, classes)
        confusion = np.zeros(
            (len(classes) + 1, len(classes) + 1), dtype=np.int64
        )  # the last: not a class
        np.add.at(confusion, (yi, pi), 1)
        auc = None
        if scored.proba is not None:
            proba = scored.proba[known]
            onehot = (yi[:, None] == np.arange(len(classes))[None, :]).astype(float)
            auc = (
                ScoreSketch.of(proba[:, 1:], onehot[:, 1:])
                if len(classes) == 2
                else ScoreSketch.of(proba, onehot)
            )
        return {
            "no_proba": no_proba,
            "n": int(known.sum()),
            "correct": int(np.sum(y == pred)),
            "confusion": confusion,
            "auc": auc,
        }

    def metrics_of(self, sums: dict) -> dict:
        if not sums.get("n"):
            return {}
        confusion = sums["confusion"]
        k = len(confusion) - 1
        tp = np.diag(confusion)[:k].astype(float)
        fp, fn = confusion[:, :k].sum(axis=0) - tp, confusion[:k, :].sum(axis=1) - tp
        with np.errstate(invalid="ignore", divide="ignore"):
            f1 = np.where(2 * tp + fp + fn > 0, 2 * tp / (2 * tp + fp + fn), 0.0)
        out = {
            LIVE_ACCURACY.name: sums["correct"] / sums["n"],
            LIVE_F1.name: float(f1[-1] if k == 2 else f1.mean()),
        }
        auc, bound = (
            (None, 0.0)
            if sums["no_proba"] or sums["auc"] is None
            else _roc_auc(sums["auc"], confusion)
        )
        return out | {LIVE_ROC_AUC.name: auc, LIVE_ROC_AUC.name + BOUND: bound}


def _index_in(values: np.ndarray, classes: list[str]) -> np.ndarray:
    """Each value's index in `classes`, len(classes) for one that is not a class."""
    lookup = {c: i for i, c in enumerate(classes)}
    return np.array([lookup.get(v, len(classes)) for v in values], dtype=int)


def _roc_auc(sketch: ScoreSketch, confusion: np.ndarray) -> tuple[float | None, float]:
    """ROC AUC of the labelled rows (one-vs-rest macro for more than two classes), and
    its largest error (0 when exact)."""
    k = len(confusion) - 1
    present = confusion.sum(axis=1) > 0
    if present.sum() < 2:
        return None, 0.0
    if k > 2 and not (present[:k].all() and not present[k]):
        return None, 0.0  # one-vs-rest AUC is undefined for a class with no example
    if sketch.exact:
        positive = sketch.positive
        if k == 2:
            return float(skm.roc_auc_score(positive[:, 0] > 0, sketch.scores[:, 0])), 0.0
        return float(
            skm.roc_auc_score(
                positive.argmax(axis=1), sketch.scores, multi_class="ovr", labels=list(range(k))
            )
        ), 0.0
    found = [sketch.binned_auc(j) for j in range(sketch.bins_positive.shape[1])]
    return float(np.mean([a for a, _ in found])), float(np.mean([b for _, b in found]))


class EstimatedClassification(BoundedCalculator):
    """CBPE: expected accuracy, F1 and (binary) ROC AUC of all rows, without labels."""

    name = "estimated_classification"
    declares = (ESTIMATED_ACCURACY, ESTIMATED_F1, ESTIMATED_ROC_AUC)

    def fit(self, reference: Scored) -> EstimatedClassification:
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

    def chunk_values(self, chunk: Scored) -> dict[str, float | None]:
        # NannyML bounds an estimate by the spread of the realized metric over the
        # reference chunks (the estimate's own spread is 2-4x narrower: false alarms).
        realized = RealizedClassification().values(chunk)
        binary = len(self.calibrators) == 1  # the estimate has a ROC AUC for binary models only
        return {
            ESTIMATED_ACCURACY.name: realized.get(LIVE_ACCURACY.name),
            ESTIMATED_F1.name: realized.get(LIVE_F1.name),
            ESTIMATED_ROC_AUC.name: realized.get(LIVE_ROC_AUC.name) if binary else None,
        }

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

    def sums(self, scored: Scored) -> dict:
        if scored.proba is None or not len(scored):
            return {"no_proba": int(len(scored) > 0)}
        c = self.calibrated(scored.proba)
        served = class_index(scored)
        columns = [1] if c.shape[1] == 2 else range(c.shape[1])
        mine = [served == k for k in columns]
        return {
            "no_proba": 0,
            "n": len(c),
            "correct": float(c[np.arange(len(c)), served].sum()),
            "tp": np.array([c[m, k].sum() for m, k in zip(mine, columns)]),
            "served": np.array([m.sum() for m in mine], dtype=float),
            "total": np.array([c[:, k].sum() for k in columns]),
            "auc": ScoreSketch.of(scored.proba[:, 1], c[:, 1]) if c.shape[1] == 2 else None,
        }

    def metrics_of(self, sums: dict) -> dict:
        if sums["no_proba"] or not sums.get("n"):
            return {}
        auc, bound = None, 0.0
        if sums["auc"] is not None:
            sketch = sums["auc"]
            auc, bound = (
                (_expected_auc(sketch.scores[:, 0], sketch.positive[:, 0]), 0.0)
                if sketch.exact
                else sketch.binned_auc(0)
            )
        return {
            ESTIMATED_ACCURACY.name: sums["correct"] / sums["n"],
            ESTIMATED_F1.name: _expected_f1(sums["tp"], sums["served"], sums["total"]),
            ESTIMATED_ROC_AUC.name: auc,
            ESTIMATED_ROC_AUC.name + BOUND: bound,
        }

    def sampling_error(self, scored: Scored) -> float | None:
        """Standard error of realized accuracy around the estimate (Poisson-binomial)."""
        if scored.proba is None or not len(scored):
            return None
        correct = self.calibrated(scored.proba)[np.arange(len(scored)), class_index(scored)]
        return float(np.sqrt(np.sum(correct * (1 - correct))) / len(scored))


def _expected_f1(tp: np.ndarray, served: np.ndarray, total: np.ndarray) -> float:
    """F1 from the expected confusion matrix (per class: the calibrated probability summed
    over the rows served as it, the rows served as it, the probability summed over all):
    of the positive class when binary, macro else."""
    fp, fn = served - tp, total - tp
    scores = [2 * t / (2 * t + p + n) if t + p + n > 0 else 0.0 for t, p, n in zip(tp, fp, fn)]
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
