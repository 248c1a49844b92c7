"""Prediction drift: drift of the model's output (labels or probabilities).

The model's output is a one-dimensional summary of everything it looks at, so a shift
there is often the first visible sign that inputs moved in a way that matters to the
model (Evidently's "prediction drift"; Rabanser et al., "Failing loudly", NeurIPS 2019,
recommend testing a model's outputs as a dimensionality reduction "black box shift
detection", after Lipton, Wang and Smola, ICML 2018).

The test is chosen as for any column: probabilities are numeric (KS for small references,
normed Wasserstein above 1000 rows), labels categorical (z-test / chi-square or
Jensen-Shannon).

>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> ref = rng.beta(2, 5, 5000)
>>> prediction_drift(ref, rng.beta(2, 5, 2000)).drifted
False
>>> r = prediction_drift(ref, rng.beta(4, 4, 2000))
>>> r.test, r.drifted
('wasserstein', True)
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from modelwatch.monitoring.drift.detect import ColumnDrift, column_drift
from modelwatch.monitoring.drift.profile import ColumnProfile, infer_kind


def _as_series(x, name: str) -> pd.Series:
    if isinstance(x, pd.Series):
        return x.rename(name)
    arr = np.asarray(x)
    if arr.ndim == 2:
        # A (n, k) probability matrix: the positive class for binary models, the top
        # class's probability otherwise.
        arr = arr[:, 1] if arr.shape[1] == 2 else arr.max(axis=1)
    return pd.Series(arr, name=name)


def prediction_profile(
    reference, kind: str | None = None, name: str = "prediction"
) -> ColumnProfile:
    """Profile reference predictions once (e.g. at training time) for repeated windows."""
    series = _as_series(reference, name)
    return ColumnProfile.from_series(series, kind or infer_kind(series))


def prediction_drift(
    reference,
    current,
    test: str | None = None,
    threshold: float | None = None,
    kind: str | None = None,
) -> ColumnDrift:
    """Drift between reference and current model outputs.

    ``reference`` and ``current`` are predicted labels or probabilities (sequences,
    Series, or (n, k) probability matrices), ``reference`` may also be a profile from
    :func:`prediction_profile`. ``kind`` ("numeric" or "categorical") overrides the
    inference from the dtype (floats numeric, labels categorical).
    """
    ref = reference if isinstance(reference, ColumnProfile) else prediction_profile(reference, kind)
    cur = ColumnProfile.from_series(_as_series(current, ref.name), ref.kind)
    if ref.n == 0 or cur.n == 0:
        raise ValueError("prediction drift needs at least one prediction on each side")
    return column_drift(ref, cur, test, threshold)
