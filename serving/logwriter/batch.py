"""One scored request's log rows, and the JSON of their features.

The request thread only builds a `LogBatch` around what it already has (the validated
column arrays, the answers); the writer thread turns it into rows. The features become
one JSON object per row, written straight from the column arrays: building a DataFrame
of a small request and calling `to_json` cost 0.8 ms of CPU for one row (more than
scoring it) and 1.3 ms for 100; this costs 0.02 ms and 0.3 ms (bench/README.md).

>>> import numpy as np
>>> feature_lines({"x": np.array([1.5, np.nan]), "c": np.array(["a", None], dtype=object)}, 2)
['{"x":1.5,"c":"a"}', '{"x":null,"c":null}']
>>> probability_lines(np.array([[0.25, 0.75], [1.0, 0.0]]), 2)
['[0.25,0.75]', '[1.0,0.0]']
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass

import numpy as np
from modelwatch.serving.validation import Validated

from modelwatch.log.schema import label_text


@dataclass
class LogBatch:
    """The rows of one scored request, kept as the request made them."""

    ids: list
    ts: float
    model_name: str
    model_version: str
    model_alias: str
    features: Validated
    predictions: list
    probabilities: list | None  # the `probability` column: one score per row
    latency_ms: float
    shadow_of: list | None = None
    class_probabilities: np.ndarray | None = None  # n x k, in the model's class order
    regression: bool = False  # predictions are values, not class labels

    def __len__(self) -> int:
        return len(self.ids)

    def rows(self) -> list[tuple]:
        n = len(self.ids)
        feats = feature_lines(self.features.columns, n)
        probs = self.probabilities if self.probabilities is not None else [None] * n
        shadow = self.shadow_of if self.shadow_of is not None else [None] * n
        vectors = probability_lines(self.class_probabilities, n)
        text = value_text if self.regression else label_text
        return [
            (
                self.ids[i],
                self.ts,
                self.model_name,
                self.model_version,
                self.model_alias,
                feats[i],
                text(self.predictions[i]),
                None if probs[i] is None else float(probs[i]),
                self.latency_ms,
                shadow[i],
                vectors[i],
            )
            for i in range(n)
        ]


def value_text(value) -> str | None:
    """A regression's prediction as text: the float's repr (3.0 stays "3.0")."""
    return None if value is None else repr(float(value))


def probability_lines(proba: np.ndarray | None, n: int) -> list[str | None]:
    """One JSON array per row of the class-probability matrix; None without one."""
    if proba is None:
        return [None] * n
    proba = np.asarray(proba, dtype="float64")
    if np.isfinite(proba).all():  # repr of a finite float is its JSON
        return ["[" + ",".join(map(repr, row)) + "]" for row in proba.tolist()]
    return [
        json.dumps([v if math.isfinite(v) else None for v in row], separators=(",", ":"))
        for row in proba.tolist()
    ]


def feature_lines(columns: dict, n: int) -> list[str]:
    """One JSON object per row of the column arrays; NaN, infinities and None are null
    (JSON has no NaN)."""
    if not columns:
        return ["{}"] * n
    template = "{" + ",".join(f"{json.dumps(str(name))}:%s" for name in columns) + "}"
    encoded = [_encode(values) for values in columns.values()]
    return [template % row for row in zip(*encoded)]


def _encode(values) -> list[str]:
    values = np.asarray(values)
    if values.dtype.kind == "f":
        out = [repr(v) for v in values.tolist()]  # what json.dumps writes for a float
        missing = ~np.isfinite(values)
        if missing.any():
            for i in np.flatnonzero(missing).tolist():
                out[i] = "null"
        return out
    if values.dtype.kind in "iu":
        return [str(v) for v in values.tolist()]
    if values.dtype.kind == "b":
        return ["true" if v else "false" for v in values.tolist()]
    items = values.tolist()
    try:  # categories repeat: encode each distinct value once
        encoded = {v: _json_value(v) for v in set(items)}
    except TypeError:  # unhashable values (no signature to cast them)
        return [_json_value(v) for v in items]
    return [encoded[v] for v in items]


def _json_value(value) -> str:
    if isinstance(value, np.generic):
        value = value.item()
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "null"
    if isinstance(value, str):
        return json.dumps(value)
    return json.dumps(value, default=str)
