"""What scores a request's validated rows: one `Engine` interface, four engines.

Each engine reads from the `Validated` rows what suits it (the compiled pipeline the
column arrays, the others the DataFrame) and answers a `Prediction`. An engine knows its
task: "binary" or "multiclass" (with its `classes`) or "regression".
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

import numpy as np
import pandas as pd
from modelwatch.serving.validation import Validated


@dataclass(frozen=True)
class Prediction:
    """The answers for n rows."""

    labels: np.ndarray  # predicted class, or predicted value (regression)
    scores: np.ndarray | None = None  # P(classes[-1]) if binary, P(top class) if multiclass
    proba: np.ndarray | None = None  # n x k class probabilities, in `classes` order


def from_proba(proba: np.ndarray, classes: np.ndarray) -> Prediction:
    """Top class of each row, and its score: P(positive) for two classes, else P(top)."""
    top = proba.argmax(axis=1)
    scores = proba[:, 1] if proba.shape[1] == 2 else proba[np.arange(len(top)), top]
    return Prediction(classes[top], scores, proba)


def classifier_task(classes) -> str:
    return "binary" if len(classes) <= 2 else "multiclass"


class Engine(ABC):
    """Scores validated rows. `name` is what /model calls the engine."""

    name: str
    task: str
    classes: np.ndarray | None = None  # classifiers whose classes are known

    @abstractmethod
    def predict(self, checked: Validated) -> Prediction:
        """The answers for the rows."""


class SklearnEngine(Engine):
    name = "sklearn"

    def __init__(self, model) -> None:
        self.model = model
        classes = getattr(model, "classes_", None)
        self.classes = np.asarray(classes) if classes is not None else None
        self.has_proba = self.classes is not None and hasattr(model, "predict_proba")
        self.task = "regression" if self.classes is None else classifier_task(self.classes)

    def predict(self, checked: Validated) -> Prediction:
        if self.has_proba:
            proba = np.asarray(self.model.predict_proba(checked.frame), dtype="float64")
            return from_proba(proba, self.classes)
        return Prediction(np.asarray(self.model.predict(checked.frame)).ravel())


class CompiledEngine(Engine):
    """The same sklearn pipeline, scored by `modelwatch.serving.compiled` on the column arrays."""

    name = "compiled"

    def __init__(self, compiled) -> None:
        self.compiled = compiled
        self.classes = compiled.classes
        self.task = classifier_task(self.classes)

    def predict(self, checked: Validated) -> Prediction:
        return from_proba(self.compiled.predict_proba(checked.columns), self.classes)


class PyfuncEngine(Engine):
    """Any other flavor, through `mlflow.pyfunc`. Its task is read from what it answers
    (`pyfunc_task`): a frame of class probabilities, or labels, or values."""

    name = "pyfunc"

    def __init__(self, model, *, task: str, classes=None) -> None:
        self.model = model
        self.task = task
        self.classes = None if classes is None else np.asarray(classes)

    def predict(self, checked: Validated) -> Prediction:
        return pyfunc_prediction(self.model.predict(checked.frame))


def is_proba_frame(out) -> bool:
    """A frame of two or more numeric columns in [0, 1] whose rows sum to 1."""
    if not isinstance(out, pd.DataFrame) or out.shape[1] < 2 or out.empty:
        return False
    values = out.to_numpy()
    if values.dtype.kind != "f":
        return False
    return bool(
        ((values >= 0) & (values <= 1)).all() and np.allclose(values.sum(axis=1), 1.0, atol=1e-6)
    )


def pyfunc_prediction(out) -> Prediction:
    if is_proba_frame(out):
        return from_proba(out.to_numpy(dtype="float64"), np.asarray(out.columns))
    if isinstance(out, pd.DataFrame):  # labels first, as MLflow's own classifiers answer
        out = out.iloc[:, 0]
    return Prediction(np.asarray(out).ravel())


def pyfunc_task(out) -> tuple[str, np.ndarray | None]:
    """(task, classes) from one answer of a pyfunc: class probabilities name their
    classes; numbers with a fraction are a regression's; any other labels are classes
    whose full set is unknown (multiclass unless they are booleans)."""
    if is_proba_frame(out):
        classes = np.asarray(out.columns)
        return classifier_task(classes), classes
    labels = pyfunc_prediction(out).labels
    if labels.dtype.kind == "f" and not np.all(np.mod(labels[np.isfinite(labels)], 1) == 0):
        return "regression", None
    return ("binary" if labels.dtype.kind == "b" else "multiclass"), None


def signature_task(signature) -> str:
    """The task a pyfunc's output signature suggests, for a model without an example to
    score: a floating-point output is a regression's."""
    outputs = getattr(signature, "outputs", None)
    kinds = [str(getattr(c.type, "name", c.type)) for c in getattr(outputs, "inputs", [])]
    if kinds[:1] in (["double"], ["float"]):
        return "regression"
    return "binary" if kinds[:1] == ["boolean"] else "multiclass"


class RulesEngine(Engine):
    """The fallback business rules (serving/fallback.py): a binary classifier."""

    name = "rules"
    task = "binary"

    def __init__(self, rules) -> None:
        self.rules = rules
        self.classes = np.asarray(rules.classes)

    def predict(self, checked: Validated) -> Prediction:
        labels, scores = self.rules.predict(checked.frame)
        return Prediction(labels, scores, np.column_stack([1.0 - scores, scores]))
