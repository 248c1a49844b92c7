"""The monitor's Prometheus metrics (DESIGN.md, Metrics), in a registry of its own."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge

V = ("model_version",)


class MonitorMetrics:
    def __init__(self, registry: CollectorRegistry | None = None):
        r = self.registry = registry or CollectorRegistry()
        self.drift_score = Gauge("modelwatch_drift_score", "Per-feature drift statistic of the last window.", V + ("feature", "test"), registry=r)
        self.drift_detected = Gauge("modelwatch_drift_detected", "1 if the feature drifted in the last window.", V + ("feature",), registry=r)
        self.dataset_drift_share = Gauge("modelwatch_dataset_drift_share", "Share of features that drifted.", V, registry=r)
        self.dataset_drift_detected = Gauge("modelwatch_dataset_drift_detected", "1 if the dataset drifted.", V, registry=r)
        self.multivariate_drift_detected = Gauge("modelwatch_multivariate_drift_detected", "1 if the PCA reconstruction error left its reference band.", V, registry=r)
        self.prediction_drift_score = Gauge("modelwatch_prediction_drift_score", "Drift statistic of the model's scores.", V, registry=r)
        self.live_accuracy = Gauge("modelwatch_live_accuracy", "Accuracy on the window's labelled predictions.", V, registry=r)
        self.live_f1 = Gauge("modelwatch_live_f1", "F1 on the window's labelled predictions.", V, registry=r)
        self.live_roc_auc = Gauge("modelwatch_live_roc_auc", "ROC AUC on the window's labelled predictions.", V, registry=r)
        self.label_coverage_ratio = Gauge("modelwatch_label_coverage_ratio", "Share of the window's predictions with a label.", V, registry=r)
        self.estimated_accuracy = Gauge("modelwatch_estimated_accuracy", "Accuracy estimated without labels (CBPE).", V, registry=r)
        self.reference_accuracy = Gauge("modelwatch_reference_accuracy", "Accuracy on the training holdout: the bar live accuracy is held to.", V, registry=r)
        self.concept_drift_detected = Gauge("modelwatch_concept_drift_detected", "1 if the error stream or realized vs estimated accuracy says the concept moved.", V, registry=r)
        self.integrity_missing_ratio = Gauge("modelwatch_integrity_missing_ratio", "Share of missing values per feature.", V + ("feature",), registry=r)
        self.integrity_out_of_range_ratio = Gauge("modelwatch_integrity_out_of_range_ratio", "Share of values outside the reference range.", V + ("feature",), registry=r)
        self.integrity_issue = Gauge("modelwatch_integrity_issue", "1 per integrity issue found in the last window.", V + ("kind", "feature"), registry=r)
        self.window_rows = Gauge("modelwatch_monitor_window_rows", "Predictions in the last window.", V, registry=r)
        self.last_run = Gauge("modelwatch_monitor_last_run_timestamp_seconds", "When a window was last evaluated.", registry=r)
        self.run_duration = Gauge("modelwatch_monitor_run_duration_seconds", "How long the last window took.", registry=r)
        self.errors = Counter("modelwatch_monitor_errors", "Failures talking to a dependency, by what failed.", ("dependency",), registry=r)
        self.retrains = Counter("modelwatch_retrains", "Retrainings, by what became of them.", ("result",), registry=r)
        self.retrain_in_progress = Gauge("modelwatch_retrain_in_progress", "1 while a retraining runs.", registry=r)
        self.retrain_last_success = Gauge("modelwatch_retrain_last_success_timestamp_seconds", "When a retraining last finished without failing.", registry=r)
        for result in ("promoted", "rejected", "failed"):
            self.retrains.labels(result=result)
        for dependency in ("mlflow", "store"):
            self.errors.labels(dependency=dependency)

    def per_version(self) -> list[Gauge]:
        """The gauges that describe one model version: cleared when the served version changes."""
        return [g for g in vars(self).values() if isinstance(g, Gauge) and "model_version" in g._labelnames]
