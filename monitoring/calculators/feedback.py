"""FeedbackSuspect: a label feed that disagrees with the model far beyond what the reference allows.

Labels come from `POST /feedback`, which anyone holding its token (or a broken upstream
job) can fill with anything. A retraining learns from those labels, and inverted ones
promoted a model worse than a coin flip (issue 23). The label-free estimate (CBPE for a
classifier with probabilities, DLE for a regressor) reads the same rows without labels.
While the inputs hold (no dataset drift, no multivariate drift, no prediction drift),
the estimate is as good as it was on the reference, so realized performance far below
it says the labels, not the model, changed.

"Far beyond": the gap (estimate minus realized for a score, realized minus estimate for
an error) exceeds FAR_BEYOND times the realized metric's band half-width at this
window's labelled rows (N_SIGMA = 3 standard deviations of the metric on reference
chunks, widened for a small window: `Bounds`). One half-width is what
ModelAccuracyDegraded already pages on, and a genuine concept change with still inputs
can reach it; twice that is a feed the model's own reference cannot explain. On the
simulator (gbm, 2,000-row windows) the gap of baseline, covariate, concept and gradual
windows stayed within 0.4 half-widths; inverted labels made it 13.

`check(results, calculators)` reads the window's other results (it computes nothing
from rows) and returns a `Result` with `feedback_suspect` 1/0, present only where both
realized and estimated metrics were computed: absent, never 0, otherwise. `hold_reason`
says, of a judged window, why it holds automatic retraining ("" when it does not).

>>> from modelwatch.monitoring.calculators.base import Bounds, Metric, Result
>>> class Realized:
...     name = "realized_classification"
...     bounds = {"live_accuracy": Bounds(0.78, 0.015, 2000, "higher", 0.0, 1.0)}
>>> def window(live, drift=False):
...     rows = BoundedDetails(2000)
...     return [Result("realized_classification", [Metric(LIVE_ACCURACY, live)], rows),
...             Result("estimated_classification", [Metric(ESTIMATED_ACCURACY, 0.78)], rows),
...             Result("prediction_drift", [Metric(PREDICTION_DRIFT_SCORE, 0.2, flagged=drift)])]
>>> check(window(0.22), [Realized()]).get("feedback_suspect").value
1.0
>>> check(window(0.76), [Realized()]).get("feedback_suspect").value
0.0
>>> check(window(0.22, drift=True), [Realized()]).get("feedback_suspect").value   # the inputs moved
0.0
>>> check(window(0.22)[:1], [Realized()]).metrics   # no estimate: absent, never 0
[]
>>> print(hold_reason(check(window(0.22), [Realized()]).details_of(FeedbackDetails)))
... # doctest: +NORMALIZE_WHITESPACE
suspect labels: live_accuracy 0.2200 is 0.5600 below its label-free estimate 0.7800
while the inputs hold (more than 2 x the band half-width 0.0450)
"""

from __future__ import annotations

from dataclasses import dataclass

from modelwatch.monitoring.calculators.base import Details, Metric, MetricDeclaration, Result
from modelwatch.monitoring.calculators.bounded import BoundedDetails
from modelwatch.monitoring.calculators.classification import ESTIMATED_ACCURACY, LIVE_ACCURACY
from modelwatch.monitoring.calculators.inputs import (
    DATASET_DRIFT_SHARE,
    MULTIVARIATE_RECONSTRUCTION_ERROR,
    PREDICTION_DRIFT_SCORE,
)
from modelwatch.monitoring.calculators.regression import ESTIMATED_MAE, LIVE_MAE

NAME = "feedback"
FAR_BEYOND = 2.0
FEEDBACK_SUSPECT = MetricDeclaration(
    "feedback_suspect",
    "1 if the labels disagree with the model far beyond what its reference allows while the "
    "inputs hold (FeedbackSuspect); absent without both realized and estimated metrics.",
)
DECLARES = (FEEDBACK_SUSPECT,)  # `check` is no calculator class: its metric is declared here
# (realized, estimated, which way is worse): the first pair the window has is judged.
PAIRS = (
    (LIVE_ACCURACY.name, ESTIMATED_ACCURACY.name, "lower"),
    (LIVE_MAE.name, ESTIMATED_MAE.name, "higher"),
)
# Metrics whose alert means the inputs or outputs moved: then the estimate is no judge.
DRIFT_VERDICTS = (
    DATASET_DRIFT_SHARE.name,
    MULTIVARIATE_RECONSTRUCTION_ERROR.name,
    PREDICTION_DRIFT_SCORE.name,
)


@dataclass
class FeedbackDetails(Details):
    """The judged pair: realized against estimated, the gap, the bar and the verdict."""

    metric: str
    realized: float
    estimated: float
    gap: float
    half_width: float
    far_beyond: float
    drift: list[str]  # the drift verdicts that alerted: the inputs moved, no verdict
    suspect: bool


def check(results: list[Result], calculators: list) -> Result:
    """The window's feedback verdict, from its other results and the fitted calculators."""
    metrics = {m.name: m for r in results for m in r.metrics if not m.labels}
    rows = {
        m.name: d.rows
        for r in results
        if (d := r.details_of(BoundedDetails)) is not None
        for m in r.metrics
        if not m.labels
    }
    bounds = {
        name: b
        for c in calculators
        for name, b in getattr(c, "bounds", {}).items()
        if b is not None
    }
    for realized, estimated, worse in PAIRS:
        if (
            realized in metrics
            and estimated in metrics
            and realized in bounds
            and rows.get(realized)
        ):
            return _judge(
                metrics[realized],
                metrics[estimated],
                bounds[realized],
                rows[realized],
                worse,
                metrics,
            )
    return Result(NAME)


def _judge(
    realized: Metric, estimated: Metric, bounds, rows: int, worse: str, metrics: dict
) -> Result:
    half_width = (
        bounds.mean - bounds.lower(rows) if worse == "lower" else bounds.upper(rows) - bounds.mean
    )
    gap = estimated.value - realized.value if worse == "lower" else realized.value - estimated.value
    moved = [name for name in DRIFT_VERDICTS if name in metrics and metrics[name].alert]
    suspect = gap > FAR_BEYOND * half_width and not moved
    details = FeedbackDetails(
        realized.name,
        realized.value,
        estimated.value,
        gap,
        half_width,
        FAR_BEYOND,
        moved,
        bool(suspect),
    )
    return Result(NAME, [Metric(FEEDBACK_SUSPECT, float(suspect), flagged=bool(suspect))], details)


def hold_reason(details: FeedbackDetails | None) -> str:
    """Why a window's feedback verdict (its details) holds retraining; "" if it does not."""
    if details is None or not details.suspect:
        return ""
    return (
        f"suspect labels: {details.metric} {details.realized:.4f} is {details.gap:.4f} "
        f"{'below' if details.metric == PAIRS[0][0] else 'above'} its label-free estimate "
        f"{details.estimated:.4f} while the inputs hold (more than {details.far_beyond:g} x "
        f"the band half-width {details.half_width:.4f})"
    )
