"""What `POST /feedback` may store: ids and labels checked before anything is written.

A label trains the next version and judges the current one, so one the model could never
have predicted (a binary model's "banana", 7, 0.5) would stop every retraining that reads
it. A classifier's label is one of the served version's classes, given as the class or its
canonical text (`label_text`: 1, 1.0, True and "1" are one class); a regressor's is a
finite number (JSON number, or text that is one). Text no store can hold (NUL, which
PostgreSQL refuses, and lone surrogates, which UTF-8 cannot encode) is refused by field.
A request with any bad item stores nothing: the answer names the allowed values and the
first items that broke them.

>>> sorted(allowed_text([0, 1.0, True]))
['0', '1']
>>> [is_number_label(v) for v in (1, 2.5, "3", True, "x", float("inf"), "nan")]
[True, True, True, False, False, False, False]
>>> is_number_label("1" * 17), is_number_label("9e99")
(False, True)
"""

from __future__ import annotations

import math
import re

from modelwatch.serving.validation import STORABLE_PATTERN, unstorable

from modelwatch.log.schema import label_text
from modelwatch.web.errors import ApiError

# Numeric text: the JSON number grammar (float() alone reads "1_000", " 3", "infinity"),
# with digits enough for any double and never an infinite one; /openapi.json says the same.
NUMBER_TEXT = re.compile(r"-?(0|[1-9][0-9]{0,15})(\.[0-9]{1,17})?([eE][+-]?[0-9]{1,2})?")
SHOWN_ITEMS = 20


def allowed_text(classes) -> set[str]:
    return {label_text(c) for c in classes}


def is_number_label(value) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, str):
        return NUMBER_TEXT.fullmatch(value) is not None
    return isinstance(value, (int, float)) and math.isfinite(value)


def label_schema(model) -> dict:
    """The JSON Schema of a label `check_labels` accepts for `model` (None: no model)."""
    if model is not None and model.task == "regression":
        return {
            "anyOf": [
                {"type": "number"},
                {"type": "string", "pattern": f"^{NUMBER_TEXT.pattern}$"},
            ],
            "description": "a finite number, or its text",
        }
    if model is None or model.classes is None:
        return {"type": ["number", "string", "boolean"], "pattern": STORABLE_PATTERN}
    texts = sorted(allowed_text(model.classes))
    bools = [b for b in (False, True) if label_text(b) in texts]
    # Keyed by type too: in Python (not in JSON) True == 1 and would be dropped as a repeat.
    values = {(type(v), v): v for v in [*model.classes, *texts, *bools]}
    return {"enum": list(values.values()), "description": "one of the model's classes, or its text"}


def _refuse(code: str, message: str, items: list[int], details: dict) -> ApiError:
    return ApiError(
        422,
        code,
        f"{message} (items {', '.join(map(str, items[:SHOWN_ITEMS]))}"
        f"{', ...' if len(items) > SHOWN_ITEMS else ''})",
        {**details, "items": items[:SHOWN_ITEMS], "count": len(items)},
        reason=code,
    )


def check_text(items: list[dict]) -> None:
    """A 422 naming the first field (prediction_id, then label) whose text no store holds."""
    for field in ("prediction_id", "label"):
        bad = [i for i, item in enumerate(items) if unstorable(item[field])]
        if bad:
            raise _refuse(
                "unstorable_text",
                f"{field} holds text the prediction log cannot "
                "store (a NUL character or a lone surrogate)",
                bad,
                {"field": field},
            )


def check_labels(items: list[dict], model) -> list[dict]:
    """`items` with each label as it is stored (a regressor's numeric text as its number);
    a 422 when any label is not one `model` could have answered."""
    if model.task == "regression":
        bad = [i for i, item in enumerate(items) if not is_number_label(item["label"])]
        if bad:
            raise _refuse(
                "invalid_label",
                "a regression label must be a finite number",
                bad,
                {"field": "label", "allowed": "a finite number", "model_version": model.version},
            )
        return [
            {**item, "label": float(item["label"])} if isinstance(item["label"], str) else item
            for item in items
        ]
    if model.classes is None:
        # A pyfunc that answers labels only names no classes: any finite number, boolean
        # or text is a label it may have answered.
        bad = [
            i
            for i, item in enumerate(items)
            if isinstance(item["label"], float) and not math.isfinite(item["label"])
        ]
        allowed = "a finite number, a boolean or text"
    else:
        texts = allowed_text(model.classes)
        bad = [i for i, item in enumerate(items) if label_text(item["label"]) not in texts]
        allowed = model.classes
    if bad:
        raise _refuse(
            "invalid_label",
            f"a label must be one of the model's classes "
            f"({allowed if isinstance(allowed, str) else ', '.join(map(str, allowed))})",
            bad,
            {"field": "label", "allowed": allowed, "model_version": model.version},
        )
    return items
