"""The monitor's configuration, from the environment (each variable's type, default and
meaning are in modelwatch/settings.py), built as serving's is (modelwatch.settings's
`Configuration`): `MonitorConfig()` is the defaults, `MonitorConfig.from_env(**overrides)`
the environment's."""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass

from modelwatch.settings import Configuration, field


@dataclass(frozen=True)
class MonitorConfig(Configuration):
    """Settings of one monitor app."""

    tracking_uri: str = field("MLFLOW_TRACKING_URI")
    model_name: str = field("MODELWATCH_MODEL_NAME")
    # The models watched: names, or ("*",) for every onboarded one; None: `model_name`.
    models: tuple[str, ...] | None = field("MODELWATCH_MODELS")
    model_alias: str = field("MODELWATCH_MODEL_ALIAS")
    store_url: str = field("MODELWATCH_STORE_URL")
    webhook_token: str | None = field("MODELWATCH_WEBHOOK_TOKEN")
    # How often a window is evaluated, and what it holds: the newest `window_rows`
    # predictions of the served version, no older than `window_seconds`.
    interval_seconds: float = field("MODELWATCH_MONITOR_INTERVAL")
    window_rows: int = field("MODELWATCH_MONITOR_WINDOW_ROWS")
    window_seconds: float = field("MODELWATCH_MONITOR_WINDOW_SECONDS")
    min_window_rows: int = field("MODELWATCH_MONITOR_MIN_ROWS")
    retrain_cooldown_seconds: float = field("MODELWATCH_RETRAIN_COOLDOWN")
    retrain_window: str = field("MODELWATCH_RETRAIN_WINDOW")
    retrain_min_rows: int = field("MODELWATCH_RETRAIN_MIN_ROWS")
    log_to_mlflow: bool = field("MODELWATCH_MONITOR_MLFLOW")
    # For a machine without Prometheus and Alertmanager (`modelwatch up` turns it on when
    # they are not installed).
    builtin_alerts: bool = field("MODELWATCH_BUILTIN_ALERTS")
    # Unset: the version's tags decide (`modelwatch train/onboard --segments/--sensitive`);
    # set, even empty, they override the tags.
    segments: str | None = field("MODELWATCH_SEGMENTS")
    sensitive: str | None = field("MODELWATCH_SENSITIVE")
    # Unset: monitoring/calculators/fairness.py's bars (the four-fifths rule).
    fairness_min_ratio: float | None = field("MODELWATCH_FAIRNESS_MIN_RATIO")
    fairness_max_difference: float | None = field("MODELWATCH_FAIRNESS_MAX_DIFFERENCE")
    # No default: unset, the positive class.
    fairness_favourable: str | None = field("MODELWATCH_FAIRNESS_FAVOURABLE")

    def for_model(self, name: str) -> MonitorConfig:
        """This configuration for one watched model (each model's loop reads `model_name`)."""
        return dataclasses.replace(self, model_name=name, models=None)

    def fairness(self) -> dict:
        """The fairness settings made here, as the Fairness calculator's arguments."""
        bars = {
            "min_ratio": self.fairness_min_ratio,
            "max_difference": self.fairness_max_difference,
        }
        out = {name: float(value) for name, value in bars.items() if value not in (None, "")}
        return out | ({"favourable": self.fairness_favourable} if self.fairness_favourable else {})


_SET_BY_FAIL_FAST: set[str] = set()


def fail_fast_mlflow(timeout_seconds: int = 10) -> None:
    """Make MLflow calls fail within seconds when the server is down.

    MLflow's client retries a refused connection 7 times with growing back-off (minutes):
    a window would stall that long and `MonitorStale` fire, although the monitor can go on
    with the last known version and keep its MLflow writes for later. Variables the
    operator set win.
    """
    wanted = {
        "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0",
        "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
        "MLFLOW_HTTP_REQUEST_TIMEOUT": str(timeout_seconds),
    }
    for name, value in wanted.items():
        if name not in os.environ:
            os.environ[name] = value
            _SET_BY_FAIL_FAST.add(name)


def child_environment() -> dict[str, str]:
    """This process's environment without what `fail_fast_mlflow` set: a retraining job
    uploads a model and had better ride out a blip with MLflow's own retries."""
    return {k: v for k, v in os.environ.items() if k not in _SET_BY_FAIL_FAST}
