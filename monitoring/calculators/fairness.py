"""Fairness: how the model treats each group of a sensitive attribute, on labelled rows.

For each sensitive attribute the window's labelled rows are split into groups the way
segments are (`Split`: top reference categories plus ``other``, or reference quantile
bins), and fairlearn's `MetricFrame` computes per group the selection rate, true and false
positive rates and accuracy of a binary classifier, or the mean absolute error of a
regressor (per-group accuracy for a multi-class one). Between the groups: the demographic
parity difference and ratio and the equalized odds difference, as fairlearn defines them
(largest minus smallest, smallest over largest, the larger of the TPR and FPR differences).

An attribute alerts when its demographic parity ratio falls below MIN_RATIO (the
four-fifths rule of the US Uniform Guidelines on Employee Selection) or its equalized odds
difference exceeds MAX_DIFFERENCE; a regressor when its smallest group error over its
largest falls below MIN_RATIO. When a group is small (under SMALL_GROUP_ROWS labelled
rows) the verdict rests on a 95% bootstrap interval, resampling each group's rows, so a
gap sampling alone could make does not page anyone: the ratio alerts only when the whole
interval is below the bar, a difference only when the whole interval is above it.

>>> import numpy as np, pandas as pd
>>> rng = np.random.default_rng(0)
>>> def scored(n, biased=False):
...     group = rng.choice(["a", "b"], size=n); score = rng.uniform(size=n)
...     y = (rng.uniform(size=n) < score).astype(int)
...     if biased:                                   # the truth treats group b differently
...         y = np.where(group == "b", (rng.uniform(size=n) < 0.5).astype(int), y)
...     pred = (score > 0.5).astype(int)
...     return Scored(pd.DataFrame({"group": group}), pred.astype(str).astype(object),
...                   y.astype(str).astype(object), "binary", classes=["0", "1"])
>>> fairness = Fairness(["group"]).fit(scored(4000))
>>> fairness.calculate(scored(2000)).details_of(FairnessDetails).fairness["group"]["alert"]
False
>>> biased = fairness.calculate(scored(2000, biased=True))
>>> found = biased.details_of(FairnessDetails).fairness["group"]
>>> found["alert"], found["equalized_odds_difference"] > MAX_DIFFERENCE
(True, True)
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from fairlearn.metrics import (
    MetricFrame,
    count,
    false_positive_rate,
    selection_rate,
    true_positive_rate,
)
from modelwatch.monitoring.calculators.base import Details, Metric, MetricDeclaration, Result
from modelwatch.monitoring.calculators.segments import Split
from sklearn.metrics import accuracy_score, mean_absolute_error

from modelwatch.log.scored import Scored

MIN_RATIO = 0.8  # the four-fifths rule
MAX_DIFFERENCE = 0.1  # of true or false positive rates between groups
SMALL_GROUP_ROWS = 1000
MIN_GROUP_ROWS = 30  # a group with fewer labelled rows in the window is left out: noise
N_BOOT = 400
BINARY = {
    "selection_rate": selection_rate,
    "tpr": true_positive_rate,
    "fpr": false_positive_rate,
    "accuracy": accuracy_score,
    "rows": count,
}
MULTICLASS = {"accuracy": accuracy_score, "rows": count}
REGRESSION = {"mae": mean_absolute_error, "rows": count}

A, AG = ("attribute",), ("attribute", "group")
GAPS = {  # an attribute's gaps between its groups, by their key in `_gaps`
    d.name.removeprefix("fairness_"): d
    for d in (
        MetricDeclaration(
            "fairness_demographic_parity_difference",
            "Largest minus smallest selection rate between groups.",
            A,
        ),
        MetricDeclaration(
            "fairness_demographic_parity_ratio",
            "Smallest over largest selection rate between groups.",
            A,
        ),
        MetricDeclaration(
            "fairness_equalized_odds_difference",
            "The larger of the TPR and FPR differences between groups.",
            A,
        ),
        MetricDeclaration(
            "fairness_accuracy_difference",
            "Largest minus smallest accuracy between groups (multi-class).",
            A,
        ),
        MetricDeclaration(
            "fairness_error_gap", "Largest minus smallest mean absolute error between groups.", A
        ),
        MetricDeclaration(
            "fairness_error_ratio", "Smallest over largest mean absolute error between groups.", A
        ),
    )
}
GROUP_METRICS = {  # each group's metrics, by their key in BINARY, MULTICLASS, REGRESSION
    d.name.removeprefix("fairness_group_"): d
    for d in (
        MetricDeclaration(
            "fairness_group_rows", "Labelled predictions of the group in the last window.", AG
        ),
        MetricDeclaration(
            "fairness_group_selection_rate", "Share of the group predicted positive.", AG
        ),
        MetricDeclaration("fairness_group_tpr", "True positive rate of the group.", AG),
        MetricDeclaration("fairness_group_fpr", "False positive rate of the group.", AG),
        MetricDeclaration("fairness_group_accuracy", "Accuracy on the group.", AG),
        MetricDeclaration("fairness_group_mae", "Mean absolute error on the group.", AG),
    )
}
FAIRNESS_GAP_EXCEEDED = MetricDeclaration(
    "fairness_gap_exceeded",
    "1 if the attribute's gaps are past their bars (FairnessGapExceeded).",
    A,
)


@dataclass
class FairnessDetails(Details):
    """{attribute: {gaps..., "by_group", "intervals", "thresholds", "favourable", "alert"}}
    on the window's labelled rows."""

    fairness: dict[str, dict] = field(default_factory=dict)


