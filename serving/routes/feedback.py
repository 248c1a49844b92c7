"""POST /feedback: true labels for earlier predictions, stored idempotently."""

from __future__ import annotations

import time

from flask import Blueprint, jsonify, request

from modelwatch.serving.auth import require_token
from modelwatch.serving.errors import ApiError
from modelwatch.serving.routes import state
from modelwatch.serving.store import StoreError
from modelwatch.serving.validation import bad_shape, check_rows, read_json

bp = Blueprint("feedback", __name__)


def _parse(body, max_rows: int) -> dict:
    if not isinstance(body, dict) or not isinstance(body.get("feedback"), list):
        raise bad_shape('expected {"feedback": [{"prediction_id": "...", "label": 0}, ...]}')
    items = body["feedback"]
    check_rows(len(items), max_rows)
    labels: dict[str, object] = {}
    bad = [i for i, item in enumerate(items)
           if not isinstance(item, dict)
           or not isinstance(item.get("prediction_id"), str) or not item["prediction_id"]
           or item.get("label") is None or isinstance(item.get("label"), (dict, list))]
    if bad:
        raise bad_shape("every feedback item needs a prediction_id (text) and a label "
                        "(a number, text or boolean)", {"items": bad[:20]})
    for item in items:
        labels[item["prediction_id"]] = item["label"]  # the last label of an id wins
    return labels


@bp.post("/feedback")
def feedback():
    st = state()
    require_token(st.config.feedback_token)
    labels = _parse(read_json(request), st.config.max_rows)
    # A prediction made a moment ago may still be in a write queue: ours is flushed, and
    # ids not found yet get a short wait for the other workers' writers.
    st.log.flush(timeout=5.0)
    try:
        known = st.store.known_ids(labels)
        missing = [i for i in labels if i not in known]
        deadline = time.monotonic() + st.config.feedback_wait
        while missing and time.monotonic() < deadline:
            time.sleep(0.1)
            known |= st.store.known_ids(missing)
            missing = [i for i in labels if i not in known]
        counts = st.store.store_feedback({i: labels[i] for i in labels if i in known})
    except StoreError as exc:
        raise ApiError(503, "store_unavailable",
                       "the prediction store is unavailable; send the feedback again later",
                       {"error": str(exc)}, headers={"Retry-After": "5"}) from None
    return jsonify({"accepted": len(labels) - len(missing), **counts, "unknown": missing})
