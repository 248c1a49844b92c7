"""The bearer-token check of both services' write paths: serving's `/admin/*`
(MODELWATCH_ADMIN_TOKEN) and `POST /feedback` (MODELWATCH_FEEDBACK_TOKEN), the monitor's
`POST /alerts` (MODELWATCH_WEBHOOK_TOKEN). One check, so they all answer alike.

An unset token leaves its path open (dev, loopback); a set one is required: 401 with
`WWW-Authenticate` when the request carries no bearer token, 403 when it carries another.
The token is everything after "Bearer " (the scheme in any case), compared as it comes:
a token with a space before or after it is another token.
"""

from __future__ import annotations

import hmac

from flask import request

from modelwatch.web.errors import ApiError


def require_token(expected: str | None) -> None:
    if not expected:
        return
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise ApiError(
            401,
            "unauthorized",
            "a bearer token is required",
            {},
            headers={"WWW-Authenticate": 'Bearer realm="modelwatch"'},
        )
    # Bytes, so that a token that is not ASCII is a 403 too; compare_digest takes as long
    # whatever prefix matches.
    if not hmac.compare_digest(token.encode(), expected.encode()):
        raise ApiError(403, "forbidden", "the bearer token is not valid", {})
