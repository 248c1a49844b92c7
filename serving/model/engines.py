"""What scores a request's validated rows: one `Engine` interface, four engines.

Each engine reads from the `Validated` rows what suits it (the compiled pipeline the
column arrays, the others the DataFrame) and answers the labels and scores.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np
import pandas as pd

from serving.validation import Validated


def labels_and_scores(proba: np.ndarray, classes: np.ndarray):
    """Top class of each row, and its score: P(positive) for two classes, else P(top)."""
    top = proba.argmax(axis=1)
    if proba.shape[1] == 2:
        return classes[top], proba[:, 1]
    return classes[top], proba[np.arange(len(top)), top]


class Engine(ABC):
    """Scores validated rows. `name` is what /version calls the engine."""

    name: str
    classes: np.ndarray | None = None

    @abstractmethod
    def predict(self, checked: Validated):
        """(labels, scores or None) of the rows."""


class SklearnEngine(Engine):
    name = "sklearn"

    def __init__(self, model) -> None:
        self.model = model
        self.has_proba = hasattr(model, "predict_proba")
        classes = getattr(model, "classes_", None)
        self.classes = np.asarray(classes) if classes is not None else None

    def predict(self, checked: Validated):
        if self.has_proba and self.classes is not None:
            proba = np.asarray(self.model.predict_proba(checked.frame))
            return labels_and_scores(proba, self.classes)
        return np.asarray(self.model.predict(checked.frame)).ravel(), None


class CompiledEngine(Engine):
    """The same sklearn pipeline, scored by `serving.compiled` on the column arrays."""

    name = "compiled"

    def __init__(self, compiled) -> None:
        self.compiled = compiled
        self.classes = compiled.classes

    def predict(self, checked: Validated):
        return labels_and_scores(self.compiled.predict_proba(checked.columns), self.classes)


class PyfuncEngine(Engine):
    name = "pyfunc"

    def __init__(self, model) -> None:
        self.model = model

    def predict(self, checked: Validated):
        out = self.model.predict(checked.frame)
        if isinstance(out, pd.DataFrame):
            out = out.iloc[:, 0]
        return np.asarray(out).ravel(), None


class RulesEngine(Engine):
    """The fallback business rules (serving/fallback.py)."""

    name = "rules"

    def __init__(self, rules) -> None:
        self.rules = rules
        self.classes = np.asarray(rules.classes)

    def predict(self, checked: Validated):
        return self.rules.predict(checked.frame)
