"""What a batch engine computes on each part of the log, and how the driver finishes it.

A part is some rows of the prediction log as `read_window` answers them (one Parquet
file, one Spark partition, one Arrow batch). `partial` turns them into the calculators'
aggregates, `merge` combines two parts' aggregates, `finish` makes the window the online
monitor would have made of all those rows at once (`WindowResult`, the object behind
/status's `last_window`).

A calculator that has no mergeable form declares it (`mergeable = False`: Fairness, whose
fairlearn MetricFrame and regression bootstrap read the rows): a batch leaves it out and
says so in the window's `results["batch"]["left_out"]` (`BatchDetails`). The window's latency
percentiles are left out too (MLflow's `latency_*` metrics of a window).

>>> import numpy as np, pandas as pd
>>> from modelwatch.monitoring.reference import MonitoringReference
>>> rng = np.random.default_rng(0)
>>> x = rng.normal(size=3000); y = (x + rng.normal(size=3000) > 0).astype(int)
>>> p = 1 / (1 + np.exp(-1.6 * x))
>>> reference = MonitoringReference.from_scores(
...     pd.DataFrame({"x": x}), y, (p > .5).astype(int), np.column_stack([1 - p, p]),
...     classes=[0, 1], target="y")
>>> from modelwatch.monitoring.suite import fit_calculators
>>> calculators = fit_calculators(reference, chunk_rows=500)
>>> log = pd.DataFrame({"ts": np.arange(1000.0), "x": x[:1000],
...                     "prediction": (p[:1000] > .5).astype(int).astype(str),
...                     "probability": p[:1000], "label": y[:1000].astype(str)})
>>> plan = Plan("7", calculators, reference)
>>> parts = [plan.partial(log.iloc[i::4]) for i in range(4)]
>>> merged = parts[0]
>>> for part in parts[1:]:
...     merged = plan.merge(merged, part)
>>> window = plan.finish(merged)
>>> accuracy = float(np.mean(log.prediction == log.label))
>>> window.rows, round(window.value("live_accuracy"), 3) == round(accuracy, 3)
(1000, True)
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass, field

import pandas as pd
from modelwatch.monitoring.calculators import coverage, feedback
from modelwatch.monitoring.calculators.base import Details, Result
from modelwatch.monitoring.reference import MonitoringReference
from modelwatch.monitoring.window import WindowResult

NAME = "batch"


@dataclass
class BatchDetails(Details):
    """How a batch window was computed: by which engine, without which calculators."""

    OPTIONAL = ("seconds",)
    engine: str
    left_out: list[str] = field(default_factory=list)
    seconds: float | None = None


class Plan:
    """The version's fitted calculators as a per-part step and a final step."""

    def __init__(self, version: str, calculators: list, reference: MonitoringReference):
        self.version = str(version)
        # A copy: ConceptDrift keeps state across windows, and a batch is a window of its own.
        self.calculators = [copy.deepcopy(c) for c in calculators if c.mergeable]
        self.left_out = [c.name for c in calculators if not c.mergeable]
        self.reference = reference

    def partial(self, rows: pd.DataFrame) -> dict:
        scored = self.reference.window(rows)
        # A batch judges each row once, so ConceptDrift needs no ids to skip rows it has
        # seen; without them its error stream is 9 bytes a labelled row on the driver.
        scored.ids = None
        return {
            "rows": len(scored),
            "labelled": int(scored.labelled.sum()),
            "parts": [c.partial(scored) for c in self.calculators],
        }

    def merge(self, a: dict | None, b: dict | None) -> dict | None:
        if a is None or b is None:
            return a or b
        return {
            "rows": a["rows"] + b["rows"],
            "labelled": a["labelled"] + b["labelled"],
            "parts": [c.merge(x, y) for c, x, y in zip(self.calculators, a["parts"], b["parts"])],
        }

    def finish(
        self, aggregate: dict, engine: str = "local", started: float | None = None
    ) -> WindowResult:
        results = [c.finish(part) for c, part in zip(self.calculators, aggregate["parts"])]
        if self.reference.has_labels:
            results.append(coverage.coverage(aggregate["labelled"], aggregate["rows"]))
        results.append(feedback.check(results, self.calculators))  # as the online window does
        seconds = None if started is None else time.perf_counter() - started
        results.append(Result(NAME, [], BatchDetails(engine, list(self.left_out), seconds)))
        return WindowResult(self.version, aggregate["rows"], results)
