"""The scikit-learn pipeline: impute, scale, one-hot, then the chosen estimator."""

from __future__ import annotations

from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

MODEL_TYPES = ("gbm", "logreg", "rf")


def build(model_type: str, numeric: list[str], categorical: list[str], seed: int) -> Pipeline:
    """A pipeline that accepts the raw feature frame, missing values and unseen categories."""
    if model_type not in MODEL_TYPES:
        raise ValueError(f"unknown model_type {model_type!r}; choose one of {', '.join(MODEL_TYPES)}")
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
    return Pipeline([("preprocess", preprocess), ("model", _estimator(model_type, seed))])


def _estimator(model_type: str, seed: int):
    if model_type == "gbm":
        # Early stopping always (sklearn only turns it on above 10,000 rows): a small
        # retraining set otherwise overfits and loses the gate to the champion.
        return HistGradientBoostingClassifier(max_iter=300, learning_rate=0.08, early_stopping=True,
                                              random_state=seed)
    if model_type == "logreg":
        return LogisticRegression(max_iter=2000)
    return RandomForestClassifier(n_estimators=200, min_samples_leaf=5, n_jobs=-1, random_state=seed)
