"""Concept drift: P(y | x) changed, so the model is wrong where it used to be right.

Input data can look perfectly stable while the relation the model learned breaks: data
drift tests and confidence-based estimation (``modelwatch.monitoring.calculators.classification``)
cannot see it. Three label-based signals can:

* :class:`ErrorStreamDetector` - an online change detector over the stream of
  per-prediction errors (1 = wrong, 0 = right) in the order labels arrive: river's ADWIN
  (default) or Page-Hinkley. Only a *rise* in the error rate counts as concept drift; a
  model getting better is no alarm.
* :func:`accuracy_divergence` - realized accuracy (labels) parting ways with estimated
  accuracy (no labels): the estimate assumes P(y | x) fixed, so a gap larger than
  sampling explains is concept drift showing.
* :func:`calibration_drift` - the same comparison on the probabilities rather than the
  0/1 outcome (Spiegelhalter's z-test of labels against calibrated probabilities): it
  uses every prediction's confidence, not just which side of 0.5 it fell, and so needs
  several times fewer labels to see a subtle change than accuracy does.

How many labels it takes: a change in the error rate of size d shows at roughly
10 * p (1 - p) / d^2 labels (ADWIN: a rise from 0.20 to 0.30 within ~500-900 labels, no
false alarm over thousands of stable ones); a 2-point drop in accuracy needs thousands.

>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> errors = np.concatenate([rng.random(3000) < 0.15, rng.random(3000) < 0.35])
>>> detector = ErrorStreamDetector()
>>> first = detector.update_many(errors)
>>> 3000 <= first[0] < 3400, round(detector.error_rate, 2)
(True, 0.35)
>>> accuracy_divergence(realized=0.66, estimated=0.84, n_labelled=800)["drifted"]
True
>>> accuracy_divergence(realized=0.83, estimated=0.84, n_labelled=800)["drifted"]
False
>>> q = rng.uniform(0.05, 0.6, 4000)                       # calibrated P(default)
>>> calibration_drift(rng.random(4000) < q, q)["drifted"]   # labels follow the model
False
>>> calibration_drift(rng.random(4000) < np.clip(q + 0.08, 0, 1), q)["drifted"]
True

References: Bifet and Gavalda, "Learning from time-changing data with adaptive
windowing", SDM 2007 (ADWIN); Page, "Continuous inspection schemes", Biometrika 1954
(Page-Hinkley); Spiegelhalter, "Probabilistic prediction in patient management and
clinical trials", Statistics in Medicine 1986 (the calibration z-test); Gama et al., "A
survey on concept drift adaptation", ACM Computing Surveys 2014 (error-rate monitoring as
concept drift detection).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

import numpy as np
import pandas as pd
from river import drift as river_drift
from scipy import stats


class ErrorStreamDetector:
    """Online detection of a rise in a model's error rate.

    ``method``: "adwin" (adaptive windowing; ``delta`` is its confidence, smaller means
    fewer false alarms) or "page_hinkley" (cumulative deviation test, upward mode).
    Extra keyword arguments go to the river detector.
    """

    def __init__(self, method: str = "adwin", **params):
        self.method = method.lower().replace("-", "_")
        self.params = params
        self.reset()

    def reset(self) -> None:
        if self.method == "adwin":
            params = {"delta": 0.002, **self.params}
            self._detector = river_drift.ADWIN(**params)
        elif self.method in ("page_hinkley", "pagehinkley", "ph"):
            # Errors are 0/1 with variance p(1-p) <= 0.25: a tolerance delta of 0.02
            # keeps the random walk of a stable error rate from wandering up to the
            # threshold (no false alarm in 5000 steps at p = 0.2), while a rise of 0.1
            # in the error rate climbs at ~0.08 per step and trips within a few hundred.
            params = {
                "min_instances": 30,
                "delta": 0.02,
                "threshold": 30.0,
                "mode": "up",
                **self.params,
            }
            self._detector = river_drift.PageHinkley(**params)
        else:
            raise ValueError(f"unknown method {self.method!r}: use 'adwin' or 'page_hinkley'")
        self.n_seen = 0
        self.n_errors = 0
        self.drift_detected = False
        self.detections: list[int] = []
        self._recent: list[float] = []

    @property
    def error_rate(self) -> float:
        """Error rate of the current regime (since the last change, for ADWIN its window)."""
        if self.method == "adwin":
            return float(self._detector.estimation)
        return sum(self._recent) / len(self._recent) if self._recent else 0.0

    def update(self, error: bool | float) -> bool:
        """Feed one prediction's error (1/True = wrong); True when a rise is detected now."""
        x = float(error)
        before = self.error_rate
        self._detector.update(x)
        self.n_seen += 1
        self.n_errors += x
        self._recent.append(x)
        if len(self._recent) > 1000:
            del self._recent[:500]
        fired = bool(self._detector.drift_detected)
        if fired and self.method == "adwin":
            # ADWIN flags changes both ways; an improving model is no concept drift.
            fired = self.error_rate > before
        if fired:
            self._recent = self._recent[-30:]
            self.detections.append(self.n_seen - 1)
        self.drift_detected = fired
        return fired

    def update_many(self, errors: Iterable) -> list[int]:
        """Feed a batch in arrival order; returns the stream positions where a rise fired."""
        fired = []
        for e in errors:
            if self.update(e):
                fired.append(self.n_seen - 1)
        return fired

    def state(self) -> dict:
        return {
            "method": self.method,
            "n_seen": self.n_seen,
            "error_rate": self.error_rate,
            "drift_detected": self.drift_detected,
            "detections": list(self.detections),
        }


