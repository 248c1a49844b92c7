"""The monitor's Prometheus metrics (docs/DESIGN.md, Metrics), in a registry of its own.

The last window's metrics are exported by `WindowCollector`, a custom collector built
from the metrics' declarations (`MetricDeclaration`): each metric has a gauge named after
it with the declared help and labels, and its 0/1 verdict beside it where it declares
one; a metric with bounds also gets `modelwatch_metric_value{metric}` and its lower/upper
threshold gauges, which the alert rules compare; a segment's copy of such a metric (label
`segment`, which its declaration does not have) gets
`modelwatch_segment_metric_value{segment, metric}` and its thresholds instead, so
`SegmentDegraded` can hold each segment against its own bounds. A metric that was not
computed in the last window has no series. The other gauges and counters are ordinary
prometheus_client objects.

Every series carries `model`, the registered model's name: one monitor watches several
models into one registry (`MonitorMetrics`), each through its own view of it
(`MonitorMetrics.model(name)`, a `ModelMetrics`), and forgetting one model's version
clears that model's series only.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from functools import cached_property

from modelwatch.monitoring.calculators.base import Metric, MetricDeclaration
from modelwatch.monitoring.calculators.catalog import DECLARATIONS
from modelwatch.monitoring.service.cost import WindowCost
from prometheus_client import CollectorRegistry, Counter, Gauge
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

M = ("model",)
V = ("model", "model_version")
PREFIX = "modelwatch_"
# (name, help, labels besides model_version) of the bounded metrics' value and thresholds
BOUNDED = (
    ("metric_value", "A bounded metric of the last window, by name.", ("metric",)),
    (
        "metric_lower_threshold",
        "Lower bound of the metric, from the reference's chunks.",
        ("metric",),
    ),
    (
        "metric_upper_threshold",
        "Upper bound of the metric, from the reference's chunks.",
        ("metric",),
    ),
)
SEGMENT_BOUNDED = (
    (
        "segment_metric_value",
        "A bounded metric of one segment in the last window.",
        ("segment", "metric"),
    ),
    (
        "segment_metric_lower_threshold",
        "Lower bound of the segment's metric, from its reference rows.",
        ("segment", "metric"),
    ),
    (
        "segment_metric_upper_threshold",
        "Upper bound of the segment's metric, from its reference rows.",
        ("segment", "metric"),
    ),
)
NOT_MONITORED_REASONS = ("no_alias", "not_onboarded", "unloadable")


class WindowCollector(Collector):
    """The last window's metrics as Prometheus families, from their declarations.

    Every declared metric's family is described (and exposed without series until a
    window computes it); a metric of a calculator outside `declarations` is exported from
    the declaration it carries.
    """

    def __init__(self, declarations: Iterable[MetricDeclaration] = DECLARATIONS):
        self.declarations = {d.name: d for d in declarations}
        # model -> (version, metrics) of its last window
        self.last: dict[str, tuple[str, tuple[Metric, ...]]] = {}

    def set(self, model: str, version: str, metrics: Iterable[Metric]) -> None:
        # one assignment of a new dict: a scrape sees one window of each model
        self.last = self.last | {model: (version, tuple(metrics))}

    def clear(self, model: str) -> None:
        self.last = {m: window for m, window in self.last.items() if m != model}

    def describe(self) -> Iterator[GaugeMetricFamily]:
        return iter(_families(self.declarations.values()).values())

    def collect(self) -> Iterator[GaugeMetricFamily]:
        last = self.last
        declared = dict(self.declarations)
        for _, metrics in last.values():
            for m in metrics:
                declared.setdefault(m.name, m.declaration)
        families = _families(declared.values())
        series: dict[str, dict[tuple, float]] = {name: {} for name in families}
        for model, (version, metrics) in last.items():
            for m in metrics:
                _add(series, (model, version), m)
        for name, family in families.items():
            for key, value in series[name].items():
                family.add_metric(list(key), value)
        return iter(families.values())


def _families(declarations: Iterable[MetricDeclaration]) -> dict[str, GaugeMetricFamily]:
    """An empty family per declared metric and verdict, and the bounded metrics' ones."""
    found = {}
    for d in declarations:
        found[PREFIX + d.name] = GaugeMetricFamily(PREFIX + d.name, d.help, labels=V + d.labels)
        if d.verdict:
            v = d.verdict
            found[PREFIX + v.name] = GaugeMetricFamily(PREFIX + v.name, v.help, labels=V + v.labels)
    for name, doc, labels in BOUNDED + SEGMENT_BOUNDED:
        found[PREFIX + name] = GaugeMetricFamily(PREFIX + name, doc, labels=V + labels)
    return found


def _add(series: dict[str, dict[tuple, float]], model_version: tuple, m: Metric) -> None:
    """`m`'s series: its gauge and verdict, or a segment's copy's; and its bounds.
    `model_version` is the (model, version) every key starts with."""
    d, labels = m.declaration, dict(m.labels)
    if "segment" in labels and "segment" not in d.labels:
        # a segment's copy of a population metric: not the population's gauge
        _add_bounded(series, SEGMENT_BOUNDED, (*model_version, labels["segment"], m.name), m)
        return
    series[PREFIX + d.name][(*model_version, *(labels.get(k, "") for k in d.labels))] = m.value
    if d.verdict:
        key = (*model_version, *(labels.get(k, "") for k in d.verdict.labels))
        series[PREFIX + d.verdict.name][key] = float(m.alert)
    _add_bounded(series, BOUNDED, (*model_version, m.name), m)


