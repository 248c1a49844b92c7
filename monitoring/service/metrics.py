"""The monitor's Prometheus metrics (docs/DESIGN.md, Metrics), in a registry of its own.

Every calculator metric has a gauge named after it (`WINDOW_GAUGES`); a metric with
bounds also gets `modelwatch_metric_value{metric}` and its lower/upper threshold gauges,
which the alert rules compare; a segment's copy of such a metric (label `segment`) gets
`modelwatch_segment_metric_value{segment, metric}` and its thresholds instead, so
`SegmentDegraded` can hold each segment against its own bounds. A metric that was not computed in the last window has no
series: `publish` removes what the window did not set.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge

V = ("model_version",)

# calculator metric -> (help, its labels besides model_version)
WINDOW_GAUGES = {
    "drift_score": ("Per-feature drift statistic of the last window.", ("feature", "test")),
    "dataset_drift_share": ("Share of features that drifted.", ()),
    "multivariate_reconstruction_error": ("PCA reconstruction error of the last window.", ()),
    "prediction_drift_score": ("Drift statistic of the model's outputs.", ()),
    "live_accuracy": ("Accuracy on the window's labelled predictions.", ()),
    "live_f1": ("F1 on the window's labelled predictions (macro for multi-class).", ()),
    "live_roc_auc": ("ROC AUC on the window's labelled predictions.", ()),
    "live_mae": ("Mean absolute error on the window's labelled predictions.", ()),
    "live_rmse": ("Root mean squared error on the window's labelled predictions.", ()),
    "live_mape": ("Mean absolute percentage error on the window's labelled predictions.", ()),
    "estimated_accuracy": ("Accuracy estimated without labels (CBPE).", ()),
    "estimated_f1": ("F1 estimated without labels (CBPE).", ()),
    "estimated_roc_auc": ("ROC AUC estimated without labels (CBPE).", ()),
    "estimated_mae": ("Mean absolute error estimated without labels (DLE).", ()),
    "estimated_rmse": ("Root mean squared error estimated without labels (DLE).", ()),
    "label_coverage_ratio": ("Share of the window's predictions with a label.", ()),
    "concept_drift_detected": (
        "1 if the error stream or realized vs estimated accuracy says the concept moved.",
        (),
    ),
    "feedback_suspect": (
        "1 if the labels disagree with the model far beyond what its reference allows while the "
        "inputs hold (FeedbackSuspect); absent without both realized and estimated metrics.",
        (),
    ),
    "integrity_missing_ratio": ("Share of missing values per feature.", ("feature",)),
    "integrity_out_of_range_ratio": ("Share of values outside the reference range.", ("feature",)),
    "integrity_issue": ("1 per integrity issue found in the last window.", ("kind", "feature")),
    # Segments (monitoring/calculators/segments.py: at most MAX_SEGMENTS per column). Their
    # bounded metrics go to modelwatch_segment_metric_value and its thresholds.
    "segment_rows": ("Predictions of the segment in the last window.", ("segment",)),
    "segment_share": ("Share of the last window's predictions in the segment.", ("segment",)),
    # Fairness (monitoring/calculators/fairness.py), per sensitive attribute and group.
    "fairness_demographic_parity_difference": (
        "Largest minus smallest selection rate between groups.",
        ("attribute",),
    ),
    "fairness_demographic_parity_ratio": (
        "Smallest over largest selection rate between groups.",
        ("attribute",),
    ),
    "fairness_equalized_odds_difference": (
        "The larger of the TPR and FPR differences between groups.",
        ("attribute",),
    ),
    "fairness_accuracy_difference": (
        "Largest minus smallest accuracy between groups (multi-class).",
        ("attribute",),
    ),
    "fairness_error_gap": (
        "Largest minus smallest mean absolute error between groups.",
        ("attribute",),
    ),
    "fairness_error_ratio": (
        "Smallest over largest mean absolute error between groups.",
        ("attribute",),
    ),
    "fairness_group_rows": (
        "Labelled predictions of the group in the last window.",
        ("attribute", "group"),
    ),
    "fairness_group_selection_rate": (
        "Share of the group predicted positive.",
        ("attribute", "group"),
    ),
    "fairness_group_tpr": ("True positive rate of the group.", ("attribute", "group")),
    "fairness_group_fpr": ("False positive rate of the group.", ("attribute", "group")),
    "fairness_group_accuracy": ("Accuracy on the group.", ("attribute", "group")),
    "fairness_group_mae": ("Mean absolute error on the group.", ("attribute", "group")),
    "fairness_gap_exceeded": (
        "1 if the attribute's gaps are past their bars (FairnessGapExceeded).",
        ("attribute",),
    ),
}
# Verdicts exported as 0/1 beside the metric they judge.
VERDICTS = {
    "drift_score": "drift_detected",
    "dataset_drift_share": "dataset_drift_detected",
    "multivariate_reconstruction_error": "multivariate_drift_detected",
}
VERDICT_HELP = {
    "drift_detected": ("1 if the feature drifted in the last window.", ("feature",)),
    "dataset_drift_detected": (
        "1 if the dataset drifted (or its drift share is out of bounds).",
        (),
    ),
    "multivariate_drift_detected": (
        "1 if the PCA reconstruction error left its reference band.",
        (),
    ),
}
NOT_MONITORED_REASONS = ("no_alias", "not_onboarded", "unloadable")


class MonitorMetrics:
    def __init__(self, registry: CollectorRegistry | None = None):
        r = self.registry = registry or CollectorRegistry()
        self.window = {
            name: Gauge(f"modelwatch_{name}", doc, V + labels, registry=r)
            for name, (doc, labels) in (WINDOW_GAUGES | VERDICT_HELP).items()
        }
        self.metric_value = Gauge(
            "modelwatch_metric_value",
            "A bounded metric of the last window, by name.",
            V + ("metric",),
            registry=r,
        )
        self.lower_threshold = Gauge(
            "modelwatch_metric_lower_threshold",
            "Lower bound of the metric, from the reference's chunks.",
            V + ("metric",),
            registry=r,
        )
        self.upper_threshold = Gauge(
            "modelwatch_metric_upper_threshold",
            "Upper bound of the metric, from the reference's chunks.",
            V + ("metric",),
            registry=r,
        )
        S = V + ("segment", "metric")
        self.segment_value = Gauge(
            "modelwatch_segment_metric_value",
            "A bounded metric of one segment in the last window.",
            S,
            registry=r,
        )
        self.segment_lower = Gauge(
            "modelwatch_segment_metric_lower_threshold",
            "Lower bound of the segment's metric, from its reference rows.",
            S,
            registry=r,
        )
        self.segment_upper = Gauge(
            "modelwatch_segment_metric_upper_threshold",
            "Upper bound of the segment's metric, from its reference rows.",
            S,
            registry=r,
        )
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
            ("reason",),
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
            "When a window was last evaluated.",
            registry=r,
        )
        self.run_duration = Gauge(
            "modelwatch_monitor_run_duration_seconds", "How long the last window took.", registry=r
        )
        self.errors = Counter(
            "modelwatch_monitor_errors",
            "Failures talking to a dependency, by what failed.",
            ("dependency",),
            registry=r,
        )
        self.retrains = Counter(
            "modelwatch_retrains", "Retrainings, by what became of them.", ("result",), registry=r
        )
        self.retrain_in_progress = Gauge(
            "modelwatch_retrain_in_progress", "1 while a retraining runs.", registry=r
        )
        self.retrain_last_success = Gauge(
            "modelwatch_retrain_last_success_timestamp_seconds",
            "When a retraining last finished without failing.",
            registry=r,
        )
        for result in ("promoted", "rejected", "needs_review", "failed", "unsupported"):
            self.retrains.labels(result=result)
        for dependency in ("mlflow", "store"):
            self.errors.labels(dependency=dependency)
        for reason in NOT_MONITORED_REASONS:
            self.not_monitored.labels(reason=reason)

    def per_version(self) -> list[Gauge]:
        """The gauges that describe one model version: cleared when the served version changes."""
        return [
            g
            for g in vars(self).values()
            if isinstance(g, Gauge) and "model_version" in g._labelnames
        ] + list(self.window.values())

    def clear_version(self) -> None:
        for gauge in self.per_version():
            gauge.clear()

    def publish(self, version: str, metrics: list) -> None:
        """Set each metric's series, and remove the window gauges' series it did not set."""
        wanted: dict[Gauge, dict[tuple, float]] = {g: {} for g in self.window.values()}
        for g in (
            self.metric_value,
            self.lower_threshold,
            self.upper_threshold,
            *self._segment_gauges(),
        ):
            wanted[g] = {}
        for m in metrics:
            labels = dict(m.labels)
            if "segment" in labels and "segment" not in WINDOW_GAUGES.get(m.name, ("", ()))[1]:
                # a segment's copy of a population metric: not the population's gauge
                self._want_bounded(
                    wanted, self._segment_gauges(), (version, labels["segment"], m.name), m
                )
                continue
            if m.name not in WINDOW_GAUGES:
                continue
            gauge = self.window[m.name]
            wanted[gauge][self._key(gauge, version, labels)] = m.value
            verdict = VERDICTS.get(m.name)
            if verdict:
                g = self.window[verdict]
                wanted[g][self._key(g, version, labels)] = float(m.alert)
            self._want_bounded(
                wanted,
                (self.metric_value, self.lower_threshold, self.upper_threshold),
                (version, m.name),
                m,
            )
        for gauge, series in wanted.items():
            _replace(gauge, series)

    def _segment_gauges(self) -> tuple[Gauge, Gauge, Gauge]:
        return self.segment_value, self.segment_lower, self.segment_upper

    @staticmethod
    def _want_bounded(wanted: dict, gauges: tuple[Gauge, Gauge, Gauge], key: tuple, m) -> None:
        """A metric with bounds: its value and thresholds under `key`, as the rules compare them."""
        if m.lower is None and m.upper is None:
            return
        value, lower, upper = gauges
        wanted[value][key] = m.value
        if m.lower is not None:
            wanted[lower][key] = m.lower
        if m.upper is not None:
            wanted[upper][key] = m.upper

    @staticmethod
    def _key(gauge: Gauge, version: str, labels: dict) -> tuple:
        values = {"model_version": version, **labels}
        return tuple(values.get(name, "") for name in gauge._labelnames)


def _replace(gauge: Gauge, series: dict[tuple, float]) -> None:
    for key in list(gauge._metrics):
        if key not in series:
            gauge.remove(*key)
    for key, value in series.items():
        gauge.labels(*key).set(value)