def accuracy_divergence(
    realized: float | None,
    estimated: float | None,
    n_labelled: int,
    tolerance: float = 0.01,
    z: float = 3.0,
    se: float | None = None,
) -> dict:
    """Do realized and estimated accuracy part ways more than sampling explains?

    Drift when realized accuracy falls below the estimate by more than ``tolerance``
    *and* by more than ``z`` standard errors. ``se`` is the estimate's sampling error on
    the labelled rows (``EstimatedClassification.sampling_error``); by
    default that of a proportion over ``n_labelled``. Compute the estimate over the
    labelled rows only, so that which labels arrive does not bias the comparison. Only a
    shortfall counts: the model doing better than expected is no concept drift.
    """
    out = {
        "realized": realized,
        "estimated": estimated,
        "gap": None,
        "threshold": None,
        "drifted": False,
    }
    if realized is None or estimated is None or n_labelled <= 0:
        return out
    gap = float(estimated) - float(realized)
    if se is None:
        se = math.sqrt(max(estimated * (1 - estimated), 1e-6) / n_labelled)
    threshold = max(tolerance, z * se)
    out.update(gap=gap, threshold=threshold, drifted=bool(gap > threshold))
    return out


def calibration_drift(y_true: Sequence, proba, positive_label=1, alpha: float = 0.001) -> dict:
    """Spiegelhalter's z-test: do the labels still follow the model's probabilities?

    ``proba`` is the calibrated positive-class probability (or an (n, 2) matrix of
    calibrated probabilities), e.g. ``EstimatedClassification.calibrated(raw)[:, 1]``:
    calibrated on the reference, so a model that was miscalibrated from the start does
    not count as drift. Rows without a label are ignored. Under no concept drift
    z ~ N(0, 1); drift when the two-sided p-value is below ``alpha``. Binary models only
    (for others use :func:`accuracy_divergence`).
    """
    proba = np.asarray(proba, dtype=float)
    q = proba[:, 1] if proba.ndim == 2 else proba
    labels = pd.Series(np.asarray(y_true, dtype=object))
    known = labels.notna().to_numpy()
    out = {
        "n_labelled": int(known.sum()),
        "z": None,
        "p_value": None,
        "observed_brier": None,
        "expected_brier": None,
        "drifted": False,
    }
    if not known.any():
        return out
    q = q[known]
    y = np.array(
        [
            v == positive_label or (isinstance(v, str) and v == str(positive_label))
            for v in labels[known].tolist()
        ],
        dtype=float,
    )
    # Under calibration E[(y - q)^2] = q(1 - q); the numerator is the summed excess
    # squared error, the denominator its standard deviation.
    num = float(np.sum((y - q) * (1 - 2 * q)))
    den = math.sqrt(float(np.sum((1 - 2 * q) ** 2 * q * (1 - q))))
    z = num / den if den > 0 else 0.0
    p = float(2 * stats.norm.sf(abs(z)))
    out.update(
        z=z,
        p_value=p,
        observed_brier=float(np.mean((y - q) ** 2)),
        expected_brier=float(np.mean(q * (1 - q))),
        drifted=bool(p < alpha),
    )
    return out
