"""Segments: the window judged per segment, each against its own reference bounds.

A segment is the rows of one value of a segment column: a categorical column gives its
most frequent reference categories plus ``other``, a numeric one its reference quantile
bins. So a column never gives more than MAX_SEGMENTS segments, whatever it holds in
production (a column of 10,000 shop ids gives 9 shops and ``other``), and Prometheus's
series stay bounded. The reference is split the same way, and each segment with enough
reference rows gets its own drift and performance calculators fitted on its rows: a
channel whose accuracy was always lower is judged against its own past, not the
population's. A segment is judged once the window holds half its usual rows (and at
least MIN_WINDOW_ROWS).

Each segment's metrics keep their names (``live_accuracy``, ``dataset_drift_share``...)
and carry the label ``segment="COLUMN=VALUE"``, with ``segment_rows`` and
``segment_share`` beside them.

>>> import numpy as np, pandas as pd
>>> from modelwatch.monitoring.calculators.classification import RealizedClassification
>>> rng = np.random.default_rng(0)
>>> def scored(n, broken=None):
...     x = rng.normal(size=n); channel = rng.choice(["web", "branch"], size=n)
...     y = (x + rng.normal(scale=.5, size=n) > 0).astype(int)
...     seen = np.where(channel == broken, rng.normal(size=n), x)   # one channel's feed breaks
...     pred = (seen > 0).astype(int).astype(str).astype(object)
...     return Scored(pd.DataFrame({"x": seen, "channel": channel}), pred,
...                   y.astype(str).astype(object), "binary", classes=["0", "1"])
>>> reference = scored(8000)
>>> accuracy = RealizedClassification(chunk_rows=2000).fit(reference)
>>> segments = Segments(["channel"], [accuracy], chunk_rows=2000).fit(reference)
>>> segments.names()      # `other` has no reference rows, so no bounds: not judged
['channel=web', 'channel=branch']
>>> result = segments.calculate(scored(2000, broken="web"))
>>> found = result.details_of(SegmentsDetails).segments
>>> web = found["channel=web"]
>>> branch = found["channel=branch"]
>>> web["metrics"]["live_accuracy"]["alert"], branch["metrics"]["live_accuracy"]["alert"]
(True, False)
>>> round(web["share"], 1)
0.5
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd
from modelwatch.monitoring.calculators.base import (
    N_SIGMA,
    Details,
    Mergeable,
    Metric,
    MetricDeclaration,
    Result,
)
from modelwatch.monitoring.calculators.bounded import DEFAULT_CHUNK_ROWS, BoundedCalculator
from modelwatch.monitoring.calculators.inputs import DATASET_DRIFT_SHARE, DriftDetails, FeatureDrift
from modelwatch.monitoring.drift import ReferenceProfile
from modelwatch.monitoring.drift.profile import NUMERIC, infer_kind

from modelwatch.log.scored import Scored

# The cap: segments per column, `other` included. Each judged segment exports about 20
# series (rows, share, drift share and each performance metric with its bounds).
MAX_SEGMENTS = 10
NUMERIC_BINS = 4  # quartiles of the reference
OTHER = "other"
# A segment is judged against its own reference rows only when it has this many: its drift
# bar comes from chunks of the rows its profile is made of, which flatter a small profile.
MIN_REFERENCE_ROWS = 500
# A segment is judged once the window holds half the rows it has in a full window, and at
# least MIN_WINDOW_ROWS: its drift bar is for windows of about that size.
MIN_WINDOW_ROWS = 100
# Ten segments a column are ten more chances of a false alarm per metric: a segment's
# performance bounds are SEGMENT_N_SIGMA standard deviations wide, not N_SIGMA (one-sided,
# 0.003% instead of 0.13% per metric and window), and its drift share must pass
# SEGMENT_DRIFT_SHARE (3 of 11 features, where a small window drifts 2 by chance).
SEGMENT_N_SIGMA = 4.0
SEGMENT_DRIFT_SHARE = 0.25
# A segment's copies of the population's bounded metrics keep their own declarations; the
# exporter sends them to modelwatch_segment_metric_value and its thresholds.
SEGMENT_ROWS = MetricDeclaration(
    "segment_rows", "Predictions of the segment in the last window.", ("segment",)
)
SEGMENT_SHARE = MetricDeclaration(
    "segment_share", "Share of the last window's predictions in the segment.", ("segment",)
)


@dataclass
class SegmentsDetails(Details):
    """{"COLUMN=VALUE": {"rows", "share", "drift_share", "drifted_features", "metrics",
    "alert"}} of the judged segments."""

    segments: dict[str, dict] = field(default_factory=dict)


@dataclass(frozen=True)
class Split:
    """How one column's values map to segment values, learnt from the reference.

    >>> Split.fit("age", pd.Series(range(100))).assign(pd.Series([0, 30, 99, None])).tolist()
    ['<24.75', '[24.75, 49.5)', '>=74.25', None]
    >>> shops = pd.Series(np.repeat([f"shop{i}" for i in range(12)], np.arange(12, 0, -1) * 200))
    >>> split = Split.fit("shop", shops)     # the nine busiest shops, the rest together
    >>> len(split.values), split.values[-2:]
    (10, ('shop8', 'other'))
    """

    column: str
    kind: str
    values: tuple[str, ...]  # segment values, in order
    edges: tuple[float, ...] = ()  # numeric: the inner bin edges

    @classmethod
    def fit(cls, column: str, series: pd.Series, min_rows: int = MIN_REFERENCE_ROWS) -> Split:
        if infer_kind(series) == NUMERIC:
            known = pd.to_numeric(series, errors="coerce").dropna().to_numpy(dtype=float)
            edges = (
                tuple(np.unique(np.quantile(known, np.linspace(0, 1, NUMERIC_BINS + 1)[1:-1])))
                if len(known)
                else ()
            )
            return cls(column, NUMERIC, _bin_names(edges), edges)
        counts = series.dropna().astype(str).value_counts()
        top = [str(v) for v, n in counts.head(MAX_SEGMENTS - 1).items() if n >= min_rows]
        return cls(column, "categorical", tuple(top) + (OTHER,))

    def assign(self, series: pd.Series) -> np.ndarray:
        """Each row's segment value (None for a missing number: no bin holds it)."""
        if self.kind == NUMERIC:
            values = pd.to_numeric(series, errors="coerce").to_numpy(dtype=float)
            index = np.searchsorted(np.asarray(self.edges), values, side="right")
            names = np.asarray(self.values, dtype=object)[np.minimum(index, len(self.values) - 1)]
            return np.where(np.isnan(values), None, names)
        text = series.astype(str).to_numpy(dtype=object)
        return np.where(np.isin(text, self.values[:-1]), text, OTHER)


