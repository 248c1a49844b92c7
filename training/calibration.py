"""The probability calibrator that estimated (label-free) accuracy needs.

Fitted at training time on held-out predictions, saved with the run as JSON, and used by
the monitor (``monitoring.performance.estimate_performance``) to turn each production
prediction's probabilities into P(prediction is correct) - confidence-based performance
estimation (CBPE): the mean of those is the expected accuracy of a window whose labels
have not arrived yet.

Binary models are calibrated on the positive class (isotonic regression of y == positive
on the predicted positive probability), which also gives expected precision, recall and
F1. Multi-class models are calibrated on correctness (isotonic regression of "the top
class was right" on the top-class probability).

>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> p = rng.uniform(size=4000)
>>> y = (rng.uniform(size=4000) < p ** 2).astype(int)   # the model is over-confident
>>> proba = np.column_stack([1 - p, p])
>>> cal = ConfidenceCalibrator.fit(proba, y, classes=[0, 1])
>>> round(float(cal.expected_correct(proba).mean()), 2), round(float(((p > .5) == y).mean()), 2)
(0.74, 0.74)
>>> ConfidenceCalibrator.from_dict(cal.to_dict()).to_dict() == cal.to_dict()
True

The limit, by construction: the calibrator learns P(y | model score) on data from the
training distribution. Under covariate shift (P(x) moves, P(y | x) stays) that mapping
still holds and the estimate follows accuracy. Under concept drift (P(y | x) itself
changes) the scores - and so the estimate - do not move while accuracy falls: concept
drift is invisible to estimation and only realized accuracy on labels (and the error
stream, ``monitoring.concept``) can reveal it; the two parting ways is itself the signal.

References: Zadrozny and Elkan, "Transforming classifier scores into accurate multiclass
probability estimates", KDD 2002 (isotonic calibration); NannyML, "Confidence-based
Performance Estimation (CBPE)", https://nannyml.readthedocs.io (2022).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Sequence

import numpy as np
from sklearn.isotonic import IsotonicRegression

FORMAT = "modelwatch.confidence_calibrator"
FORMAT_VERSION = 1
FILENAME = "calibrator.json"


def _jsonable(v):
    return v.item() if isinstance(v, np.generic) else v


class ConfidenceCalibrator:
    """Isotonic calibration of a classifier's scores, stored as its breakpoints.

    ``mode`` is "binary" (calibrated P(positive) from the positive-class probability) or
    "top_class" (calibrated P(correct) from the top-class probability).
    """

    def __init__(self, classes: Sequence, mode: str, x: np.ndarray, y: np.ndarray, n_fit: int = 0):
        self.classes = [_jsonable(c) for c in classes]
        self.mode = mode
        self.x = np.asarray(x, dtype=float)
        self.y = np.asarray(y, dtype=float)
        self.n_fit = int(n_fit)

    # -- fitting -------------------------------------------------------------------------------
    @classmethod
    def fit(cls, proba: np.ndarray, y_true: Sequence, classes: Sequence) -> "ConfidenceCalibrator":
        """Fit on held-out (not training) probabilities ``proba`` (n, k), true labels, and
        the classes in ``proba``'s column order (``model.classes_``)."""
        proba = np.asarray(proba, dtype=float)
        y_true = np.asarray(y_true)
        if proba.ndim != 2 or proba.shape[1] != len(classes):
            raise ValueError("proba must have shape (n, len(classes))")
        if len(y_true) != len(proba):
            raise ValueError("proba and y_true differ in length")
        classes = list(classes)
        iso = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip", increasing=True)
        if len(classes) == 2:
            score = proba[:, 1]
            target = (y_true == classes[1]).astype(float)
            mode = "binary"
        else:
            score = proba.max(axis=1)
            target = (np.asarray(classes, dtype=object)[proba.argmax(axis=1)] == y_true).astype(float)
            mode = "top_class"
        iso.fit(score, target)
        return cls(classes, mode, iso.X_thresholds_, iso.y_thresholds_, len(score))

    # -- use ------------------------------------------------------------------------------------
    def _calibrate(self, score: np.ndarray) -> np.ndarray:
        # IsotonicRegression.predict with out_of_bounds="clip" is linear interpolation
        # between its thresholds, clamped at the ends: exactly np.interp.
        if self.x.size == 1:
            return np.full(score.shape, self.y[0])
        return np.interp(score, self.x, self.y)

    def positive_probability(self, proba: np.ndarray) -> np.ndarray:
        """Calibrated P(y = positive class) per row (binary models only)."""
        if self.mode != "binary":
            raise ValueError("positive_probability needs a binary calibrator")
        proba = np.asarray(proba, dtype=float)
        return self._calibrate(proba[:, 1] if proba.ndim == 2 else proba)

    def predicted_labels(self, proba: np.ndarray) -> np.ndarray:
        proba = np.asarray(proba, dtype=float)
        return np.asarray(self.classes, dtype=object)[proba.argmax(axis=1)]

    def expected_correct(self, proba: np.ndarray, y_pred: Sequence | None = None) -> np.ndarray:
        """P(the prediction is correct) per row.

        ``y_pred`` are the labels the model served; by default the top class of ``proba``.
        """
        proba = np.asarray(proba, dtype=float)
        if proba.ndim == 1:
            proba = np.column_stack([1 - proba, proba])
        if self.mode == "binary":
            p_pos = self._calibrate(proba[:, 1])
            pred_pos = (proba[:, 1] > proba[:, 0]) if y_pred is None else \
                (np.asarray(y_pred, dtype=object) == self.classes[1])
            return np.where(pred_pos, p_pos, 1.0 - p_pos)
        p_top = self._calibrate(proba.max(axis=1))
        if y_pred is None:
            return p_top
        # A served label other than the top class: we only know it is not the top one.
        top = self.predicted_labels(proba)
        return np.where(np.asarray(y_pred, dtype=object) == top, p_top, (1 - p_top) / max(len(self.classes) - 1, 1))

    # -- JSON -----------------------------------------------------------------------------------
    def to_dict(self) -> dict:
        return {"format": FORMAT, "version": FORMAT_VERSION, "mode": self.mode, "classes": self.classes,
                "x": self.x.tolist(), "y": self.y.tolist(), "n_fit": self.n_fit}

    @classmethod
    def from_dict(cls, d: dict) -> "ConfidenceCalibrator":
        if d.get("format") != FORMAT:
            raise ValueError("not a modelwatch confidence calibrator")
        return cls(d["classes"], d["mode"], np.asarray(d["x"]), np.asarray(d["y"]), d.get("n_fit", 0))

    def save(self, path: str | Path) -> Path:
        """Write the calibrator as JSON; a directory gets ``calibrator.json`` inside."""
        path = Path(path)
        if path.is_dir() or not path.suffix:
            path.mkdir(parents=True, exist_ok=True)
            path = path / FILENAME
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.to_dict(), allow_nan=False))
        return path

    @classmethod
    def load(cls, path: str | Path) -> "ConfidenceCalibrator":
        path = Path(path)
        if path.is_dir():
            path = path / FILENAME
        return cls.from_dict(json.loads(path.read_text()))

    def __repr__(self) -> str:
        return f"ConfidenceCalibrator(mode={self.mode!r}, classes={self.classes}, n_fit={self.n_fit})"
