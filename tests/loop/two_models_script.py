"""Two models of a team that knows nothing of modelwatch, logged as its own script does:
`python tests/loop/two_models_script.py PREFIX OUT` with MLFLOW_TRACKING_URI set.

    {PREFIX}-churn    a binary classifier (tenure, charges, calls, contract... -> churned)
    {PREFIX}-houses   a regression (square feet, bedrooms, age, lot -> price)

Each is registered as version 1 with the alias `production`; OUT gets each model's
held-out reference rows (`{model}.parquet`, the target included) for `modelwatch onboard`.
The test draws its traffic from the same generators (`churn`, `houses`).
"""

import sys
from pathlib import Path

import mlflow
import mlflow.sklearn
import numpy as np
import pandas as pd
from mlflow import MlflowClient
from mlflow.models import infer_signature
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

REQUIREMENTS = ["scikit-learn", "pandas"]  # given: no subprocess inferring them


def churn(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "tenure_months": rng.integers(1, 73, n),
            "monthly_charges": rng.normal(70, 20, n).clip(20, 150).round(2),
            "support_calls": rng.poisson(1.5, n),
            "contract_months": rng.choice([1, 12, 24], n),
            # Seven features: one of them drifting by chance in a window (14%) stays under
            # the dataset's 15% bound.
            "age_years": rng.normal(45, 12, n).clip(18, 90).round(1),
            "data_gb": rng.gamma(2.0, 5.0, n).round(2),
            "days_since_login": rng.exponential(7.0, n).round(1),
        }
    )
    logit = (
        0.04 * (frame.monthly_charges - 70)
        - 0.05 * (frame.tenure_months - 36)
        + 0.6 * (frame.support_calls - 1.5)
        - 0.08 * frame.contract_months
    )
    frame["churned"] = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    return frame


def houses(n: int, seed: int, more_sqft: int = 0) -> pd.DataFrame:
    """`more_sqft`: a market of bigger houses (every house that much larger)."""
    rng = np.random.default_rng(seed)
    sqft = rng.normal(1800, 400, n).clip(400).round().astype(int) + more_sqft
    frame = pd.DataFrame(
        {
            "sqft": sqft,
            "bedrooms": (sqft // 600 + rng.integers(0, 2, n)).clip(1, 6),
            "age_years": rng.integers(0, 81, n),
            "lot_acres": rng.gamma(2.0, 0.15, n).round(3),
        }
    )
    frame["price"] = (
        120 * frame.sqft
        + 15_000 * frame.bedrooms
        - 800 * frame.age_years
        + 40_000 * frame.lot_acres
        + rng.normal(0, 20_000, n)
    ).round(-2)
    return frame


def log(name: str, model, X: pd.DataFrame) -> None:
    with mlflow.start_run():
        mlflow.sklearn.log_model(
            model,
            name="model",
            registered_model_name=name,
            signature=infer_signature(X, model.predict(X)),
            input_example=X.head(3),
            pip_requirements=REQUIREMENTS,
        )


def main(prefix: str, out: Path) -> None:
    train = churn(4000, seed=1)
    X = train.drop(columns="churned")
    log(
        f"{prefix}-churn",
        make_pipeline(StandardScaler(), LogisticRegression()).fit(X, train.churned),
        X,
    )
    churn(6000, seed=2).to_parquet(out / f"{prefix}-churn.parquet")

    train = houses(4000, seed=1)
    X = train.drop(columns="price")
    log(f"{prefix}-houses", LinearRegression().fit(X, train.price), X)
    houses(6000, seed=2).to_parquet(out / f"{prefix}-houses.parquet")

    client = MlflowClient()
    for model in ("churn", "houses"):
        client.set_registered_model_alias(f"{prefix}-{model}", "production", "1")


if __name__ == "__main__":
    main(sys.argv[1], Path(sys.argv[2]))
