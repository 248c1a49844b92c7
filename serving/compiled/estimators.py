"""The final estimator of a pipeline: features (float64, n x f) -> class probabilities.

Each reproduces its sklearn `predict_proba` operation for operation (same sums in the
same order, sklearn's own link functions), so the answers are the same numbers. The tree
walk's cost grows with rows x trees x depth while sklearn's per-call overhead is fixed, so
past `walk_max_rows` (the crossover measured on the simulator's models) the ensembles
hand the features to the estimator's own `predict_proba`: the pandas and
ColumnTransformer overhead is gone either way.
"""

from __future__ import annotations

import numpy as np
from modelwatch.serving.compiled import trees
from modelwatch.serving.compiled.preprocess import NotCompilable
from scipy.special import expit
from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.utils.extmath import softmax


class GradientBoosting:
    walk_max_rows = 64

    def __init__(self, model: HistGradientBoostingClassifier) -> None:
        self.model = model
        self.ensembles, self.values = trees.from_hist_gradient_boosting(model)
        self.baseline = np.asarray(model._baseline_prediction, dtype="float64").ravel()
        self.loss = model._loss

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        n = X.shape[0]
        if n > self.walk_max_rows:
            return self.model.predict_proba(X)
        raw = np.empty((n, len(self.ensembles)))
        for k, (ensemble, value) in enumerate(zip(self.ensembles, self.values)):
            leaf_values = value[ensemble.leaves(X)]
            # sklearn starts at the baseline and adds tree by tree; cumsum adds in that
            # order too (np.sum would add pairwise and round differently).
            terms = np.hstack([np.full((n, 1), self.baseline[k]), leaf_values])
            raw[:, k] = np.cumsum(terms, axis=1)[:, -1]
        return self.loss.predict_proba(raw)


class Forest:
    walk_max_rows = 256

    def __init__(self, model: RandomForestClassifier) -> None:
        self.model = model
        self.ensemble, self.proba = trees.from_forest(model)
        self.n_trees = len(model.estimators_)

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        if X.shape[0] > self.walk_max_rows:
            return self.model.predict_proba(X)
        # Trees compare float32 features with float64 thresholds.
        leaves = self.ensemble.leaves(X.astype(np.float32).astype("float64"))
        total = np.cumsum(self.proba[leaves], axis=1)[:, -1]
        return total / self.n_trees


class Logistic:
    def __init__(self, model: LogisticRegression) -> None:
        self.coef = model.coef_
        self.intercept = model.intercept_
        self.binary = len(model.classes_) <= 2

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        # sklearn's product, layout included: a transposed copy would round differently.
        scores = X @ self.coef.T + self.intercept
        if self.binary:
            p = expit(scores.reshape(-1))
            return np.vstack([1 - p, p]).T
        return softmax(scores, copy=False)


def compile_estimator(model):
    if type(model) is HistGradientBoostingClassifier:
        return GradientBoosting(model)
    if type(model) is RandomForestClassifier:
        return Forest(model)
    if type(model) is LogisticRegression:
        return Logistic(model)
    raise NotCompilable(f"estimator {type(model).__name__}")
