"""A pyfunc (MLflow models-from-code) for the MLflow-compatibility tests: it answers in
the output type its `output` param names, so that one registered model shows how each
type a pyfunc can return is serialised, and that `params` reach `predict`. A null
`debt_to_income` answers NaN (label and confidence), as a model without imputation does.

Loaded by MLflow from this file's copy in the model's artifacts, not imported.
"""

import mlflow
import numpy as np
import pandas as pd
from mlflow.pyfunc import PythonModel


class Scorer(PythonModel):
    def predict(self, context, model_input: pd.DataFrame, params=None):
        params = params or {}
        debt = model_input["debt_to_income"].astype(float)
        score = np.clip(debt, 0, 1)
        label = (score > params.get("threshold", 0.5)).astype(int)
        if debt.isna().any():  # no imputation: a null answers NaN (JSON has no NaN)
            label = label.where(debt.notna(), np.nan)
        frame = pd.DataFrame({"label": label, "confidence": score.round(6)})
        output = params.get("output", "frame")
        if output == "frame":
            return frame
        if output == "series":
            return frame["confidence"]
        if output == "array":
            return frame.to_numpy()
        if output == "list":
            return label.tolist()
        if output == "dict":
            return {"label": label.tolist(), "confidence": frame["confidence"].tolist()}
        if output == "scalar":
            return int(label.sum())
        raise ValueError(f"unknown output {output!r}")


mlflow.models.set_model(Scorer())