class Fairness:
    name = "fairness"
    declares = (*GAPS.values(), *GROUP_METRICS.values(), FAIRNESS_GAP_EXCEEDED)
    # fairlearn's MetricFrame and the regression bootstrap read the rows: no partial/merge
    mergeable = False

    def __init__(
        self,
        attributes: list[str],
        min_ratio: float = MIN_RATIO,
        max_difference: float = MAX_DIFFERENCE,
        favourable: str | None = None,
        seed: int = 0,
    ):
        """`favourable`: the class a group wants (a loan's "not default"), whose rate is the
        selection rate; default the positive class. Equalized odds do not depend on it."""
        self.attributes = list(attributes)
        self.favourable = favourable
        self.min_ratio = float(min_ratio)
        self.max_difference = float(max_difference)
        self.seed = seed
        self.splits: dict[str, Split] = {}

    def fit(self, reference: Scored) -> Fairness:
        # The groups are fixed by the reference, so a window's groups are always the same few.
        self.splits = {
            a: Split.fit(a, reference.features[a], min_rows=MIN_GROUP_ROWS) for a in self.attributes
        }
        return self

    def calculate(self, window: Scored) -> Result:
        known = window.labelled
        metrics, details = [], {}
        for attribute, split in self.splits.items():
            found = self._attribute(window.take(np.flatnonzero(known)), split)
            if found is not None:
                details[attribute] = found
                metrics += _metrics(attribute, found)
        return Result(self.name, metrics, FairnessDetails(details))

    def _attribute(self, labelled: Scored, split: Split) -> dict | None:
        groups = pd.Series(split.assign(labelled.features[split.column]), dtype=object)
        sizes = groups.value_counts()
        keep = groups.isin(sizes[sizes >= MIN_GROUP_ROWS].index).to_numpy()
        if (sizes >= MIN_GROUP_ROWS).sum() < 2:
            return None  # nothing to compare
        y, pred = _targets(labelled, self.favourable)
        y, pred, groups = y[keep], pred[keep], groups[keep].to_numpy()
        functions = (
            REGRESSION
            if labelled.task == "regression"
            else BINARY
            if labelled.task == "binary"
            else MULTICLASS
        )
        frame = MetricFrame(metrics=functions, y_true=y, y_pred=pred, sensitive_features=groups)
        by_group = {
            str(g): {k: _number(v) for k, v in row.items()} for g, row in frame.by_group.iterrows()
        }
        gaps = _gaps(frame, labelled.task)
        small = min(r["rows"] for r in by_group.values()) < SMALL_GROUP_ROWS
        intervals = _bootstrap(y, pred, groups, labelled.task, self.seed) if small else None
        return {
            **gaps,
            "by_group": by_group,
            "intervals": intervals,
            "thresholds": {"min_ratio": self.min_ratio, "max_difference": self.max_difference},
            "favourable": self.favourable
            or (labelled.classes[-1] if labelled.task == "binary" else None),
            "alert": self._alert(gaps, intervals),
        }

    def _alert(self, gaps: dict, intervals: dict | None) -> bool:
        """Each gap against its bar; with intervals, the whole interval must be past it."""

        def judged(name: str, side: int) -> float | None:
            if gaps.get(name) is None:
                return None
            return gaps[name] if intervals is None else intervals[name][side]

        ratio = judged("error_ratio" if "error_ratio" in gaps else "demographic_parity_ratio", 1)
        difference = judged(
            "equalized_odds_difference"
            if "equalized_odds_difference" in gaps
            else "accuracy_difference",
            0,
        )
        return bool(
            (ratio is not None and ratio < self.min_ratio)
            or (difference is not None and difference > self.max_difference)
        )


