"""Models registered the way a data scientist's own script does it, knowing nothing of
modelwatch: `python tests/serving/plain_script.py PREFIX` with MLFLOW_TRACKING_URI set.

    {PREFIX}-binary       breast cancer, StandardScaler + LogisticRegression
    {PREFIX}-multiclass   wine, StandardScaler + LogisticRegression
    {PREFIX}-regression   diabetes, RandomForestRegressor (skops needs its Tree trusted)
    {PREFIX}-pyfunc       a custom PythonModel answering wine's class probabilities

Each gets the alias `production`. Run as a script, the PythonModel class lives in
`__main__`, so cloudpickle saves it by value: serving cannot import it from anywhere.
"""

import sys

import mlflow
import mlflow.pyfunc
import mlflow.sklearn
import pandas as pd
from mlflow import MlflowClient
from mlflow.models import infer_signature
from sklearn.datasets import load_breast_cancer, load_diabetes, load_wine
from sklearn.ensemble import RandomForestRegressor
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler


class WineProbabilities(mlflow.pyfunc.PythonModel):
    def __init__(self, model):
        self.model = model

    def predict(self, context, model_input, params=None):
        return pd.DataFrame(self.model.predict_proba(model_input), columns=self.model.classes_)


# Given, to spare the test suite MLflow's inference of them (a subprocess per model).
REQUIREMENTS = ["scikit-learn", "pandas", "cloudpickle"]


def log(name, model, X, y_out, **kwargs):
    with mlflow.start_run():
        mlflow.sklearn.log_model(
            model,
            name="model",
            registered_model_name=name,
            signature=infer_signature(X, y_out),
            input_example=X.head(3),
            pip_requirements=REQUIREMENTS,
            **kwargs,
        )


def main(prefix):
    X, y = load_breast_cancer(return_X_y=True, as_frame=True)
    binary = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)).fit(X, y)
    log(f"{prefix}-binary", binary, X, binary.predict(X))

    X, y = load_wine(return_X_y=True, as_frame=True)
    wine = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)).fit(X, y)
    log(f"{prefix}-multiclass", wine, X, wine.predict(X))
    with mlflow.start_run():
        mlflow.pyfunc.log_model(
            name="model",
            python_model=WineProbabilities(wine),
            registered_model_name=f"{prefix}-pyfunc",
            signature=infer_signature(X, wine.predict_proba(X)),
            input_example=X.head(3),
            pip_requirements=REQUIREMENTS,
        )

    X, y = load_diabetes(return_X_y=True, as_frame=True)
    forest = RandomForestRegressor(n_estimators=20, random_state=0).fit(X, y)
    log(
        f"{prefix}-regression",
        forest,
        X,
        forest.predict(X),
        skops_trusted_types=["sklearn.tree._tree.Tree"],
    )

    client = MlflowClient()
    for task in ("binary", "multiclass", "pyfunc", "regression"):
        client.set_registered_model_alias(f"{prefix}-{task}", "production", "1")


if __name__ == "__main__":
    main(sys.argv[1])
