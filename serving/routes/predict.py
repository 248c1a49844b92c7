"""POST /predict (/invocations, MLflow's scoring protocol, is serving/routes/mlflow.py)."""

from __future__ import annotations

import time

import numpy as np
from flask import Blueprint, g, jsonify, request
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


def score(model, df):
    """Validate, predict, count, log. Returns (labels, probabilities|None, ids, warnings)."""
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
    return label_list, prob_list, ids, checked.warnings


@bp.post("/predict")
def predict():
    body = read_json(request)
    rows = predict_input(body, state().config.max_rows)
    model = current_model()
    labels, probs, ids, warnings = score(model, rows)
    out = {
        "predictions": labels,
        "probabilities": probs,
        "prediction_ids": ids,
        "model": {"name": model.name, "version": model.version, "alias": model.alias},
    }
    if model.fallback:
        out["fallback"] = True
    if warnings:
        out["warnings"] = warnings
    return jsonify(out)
