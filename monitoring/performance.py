"""Model performance in production: realized (from labels) and estimated (without).

Labels arrive late and not for every prediction, so a window has two views:

* :func:`realized_performance` - accuracy, precision, recall, F1 and ROC AUC on the
  predictions whose labels have arrived, with the label coverage that says how much to
  trust them;
* :func:`estimate_performance` - confidence-based performance estimation (CBPE): the
  expected accuracy (and, for binary models, precision, recall and F1) of *all*
  predictions, from their probabilities and the calibrator fitted at training time
  (``training.calibration.ConfidenceCalibrator``). It needs no labels and so sees a
  degradation caused by covariate shift immediately, but it is blind to concept drift
  (P(y | x) changing): compare it with realized accuracy (``monitoring.concept``).

>>> import numpy as np
>>> from training.calibration import ConfidenceCalibrator
>>> rng = np.random.default_rng(0)
>>> p = rng.uniform(size=3000); y = (rng.uniform(size=3000) < p).astype(int)
>>> proba = np.column_stack([1 - p, p]); pred = (p > 0.5).astype(int)
>>> labels = np.where(rng.uniform(size=3000) < 0.6, y, -1).astype(object)
>>> labels[labels == -1] = None                       # 40% of labels have not arrived
>>> real = realized_performance(labels, pred, proba)
>>> real["label_coverage"] > 0.55, round(real["accuracy"], 2)
(True, 0.74)
>>> p2 = rng.uniform(size=8000); y2 = (rng.uniform(size=8000) < p2).astype(int)
>>> cal = ConfidenceCalibrator.fit(np.column_stack([1 - p2, p2]), y2, classes=[0, 1])  # a holdout
>>> est = estimate_performance(proba, cal)["estimated_accuracy"]
>>> actual = float((pred == y).mean())
>>> abs(est - actual) < 0.02
True

References: NannyML, "Confidence-based Performance Estimation" (2022),
https://nannyml.readthedocs.io/en/stable/how_it_works/performance_estimation.html;
Zadrozny and Elkan, KDD 2002, for the isotonic calibration it rests on.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import pandas as pd
from sklearn import metrics


def join_labels(predictions: pd.DataFrame, labels: pd.DataFrame, on: str = "prediction_id",
                label: str = "label") -> pd.DataFrame:
    """Predictions left-joined with the labels that arrived (missing ones as NaN).

    When a label was sent more than once, the last one counts (feedback is idempotent).
    """
    latest = labels.drop_duplicates(subset=[on], keep="last")[[on, label]]
    return predictions.merge(latest, on=on, how="left", validate="many_to_one")


def _missing_mask(y: np.ndarray) -> np.ndarray:
    return pd.isna(pd.Series(y, dtype=object)).to_numpy()


def _proba_matrix(proba) -> np.ndarray | None:
    if proba is None:
        return None
    proba = np.asarray(proba, dtype=float)
    if proba.ndim == 1:
        proba = np.column_stack([1 - proba, proba])
    return proba


def realized_performance(
    y_true: Sequence,
    y_pred: Sequence,
    proba=None,
    positive_label=1,
    classes: Sequence | None = None,
) -> dict:
    """Metrics on the rows whose true label is known.

    ``y_true`` holds the labels, None/NaN where none has arrived; ``y_pred`` the served
    labels; ``proba`` optionally the probabilities, (n, k) in ``classes`` order or the
    positive-class probability for binary models (needed for ROC AUC). Binary models use
    ``positive_label`` for precision, recall and F1; multi-class ones the macro average.
    A metric that cannot be computed (no labels, one class only) is None.
    """
    y_true = np.asarray(y_true, dtype=object)
    y_pred = np.asarray(y_pred, dtype=object)
    if len(y_true) != len(y_pred):
        raise ValueError("y_true and y_pred differ in length")
    n = len(y_pred)
    known = ~_missing_mask(y_true)
    out = {"n_predictions": n, "n_labelled": int(known.sum()),
           "label_coverage": float(known.mean()) if n else 0.0,
           "accuracy": None, "precision": None, "recall": None, "f1": None, "roc_auc": None}
    if not known.any():
        return out
    yt, yp = _normalize_labels(y_true[known], y_pred[known])
    labels = list(classes) if classes is not None else sorted(set(yt.tolist()) | set(yp.tolist()), key=str)
    binary = len(labels) <= 2
    out["accuracy"] = float(np.mean(yt == yp))
    if binary:
        kw = {"average": "binary", "pos_label": _normalize_scalar(positive_label)}
    else:
        kw = {"average": "macro", "labels": labels}
    yt_s, yp_s = yt.astype(str), yp.astype(str)
    if binary:
        kw["pos_label"] = str(kw["pos_label"])
    out["precision"] = float(metrics.precision_score(yt_s, yp_s, zero_division=0, **kw))
    out["recall"] = float(metrics.recall_score(yt_s, yp_s, zero_division=0, **kw))
    out["f1"] = float(metrics.f1_score(yt_s, yp_s, zero_division=0, **kw))
    p = _proba_matrix(proba)
    if p is not None and len(set(yt.tolist())) > 1:
        p = p[known]
        if p.shape[1] == 2:
            out["roc_auc"] = float(metrics.roc_auc_score(yt_s == str(_normalize_scalar(positive_label)), p[:, 1]))
        elif classes is not None:
            present = np.isin(np.asarray(classes, dtype=object), yt)
            if present.all():
                out["roc_auc"] = float(metrics.roc_auc_score(yt_s, p, multi_class="ovr",
                                                             labels=[str(c) for c in classes]))
    return out


def _normalize_scalar(v):
    """Labels arrive as 1, 1.0, "1" or True depending on the path; compare them as one."""
    if isinstance(v, (bool, np.bool_)):
        return int(v)
    if isinstance(v, (float, np.floating)) and float(v).is_integer():
        return int(v)
    if isinstance(v, np.integer):
        return int(v)
    return v


def _normalize_labels(*arrays: np.ndarray) -> list[np.ndarray]:
    return [np.array([_normalize_scalar(v) for v in a.tolist()], dtype=object) for a in arrays]


def estimate_performance(proba, calibrator, y_pred: Sequence | None = None) -> dict:
    """CBPE: expected metrics of the predictions from calibrated confidence, no labels.

    ``calibrator`` is a fitted ``ConfidenceCalibrator``. Returns ``estimated_accuracy``
    and its sampling standard error (how far realized accuracy on these rows may fall
    from it by chance, if the calibration holds), plus expected precision, recall and
    F1 for binary models.
    """
    p = _proba_matrix(proba)
    n = 0 if p is None else len(p)
    out = {"n_predictions": n, "estimated_accuracy": None, "estimated_accuracy_se": None,
           "estimated_precision": None, "estimated_recall": None, "estimated_f1": None}
    if n == 0:
        return out
    correct = calibrator.expected_correct(p, y_pred)
    out["estimated_accuracy"] = float(correct.mean())
    # Realized accuracy is a mean of independent Bernoulli(correct_i): Poisson-binomial.
    out["estimated_accuracy_se"] = float(math.sqrt(float(np.sum(correct * (1 - correct)))) / n)
    if calibrator.mode == "binary":
        p_pos = calibrator.positive_probability(p)
        pred_pos = (p[:, 1] > p[:, 0]) if y_pred is None else \
            (np.asarray(_normalize_labels(np.asarray(y_pred, dtype=object))[0]) == _normalize_scalar(calibrator.classes[1]))
        tp = float(p_pos[pred_pos].sum())
        fp = float((1 - p_pos[pred_pos]).sum())
        fn = float(p_pos[~pred_pos].sum())
        precision = tp / (tp + fp) if tp + fp > 0 else 0.0
        recall = tp / (tp + fn) if tp + fn > 0 else 0.0
        out["estimated_precision"] = precision
        out["estimated_recall"] = recall
        out["estimated_f1"] = 2 * precision * recall / (precision + recall) if precision + recall > 0 else 0.0
    return out
