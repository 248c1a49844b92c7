"""POST /admin/reload: reload the alias now (bearer MODELWATCH_ADMIN_TOKEN when set)."""

from __future__ import annotations

from flask import Blueprint, jsonify
from modelwatch.serving.routes import state

from modelwatch.web.auth import require_token
from modelwatch.web.errors import ApiError

bp = Blueprint("admin", __name__, url_prefix="/admin")


@bp.post("/reload")
def reload():
    require_token(state().config.admin_token)
    result = state().models.reload_now()
    outcome = result.get("result")
    if outcome in ("success", "unchanged"):
        return jsonify(result)
    if outcome == "failure":
        raise ApiError(
            502,
            "reload_failed",
            "the new model version could not be loaded; the previous one is still served",
            result,
        )
    raise ApiError(
        503,
        "registry_unavailable" if outcome == "unavailable" else "not_found",
        "the alias could not be resolved; the previous model is still served",
        result,
    )
