"""JSON errors: every error answer is {"error": {"code", "message", "details"}}."""

from __future__ import annotations

import logging
import re

from flask import Flask, current_app, jsonify
from werkzeug.exceptions import HTTPException

log = logging.getLogger(__name__)

# Werkzeug's HTTP errors, by status, as our codes.
HTTP_CODES = {
    400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found",
    405: "method_not_allowed", 406: "not_acceptable", 408: "request_timeout",
    411: "length_required", 413: "payload_too_large", 414: "uri_too_long",
    415: "unsupported_media_type", 429: "too_many_requests", 431: "headers_too_large",
}


_USERINFO = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*://)[^/\s@'\"]+@")


def redact_credentials(text):
    """`text` with the user:password of every URL in it masked: a tracking URI such as
    https://user:token@mlflow.example reaches error messages (MLflow's own name the full
    request URL), and from there logs and answers."""
    if not isinstance(text, str):
        return text
    return _USERINFO.sub(r"\1***@", text)


class ApiError(Exception):
    """An error with its HTTP status, stable code, human message and details."""

    def __init__(self, status: int, code: str, message: str, details=None,
                 reason=None, headers: dict | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.details = details if details is not None else {}
        self.reason = reason  # input_errors_total{reason}, when it is an input error
        self.headers = headers or {}


def error_response(status: int, code: str, message: str, details=None, headers=None):
    body = {"error": {"code": code, "message": message,
                      "details": details if details is not None else {}}}
    response = jsonify(body)
    response.status_code = status
    for key, value in (headers or {}).items():
        response.headers[key] = value
    return response


def _count_input_error(reason) -> None:
    state = current_app.extensions.get("modelwatch")
    if reason and state is not None:
        for r in [reason] if isinstance(reason, str) else reason:
            state.metrics.input_errors.labels(r).inc()


def register_error_handlers(app: Flask) -> None:
    @app.errorhandler(ApiError)
    def _api_error(exc: ApiError):
        _count_input_error(exc.reason)
        return error_response(exc.status, exc.code, exc.message, exc.details, exc.headers)

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException):
        status = exc.code or 500
        if status == 413:
            _count_input_error("too_large")
            limit = current_app.config.get("MAX_CONTENT_LENGTH")
            return error_response(413, "payload_too_large",
                                  f"request body is larger than {limit} bytes",
                                  {"max_body_bytes": limit})
        if status == 400:
            # Werkzeug's own 400s come from unreadable bodies (e.g. bad form encoding).
            _count_input_error("malformed_json")
        headers = {}
        if status == 405 and getattr(exc, "valid_methods", None):
            headers["Allow"] = ", ".join(exc.valid_methods)
        details = {}
        if status == 405 and getattr(exc, "valid_methods", None):
            details["allowed_methods"] = list(exc.valid_methods)
        return error_response(status, HTTP_CODES.get(status, f"http_{status}"),
                              exc.description or exc.name, details, headers)

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception):
        # Never a bare 500 page: log it and answer JSON; http_requests_total counts it.
        log.exception("unhandled error answering a request")
        return error_response(500, "internal_error", "the server failed to answer",
                              {"type": type(exc).__name__})
