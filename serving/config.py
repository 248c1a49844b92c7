"""Serving configuration: the environment (modelwatch/settings.py), overridable per app.

Every setting has an environment variable; `create_app(config)` takes a mapping of
overrides (keys are the lower-case field names below) so that tests never need to touch
`os.environ`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from modelwatch.settings import Configuration, duration_seconds, field, read

DAY = 86400.0


@dataclass(frozen=True)
class Config(Configuration):
    """Settings of one serving app; each field's variable, type, default and meaning are in
    modelwatch/settings.py. `Config()` is the defaults; `from_env` reads the environment."""

    tracking_uri: str = field("MLFLOW_TRACKING_URI")
    registry_uri: str | None = field("MLFLOW_REGISTRY_URI")
    model_name: str = field("MODELWATCH_MODEL_NAME")
    model_alias: str = field("MODELWATCH_MODEL_ALIAS")
    challenger_alias: str = field("MODELWATCH_CHALLENGER_ALIAS")
    shadow: bool = field("MODELWATCH_SHADOW")
    reload_interval: float = field("MODELWATCH_RELOAD_INTERVAL")
    # the last good version of each alias
    model_cache_dir: str = field("MODELWATCH_MODEL_CACHE_DIR")
    registry_timeout: int = field("MODELWATCH_REGISTRY_TIMEOUT")
    # Sets MLFLOW_ALLOW_PICKLE_DESERIALIZATION to true, or false when off, unless that is
    # set explicitly.
    trust_registry: bool = field("MODELWATCH_TRUST_REGISTRY")
    # A model saved by an older skops, which trusted more by default, names them in its
    # load error.
    skops_trusted_types: tuple[str, ...] = field("MODELWATCH_SKOPS_TRUSTED_TYPES")
    # Same answers, checked at load; the model's part of a one-row request takes about
    # 0.1 ms of CPU instead of 5 ms.
    compile_model: bool = field("MODELWATCH_COMPILE_MODEL")
    store_url: str = field("MODELWATCH_STORE_URL")
    spill_dir: str = field("MODELWATCH_SPILL_DIR")
    log_batch_size: int = field("MODELWATCH_LOG_BATCH_SIZE")
    store_retry_interval: float = field("MODELWATCH_STORE_RETRY")
    # The monitor reads the last hour and a retraining the last day, and a shorter
    # retention is refused. 30 days leaves room above those: labels that arrive weeks late
    # still find their prediction (feedback for a deleted one is "unknown"), a retraining
    # window can be widened to a week or two, and an incident can be looked back on. About
    # 500 bytes a row: size the disk for it.
    log_retention_days: float = field("MODELWATCH_LOG_RETENTION_DAYS")
    log_prune_interval: float = field("MODELWATCH_LOG_PRUNE_INTERVAL")
    admin_token: str | None = field("MODELWATCH_ADMIN_TOKEN")
    feedback_token: str | None = field("MODELWATCH_FEEDBACK_TOKEN")
    mlflow_webhook_secret: str | None = field("MODELWATCH_MLFLOW_WEBHOOK_SECRET")
    max_body_bytes: int = field("MODELWATCH_MAX_BODY_BYTES")
    max_rows: int = field("MODELWATCH_MAX_ROWS")
    fallback: str | None = field("MODELWATCH_FALLBACK")
    feedback_wait: float = field("MODELWATCH_FEEDBACK_WAIT")
    # Exported for the cost recording rules and CostOverBudget; unset, no cost is computed
    # (the series are absent, never 0).
    cost_per_cpu_hour: float | None = field("MODELWATCH_COST_PER_CPU_HOUR")
    cost_per_gb_hour: float | None = field("MODELWATCH_COST_PER_GB_HOUR")
    cost_budget_per_1k: float | None = field("MODELWATCH_COST_BUDGET_PER_1K")
    resource_interval: float = field("MODELWATCH_RESOURCE_INTERVAL")
    # Start the model loader/poller and the log writer threads (tests may turn it off).
    background: bool = True

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides) -> Config:
        config = super().from_env(env, **overrides)
        check_retention(config.log_retention_days, env)
        return config

    @property
    def registry(self) -> str:
        return self.registry_uri or self.tracking_uri


def check_retention(days: float, env: Mapping[str, str] | None) -> None:
    """Refuse a retention that would delete rows the monitor's window or a retraining
    reads. Their settings are read from the same environment: a monitor configured
    elsewhere is not seen."""
    if days < 0:
        raise ValueError(f"MODELWATCH_LOG_RETENTION_DAYS={days:g}: use 0 to keep everything")
    if days == 0:
        return
    windows = {
        "MODELWATCH_MONITOR_WINDOW_SECONDS": read("MODELWATCH_MONITOR_WINDOW_SECONDS", env),
        "MODELWATCH_RETRAIN_WINDOW": duration_seconds(read("MODELWATCH_RETRAIN_WINDOW", env)),
    }
    for name, seconds in windows.items():
        if days * DAY < seconds:
            raise ValueError(
                f"MODELWATCH_LOG_RETENTION_DAYS={days:g} would delete rows that "
                f"{name} ({seconds / DAY:g} days) still reads"
            )
