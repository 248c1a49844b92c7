"""JSON errors: every error answer is {"error": {"code", "message", "details"}}, except on
the MLflow scoring surface (/ping, /version, /invocations), which answers as
`mlflow models serve` does: {"error_code", "message"} with MLflow's codes, 400 for every
input error (MLflow has no 422), and its 415 in plain text."""

from __future__ import annotations

import logging

from flask import Blueprint, Flask, current_app, jsonify
from werkzeug.exceptions import HTTPException

from modelwatch.redaction import redact_credentials  # noqa: F401  (serving's modules import it from here)

log = logging.getLogger(__name__)

# Werkzeug's HTTP errors, by status, as our codes.
HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    408: "request_timeout",
    411: "length_required",
    413: "payload_too_large",
    414: "uri_too_long",
    415: "unsupported_media_type",
    429: "too_many_requests",
    431: "headers_too_large",
}
# MLflow's error codes (mlflow/protos/databricks.proto), by status, where an error does not
# name its own; any other 4xx is a BAD_REQUEST.
MLFLOW_CODES = {
    404: "ENDPOINT_NOT_FOUND",
    413: "REQUEST_LIMIT_EXCEEDED",
    500: "INTERNAL_ERROR",
    503: "TEMPORARILY_UNAVAILABLE",
}


class ApiError(Exception):
    """An error with its HTTP status, stable code, human message and details."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        details=None,
        reason=None,
        headers: dict | None = None,
        mlflow_code: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.details = details if details is not None else {}
        self.reason = reason  # input_errors_total{reason}, when it is an input error
        self.headers = headers or {}
        self.mlflow_code = mlflow_code  # its MLflow error_code, where not the status's


def error_response(status: int, code: str, message: str, details=None, headers=None):
    body = {
        "error": {
            "code": code,
            "message": message,
            "details": details if details is not None else {},
        }
    }
    response = jsonify(body)
    response.status_code = status
    for key, value in (headers or {}).items():
        response.headers[key] = value
    return response


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


def _count_input_error(reason) -> None:
    state = current_app.extensions.get("modelwatch")
    if reason and state is not None:
        for r in [reason] if isinstance(reason, str) else reason:
            state.metrics.input_errors.labels(r).inc()


def _http_error(exc: HTTPException) -> ApiError:
    """Werkzeug's HTTP error as an ApiError (counted when it is an input error)."""
    status = exc.code or 500
    if status == 413:
        limit = current_app.config.get("MAX_CONTENT_LENGTH")
        return ApiError(
            413,
            "payload_too_large",
            f"request body is larger than {limit} bytes",
            {"max_body_bytes": limit},
            reason="too_large",
        )
    allowed = getattr(exc, "valid_methods", None) if status == 405 else None
    return ApiError(
        status,
        HTTP_CODES.get(status, f"http_{status}"),
        exc.description or exc.name,
        {"allowed_methods": list(allowed)} if allowed else {},
        # Werkzeug's own 400s come from unreadable bodies (bad form encoding).
        reason="malformed_json" if status == 400 else None,
        headers={"Allow": ", ".join(allowed)} if allowed else None,
    )


def _unexpected(exc: Exception) -> ApiError:
    # Never a bare 500 page: log it and answer; http_requests_total counts it.
    log.exception("unhandled error answering a request")
    return ApiError(
        500, "internal_error", "the server failed to answer", {"type": type(exc).__name__}
    )


def register_error_handlers(app: Flask) -> None:
    def answer(exc: ApiError):
        _count_input_error(exc.reason)
        return error_response(exc.status, exc.code, exc.message, exc.details, exc.headers)

    app.register_error_handler(ApiError, answer)
    app.register_error_handler(HTTPException, lambda exc: answer(_http_error(exc)))
    app.register_error_handler(Exception, lambda exc: answer(_unexpected(exc)))


def register_mlflow_error_handlers(bp: Blueprint) -> None:
    """The errors of `bp`'s views as MLflow's scoring server answers them."""

    def answer(exc: ApiError):
        _count_input_error(exc.reason)
        return mlflow_error_response(exc.status, exc.message, exc.mlflow_code, exc.headers)

    bp.register_error_handler(ApiError, answer)
    bp.register_error_handler(HTTPException, lambda exc: answer(_http_error(exc)))
    bp.register_error_handler(Exception, lambda exc: answer(_unexpected(exc)))
