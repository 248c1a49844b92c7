"""JSON errors: every error answer is {"error": {"code", "message", "details"}}.

`register_error_handlers(app)` makes an app answer so: an `ApiError` a view raises,
Werkzeug's HTTP errors (404, 405, 413, ...) under stable codes, and anything unexpected as
a 500 whose traceback goes to the log, never Werkzeug's HTML page.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable

from flask import Flask, current_app, jsonify
from werkzeug.exceptions import HTTPException

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
# Called with an input error's reason(s) (serving's input_errors_total{reason}).
InputErrorCounter = Callable[[Iterable[str]], None]


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

    @property
    def reasons(self) -> list[str]:
        """Its input-error reasons (none, one or several)."""
        if not self.reason:
            return []
        return [self.reason] if isinstance(self.reason, str) else list(self.reason)


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


def http_error(exc: HTTPException) -> ApiError:
    """Werkzeug's HTTP error as an ApiError (with its input-error reason, if it is one)."""
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


def unexpected(exc: Exception) -> ApiError:
    # Never a bare 500 page: log it and answer; the request counters count it.
    log.exception("unhandled error answering a request")
    return ApiError(
        500, "internal_error", "the server failed to answer", {"type": type(exc).__name__}
    )


def register_error_handlers(app: Flask, count_input_error: InputErrorCounter | None = None):
    """Every error of `app` as a JSON answer; `count_input_error(reasons)` hears each
    answered input error."""

    def answer(exc: ApiError):
        if count_input_error is not None and exc.reasons:
            count_input_error(exc.reasons)
        return error_response(exc.status, exc.code, exc.message, exc.details, exc.headers)

    app.register_error_handler(ApiError, answer)
    app.register_error_handler(HTTPException, lambda exc: answer(http_error(exc)))
    app.register_error_handler(Exception, lambda exc: answer(unexpected(exc)))
