"""Answers as strict JSON. JSON has no NaN or Infinity (RFC 8259), Python's encoder writes
them unless told not to, and a strict parser then rejects the whole answer. A value that
is not a finite number (a model's NaN for a row with a null it cannot impute) is answered
as null, and `warnings` says where and what it was.

>>> out = {"predictions": [1.5, float("nan"), float("inf")]}
>>> answer = json.loads(json_answer(out, hint=lambda row: "a null in required column x?"))
>>> answer["predictions"], answer["warnings"][0]["paths"]
([1.5, None, None], ['predictions[1]', 'predictions[2]'])
>>> message = answer["warnings"][0]["message"]
>>> message.startswith("predictions[1] is not a finite number (NaN), answered as null: ")
True
>>> message.endswith(": a null in required column x? (and 1 more, in paths)")
True
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable

import numpy as np
from mlflow.utils.proto_json_utils import NumpyEncoder

NOT_FINITE = "not_finite"
MAX_PATHS = 20  # the paths a warning names; `count` says how many there were
ROW = re.compile(r"\[(\d+)\]")
# The likely cause of a row's non-finite answer (a null in a column the model needs), or None.
Hint = Callable[[int], str | None]


def _name(value: float) -> str:
    return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")


def _finite(value, path: str, found: list[tuple[str, str]]):
    """`value` with every non-finite number replaced by None; each one's (path, name) is
    appended to `found`."""
    if isinstance(value, np.ndarray) and value.dtype.kind in "fO":
        value = value.tolist()  # (other arrays are left to MLflow's encoder, as MLflow does)
    if isinstance(value, float | np.floating):
        if math.isfinite(value):
            return float(value)
        found.append((path, _name(value)))
        return None
    if isinstance(value, dict):
        return {k: _finite(v, f"{path}.{k}" if path else str(k), found) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v, f"{path}[{i}]", found) for i, v in enumerate(value)]
    return value


def _warning(found: list[tuple[str, str]], hint: Hint | None) -> dict:
    path, name = found[0]
    message = f"{path} is not a finite number ({name}), answered as null"
    row = ROW.search(path)
    cause = hint(int(row.group(1))) if hint is not None and row is not None else None
    if cause:
        message += f": {cause}"
    if len(found) > 1:
        message += f" (and {len(found) - 1} more, in paths)"
    return {
        "code": NOT_FINITE,
        "message": message,
        "paths": [p for p, _ in found[:MAX_PATHS]],
        "count": len(found),
    }


def json_answer(out: dict, hint: Hint | None = None, separators=None) -> str:
    """`out` (a dict of what JSON or MLflow's encoder can hold) as strict JSON text. The
    common answer is encoded once; only one holding a non-finite number is walked, its
    numbers answered as null and a warning added to its `warnings`. `hint(row)` names
    the likely cause for the row of a path's first index. `separators`: json.dumps's
    (None: MLflow's spacing)."""
    try:
        return json.dumps(out, cls=NumpyEncoder, allow_nan=False, separators=separators)
    except ValueError:
        found: list[tuple[str, str]] = []
        clean = _finite(out, "", found)
        if not found:  # (refused for another reason)
            raise
    clean["warnings"] = [*clean.get("warnings", []), _warning(found, hint)]
    return json.dumps(clean, cls=NumpyEncoder, allow_nan=False, separators=separators)
