"""Golden signals of the serving app (DESIGN.md "Metrics"; prefix `modelwatch_`).

Every app owns a fresh `CollectorRegistry`, so several apps in one process (tests) never
collide. Under gunicorn, `PROMETHEUS_MULTIPROC_DIR` is set (by `serving/gunicorn.conf.py`)
before prometheus_client is imported: values then live in per-process files and
`/metrics` aggregates them with a `MultiProcessCollector`, so totals are exact across
workers.
"""

from __future__ import annotations

import os

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.exposition import choose_encoder

PREFIX = "modelwatch"
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 1.0,
                   2.5, 5.0, 10.0)
SCORE_BUCKETS = tuple(round(0.05 * i, 2) for i in range(1, 20)) + (1.0,)

# input_errors_total{reason}: the complete, bounded set of reasons.
INPUT_ERROR_REASONS = (
    "malformed_json", "bad_shape", "unsupported_media_type", "too_large", "too_many_rows",
    "missing_column", "wrong_type", "not_finite", "model_rejected", "unknown_column", "null",
)


def multiprocess_dir() -> str | None:
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter(
            f"{PREFIX}_http_requests", "HTTP requests answered, by route template.",
            ["endpoint", "method", "status"], registry=r)
        self.request_duration = Histogram(
            f"{PREFIX}_http_request_duration_seconds", "Time to answer a request.",
            ["endpoint"], buckets=LATENCY_BUCKETS, registry=r)
        self.in_flight = Gauge(
            f"{PREFIX}_http_requests_in_flight", "Requests being answered now.",
            registry=r, multiprocess_mode="livesum")
        self.predictions = Counter(
            f"{PREFIX}_predictions", "Rows scored, by model version and predicted class.",
            ["model_version", "predicted_class"], registry=r)
        self.prediction_score = Histogram(
            f"{PREFIX}_prediction_score", "Positive-class probability of scored rows.",
            ["model_version"], buckets=SCORE_BUCKETS, registry=r)
        self.predict_duration = Histogram(
            f"{PREFIX}_model_predict_duration_seconds", "Time in the model's predict call.",
            buckets=LATENCY_BUCKETS, registry=r)
        self.input_errors = Counter(
            f"{PREFIX}_input_errors", "Rejected or suspicious inputs, by reason.",
            ["reason"], registry=r)
        self.model_info = Gauge(
            f"{PREFIX}_model_info", "1 for the model version being served.",
            ["model", "version", "alias"], registry=r, multiprocess_mode="livemax")
        self.reloads = Counter(
            f"{PREFIX}_model_reloads", "Model (re)load attempts, by result.",
            ["result"], registry=r)
        self.fallback_active = Gauge(
            f"{PREFIX}_fallback_active", "1 while the rule-based fallback answers.",
            registry=r, multiprocess_mode="livemax")
        # Beyond DESIGN.md: the prediction log's health.
        self.log_records = Counter(
            f"{PREFIX}_prediction_log_records", "Prediction-log records, by outcome.",
            ["outcome"], registry=r)
        self.log_pruned = Counter(
            f"{PREFIX}_prediction_log_pruned", "Prediction-log rows deleted by the retention, "
            "by table.", ["table"], registry=r)
        self.shadow_predictions = Counter(
            f"{PREFIX}_shadow_predictions", "Rows scored by the shadow challenger.",
            ["model_version"], registry=r)
        # Cost and saturation (serving/resources.py measures the first two in each worker).
        self.cpu_seconds = Counter(
            f"{PREFIX}_process_cpu_seconds", "CPU time of the serving workers, all together.",
            registry=r)
        self.resident_memory = Gauge(
            f"{PREFIX}_process_resident_memory_bytes", "Resident memory of each live worker.",
            registry=r, multiprocess_mode="liveall")
        self.busy_threads = Gauge(
            f"{PREFIX}_worker_busy_threads", "Requests each live worker is answering now.",
            registry=r, multiprocess_mode="liveall")
        self.worker_threads = Gauge(
            f"{PREFIX}_worker_threads", "Size of each live worker's thread pool.",
            registry=r, multiprocess_mode="liveall")
        # Labelled so that a price that is not set has no series at all (an unlabelled
        # gauge would show 0, and the cost rules would price the traffic at nothing).
        self.price = Gauge(
            f"{PREFIX}_price", "Price of a resource for an hour (MODELWATCH_COST_PER_*).",
            ["per"], registry=r, multiprocess_mode="livemax")
        self.cost_budget = Gauge(
            f"{PREFIX}_cost_budget", "What predictions may cost (MODELWATCH_COST_BUDGET_PER_1K).",
            ["per"], registry=r, multiprocess_mode="livemax")
        self.fallback_active.set(0)
        self._info_labels: tuple | None = None

    def set_model(self, model: str, version: str, alias: str, fallback: bool) -> None:
        labels = (model, version, alias)
        if self._info_labels and self._info_labels != labels:
            self.model_info.labels(*self._info_labels).set(0)
        self.model_info.labels(*labels).set(1)
        self._info_labels = labels
        self.fallback_active.set(1 if fallback else 0)

    def set_costs(self, per_cpu_hour: float | None, per_gb_hour: float | None,
                  budget_per_1k: float | None) -> None:
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
            from prometheus_client import multiprocess

            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry)
            return encoder(registry), content_type
        return encoder(self.registry), content_type
