"""The monitor's configuration, from the environment (defaults in docs/DESIGN.md)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field


def _env(name: str, default: str) -> str:
    return os.environ.get(name, default)


@dataclass(frozen=True)
class MonitorConfig:
    tracking_uri: str = field(default_factory=lambda: _env("MLFLOW_TRACKING_URI", "http://127.0.0.1:5000"))
    model_name: str = field(default_factory=lambda: _env("MODELWATCH_MODEL_NAME", "credit-default"))
    model_alias: str = field(default_factory=lambda: _env("MODELWATCH_MODEL_ALIAS", "production"))
    store_url: str = field(default_factory=lambda: _env("MODELWATCH_STORE_URL", "sqlite:///mlruns/predictions.db"))
    webhook_token: str = field(default_factory=lambda: _env("MODELWATCH_WEBHOOK_TOKEN", ""))
    # How often a window is evaluated, and what it holds: the newest `window_rows`
    # predictions of the served version, no older than `window_seconds`.
    interval_seconds: float = field(default_factory=lambda: float(_env("MODELWATCH_MONITOR_INTERVAL", "30")))
    window_rows: int = field(default_factory=lambda: int(_env("MODELWATCH_MONITOR_WINDOW_ROWS", "2000")))
    window_seconds: float = field(default_factory=lambda: float(_env("MODELWATCH_MONITOR_WINDOW_SECONDS", "3600")))
    min_window_rows: int = field(default_factory=lambda: int(_env("MODELWATCH_MONITOR_MIN_ROWS", "500")))
    retrain_cooldown_seconds: float = field(default_factory=lambda: float(_env("MODELWATCH_RETRAIN_COOLDOWN", "900")))
    retrain_window: str = field(default_factory=lambda: _env("MODELWATCH_RETRAIN_WINDOW", "24h"))
    log_to_mlflow: bool = field(default_factory=lambda: _env("MODELWATCH_MONITOR_MLFLOW", "1") != "0")
    # Evaluate the model alert rules here, for a machine without Prometheus and Alertmanager
    # (`modelwatch up` turns it on when they are not installed).
    builtin_alerts: bool = field(default_factory=lambda: _env("MODELWATCH_BUILTIN_ALERTS", "0") == "1")
    # Comma lists of feature columns judged per segment and per sensitive group. Unset: the
    # version's tags decide (`modelwatch train/onboard --segments/--sensitive`); set, even
    # empty, they override the tags.
    segments: str | None = field(default_factory=lambda: os.environ.get("MODELWATCH_SEGMENTS"))
    sensitive: str | None = field(default_factory=lambda: os.environ.get("MODELWATCH_SENSITIVE"))
    # The fairness bars; unset: monitoring/calculators/fairness.py's (the four-fifths rule).
    fairness_min_ratio: str | None = field(default_factory=lambda: os.environ.get("MODELWATCH_FAIRNESS_MIN_RATIO"))
    fairness_max_difference: str | None = field(
        default_factory=lambda: os.environ.get("MODELWATCH_FAIRNESS_MAX_DIFFERENCE"))
    # The class a group wants (a loan's "0", no default); unset: the positive class.
    fairness_favourable: str | None = field(default_factory=lambda: os.environ.get("MODELWATCH_FAIRNESS_FAVOURABLE"))

    def fairness(self) -> dict:
        """The fairness settings made here, as the Fairness calculator's arguments."""
        bars = {"min_ratio": self.fairness_min_ratio, "max_difference": self.fairness_max_difference}
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
    wanted = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0", "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
              "MLFLOW_HTTP_REQUEST_TIMEOUT": str(timeout_seconds)}
    for name, value in wanted.items():
        if name not in os.environ:
            os.environ[name] = value
            _SET_BY_FAIL_FAST.add(name)


def child_environment() -> dict[str, str]:
    """This process's environment without what `fail_fast_mlflow` set: a retraining job
    uploads a model and had better ride out a blip with MLflow's own retries."""
    return {k: v for k, v in os.environ.items() if k not in _SET_BY_FAIL_FAST}
