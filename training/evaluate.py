"""Metrics: classification from predicted probabilities, regression from predicted values."""

from __future__ import annotations

import numpy as np
from sklearn import metrics as skm

ECE_BINS = 10


def evaluate(y_true, proba: np.ndarray, classes: np.ndarray) -> dict[str, float]:
    """accuracy, precision, recall, f1, roc_auc, log_loss and expected calibration error.

    Binary targets score the second class as positive; multi-class ones macro-average
    and use one-vs-rest ROC AUC.
    """
    y_true = np.asarray(y_true)
    predicted = classes[proba.argmax(axis=1)]
    binary = len(classes) == 2
    average = "binary" if binary else "macro"
    kwargs = {"pos_label": classes[1]} if binary else {}
    present = set(np.unique(y_true))
    return {
        "accuracy": float(skm.accuracy_score(y_true, predicted)),
        "precision": float(
            skm.precision_score(y_true, predicted, average=average, zero_division=0, **kwargs)
        ),
        "recall": float(
            skm.recall_score(y_true, predicted, average=average, zero_division=0, **kwargs)
        ),
        "f1": float(skm.f1_score(y_true, predicted, average=average, zero_division=0, **kwargs)),
        "roc_auc": _roc_auc(y_true, proba, classes) if len(present) > 1 else float("nan"),
        "log_loss": float(skm.log_loss(y_true, proba, labels=classes)),
        "expected_calibration_error": expected_calibration_error(y_true, proba, classes),
    }


def evaluate_regression(y_true, predicted: np.ndarray) -> dict[str, float]:
    """rmse, mae, mape and r2. MAPE is sklearn's: a zero target weighs as if it were
    machine epsilon, so on targets near zero it explodes; read rmse and mae there.

    >>> evaluate_regression([1.0, 2.0, 4.0], np.array([1.0, 3.0, 3.0]))["mae"]
    0.6666666666666666
    """
    y_true = np.asarray(y_true, dtype=float)
    return {
        "rmse": float(skm.root_mean_squared_error(y_true, predicted)),
        "mae": float(skm.mean_absolute_error(y_true, predicted)),
        "mape": float(skm.mean_absolute_percentage_error(y_true, predicted)),
        "r2": float(skm.r2_score(y_true, predicted)),
    }


def primary_metric(task: str) -> str:
    """The metric the promotion gate compares: ROC AUC for binary, accuracy for
    multiclass, RMSE for regression."""
    return {"binary": "roc_auc", "multiclass": "accuracy", "regression": "rmse"}[task]


def expected_calibration_error(
    y_true, proba: np.ndarray, classes: np.ndarray, bins: int = ECE_BINS
) -> float:
    """Guo et al. (2017), "On Calibration of Modern Neural Networks": the mean gap between
    top-class confidence and accuracy over equal-width confidence bins, weighted by bin size."""
    confidence = proba.max(axis=1)
    correct = classes[proba.argmax(axis=1)] == np.asarray(y_true)
    which = np.minimum((confidence * bins).astype(int), bins - 1)
    counts = np.bincount(which, minlength=bins)
    gap = np.abs(
        np.bincount(which, weights=correct, minlength=bins)
        - np.bincount(which, weights=confidence, minlength=bins)
    )
    return float(gap.sum() / max(counts.sum(), 1))


def _roc_auc(y_true, proba: np.ndarray, classes: np.ndarray) -> float:
    if len(classes) == 2:
        return float(skm.roc_auc_score(y_true == classes[1], proba[:, 1]))
    return float(skm.roc_auc_score(y_true, proba, multi_class="ovr", labels=classes))
