"""The monitor service: windows of the prediction log -> signals -> Prometheus and MLflow,
and the alert webhook that turns degradation into a retraining."""
