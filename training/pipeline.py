"""The scikit-learn pipeline: impute, scale, one-hot, then the chosen estimator.

Classifiers: gbm, logreg, rf. Regressors: gbm, rf, linear (ridge regression).
"""

from __future__ import annotations

from sklearn.compose import ColumnTransformer
from sklearn.ensemble import (
    HistGradientBoostingClassifier,
    HistGradientBoostingRegressor,
    RandomForestClassifier,
    RandomForestRegressor,
)
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

CLASSIFIERS = ("gbm", "logreg", "rf")
REGRESSORS = ("gbm", "rf", "linear")
MODEL_TYPES = tuple(dict.fromkeys(CLASSIFIERS + REGRESSORS))


def build(
    model_type: str, numeric: list[str], categorical: list[str], seed: int, task: str
) -> Pipeline:
    """A pipeline that accepts the raw feature frame, missing values and unseen categories."""
    check(model_type, task)
    preprocess = ColumnTransformer(
        [
            ("numeric", make_pipeline(SimpleImputer(strategy="median"), StandardScaler()), numeric),
            (
                "categorical",
                make_pipeline(
                    SimpleImputer(strategy="constant", fill_value="__missing__"),
                    OneHotEncoder(handle_unknown="ignore", min_frequency=5, sparse_output=False),
                ),
                categorical,
            ),
        ]
    )
    estimator = (
        _regressor(model_type, seed) if task == "regression" else _classifier(model_type, seed)
    )
    return Pipeline([("preprocess", preprocess), ("model", estimator)])


def check(model_type: str, task: str) -> None:
    """Raise ValueError unless `model_type` is one the task (or, for auto, any task) has."""
    if model_type not in MODEL_TYPES:
        raise ValueError(
            f"unknown model_type {model_type!r}; choose one of {', '.join(MODEL_TYPES)}"
        )
    allowed = {"regression": REGRESSORS, "auto": MODEL_TYPES}.get(task, CLASSIFIERS)
    if model_type not in allowed:
        raise ValueError(
            f"model_type {model_type!r} is not for {task}; choose one of {', '.join(allowed)}"
        )


def _classifier(model_type: str, seed: int):
    if model_type == "gbm":
        # Early stopping always (sklearn only turns it on above 10,000 rows): a small
        # retraining set otherwise overfits and loses the gate to the champion.
        return HistGradientBoostingClassifier(
            max_iter=300, learning_rate=0.08, early_stopping=True, random_state=seed
        )
    if model_type == "logreg":
        return LogisticRegression(max_iter=2000)
    return RandomForestClassifier(
        n_estimators=200, min_samples_leaf=5, n_jobs=-1, random_state=seed
    )


def _regressor(model_type: str, seed: int):
    if model_type == "gbm":
        return HistGradientBoostingRegressor(
            max_iter=300, learning_rate=0.08, early_stopping=True, random_state=seed
        )
    if model_type == "linear":
        return Ridge(alpha=1.0)
    return RandomForestRegressor(n_estimators=200, min_samples_leaf=5, n_jobs=-1, random_state=seed)
