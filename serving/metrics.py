"""Golden signals of the serving app (docs/DESIGN.md "Metrics"; prefix `modelwatch_`).

Every app owns a fresh `CollectorRegistry`, so several apps in one process (tests) never
collide. Under gunicorn, `PROMETHEUS_MULTIPROC_DIR` is set (by `serving/gunicorn.conf.py`)
before prometheus_client is imported: values then live in per-process files and
`/metrics` aggregates them with a `MultiProcessCollector`, so totals are exact across
workers.

Every series carries `model`, the served registered model's name (serving is one model
per deployment): one Prometheus scrapes many deployments, and each series must say
whose it is. The attributes are the families with `model` fixed (`ForModel`, or the one
child of a family labelled by `model` alone), so callers give the other labels only.
"""

from __future__ import annotations

import os

import numpy as np
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, multiprocess
from prometheus_client.exposition import choose_encoder

PREFIX = "modelwatch"
LATENCY_BUCKETS = (
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.075,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
)
SCORE_BUCKETS = tuple(round(0.05 * i, 2) for i in range(1, 20)) + (1.0,)
# A regression's predicted values. Their scale is the model's own (a probability, a price
# in millions, a temperature below zero) and unknown here, so the buckets are the 1-2.5-5
# ladder from 0.01 to 5e6 on both sides of 0: any value falls in a bucket at most 2.5
# times as wide as its lower edge, 56 buckets per version, never a series per value. Enough
# for histogram_quantile and to see the distribution move; the exact values are in the
# prediction log.
_LADDER = tuple(m * 10.0**e for e in range(-2, 7) for m in (1.0, 2.5, 5.0))
VALUE_BUCKETS = tuple(-v for v in reversed(_LADDER)) + (0.0,) + _LADDER
# predictions_total{predicted_class}: past this many distinct classes in a process (a
# pyfunc answering labels of its own making could have any number), "other".
MAX_CLASS_SERIES = 100


# input_errors_total{reason}: the complete, bounded set of reasons.
INPUT_ERROR_REASONS = (
    "malformed_json",
    "bad_shape",
    "unsupported_media_type",
    "too_large",
    "too_many_rows",
    "missing_column",
    "wrong_type",
    "not_finite",
    "model_rejected",
    "unknown_column",
    "null",
    "unstorable_text",
    "invalid_label",
)


def observe_many(histogram_child, values: np.ndarray) -> None:
    """Histogram.observe for each value; NaN is not a value (it would make the sum NaN).

    One call per value: prometheus_client has no public way to add many at once. About
    2-4 us a value (a one-row request pays less than counting per bucket did, which
    reached into the histogram's private buckets; a 10,000-row request 15-40 ms more)."""
    for value in values[~np.isnan(values)].tolist():
        histogram_child.observe(value)


def multiprocess_dir() -> str | None:
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None


class ForModel:
    """A family with its first label, `model`, fixed: `labels(...)` takes the others."""

    def __init__(self, family, model: str):
        self.family, self.model = family, model

    def labels(self, *values: str):
        return self.family.labels(self.model, *values)