def _targets(labelled: Scored, favourable: str | None) -> tuple[np.ndarray, np.ndarray]:
    if labelled.task == "regression":
        return (
            pd.to_numeric(pd.Series(labelled.label), errors="coerce").to_numpy(dtype=float),
            np.asarray(labelled.prediction, dtype=float),
        )
    if labelled.task == "binary":  # fairlearn's rates are of the class coded 1
        positive = str(favourable or labelled.classes[-1])
        return (
            (labelled.label.astype(str) == positive).astype(int),
            (labelled.prediction.astype(str) == positive).astype(int),
        )
    return labelled.label.astype(str), labelled.prediction.astype(str)


def _gaps(frame: MetricFrame, task: str) -> dict:
    difference, ratio = frame.difference(), frame.ratio()
    if task == "regression":
        return {"error_gap": _number(difference["mae"]), "error_ratio": _number(ratio["mae"])}
    if task != "binary":
        return {"accuracy_difference": _number(difference["accuracy"])}
    return {
        "demographic_parity_difference": _number(difference["selection_rate"]),
        "demographic_parity_ratio": _number(ratio["selection_rate"]),
        "equalized_odds_difference": _number(max(difference["tpr"], difference["fpr"])),
    }


def _bootstrap(y: np.ndarray, pred: np.ndarray, groups: np.ndarray, task: str, seed: int) -> dict:
    """95% intervals of the gaps, each group's rows resampled with replacement.

    A classifier's rates only depend on each group's confusion counts, and resampling a
    group's rows draws those counts from a multinomial: N_BOOT draws of a few counts per
    window. (MetricFrame's own bootstrap, `n_boot`, rebuilds the frame per resample:
    seconds per window.) A regressor's errors are resampled as rows."""
    rng = np.random.default_rng(seed)
    per_group = [
        _resampled(y[groups == g], pred[groups == g], task, rng) for g in pd.unique(groups)
    ]
    stats = {
        name: np.stack([p[name] for p in per_group]) for name in per_group[0]
    }  # (groups, N_BOOT)
    if task == "regression":
        gaps = {"error_gap": _spread(stats["mae"]), "error_ratio": _min_over_max(stats["mae"])}
    elif task == "binary":
        gaps = {
            "demographic_parity_difference": _spread(stats["selection_rate"]),
            "demographic_parity_ratio": _min_over_max(stats["selection_rate"]),
            "equalized_odds_difference": np.maximum(_spread(stats["tpr"]), _spread(stats["fpr"])),
        }
    else:
        gaps = {"accuracy_difference": _spread(stats["accuracy"])}
    return {
        name: [float(np.nanquantile(v, 0.025)), float(np.nanquantile(v, 0.975))]
        for name, v in gaps.items()
    }


def _resampled(
    y: np.ndarray, pred: np.ndarray, task: str, rng: np.random.Generator
) -> dict[str, np.ndarray]:
    """One group's metrics on N_BOOT resamples of its rows."""
    n = len(y)
    if task == "regression":
        errors = np.abs(y - pred)
        return {"mae": np.array([errors[rng.integers(0, n, n)].mean() for _ in range(N_BOOT)])}
    if task != "binary":
        return {"accuracy": rng.binomial(n, np.mean(y == pred), N_BOOT) / n}
    cells = (
        np.array(
            [
                np.sum((pred == 1) & (y == 1)),
                np.sum((pred == 1) & (y == 0)),
                np.sum((pred == 0) & (y == 1)),
                np.sum((pred == 0) & (y == 0)),
            ]
        )
        / n
    )
    tp, fp, fn, tn = rng.multinomial(n, cells, N_BOOT).T
    with np.errstate(invalid="ignore", divide="ignore"):
        return {"selection_rate": (tp + fp) / n, "tpr": tp / (tp + fn), "fpr": fp / (fp + tn)}


def _spread(values: np.ndarray) -> np.ndarray:
    return np.nanmax(values, axis=0) - np.nanmin(values, axis=0)


def _min_over_max(values: np.ndarray) -> np.ndarray:
    top = np.nanmax(values, axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(top > 0, np.nanmin(values, axis=0) / top, np.nan)


def _number(value) -> float | None:
    value = float(value)
    return value if np.isfinite(value) else None


def _metrics(attribute: str, found: dict) -> list[Metric]:
    """The attribute's gaps and group metrics as labelled metrics, and its verdict."""
    a = (("attribute", attribute),)
    out = [
        Metric(GAPS[name], value, labels=a)
        for name, value in found.items()
        if name in GAPS and value is not None
    ]
    for group, values in found["by_group"].items():
        out += [
            Metric(GROUP_METRICS[name], value, labels=a + (("group", group),))
            for name, value in values.items()
            if value is not None
        ]
    out.append(
        Metric(FAIRNESS_GAP_EXCEEDED, float(found["alert"]), labels=a, flagged=found["alert"])
    )
    return out
