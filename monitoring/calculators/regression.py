"""Regression performance, realized from labels and estimated without them (DLE).

:class:`RealizedRegression` computes MAE, RMSE and MAPE on the window's labelled rows.
:class:`EstimatedRegression` estimates MAE and RMSE for all rows by direct loss
estimation: fitted on the reference, two gradient-boosted models learn the absolute and
the squared error of the model's prediction from the inputs and the prediction itself;
a window's estimate is their mean (the root of it for RMSE).

>>> import numpy as np, pandas as pd
>>> rng = np.random.default_rng(0)
>>> def scored(n):
...     x = rng.uniform(-1, 1, size=n); noise = np.where(x > 0, 2.0, 0.5)   # errors grow with x
...     y = 3 * x + rng.normal(scale=noise); pred = 3 * x
...     return Scored(pd.DataFrame({"x": x}), pred, y.astype(object), "regression")
>>> estimator = EstimatedRegression(chunk_rows=1000).fit(scored(8000))
>>> window = scored(3000)
>>> est = estimator.calculate(window).get("estimated_mae").value
>>> real = RealizedRegression().fit(scored(8000)).calculate(window).get("live_mae").value
>>> abs(est - real) / real < 0.05
True

Reference: NannyML, "Direct Loss Estimation" (2022),
https://nannyml.readthedocs.io/en/stable/how_it_works/performance_estimation.html#direct-loss-estimation-dle.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from modelwatch.monitoring.calculators.bounded import BoundedCalculator, error
from modelwatch.monitoring.drift.profile import infer_kind
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingRegressor
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OrdinalEncoder

from modelwatch.log.scored import Scored

PREDICTION = "__prediction__"
LIVE_MAE = error("live_mae", "Mean absolute error on the window's labelled predictions.")
LIVE_RMSE = error("live_rmse", "Root mean squared error on the window's labelled predictions.")
LIVE_MAPE = error(
    "live_mape", "Mean absolute percentage error on the window's labelled predictions."
)
ESTIMATED_MAE = error("estimated_mae", "Mean absolute error estimated without labels (DLE).")
ESTIMATED_RMSE = error("estimated_rmse", "Root mean squared error estimated without labels (DLE).")


def _targets(scored: Scored) -> tuple[np.ndarray, np.ndarray]:
    known = scored.labelled
    y = pd.to_numeric(pd.Series(scored.label[known]), errors="coerce").to_numpy(dtype=float)
    pred = np.asarray(scored.prediction[known], dtype=float)
    ok = np.isfinite(y) & np.isfinite(pred)
    return y[ok], pred[ok]


class RealizedRegression(BoundedCalculator):
    name = "realized_regression"
    declares = (LIVE_MAE, LIVE_RMSE, LIVE_MAPE)

    def fit(self, reference: Scored) -> RealizedRegression:
        self.fit_bounds(reference)
        return self

    def rows(self, scored: Scored) -> int:
        return int(scored.labelled.sum())

    def sums(self, scored: Scored) -> dict:
        y, pred = _targets(scored)
        error = y - pred
        nonzero = y != 0  # MAPE is undefined where the truth is 0: those rows are left out
        return {
            "n": len(y),
            "absolute": float(np.abs(error).sum()),
            "squared": float(np.sum(error**2)),
            "nonzero": int(nonzero.sum()),
            "relative": float(np.abs(error[nonzero] / y[nonzero]).sum()),
        }

    def metrics_of(self, sums: dict) -> dict:
        n = sums["n"]
        if not n:
            return {}
        return {
            LIVE_MAE.name: sums["absolute"] / n,
            LIVE_RMSE.name: float(np.sqrt(sums["squared"] / n)),
            LIVE_MAPE.name: sums["relative"] / sums["nonzero"] if sums["nonzero"] else None,
        }


class EstimatedRegression(BoundedCalculator):
    name = "estimated_regression"
    declares = (ESTIMATED_MAE, ESTIMATED_RMSE)

    def __init__(self, chunk_rows: int | None = None, seed: int = 0):
        super().__init__(**({} if chunk_rows is None else {"chunk_rows": chunk_rows}))
        self.seed = seed

    def fit(self, reference: Scored) -> EstimatedRegression:
        y = pd.to_numeric(pd.Series(reference.label), errors="coerce").to_numpy(dtype=float)
        pred = np.asarray(reference.prediction, dtype=float)
        known = np.isfinite(y) & np.isfinite(pred)
        if known.sum() < 50:
            raise ValueError("direct loss estimation needs at least 50 labelled reference rows")
        X = self._inputs(reference.features, pred)[known]
        self.categorical = [
            c
            for c in reference.features.columns
            if infer_kind(reference.features[c]) == "categorical"
        ]
        error = y[known] - pred[known]
        self.abs_model = self._model(X).fit(X, np.abs(error))
        self.sq_model = self._model(X).fit(X, error**2)
        self.fit_bounds(reference)
        return self

    def chunk_values(self, chunk: Scored) -> dict[str, float | None]:
        # NannyML bounds an estimate by the spread of the realized metric over the
        # reference chunks, not by the estimate's own (narrower) spread.
        realized = RealizedRegression().values(chunk)
        return {
            ESTIMATED_MAE.name: realized.get(LIVE_MAE.name),
            ESTIMATED_RMSE.name: realized.get(LIVE_RMSE.name),
        }

    @staticmethod
    def _inputs(features: pd.DataFrame, prediction: np.ndarray) -> pd.DataFrame:
        X = features.reset_index(drop=True).copy()
        X[PREDICTION] = prediction
        return X

    def _model(self, X: pd.DataFrame):
        categorical = [
            c for c in X.columns if c != PREDICTION and infer_kind(X[c]) == "categorical"
        ]
        numeric = [c for c in X.columns if c not in categorical]
        encode = ColumnTransformer(
            [
                (
                    "categorical",
                    OrdinalEncoder(
                        handle_unknown="use_encoded_value",
                        unknown_value=np.nan,
                        encoded_missing_value=np.nan,
                        max_categories=250,
                    ),
                    categorical,
                ),
                ("numeric", "passthrough", numeric),
            ],
            sparse_threshold=0.0,
        )
        model = HistGradientBoostingRegressor(
            categorical_features=list(range(len(categorical))) or None,
            max_iter=100,
            random_state=self.seed,
        )
        return make_pipeline(encode, model)

    def sums(self, scored: Scored) -> dict:
        if not len(scored):
            return {"n": 0, "absolute": 0.0, "squared": 0.0}
        pred = np.asarray(scored.prediction, dtype=float)
        X = self._inputs(scored.features.astype({c: object for c in self.categorical}), pred)
        absolute = np.clip(self.abs_model.predict(X), 0, None)
        squared = np.clip(self.sq_model.predict(X), 0, None)
        return {
            "n": len(scored),
            "absolute": float(absolute.sum()),
            "squared": float(squared.sum()),
        }

    def metrics_of(self, sums: dict) -> dict:
        n = sums["n"]
        if not n:
            return {}
        return {
            ESTIMATED_MAE.name: sums["absolute"] / n,
            ESTIMATED_RMSE.name: float(np.sqrt(sums["squared"] / n)),
        }