def _bin_names(edges: tuple[float, ...]) -> tuple[str, ...]:
    if not edges:
        return ("all",)
    text = [format(e, "g") for e in edges]
    inner = [f"[{a}, {b})" for a, b in zip(text, text[1:])]
    return (f"<{text[0]}", *inner, f">={text[-1]}")


class Segments(Mergeable):
    """Drift and performance per segment of each segment column."""

    name = "segments"
    declares = (SEGMENT_ROWS, SEGMENT_SHARE)

    def __init__(
        self,
        columns: list[str],
        performance: list[BoundedCalculator],
        chunk_rows: int = DEFAULT_CHUNK_ROWS,
    ):
        """`performance`: the version's fitted performance calculators; each segment gets a
        copy with bounds from its own reference rows (the models they fit, CBPE's
        calibration and DLE's, come from the whole reference: more rows, steadier)."""
        self.columns = list(columns)
        self.performance = performance
        self.chunk_rows = int(chunk_rows)
        self.fitted: dict[
            str, tuple[Split, dict[str, tuple[int, list]]]
        ] = {}  # value: (rows needed, calculators)

    def fit(self, reference: Scored) -> Segments:
        for column in self.columns:
            split = Split.fit(column, reference.features[column])
            assigned = split.assign(reference.features[column])
            per_value = {}
            for value in split.values:
                rows = np.flatnonzero(assigned == value)
                if len(rows) >= MIN_REFERENCE_ROWS:
                    per_value[value] = self._fit_segment(
                        reference.take(rows), len(rows) / len(reference)
                    )
            self.fitted[column] = (split, per_value)
        return self

    def _fit_segment(self, reference: Scored, share: float) -> tuple[int, list]:
        # Chunks the size the segment has in a full window, so its bounds are its own
        # sampling error; a smaller window widens them as usual.
        chunk_rows = max(MIN_WINDOW_ROWS, int(share * self.chunk_rows))
        # Not FeatureDrift's held-apart halves: a segment's are a few hundred rows, whose
        # resampled chunks repeat rows and flag half the columns, a bar out of reach. The
        # segment's own chunks, floored at SEGMENT_DRIFT_SHARE, instead.
        drift = FeatureDrift(
            ReferenceProfile.from_frame(reference.features), chunk_rows, independent=True
        )
        drift.fit(reference).share_upper = max(drift.share_upper, SEGMENT_DRIFT_SHARE)
        calculators = [drift]
        for calculator in self.performance:
            mine = copy.copy(calculator)
            mine.chunk_rows = chunk_rows
            mine.fit_bounds(reference)
            mine.bounds = {
                name: b and replace(b, std=b.std * SEGMENT_N_SIGMA / N_SIGMA)
                for name, b in mine.bounds.items()
            }
            calculators.append(mine)
        return max(MIN_WINDOW_ROWS, chunk_rows // 2), calculators

    def names(self) -> list[str]:
        """Every segment with bounds, as its `segment` label."""
        return [
            f"{column}={value}"
            for column, (_, per_value) in self.fitted.items()
            for value in per_value
        ]

    def partial(self, rows: Scored) -> dict:
        """Per segment, its rows' count and its calculators' aggregates; and all the rows."""
        out = {}
        for column, (split, per_value) in self.fitted.items():
            assigned = split.assign(rows.features[column])
            for value, (_, calculators) in per_value.items():
                mine = np.flatnonzero(assigned == value)
                if len(mine):
                    part = rows.take(mine)
                    out[f"{column}={value}"] = (len(mine), [c.partial(part) for c in calculators])
        return {"rows": len(rows), "segments": out}

    def merge(self, a: dict, b: dict) -> dict:
        segments = dict(a["segments"])
        for key, (n, parts) in b["segments"].items():
            if key in segments:
                m, mine = segments[key]
                calculators = self._calculators(key)
                parts = [c.merge(x, y) for c, x, y in zip(calculators, mine, parts)]
                n += m
            segments[key] = (n, parts)
        return {"rows": a["rows"] + b["rows"], "segments": segments}

    def finish(self, aggregate: dict) -> Result:
        metrics, details = [], {}
        for column, (_, per_value) in self.fitted.items():
            for value, (needed, calculators) in per_value.items():
                key = f"{column}={value}"
                n, parts = aggregate["segments"].get(key, (0, None))
                if n >= needed:
                    results = [c.finish(p) for c, p in zip(calculators, parts)]
                    found, details[key] = self._judge(n, results, n / aggregate["rows"])
                    metrics += [replace(m, labels=(("segment", key),)) for m in found]
        return Result(self.name, metrics, SegmentsDetails(details))

    def _calculators(self, key: str) -> list:
        column, value = key.split("=", 1)
        return self.fitted[column][1][value][1]

    @staticmethod
    def _judge(rows: int, results: list[Result], share: float) -> tuple[list[Metric], dict]:
        drift, *performance = results
        # Judged by its bounds alone, as the alert rule compares it (not Evidently's verdict).
        share_metric = replace(drift.get(DATASET_DRIFT_SHARE.name), flagged=False)
        scores = [m for r in performance for m in r.metrics]
        metrics = [
            Metric(SEGMENT_ROWS, float(rows)),
            Metric(SEGMENT_SHARE, share),
            share_metric,
            *scores,
        ]
        columns = drift.details_of(DriftDetails).drift["columns"]
        detail = {
            "rows": rows,
            "share": share,
            "drift_share": share_metric.value,
            "drifted_features": [n for n, c in columns.items() if c["drifted"]],
            "metrics": {m.name: m.to_dict() for m in scores},
            "alert": any(m.alert for m in [share_metric, *scores]),
        }
        return metrics, detail
