"""POST /predict (/invocations, MLflow's scoring protocol, is serving/routes/mlflow.py)."""

from __future__ import annotations

import time
from typing import NamedTuple

import numpy as np
import pandas as pd
from flask import Blueprint, Response, g, request
from modelwatch.serving.answers import Hint, json_answer
from modelwatch.serving.ids import new_ids
from modelwatch.serving.logwriter.batch import LogBatch
from modelwatch.serving.routes import state
from modelwatch.serving.validation import predict_input, read_json, validate

from modelwatch.web.errors import ApiError

bp = Blueprint("predict", __name__)


def current_model():
    model = state().models.current
    if model is None:
        err = state().models.last_error
        raise ApiError(
            503,
            "no_model",
            f"no model is being served: models:/{state().config.model_name}@"
            f"{state().config.model_alias} could not be loaded and no fallback "
            "is configured",
            {"last_error": err},
            headers={"Retry-After": "5"},
        )
    return model


class Answer(NamedTuple):
    labels: list
    probabilities: list | None
    ids: list[str]
    warnings: list[dict]
    hint: Hint  # why a row's answer may not be a finite number (answers.json_answer)


def _is_null(value) -> bool:
    null = pd.isna(value)
    return isinstance(null, bool | np.bool_) and bool(null)


def null_hint(checked, spec) -> Hint:
    """The columns a row holds null in (the signature's required ones, or any column
    without a signature): the likely cause of a model's NaN for that row."""
    names = [c.name for c in spec if c.required] if spec else list(checked.columns)
    which = "required column" if spec else "column"

    def hint(row: int) -> str | None:
        if row >= len(checked):
            return None
        null = [n for n in names if n in checked.columns and _is_null(checked.columns[n][row])]
        if not null:
            return None
        return f"a null in {which}{'s' if len(null) > 1 else ''} {', '.join(null)}?"

    return hint


def score(model, df) -> Answer:
    """Validate, predict, count, log."""
    st = state()
    checked = validate(df, model.spec)
    metrics = st.metrics
    if model.fallback:  # the rules read a few features: the others are expected extras
        checked.warnings, checked.unknown_columns = [], []
    if checked.unknown_columns:
        metrics.input_errors.labels("unknown_column").inc()
    if checked.null_rows:
        metrics.input_errors.labels("null").inc(checked.null_rows)
    t0 = time.perf_counter()
    try:
        prediction = model.predict(checked)
    except (ValueError, TypeError, OverflowError) as exc:
        raise ApiError(
            422,
            "model_rejected_input",
            f"the model could not score the input: {exc}",
            {"model_version": model.version},
            reason="model_rejected",
        ) from None
    metrics.predict_duration.observe(time.perf_counter() - t0)
    regression = model.task == "regression"
    metrics.count_predictions(model.version, regression, prediction)
    ids = new_ids(len(checked))
    ts = time.time()
    label_list = np.asarray(prediction.labels).tolist()
    scores = prediction.scores
    prob_list = np.asarray(scores, dtype="float64").tolist() if scores is not None else None
    st.log.submit(
        LogBatch(
            ids=ids,
            ts=ts,
            model_name=model.name,
            model_version=model.version,
            model_alias=model.alias,
            features=checked,
            predictions=label_list,
            probabilities=prob_list,
            latency_ms=(time.perf_counter() - g.start) * 1000.0,
            class_probabilities=prediction.proba,
            regression=regression,
        )
    )
    if st.shadow is not None:
        st.shadow.submit(df, ids, ts, model.version)
    return Answer(label_list, prob_list, ids, checked.warnings, null_hint(checked, model.spec))


@bp.post("/predict")
def predict():
    body = read_json(request)
    rows = predict_input(body, state().config.max_rows)
    model = current_model()
    answer = score(model, rows)
    out = {
        "predictions": answer.labels,
        "probabilities": answer.probabilities,
        "prediction_ids": answer.ids,
        "model": {"name": model.name, "version": model.version, "alias": model.alias},
    }
    if model.fallback:
        out["fallback"] = True
    if answer.warnings:
        out["warnings"] = answer.warnings
    body = json_answer(out, answer.hint, separators=(",", ":"))  # as compact as Flask's
    return Response(body + "\n", mimetype="application/json")
