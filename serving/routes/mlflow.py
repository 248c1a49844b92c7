"""GET /ping, GET /version, POST /invocations: `mlflow models serve`'s scoring protocol, as
the pinned MLflow's scoring server (mlflow/pyfunc/scoring_server/__init__.py) answers it,
errors included ({"error_code", "message"}, see serving/errors.py). GET /health answers
200 as MLflow's does, with modelwatch's own body (serving/routes/ops.py).

Deliberately stricter than MLflow, on every route, since the signature is checked before
the model sees a row (serving/validation.py): a value MLflow would coerce (a number in a
text column, a boolean in a number column) and a record that lacks a column the others
have are refused (400) rather than scored on a guess; bodies are limited in size and rows
(413, 400); a request without a Content-Type is a 415 (MLflow answers 500).
"""

from __future__ import annotations

import copy
import dataclasses
from functools import lru_cache

import numpy as np
import pandas as pd
from flask import Blueprint, Response, request
from mlflow.exceptions import MlflowException
from mlflow.models import Model

# MLflow's own scoring server's helpers (private to mlflow): the same params check and the
# same JSON of predictions, so /invocations answers as `mlflow models serve` does.
from mlflow.models.utils import _enforce_params_schema
from mlflow.utils.proto_json_utils import _get_jsonable_obj
from mlflow.version import VERSION
from modelwatch.serving.answers import json_answer
from modelwatch.serving.errors import (
    MODEL_ERROR,
    MlflowInputError,
    exception_text,
    method_not_allowed,
    register_mlflow_error_handlers,
)
from modelwatch.serving.routes import state
from modelwatch.serving.routes.predict import Answer, current_model, score
from modelwatch.serving.validation import scoring_input

from modelwatch.web.errors import ApiError

bp = Blueprint("mlflow", __name__)
register_mlflow_error_handlers(bp, lambda reasons: state().metrics.count_input_errors(reasons))
# A method a route does not take is an app error (no route, so no blueprint, is matched).
bp.app_errorhandler(405)(method_not_allowed)
JSON = "application/json"


@bp.get("/ping")
def ping():
    current_model()  # 503 until a model (or the fallback) serves
    return Response("\n", mimetype=JSON)


@bp.get("/version")
def version():
    """MLflow's version, as its scoring server answers it (a bare string, sent as JSON).
    modelwatch's model information is GET /model."""
    return Response(VERSION, mimetype=JSON)


@lru_cache(maxsize=8)
def _params_schema(path: str):
    return Model.load(path).get_params_schema()


def params_schema(model):
    """The served model's MLflow ParamSchema, or None (none logged, or the fallback)."""
    return None if model.fallback else _params_schema(model.path)


def _checked_params(model, params):
    """`params` as MLflow checks them against the model's params schema: unknown ones are
    dropped, a value of the wrong type is a 400, all ignored without a schema."""
    if params is None:  # a pyfunc applies its schema's defaults itself
        return None
    try:
        return _enforce_params_schema(params, params_schema(model))
    except MlflowException as exc:
        raise ApiError(
            400,
            "invalid_params",
            exc.message,
            {},
            reason="bad_shape",
            mlflow_code="INVALID_PARAMETER_VALUE",
        ) from None


def _per_row(answer, n: int):
    """What the log reads labels from: the answer when it has a row per input row (the
    engine takes a frame's first column; here a 2-D array's), else None for each row (a
    scalar, a dict, a length that is not the rows')."""
    if isinstance(answer, pd.DataFrame):
        return answer if len(answer) == n else [None] * n
    try:
        values = np.asarray(answer)
    except ValueError:  # ragged lists
        return [None] * n
    if values.ndim == 2:
        values = values[:, 0]
    return values if values.ndim == 1 and len(values) == n else [None] * n


class _Pyfunc:
    """The served pyfunc with `params` passed to its predict, keeping its answer: the
    engine reads labels from it for the log as usual, and /invocations answers it whole,
    whatever its type (a frame of several columns, a dict, a scalar), as MLflow does."""

    def __init__(self, pyfunc, params) -> None:
        self.pyfunc = pyfunc
        self.params = params
        self.answer = None

    def predict(self, frame):
        try:
            self.answer = self.pyfunc.predict(frame, params=self.params)
        except Exception as exc:  # any failure of the model's own code refuses the input
            raise ValueError(f"{type(exc).__name__}: {exc}") from exc
        return _per_row(self.answer, len(frame))


def _fails_in_the_model(exc: ApiError) -> bool:
    """An error MLflow's server meets in the model's predict: the model's own, and an
    infinite number (MLflow's signature check lets it through)."""
    if exc.code == "model_rejected_input":
        return True
    problems = exc.details.get("columns") if exc.code == "signature_violation" else None
    return bool(problems) and all(p["problem"] == "not_finite" for p in problems)


def _scored(model, data) -> Answer:
    """The scoring's Answer; rows the model fails on are MLflow's error, with the
    model's exception (or modelwatch's reason) as its stack_trace."""
    try:
        return score(model, data)
    except ApiError as exc:
        if not _fails_in_the_model(exc):
            raise
        if exc.code == "signature_violation":
            raise MlflowInputError(
                MODEL_ERROR, stack_trace=f"ValueError: {exc.message}", reason=exc.reason
            ) from None
        cause = exc.__context__ or exc  # (score raises its error in the model's)
        cause = cause.__cause__ or cause  # (and _Pyfunc wraps the pyfunc's)
        raise MlflowInputError(
            MODEL_ERROR, stack_trace=exception_text(cause), reason=exc.reason
        ) from None


def _answer(model, data, params):
    """(predictions, the scoring's Answer): the pyfunc's own answer, or the predicted labels."""
    if model.engine.name != "pyfunc":
        answer = _scored(model, data)
        return answer.labels, answer
    engine = copy.copy(model.engine)
    engine.model = _Pyfunc(model.engine.model, params)
    answer = _scored(dataclasses.replace(model, engine=engine), data)
    return engine.model.answer, answer


@bp.post("/invocations")
def invocations():
    model = current_model()
    config = state().config
    data, params = scoring_input(request, model.spec, config.max_rows, config.max_body_bytes)
    predictions, answer = _answer(model, data, _checked_params(model, params))
    out = {"predictions": _get_jsonable_obj(predictions, pandas_orient="records")}
    if model.fallback:
        out["fallback"] = True
    # MLflow answers predictions alone: columns it ignores are counted, not named here
    # (input_errors_total{reason="unknown_column"}).
    warnings = [w for w in answer.warnings if w["code"] != "unknown_columns"]
    if warnings:
        out["warnings"] = warnings
    return Response(json_answer(out, answer.hint), mimetype=JSON)
