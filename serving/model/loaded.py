"""`LoadedModel`: one served model version, immutable (a reload builds a new one)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import pandas as pd
from modelwatch.serving.model.scorers import Engine, Prediction
from modelwatch.serving.validation import ColumnSpec, Validated


@dataclass(frozen=True, kw_only=True)
class LoadedModel:
    name: str
    version: str
    alias: str
    run_id: str | None
    source: str  # "registry", "cache" or "fallback"
    flavor: str
    spec: list[ColumnSpec] | None
    engine: Engine
    path: str | None = None
    engine_note: str = ""  # why not compiled, when it is not
    loaded_at: float = field(default_factory=time.time)

    @property
    def fallback(self) -> bool:
        return self.source == "fallback"

    @property
    def task(self) -> str:
        return self.engine.task

    @property
    def classes(self) -> list | None:
        """The classes in the order of the probabilities; None for a regression (or a
        pyfunc that answers labels only)."""
        classes = self.engine.classes
        return None if classes is None else classes.tolist()

    def predict(self, checked: Validated) -> Prediction:
        return self.engine.predict(checked)

    def describe(self) -> dict:
        return {
            "name": self.name,
            "version": self.version,
            "alias": self.alias,
            "run_id": self.run_id,
            "source": self.source,
            "fallback": self.fallback,
            "flavor": self.flavor,
            "engine": self.engine.name,
            "engine_note": self.engine_note,
            "task": self.task,
            "classes": self.classes,
            "loaded_at": pd.Timestamp(self.loaded_at, unit="s", tz="UTC").isoformat(),
        }
