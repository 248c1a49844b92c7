"""POST /feedback: true labels for earlier predictions, checked, then stored idempotently.

A label may arrive before its prediction is in the store: the prediction was answered a
moment ago, by this worker (its row is in our writer's queue: flushed first) or by another
(in that worker's queue, written within its linger). Ids the store does not hold yet get
up to MODELWATCH_FEEDBACK_WAIT of polling, but that wait is one budget per worker, not one
per request: at most one request thread of a worker waits at a time
(`ServingState.feedback_waiter`), and a request that finds it taken answers at once,
listing its ids as unknown, for the client to send again. A thread per waiting request let
16 clients looping on unknown ids hold every worker thread and take /predict's median from
6 ms to 2,970 ms; now they hold at most one thread of each worker (bench/feedback_flood.py).
A label sent right after its prediction, with no other request waiting, is accepted as
before.
"""

from __future__ import annotations

import logging
import time

from flask import Blueprint, jsonify, request
from modelwatch.serving.labels import check_labels, check_text
from modelwatch.serving.routes import state
from modelwatch.serving.routes.predict import current_model
from modelwatch.serving.validation import bad_shape, check_rows, read_json

from modelwatch.log import StoreError
from modelwatch.redaction import redact_credentials
from modelwatch.web.auth import require_token
from modelwatch.web.errors import ApiError

log = logging.getLogger(__name__)
bp = Blueprint("feedback", __name__)
POLL = 0.1  # seconds between looks at the store while waiting


def _parse(body, max_rows: int) -> dict:
    if not isinstance(body, dict) or not isinstance(body.get("feedback"), list):
        raise bad_shape('expected {"feedback": [{"prediction_id": "...", "label": 0}, ...]}')
    items = body["feedback"]
    check_rows(len(items), max_rows)
    bad = [
        i
        for i, item in enumerate(items)
        if not isinstance(item, dict)
        or not isinstance(item.get("prediction_id"), str)
        or not item["prediction_id"]
        or item.get("label") is None
        or isinstance(item.get("label"), (dict, list))
    ]
    if bad:
        raise bad_shape(
            "every feedback item needs a prediction_id (text) and a label "
            "(a number, text or boolean)",
            {"items": bad[:20]},
        )
    check_text(items)
    # While only the fallback rules serve, labels are checked against their classes: the
    # rules file is written for the model's domain and names its classes, and a label
    # outside them could be judged against neither the rules' predictions nor the model's.
    items = check_labels(items, current_model())
    return {item["prediction_id"]: item["label"] for item in items}  # the last label wins


def _missing(store, labels: dict, known: set) -> list[str]:
    """Adds the ids the store now holds to `known`; answers those it does not."""
    known.update(store.known_ids([i for i in labels if i not in known]))
    return [i for i in labels if i not in known]


def _wait_for(st, labels: dict, known: set) -> None:
    """Poll for the ids still missing, unless another request thread of this worker is."""
    if st.config.feedback_wait <= 0 or not st.feedback_waiter.acquire(blocking=False):
        return
    try:
        deadline = time.monotonic() + st.config.feedback_wait
        while time.monotonic() < deadline:
            time.sleep(POLL)
            if not _missing(st.store, labels, known):
                return
    finally:
        st.feedback_waiter.release()


@bp.post("/feedback")
def feedback():
    st = state()
    require_token(st.config.feedback_token)
    labels = _parse(read_json(request), st.config.max_rows)
    try:
        known: set = set()
        if _missing(st.store, labels, known):
            st.log.flush(timeout=5.0)  # ours may be in our own writer's queue
            if _missing(st.store, labels, known):
                _wait_for(st, labels, known)
        counts = st.store.store_feedback({i: labels[i] for i in labels if i in known})
    except StoreError as exc:
        # The store's error names its host and port: the log has it, the client does not.
        log.warning("feedback not stored: %s", redact_credentials(str(exc)))
        raise ApiError(
            503,
            "store_unavailable",
            "the prediction store is unavailable; send the feedback again later",
            {},
            headers={"Retry-After": "5"},
        ) from None
    missing = [i for i in labels if i not in known]
    return jsonify({"accepted": len(labels) - len(missing), **counts, "unknown": missing})
