"""A model version's monitoring reference: what every calculator is fitted on.

Held-out rows the model scored, with their true labels (the sample), a profile of the
inputs the model is expected to see, and a manifest naming the task, the target and the
classes, saved to and loaded from a directory. Where it lives in MLflow is
`modelwatch.monitoring.registry`; the calculators fitted on it, `modelwatch.monitoring.suite`.

>>> import numpy as np, pandas as pd
>>> rng = np.random.default_rng(0)
>>> x = rng.normal(size=3000); y = (x + rng.normal(size=3000) > 0).astype(int)
>>> p = 1 / (1 + np.exp(-1.6 * x))
>>> reference = MonitoringReference.from_scores(
...     pd.DataFrame({"x": x}), y, (p > .5).astype(int), np.column_stack([1 - p, p]),
...     classes=[0, 1], target="y")
>>> reference.task, reference.classes
('binary', ['0', '1'])
>>> reference.scored().proba.shape
(3000, 2)
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from modelwatch.monitoring.drift import ReferenceProfile
from modelwatch.monitoring.integrity import declared_domain

from modelwatch.log.schema import label_text
from modelwatch.log.scored import TASKS, Scored, scored_rows

MANIFEST = "reference.json"
SAMPLE = "sample.parquet"
PREDICTION = "__prediction__"
PROBA_PREFIX = "__proba__"  # one column per class, in class order
MAX_SAMPLE_ROWS = 50_000  # enough for 25 disjoint chunks of the default window
FORMAT_VERSION = 1


def infer_task(y: pd.Series | None, proba: np.ndarray | None, prediction: np.ndarray) -> str:
    """binary or multiclass when the model gives class probabilities; otherwise
    regression when the outputs are numbers with fractions, classification else."""
    if proba is not None:
        return "binary" if proba.shape[1] == 2 else "multiclass"
    values = pd.to_numeric(pd.Series(prediction), errors="coerce")
    if values.notna().all() and (values % 1 != 0).any():
        return "regression"
    labels = set(pd.Series(prediction).astype(str)) | (
        set(y.dropna().astype(str)) if y is not None else set()
    )
    return "binary" if len(labels) <= 2 else "multiclass"


@dataclass
class MonitoringReference:
    task: str
    target: str | None
    classes: list[str] | None
    sample: pd.DataFrame  # features, target (when known), prediction, probabilities
    profile: ReferenceProfile
    profile_of_sample: bool = True  # the profile was built from the sample's own rows

    @property
    def features(self) -> list[str]:
        return list(self.profile.columns)

    @property
    def has_labels(self) -> bool:
        return self.target is not None and self.target in self.sample

    # -- building -------------------------------------------------------------------------------
    @classmethod
    def from_scores(
        cls,
        features: pd.DataFrame,
        y,
        prediction,
        proba=None,
        classes=None,
        target: str | None = None,
        task: str = "auto",
        profile_rows: pd.DataFrame | None = None,
        domain: dict | None = None,
    ) -> MonitoringReference:
        """From rows the model scored. `profile_rows` (default `features`) are the inputs
        drift is measured against, e.g. the training rows when `features` is a holdout.
        `domain` declares columns' valid values, `{column: {"min", "max", "integer",
        "categories"}}` (`modelwatch.monitoring.integrity`): outside them a value is an
        integrity error; the other columns' domains are inferred from the profile."""
        y = None if y is None else pd.Series(np.asarray(y, dtype=object), name=target)
        prediction = np.asarray(prediction, dtype=object)
        proba = None if proba is None else np.asarray(proba, dtype=float)
        if task == "auto":
            task = infer_task(y, proba, prediction)
        if task not in TASKS:
            raise ValueError(f"task must be one of {', '.join(TASKS)} or auto, not {task!r}")
        if task == "regression":
            proba, classes = None, None
        sample = features.reset_index(drop=True).head(MAX_SAMPLE_ROWS).copy()
        n = len(sample)
        if task == "regression":
            sample[PREDICTION] = pd.to_numeric(pd.Series(prediction[:n]), errors="coerce").to_numpy(
                dtype=float
            )
        else:
            classes = [
                label_text(c)
                for c in (classes if classes is not None else sorted(set(prediction), key=str))
            ]
            sample[PREDICTION] = [label_text(p) for p in prediction[:n]]
            if proba is not None:
                for k, c in enumerate(classes):
                    sample[PROBA_PREFIX + c] = proba[:n, k]
        if y is not None and target:
            sample[target] = y.iloc[:n].to_numpy()
        profile = ReferenceProfile.from_frame(
            (features if profile_rows is None else profile_rows)[list(features.columns)],
            metadata={"domain": declared_domain(domain, list(map(str, features.columns)))}
            if domain
            else None,
        )
        return cls(
            task, target if y is not None else None, classes, sample, profile, profile_rows is None
        )

    # -- use --------------------------------------------------------------------------------------
    def scored(self) -> Scored:
        s = self.sample
        proba_columns = [PROBA_PREFIX + c for c in self.classes or []]
        proba = (
            s[proba_columns].to_numpy(dtype=float)
            if proba_columns and proba_columns[0] in s
            else None
        )
        if self.has_labels:
            label = s[self.target].to_numpy(dtype=object)
            if self.task != "regression":
                label = np.array([label_text(v) for v in label], dtype=object)
        else:
            label = np.full(len(s), None, dtype=object)
        prediction = s[PREDICTION].to_numpy(dtype=float if self.task == "regression" else object)
        return Scored(s[self.features], prediction, label, self.task, proba, self.classes)

    def window(self, rows: pd.DataFrame) -> Scored:
        """Rows of the prediction log, as this reference's calculators take them."""
        numeric = tuple(n for n, c in self.profile.columns.items() if c.kind == "numeric")
        return scored_rows(rows, self.features, self.task, self.classes, numeric)

    # -- storage ----------------------------------------------------------------------------------
    def save(self, directory: str | Path, thresholds: dict | None = None) -> Path:
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        self.profile.save(directory)
        self.sample.to_parquet(directory / SAMPLE, index=False)
        manifest = {
            "format_version": FORMAT_VERSION,
            "task": self.task,
            "target": self.target,
            "classes": self.classes,
            "features": self.features,
            "rows": len(self.sample),
            "profile_of_sample": self.profile_of_sample,
            "thresholds": thresholds or {},
        }
        (directory / MANIFEST).write_text(json.dumps(manifest, indent=1))
        return directory

    @classmethod
    def load(cls, directory: str | Path) -> MonitoringReference:
        directory = Path(directory)
        manifest = json.loads((directory / MANIFEST).read_text())
        return cls(
            manifest["task"],
            manifest["target"],
            manifest["classes"],
            pd.read_parquet(directory / SAMPLE),
            ReferenceProfile.load(directory),
            manifest.get("profile_of_sample", True),
        )
