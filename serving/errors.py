"""The MLflow scoring surface's errors (/ping, /version, /invocations), answered as
`mlflow models serve` does: {"error_code", "message"} with MLflow's codes, 400 for every
input error (MLflow has no 422), and its 415 in plain text. Every other answer of serving
is modelwatch's JSON error (modelwatch/web/errors.py)."""

from __future__ import annotations

from flask import Blueprint, current_app, jsonify
from werkzeug.exceptions import HTTPException

from modelwatch.web.errors import ApiError, InputErrorCounter, http_error, unexpected

# MLflow's error codes (mlflow/protos/databricks.proto), by status, where an error does not
# name its own; any other 4xx is a BAD_REQUEST.
MLFLOW_CODES = {
    404: "ENDPOINT_NOT_FOUND",
    413: "REQUEST_LIMIT_EXCEEDED",
    500: "INTERNAL_ERROR",
    503: "TEMPORARILY_UNAVAILABLE",
}


def mlflow_error_response(status: int, message: str, mlflow_code: str | None = None, headers=None):
    if status == 415:
        response = current_app.response_class(message, 415, mimetype="text/plain")
    else:
        status = 400 if status == 422 else status
        response = jsonify(
            {
                "error_code": mlflow_code or MLFLOW_CODES.get(status, "BAD_REQUEST"),
                "message": message,
            }
        )
        response.status_code = status
    for key, value in (headers or {}).items():
        response.headers[key] = value
    return response


def register_mlflow_error_handlers(bp: Blueprint, count_input_error: InputErrorCounter) -> None:
    """The errors of `bp`'s views as MLflow's scoring server answers them."""

    def answer(exc: ApiError):
        if exc.reasons:
            count_input_error(exc.reasons)
        return mlflow_error_response(exc.status, exc.message, exc.mlflow_code, exc.headers)

    bp.register_error_handler(ApiError, answer)
    bp.register_error_handler(HTTPException, lambda exc: answer(http_error(exc)))
    bp.register_error_handler(Exception, lambda exc: answer(unexpected(exc)))
