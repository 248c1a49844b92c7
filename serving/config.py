"""Serving configuration: the environment with docs/DESIGN.md's defaults, overridable per app.

Every setting has an environment variable; `create_app(config)` takes a mapping of
overrides (keys are the lower-case field names below) so that tests never need to touch
`os.environ`.
"""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass

from modelwatch.serving.store.base import to_epoch

MiB = 1024 * 1024
DAY = 86400.0


def _env_bool(value: str | None, default: bool) -> bool:
    if value is None or value.strip() == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


@dataclass(frozen=True)
class Config:
    """Settings of one serving app. Field -> environment variable (default)."""

    # MLFLOW_TRACKING_URI (http://127.0.0.1:5000); MLFLOW_REGISTRY_URI (same as tracking)
    tracking_uri: str = "http://127.0.0.1:5000"
    registry_uri: str | None = None
    # MODELWATCH_MODEL_NAME (credit-default), MODELWATCH_MODEL_ALIAS (production)
    model_name: str = "credit-default"
    model_alias: str = "production"
    # MODELWATCH_CHALLENGER_ALIAS (challenger); MODELWATCH_SHADOW (off)
    challenger_alias: str = "challenger"
    shadow: bool = False
    # MODELWATCH_RELOAD_INTERVAL seconds between alias polls (10); 0 disables polling
    reload_interval: float = 10.0
    # MODELWATCH_MODEL_CACHE_DIR (mlruns/model-cache): last good version of each alias
    model_cache_dir: str = "mlruns/model-cache"
    # MODELWATCH_REGISTRY_TIMEOUT seconds for one registry call (5)
    registry_timeout: int = 5
    # MODELWATCH_TRUST_REGISTRY (on): allow MLflow to deserialize the registry's models
    # (sets MLFLOW_ALLOW_PICKLE_DESERIALIZATION to true, or false when off, unless that is
    # set explicitly)
    trust_registry: bool = True
    # MODELWATCH_SKOPS_TRUSTED_TYPES (none): comma-separated types a skops-saved model may
    # hold besides those skops and the model's MLmodel trust (a model saved by an older
    # skops, which trusted more by default, names them in its load error)
    skops_trusted_types: tuple[str, ...] = ()
    # MODELWATCH_COMPILE_MODEL (on): score sklearn pipelines with serving/compiled where
    # they compile (same answers, checked at load; the model's part of a one-row request
    # takes about 0.1 ms of CPU instead of 5 ms)
    compile_model: bool = True
    # MODELWATCH_STORE_URL (sqlite:///mlruns/predictions.db)
    store_url: str = "sqlite:///mlruns/predictions.db"
    # MODELWATCH_SPILL_DIR (mlruns/spill): JSON lines kept while the store is down
    spill_dir: str = "mlruns/spill"
    # MODELWATCH_LOG_BATCH_SIZE rows per store write (1000)
    log_batch_size: int = 1000
    # MODELWATCH_STORE_RETRY seconds between attempts while the store is down (1)
    store_retry_interval: float = 1.0
    # MODELWATCH_LOG_RETENTION_DAYS (30): predictions older than this are deleted, with
    # their feedback and shadow rows; 0 keeps them forever. The monitor reads the last hour
    # and a retraining the last day (MODELWATCH_MONITOR_WINDOW_SECONDS,
    # MODELWATCH_RETRAIN_WINDOW), and a shorter retention is refused. 30 days leaves room
    # above those: labels that arrive weeks late still find their prediction (feedback for
    # a deleted one is "unknown"), a retraining window can be widened to a week or two, and
    # an incident can be looked back on. About 500 bytes a row: size the disk for it.
    log_retention_days: float = 30.0
    # MODELWATCH_LOG_PRUNE_INTERVAL seconds between prunes of expired rows (300)
    log_prune_interval: float = 300.0
    # MODELWATCH_ADMIN_TOKEN (none: admin endpoints open, as in dev)
    admin_token: str | None = None
    # MODELWATCH_MLFLOW_WEBHOOK_SECRET (none: POST /webhooks/mlflow refuses every delivery):
    # the secret of the MLflow registry webhook that tells serving an alias moved
    mlflow_webhook_secret: str | None = None
    # MODELWATCH_MAX_BODY_BYTES (10 MiB), MODELWATCH_MAX_ROWS (10000)
    max_body_bytes: int = 10 * MiB
    max_rows: int = 10_000
    # MODELWATCH_FALLBACK: "" (none), "default" (serving/fallback_rules.yaml) or a path
    fallback: str | None = None
    # MODELWATCH_FEEDBACK_WAIT seconds /feedback waits for ids still in other workers'
    # write queues before calling them unknown (1.0)
    feedback_wait: float = 1.0
    # MODELWATCH_COST_PER_CPU_HOUR, MODELWATCH_COST_PER_GB_HOUR (none): the price of a CPU
    # core for an hour and of a GB (2**30 bytes) of resident memory for an hour, in any one
    # currency; MODELWATCH_COST_BUDGET_PER_1K (none): what 1,000 predictions may cost in it.
    # Exported for the cost recording rules and CostOverBudget; unset, no cost is computed
    # (the series are absent, never 0).
    cost_per_cpu_hour: float | None = None
    cost_per_gb_hour: float | None = None
    cost_budget_per_1k: float | None = None
    # MODELWATCH_RESOURCE_INTERVAL seconds between a worker's readings of its own CPU time
    # and resident memory (1)
    resource_interval: float = 1.0
    # Start the model loader/poller and the log writer threads (tests may turn it off).
    background: bool = True

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides) -> "Config":
        env = os.environ if env is None else env

        def get(name: str) -> str | None:
            value = env.get(name)
            return value if value not in (None, "") else None

        values: dict = {}
        simple = {
            "tracking_uri": ("MLFLOW_TRACKING_URI", str),
            "registry_uri": ("MLFLOW_REGISTRY_URI", str),
            "model_name": ("MODELWATCH_MODEL_NAME", str),
            "model_alias": ("MODELWATCH_MODEL_ALIAS", str),
            "challenger_alias": ("MODELWATCH_CHALLENGER_ALIAS", str),
            "reload_interval": ("MODELWATCH_RELOAD_INTERVAL", float),
            "model_cache_dir": ("MODELWATCH_MODEL_CACHE_DIR", str),
            "registry_timeout": ("MODELWATCH_REGISTRY_TIMEOUT", int),
            "store_url": ("MODELWATCH_STORE_URL", str),
            "spill_dir": ("MODELWATCH_SPILL_DIR", str),
            "log_batch_size": ("MODELWATCH_LOG_BATCH_SIZE", int),
            "store_retry_interval": ("MODELWATCH_STORE_RETRY", float),
            "log_retention_days": ("MODELWATCH_LOG_RETENTION_DAYS", float),
            "log_prune_interval": ("MODELWATCH_LOG_PRUNE_INTERVAL", float),
            "admin_token": ("MODELWATCH_ADMIN_TOKEN", str),
            "mlflow_webhook_secret": ("MODELWATCH_MLFLOW_WEBHOOK_SECRET", str),
            "max_body_bytes": ("MODELWATCH_MAX_BODY_BYTES", int),
            "max_rows": ("MODELWATCH_MAX_ROWS", int),
            "fallback": ("MODELWATCH_FALLBACK", str),
            "feedback_wait": ("MODELWATCH_FEEDBACK_WAIT", float),
            "cost_per_cpu_hour": ("MODELWATCH_COST_PER_CPU_HOUR", float),
            "cost_per_gb_hour": ("MODELWATCH_COST_PER_GB_HOUR", float),
            "cost_budget_per_1k": ("MODELWATCH_COST_BUDGET_PER_1K", float),
            "resource_interval": ("MODELWATCH_RESOURCE_INTERVAL", float),
        }
        for key, (var, cast) in simple.items():
            raw = get(var)
            if raw is not None:
                try:
                    values[key] = cast(raw)
                except ValueError as exc:
                    raise ValueError(f"{var}={raw!r} is not a valid {cast.__name__}") from exc
        values["shadow"] = _env_bool(env.get("MODELWATCH_SHADOW"), False)
        values["trust_registry"] = _env_bool(env.get("MODELWATCH_TRUST_REGISTRY"), True)
        values["compile_model"] = _env_bool(env.get("MODELWATCH_COMPILE_MODEL"), True)
        trusted = get("MODELWATCH_SKOPS_TRUSTED_TYPES")
        if trusted is not None:
            values["skops_trusted_types"] = tuple(t.strip() for t in trusted.split(",")
                                                  if t.strip())
        values.update(overrides)
        config = cls(**values)
        check_retention(config.log_retention_days, env)
        return config

    @classmethod
    def resolve(cls, config: "Config | Mapping | None") -> "Config":
        """`create_app`'s argument: None (environment), a Config, or a mapping of overrides."""
        if config is None:
            return cls.from_env()
        if isinstance(config, Config):
            return config
        known = {f.name for f in dataclasses.fields(cls)}
        overrides = {k.lower(): v for k, v in dict(config).items()}
        unknown = set(overrides) - known
        if unknown:
            raise TypeError(f"unknown serving settings: {', '.join(sorted(unknown))}")
        return cls.from_env(**overrides)

    @property
    def registry(self) -> str:
        return self.registry_uri or self.tracking_uri


def check_retention(days: float, env: Mapping[str, str]) -> None:
    """Refuse a retention that would delete rows the monitor's window or a retraining
    reads. Their settings are read from the same environment, with their defaults
    (monitoring/service/config.py): a monitor configured elsewhere is not seen."""
    if days < 0:
        raise ValueError(f"MODELWATCH_LOG_RETENTION_DAYS={days:g}: use 0 to keep everything")
    if days == 0:
        return
    windows = {
        "MODELWATCH_MONITOR_WINDOW_SECONDS":
            float(env.get("MODELWATCH_MONITOR_WINDOW_SECONDS") or 3600),
        "MODELWATCH_RETRAIN_WINDOW":
            time.time() - to_epoch(env.get("MODELWATCH_RETRAIN_WINDOW") or "24h"),
    }
    for name, seconds in windows.items():
        if days * DAY < seconds:
            raise ValueError(f"MODELWATCH_LOG_RETENTION_DAYS={days:g} would delete rows that "
                             f"{name} ({seconds / DAY:g} days) still reads")