def _add_bounded(series: dict, families: tuple, key: tuple, m: Metric) -> None:
    """A metric with bounds: its value and thresholds under `key`, as the rules compare them."""
    if m.lower is None and m.upper is None:
        return
    value, lower, upper = (PREFIX + name for name, _, _ in families)
    series[value][key] = m.value
    if m.lower is not None:
        series[lower][key] = m.lower
    if m.upper is not None:
        series[upper][key] = m.upper


class MonitorMetrics:
    """The monitor's families, shared by the models it watches (one registry, one
    /metrics); each model writes its series through `model(name)`."""

    def __init__(self, registry: CollectorRegistry | None = None):
        r = self.registry = registry or CollectorRegistry()
        self.window = WindowCollector()
        r.register(self.window)
        self.reference_accuracy = Gauge(
            "modelwatch_reference_accuracy", "Accuracy on the version's reference.", V, registry=r
        )
        self.model_monitored = Gauge(
            "modelwatch_model_monitored",
            "1 while the alias's version is judged, 0 while it cannot be.",
            V,
            registry=r,
        )
        self.not_monitored = Counter(
            "modelwatch_monitor_not_monitored",
            "Intervals in which the served version could not be judged, by why.",
            (*M, "reason"),
            registry=r,
        )
        self.window_rows = Gauge(
            "modelwatch_monitor_window_rows", "Predictions in the last window.", V, registry=r
        )
        self.window_new_rows = Gauge(
            "modelwatch_monitor_window_new_rows",
            "Predictions of the last window not in the window judged before it; "
            "0 while no window is judged (no new rows, or too few).",
            V,
            registry=r,
        )
        self.newest_row = Gauge(
            "modelwatch_monitor_newest_row_timestamp_seconds",
            "Scoring time of the newest logged prediction the monitor has seen.",
            V,
            registry=r,
        )
        self.last_run = Gauge(
            "modelwatch_monitor_last_run_timestamp_seconds",
            "When a window of the model was last evaluated.",
            M,
            registry=r,
        )
        self.run_duration = Gauge(
            "modelwatch_monitor_run_duration_seconds",
            "How long the model's last window took.",
            M,
            registry=r,
        )
        self.errors = Counter(
            "modelwatch_monitor_errors",
            "Failures talking to a dependency, by what failed.",
            (*M, "dependency"),
            registry=r,
        )
        self.retrains = Counter(
            "modelwatch_retrains",
            "Retrainings, by what became of them.",
            (*M, "result"),
            registry=r,
        )
        self.retrain_in_progress = Gauge(
            "modelwatch_retrain_in_progress", "1 while a retraining runs.", M, registry=r
        )
        self.retrain_last_success = Gauge(
            "modelwatch_retrain_last_success_timestamp_seconds",
            "When a retraining last finished without failing.",
            M,
            registry=r,
        )

    @cached_property
    def window_cost(self) -> WindowCost:
        """Registered by the first model that measures a window (as its loop starts)."""
        return WindowCost(self.registry)

    def model(self, name: str) -> ModelMetrics:
        return ModelMetrics(self, name)


class Bound:
    """A labelled family with `model` fixed: `labels(...)` takes the other labels, by
    name or in order, and `clear()` removes the series this view made, no other model's."""

    def __init__(self, family, labelnames: tuple[str, ...], model: str):
        self.family, self.model = family, model
        self.labelnames = labelnames[1:]  # after "model"
        self.made: set[tuple[str, ...]] = set()

    def labels(self, *values: str, **named: str):
        values = values or tuple(named[name] for name in self.labelnames)
        key = (self.model, *(str(v) for v in values))
        self.made.add(key)
        return self.family.labels(*key)

    def clear(self) -> None:
        for key in self.made:
            self.family.remove(*key)
        self.made.clear()


class ModelMetrics:
    """One model's view of the shared families: what its monitor loop writes."""

    def __init__(self, shared: MonitorMetrics, name: str):
        self.name, self.registry, self.window = name, shared.registry, shared.window
        self.shared = shared
        self.reference_accuracy = Bound(shared.reference_accuracy, V, name)
        self.model_monitored = Bound(shared.model_monitored, V, name)
        self.window_rows = Bound(shared.window_rows, V, name)
        self.window_new_rows = Bound(shared.window_new_rows, V, name)
        self.newest_row = Bound(shared.newest_row, V, name)
        self.not_monitored = Bound(shared.not_monitored, (*M, "reason"), name)
        self.errors = Bound(shared.errors, (*M, "dependency"), name)
        self.retrains = Bound(shared.retrains, (*M, "result"), name)
        self.last_run = shared.last_run.labels(name)
        self.run_duration = shared.run_duration.labels(name)
        self.retrain_in_progress = shared.retrain_in_progress.labels(name)
        self.retrain_last_success = shared.retrain_last_success.labels(name)
        for result in ("promoted", "rejected", "needs_review", "failed", "unsupported"):
            self.retrains.labels(result=result)
        for dependency in ("mlflow", "store"):
            self.errors.labels(dependency=dependency)
        for reason in NOT_MONITORED_REASONS:
            self.not_monitored.labels(reason=reason)

    def per_version(self) -> tuple[Bound, ...]:
        """The gauges that describe one model version (besides the window's metrics)."""
        return (
            self.reference_accuracy,
            self.model_monitored,
            self.window_rows,
            self.window_new_rows,
            self.newest_row,
        )

    def clear_version(self) -> None:
        """Forget the served version's series (of this model only): cleared when the
        served version changes."""
        self.window.clear(self.name)
        for gauge in self.per_version():
            gauge.clear()

    def publish(self, version: str, metrics: list[Metric]) -> None:
        """The window's metrics replace the last window's: what it did not compute has no series."""
        self.window.set(self.name, version, metrics)

    def measured(self, work):
        """`work()`, its CPU and cost recorded as this model's window's."""
        return self.shared.window_cost.measured(work, self.name)