class Metrics:
    def __init__(self, model: str) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = ForModel(
            Counter(
                f"{PREFIX}_http_requests",
                "HTTP requests answered, by route template.",
                ["model", "endpoint", "method", "status"],
                registry=r,
            ),
            model,
        )
        self.request_duration = ForModel(
            Histogram(
                f"{PREFIX}_http_request_duration_seconds",
                "Time to answer a request.",
                ["model", "endpoint"],
                buckets=LATENCY_BUCKETS,
                registry=r,
            ),
            model,
        )
        self.in_flight = Gauge(
            f"{PREFIX}_http_requests_in_flight",
            "Requests being answered now.",
            ["model"],
            registry=r,
            multiprocess_mode="livesum",
        ).labels(model)
        self.predictions = ForModel(
            Counter(
                f"{PREFIX}_predictions",
                "Rows scored, by model version and predicted class "
                '(predicted_class="" for a regression: see modelwatch_predicted_value).',
                ["model", "model_version", "predicted_class"],
                registry=r,
            ),
            model,
        )
        self.prediction_score = ForModel(
            Histogram(
                f"{PREFIX}_prediction_score",
                "Score of scored rows: P(positive class) if binary, "
                "P(predicted class) if multiclass.",
                ["model", "model_version"],
                buckets=SCORE_BUCKETS,
                registry=r,
            ),
            model,
        )
        self.predicted_value = ForModel(
            Histogram(
                f"{PREFIX}_predicted_value",
                "Values a regression model predicted.",
                ["model", "model_version"],
                buckets=VALUE_BUCKETS,
                registry=r,
            ),
            model,
        )
        self.predict_duration = Histogram(
            f"{PREFIX}_model_predict_duration_seconds",
            "Time in the model's predict call.",
            ["model"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        ).labels(model)
        self.input_errors = ForModel(
            Counter(
                f"{PREFIX}_input_errors",
                "Rejected or suspicious inputs, by reason.",
                ["model", "reason"],
                registry=r,
            ),
            model,
        )
        self.model_info = Gauge(
            f"{PREFIX}_model_info",
            "1 for the model version being served.",
            ["model", "version", "alias"],
            registry=r,
            multiprocess_mode="livemax",
        )
        self.reloads = ForModel(
            Counter(
                f"{PREFIX}_model_reloads",
                "Model (re)load attempts, by result.",
                ["model", "result"],
                registry=r,
            ),
            model,
        )
        self.fallback_active = Gauge(
            f"{PREFIX}_fallback_active",
            "1 while the rule-based fallback answers.",
            ["model"],
            registry=r,
            multiprocess_mode="livemax",
        ).labels(model)
        # Beyond docs/DESIGN.md: the prediction log's health.
        self.log_records = ForModel(
            Counter(
                f"{PREFIX}_prediction_log_records",
                "Prediction-log records, by outcome.",
                ["model", "outcome"],
                registry=r,
            ),
            model,
        )
        self.log_pruned = ForModel(
            Counter(
                f"{PREFIX}_prediction_log_pruned",
                "Prediction-log rows deleted by the retention, by table.",
                ["model", "table"],
                registry=r,
            ),
            model,
        )
        self.shadow_predictions = ForModel(
            Counter(
                f"{PREFIX}_shadow_predictions",
                "Rows scored by the shadow challenger.",
                ["model", "model_version"],
                registry=r,
            ),
            model,
        )
        # Cost and saturation (serving/resources.py measures the first two in each worker).
        self.cpu_seconds = Counter(
            f"{PREFIX}_process_cpu_seconds",
            "CPU time of the serving workers, all together.",
            ["model"],
            registry=r,
        ).labels(model)
        self.resident_memory = Gauge(
            f"{PREFIX}_process_resident_memory_bytes",
            "Resident memory of each live worker.",
            ["model"],
            registry=r,
            multiprocess_mode="liveall",
        ).labels(model)
        self.busy_threads = Gauge(
            f"{PREFIX}_worker_busy_threads",
            "Requests each live worker is answering now.",
            ["model"],
            registry=r,
            multiprocess_mode="liveall",
        ).labels(model)
        self.worker_threads = Gauge(
            f"{PREFIX}_worker_threads",
            "Size of each live worker's thread pool.",
            ["model"],
            registry=r,
            multiprocess_mode="liveall",
        ).labels(model)
        # Labelled so that a price that is not set has no series at all (an unlabelled
        # gauge would show 0, and the cost rules would price the traffic at nothing).
        self.price = ForModel(
            Gauge(
                f"{PREFIX}_price",
                "Price of a resource for an hour (MODELWATCH_COST_PER_*).",
                ["model", "per"],
                registry=r,
                multiprocess_mode="livemax",
            ),
            model,
        )
        self.cost_budget = ForModel(
            Gauge(
                f"{PREFIX}_cost_budget",
                "What predictions may cost (MODELWATCH_COST_BUDGET_PER_1K).",
                ["model", "per"],
                registry=r,
                multiprocess_mode="livemax",
            ),
            model,
        )
        self.fallback_active.set(0)
        self._info_labels: tuple | None = None
        self._classes_seen: set[str] = set()

    def set_model(self, model: str, version: str, alias: str, fallback: bool) -> None:
        labels = (model, version, alias)
        if self._info_labels and self._info_labels != labels:
            self.model_info.labels(*self._info_labels).set(0)
        self.model_info.labels(*labels).set(1)
        self._info_labels = labels
        self.fallback_active.set(1 if fallback else 0)

    def count_predictions(self, version: str, regression: bool, prediction) -> None:
        """predictions_total, and the histogram of scores (classifiers) or of values."""
        if regression:
            self.predictions.labels(version, "").inc(len(prediction.labels))
            observe_many(
                self.predicted_value.labels(version), np.asarray(prediction.labels, dtype="float64")
            )
            return
        classes, counts = np.unique(np.asarray(prediction.labels).astype(str), return_counts=True)
        for cls, count in zip(classes, counts):
            self.predictions.labels(version, self._class_label(cls)).inc(int(count))
        if prediction.scores is not None:
            observe_many(
                self.prediction_score.labels(version),
                np.asarray(prediction.scores, dtype="float64"),
            )

    def _class_label(self, cls: str) -> str:
        if cls not in self._classes_seen and len(self._classes_seen) >= MAX_CLASS_SERIES:
            return "other"
        self._classes_seen.add(cls)
        return cls

    def count_input_errors(self, reasons) -> None:
        for reason in reasons:
            self.input_errors.labels(reason).inc()

    def set_costs(
        self, per_cpu_hour: float | None, per_gb_hour: float | None, budget_per_1k: float | None
    ) -> None:
        for per, value in (("cpu_hour", per_cpu_hour), ("gb_hour", per_gb_hour)):
            if value is not None:
                self.price.labels(per).set(value)
        if budget_per_1k is not None:
            self.cost_budget.labels("1k_predictions").set(budget_per_1k)

    def exposition(self, accept: str = "") -> tuple[bytes, str]:
        """The metrics in the format the `Accept` header asks for (OpenMetrics or the
        Prometheus text format), and prometheus_client's Content-Type for it."""
        encoder, content_type = choose_encoder(accept)
        if multiprocess_dir():
            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry)
            return encoder(registry), content_type
        return encoder(self.registry), content_type
