"""Bearer tokens of serving's write paths (`/admin/*` with MODELWATCH_ADMIN_TOKEN,
`POST /feedback` with MODELWATCH_FEEDBACK_TOKEN): one check for both, so they answer alike.

An unset token leaves its path open (dev, loopback); a set one is required: 401 with
`WWW-Authenticate` when the request carries no bearer token, 403 when it carries another.
"""

from __future__ import annotations

import hmac

from flask import request
from modelwatch.serving.errors import ApiError


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
    if not hmac.compare_digest(token.strip().encode(), expected.encode()):
        raise ApiError(403, "forbidden", "the bearer token is not valid", {})
