"""The MLflow scoring surface's errors (/ping, /version, /invocations), answered as
`mlflow models serve` does: MLflow's own exception serialised ({"error_code", "message",
"sqlstate", "error_class"}, and "stack_trace" where MLflow sends one) with MLflow's codes,
400 for every input error (MLflow has no 422), its 415 in plain text and its 405 in
FastAPI's words. Every other answer of serving is modelwatch's JSON error
(modelwatch/web/errors.py)."""

from __future__ import annotations

from flask import Blueprint, current_app, request
from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import ErrorCode
from werkzeug.exceptions import HTTPException, MethodNotAllowed

from modelwatch.web.errors import (
    ApiError,
    InputErrorCounter,
    error_response,
    http_error,
    unexpected,
)

# MLflow's error codes (mlflow/protos/databricks.proto), by status, where an error does not
# name its own; any other 4xx is a BAD_REQUEST.
MLFLOW_CODES = {
    404: "ENDPOINT_NOT_FOUND",
    413: "REQUEST_LIMIT_EXCEEDED",
    500: "INTERNAL_ERROR",
    503: "TEMPORARILY_UNAVAILABLE",
}
# What MLflow's scoring server answers when the model's predict raises (it also answers
# this where MLflow lets the model fail on what modelwatch refuses first, e.g. no rows).
MODEL_ERROR = (
    "Encountered an unexpected error while evaluating the model. Verify that the serialized "
    "input Dataframe is compatible with the model for inference."
)


class MlflowInputError(ApiError):
    """An input error of /invocations in MLflow's words. `stack_trace`: where MLflow sends
    the traceback of the failure, modelwatch sends the exception alone (type: message),
    not the frames, which would name the server's files."""

    def __init__(self, message: str, *, mlflow_code="BAD_REQUEST", stack_trace=None, reason):
        super().__init__(400, "bad_request", message, {}, reason=reason, mlflow_code=mlflow_code)
        self.stack_trace = stack_trace


def exception_text(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


def _error_class(exc: ApiError) -> str | None:
    """MLflow's class of a missing column or an empty frame: its schema enforcement's
    (else MLflow derives the class from the code)."""
    refused_by_schema = exc.code in ("signature_violation", "bad_request")
    if refused_by_schema and exc.mlflow_code == "INVALID_PARAMETER_VALUE":
        return "SCHEMA_ENFORCEMENT_FAILED"
    return None


def mlflow_error_response(
    status: int,
    message: str,
    mlflow_code: str | None = None,
    headers=None,
    stack_trace=None,
    error_class=None,
):
    if status == 415:
        response = current_app.response_class(message, 415, mimetype="text/plain")
    else:
        status = 400 if status == 422 else status
        code = mlflow_code or MLFLOW_CODES.get(status, "BAD_REQUEST")
        extra = {"stack_trace": stack_trace} if stack_trace is not None else {}
        error = MlflowException(
            message, error_code=ErrorCode.Value(code), error_class=error_class, **extra
        )
        response = current_app.response_class(
            error.serialize_as_json(), status, mimetype="application/json"
        )
    for key, value in (headers or {}).items():
        response.headers[key] = value
    return response


# MLflow's routes: another method on them is answered as MLflow's server (FastAPI) does.
MLFLOW_ROUTES = ("/invocations", "/ping", "/version")


def method_not_allowed(exc: MethodNotAllowed):
    """405: FastAPI's {"detail"} on MLflow's routes, modelwatch's JSON error elsewhere."""
    error = http_error(exc)
    if request.path not in MLFLOW_ROUTES:
        return error_response(error.status, error.code, error.message, error.details, error.headers)
    response = current_app.response_class(
        '{"detail":"Method Not Allowed"}', 405, mimetype="application/json"
    )
    response.headers.update(error.headers)
    return response


def register_mlflow_error_handlers(bp: Blueprint, count_input_error: InputErrorCounter) -> None:
    """The errors of `bp`'s views as MLflow's scoring server answers them."""

    def answer(exc: ApiError):
        if exc.reasons:
            count_input_error(exc.reasons)
        return mlflow_error_response(
            exc.status,
            exc.message,
            exc.mlflow_code,
            exc.headers,
            getattr(exc, "stack_trace", None),
            _error_class(exc),
        )

    bp.register_error_handler(ApiError, answer)
    bp.register_error_handler(HTTPException, lambda exc: answer(http_error(exc)))
    bp.register_error_handler(Exception, lambda exc: answer(unexpected(exc)))
