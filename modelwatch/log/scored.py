"""Rows the model scored, in the one shape the monitor's calculators take (`Scored`), and
the log's rows turned into it (`scored_rows`).

>>> import pandas as pd
>>> rows = pd.DataFrame({"ts": [2.0, 1.0], "age": ["41", "35"], "prediction": ["1", "0"],
...                      "probability": [0.9, 0.2], "label": [None, 1.0]})
>>> s = scored_rows(rows, ["age"], "binary", ["0", "1"], numeric=("age",))
>>> s.features["age"].tolist(), s.label.tolist(), s.proba[:, 1].tolist()
([35, 41], ['1', None], [0.2, 0.9])
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np
import pandas as pd

from modelwatch.log.schema import label_text

TASKS = ("binary", "multiclass", "regression")  # what a model's rows can be


@dataclass
class Scored:
    """Rows the model scored: a reference or a window of the prediction log, in one shape.

    ``prediction`` holds what the model served (class labels, or values for regression),
    ``proba`` the class probabilities (n, k) in ``classes`` order (None for regression or
    when unknown), ``label`` the true labels with None where none has arrived.
    """

    features: pd.DataFrame
    prediction: np.ndarray
    label: np.ndarray
    task: str
    proba: np.ndarray | None = None
    classes: list | None = None
    ids: np.ndarray | None = None  # the prediction ids, oldest first, where the rows have them
    ts: np.ndarray | None = None  # when each row was scored (epoch seconds), where known

    def __len__(self) -> int:
        return len(self.prediction)

    @property
    def labelled(self) -> np.ndarray:
        return ~pd.isna(pd.Series(self.label, dtype=object)).to_numpy()

    def take(self, rows: np.ndarray) -> Scored:
        return Scored(
            self.features.iloc[rows].reset_index(drop=True),
            self.prediction[rows],
            self.label[rows],
            self.task,
            None if self.proba is None else self.proba[rows],
            self.classes,
            None if self.ids is None else self.ids[rows],
            None if self.ts is None else self.ts[rows],
        )


def scored_rows(
    window: pd.DataFrame,
    features: list[str],
    task: str,
    classes: list | None = None,
    numeric: tuple[str, ...] = (),
) -> Scored:
    """The log's rows (oldest first) as the monitor's calculators take them: `features` in
    order (the `numeric` ones as numbers), the classes' label text, the served probabilities."""
    window = window.sort_values("ts", kind="stable").reset_index(drop=True)
    inputs = window.reindex(columns=features)
    for name in numeric:
        inputs[name] = pd.to_numeric(inputs[name], errors="coerce")
    label = window["label"].to_numpy(dtype=object)
    label = np.where(pd.isna(label), None, label)
    ids = window["prediction_id"].to_numpy(dtype=object) if "prediction_id" in window else None
    ts = _epoch_seconds(window["ts"]) if "ts" in window else None
    if task == "regression":
        prediction = pd.to_numeric(window["prediction"], errors="coerce").to_numpy(dtype=float)
        return Scored(inputs, prediction, label, "regression", ids=ids, ts=ts)
    texts = {
        v: label_text(v) for v in pd.unique(label) if v is not None
    }  # a few classes, many rows
    label = np.array([None if v is None else texts[v] for v in label], dtype=object)
    prediction = window["prediction"].astype(str).to_numpy(dtype=object)
    return Scored(inputs, prediction, label, task, _proba(classes, window), classes, ids, ts)


def _epoch_seconds(ts: pd.Series) -> np.ndarray:
    """Scoring times as epoch seconds (the log's are timestamps; a frame's may be numbers)."""
    if pd.api.types.is_datetime64_any_dtype(ts.dtype):
        return (
            (pd.to_datetime(ts, utc=True) - pd.Timestamp(0, tz="UTC"))
            .dt.total_seconds()
            .to_numpy(dtype=float)
        )
    return pd.to_numeric(ts, errors="coerce").to_numpy(dtype=float)


def _proba(classes: list | None, window: pd.DataFrame) -> np.ndarray | None:
    """The served class probabilities: the logged vector, or for binary models the
    positive-class probability. None when any row lacks them (rows logged before the log
    kept the vector): an estimate on part of the window would not be the window's."""
    k = len(classes or [])
    if "probabilities" in window and window["probabilities"].notna().all() and len(window):
        proba = _vectors(window["probabilities"])
        if proba is not None and proba.ndim == 2 and proba.shape[1] == k:
            return proba
    if k == 2 and "probability" in window:
        positive = window["probability"].to_numpy(dtype=float)
        if np.isfinite(positive).all():
            return np.column_stack([1.0 - positive, positive])
    return None


def _vectors(column: pd.Series) -> np.ndarray | None:
    """The logged JSON vectors as one matrix: one JSON array of them parsed at once (a
    batch engine reads millions), None when they are not all of one length."""
    texts = column.tolist()
    try:
        if all(isinstance(v, str) for v in texts):
            return np.array(json.loads("[" + ",".join(texts) + "]"), dtype=float)
        return np.array([json.loads(v) if isinstance(v, str) else v for v in texts], dtype=float)
    except ValueError:  # ragged, or not JSON: no vectors for this window
        return None
