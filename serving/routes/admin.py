"""POST /admin/reload: reload the alias now (bearer MODELWATCH_ADMIN_TOKEN when set)."""

from __future__ import annotations

import hmac

from flask import Blueprint, jsonify, request

from modelwatch.serving.errors import ApiError
from modelwatch.serving.routes import state

bp = Blueprint("admin", __name__, url_prefix="/admin")


def require_token(expected: str | None) -> None:
    if not expected:
        return
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise ApiError(401, "unauthorized", "a bearer token is required",
                       {}, headers={"WWW-Authenticate": 'Bearer realm="modelwatch"'})
    if not hmac.compare_digest(token.strip().encode(), expected.encode()):
        raise ApiError(403, "forbidden", "the bearer token is not valid", {})


@bp.post("/reload")
def reload():
    require_token(state().config.admin_token)
    result = state().models.reload_now()
    outcome = result.get("result")
    if outcome in ("success", "unchanged"):
        return jsonify(result)
    if outcome == "failure":
        raise ApiError(502, "reload_failed", "the new model version could not be loaded; "
                       "the previous one is still served", result)
    raise ApiError(503, "registry_unavailable" if outcome == "unavailable" else "not_found",
                   "the alias could not be resolved; the previous model is still served",
                   result)
