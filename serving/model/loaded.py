"""`LoadedModel`: one served model version, immutable (a reload builds a new one)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import pandas as pd

from serving.model.engines import Engine
from serving.validation import ColumnSpec, Validated


@dataclass(frozen=True, kw_only=True)
class LoadedModel:
    name: str
    version: str
    alias: str
    run_id: str | None
    source: str            # "registry", "cache" or "fallback"
    flavor: str
    spec: list[ColumnSpec] | None
    engine: Engine
    path: str | None = None
    engine_note: str = ""  # why not compiled, when it is not
    loaded_at: float = field(default_factory=time.time)

    @property
    def fallback(self) -> bool:
        return self.source == "fallback"

    def predict(self, checked: Validated):
        """Labels and scores (or None) of validated rows."""
        return self.engine.predict(checked)

    def describe(self) -> dict:
        return {
            "name": self.name, "version": self.version, "alias": self.alias,
            "run_id": self.run_id, "source": self.source, "fallback": self.fallback,
            "flavor": self.flavor, "engine": self.engine.name, "engine_note": self.engine_note,
            "loaded_at": pd.Timestamp(self.loaded_at, unit="s", tz="UTC").isoformat(),
        }
