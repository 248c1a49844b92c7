"""Every environment variable modelwatch reads: its type, default, readers and meaning.

This table is the only place a default lives. Serving's `Config`, gunicorn's config, the
monitor's `MonitorConfig`, the command line, the embedded stack and the demo all read a
variable with `read` (or a dataclass `field`), so each type is parsed one way and a bad
value fails the same way, naming the variable and the value:

>>> read("MODELWATCH_WORKERS", {})
2
>>> read("MODELWATCH_SHADOW", {"MODELWATCH_SHADOW": "Yes"})
True
>>> read("MODELWATCH_WORKERS", {"MODELWATCH_WORKERS": "two"})
Traceback (most recent call last):
...
modelwatch.settings.SettingError: MODELWATCH_WORKERS='two': not an integer

An empty value is the same as unset, except where it means "none" (`keep_empty`). The
README's configuration table is generated from this one: `python -m modelwatch.settings
README.md` rewrites it (tests/test_settings.py checks it is current).
"""

from __future__ import annotations

import dataclasses
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

# Who reads a variable (the `readers` column).
SERVING, GUNICORN, MONITOR, CLI, STACK, DEMO, TRAINING = (
    "serving",
    "gunicorn",
    "monitor",
    "cli",
    "stack",
    "demo",
    "training",
)
TRUE = frozenset({"1", "true", "yes", "on"})
FALSE = frozenset({"0", "false", "no", "off"})
DURATION_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
MiB = 1024 * 1024


class SettingError(ValueError):
    """A variable's value cannot be read as its type; the message names both."""


@dataclass(frozen=True)
class Setting:
    name: str
    type: (
        str  # str, int, float, bool, duration (24h, 90m, 30s, 7d, or seconds) or list (comma list)
    )
    default: object  # None: unset (an optional setting)
    readers: tuple[str, ...]
    meaning: str
    # the default as the docs say it, where the value alone would not ("the current directory")
    shown: str = ""
    keep_empty: bool = False  # an empty value is a value ("none"), not "unset"

    def parse(self, text: str):
        try:
            return PARSERS[self.type](text)
        except ValueError as exc:
            raise SettingError(f"{self.name}={text!r}: {exc}") from None

    def shown_default(self) -> str:
        """The default as the docs write it."""
        if self.shown:
            return self.shown
        value = self.default
        if value is None or value == ():
            return "none"
        if isinstance(value, bool):
            return "on" if value else "off"
        if isinstance(value, float):
            return f"{value:g}"
        if isinstance(value, int):
            return str(value)
        return f"`{value}`"


def _int(text: str) -> int:
    try:
        return int(text.strip())
    except ValueError:
        raise ValueError("not an integer") from None


def _float(text: str) -> float:
    try:
        return float(text.strip())
    except ValueError:
        raise ValueError("not a number") from None


def _bool(text: str) -> bool:
    word = text.strip().lower()
    if word in TRUE | FALSE:
        return word in TRUE
    raise ValueError("not a boolean (1/0, true/false, yes/no, on/off)")


def duration_seconds(text: str) -> float:
    """Seconds of a duration: `24h`, `90m`, `30s`, `7d`, `2w`, or a number of seconds.

    >>> duration_seconds("24h"), duration_seconds("90")
    (86400.0, 90.0)
    """
    text = text.strip()
    unit = DURATION_UNITS.get(text[-1:], None)
    try:
        return float(text[:-1] if unit else text) * (unit or 1)
    except ValueError:
        raise ValueError("not a duration (like 24h, 90m, 30s, 7d, or seconds)") from None


def _duration(text: str) -> str:
    # Kept as written: it is passed on as text (an MLflow parameter, a `since`).
    duration_seconds(text)
    return text.strip()


def _list(text: str) -> tuple[str, ...]:
    return tuple(item.strip() for item in text.split(",") if item.strip())


PARSERS = {
    "str": str,
    "int": _int,
    "float": _float,
    "bool": _bool,
    "duration": _duration,
    "list": _list,
}

# The embedded stack's ports (MODELWATCH_<NAME>_PORT); the default URLs of MLflow, serving
# and the monitor are the stack's.
PORTS = {
    "mlflow": 5000,
    "serving": 8000,
    "monitor": 8001,
    "prometheus": 9090,
    "alertmanager": 9093,
    "pushgateway": 9091,
}


def port_variable(component: str) -> str:
    return f"MODELWATCH_{component.upper()}_PORT"


# The embedded stack's values (modelwatch/cli/stack.py): short intervals, so that drift ->
# alert -> retraining -> reload closes in minutes. A variable already set in the environment wins.
EMBEDDED_ENV = {
    "MODELWATCH_RELOAD_INTERVAL": "3",
    "MODELWATCH_MONITOR_INTERVAL": "5",
    "MODELWATCH_MONITOR_WINDOW_ROWS": "1000",
    "MODELWATCH_MONITOR_WINDOW_SECONDS": "120",
    # Full windows only: the default per-column tests flag noise in small ones.
    "MODELWATCH_MONITOR_MIN_ROWS": "1000",
    "MODELWATCH_RETRAIN_COOLDOWN": "300",
    "MODELWATCH_RETRAIN_WINDOW": "1h",
    "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
    # Cloud list prices (a CPU-hour, a GB-hour) and a budget far above what the demo's
    # model costs, so the cost dashboard shows numbers; set your own.
    "MODELWATCH_COST_PER_CPU_HOUR": "0.04",
    "MODELWATCH_COST_PER_GB_HOUR": "0.0045",
    "MODELWATCH_COST_BUDGET_PER_1K": "0.01",
}


def _settings() -> list[Setting]:
    S = Setting
    return [
        # -- what is served and watched
        S(
            "MLFLOW_TRACKING_URI",
            "str",
            f"http://127.0.0.1:{PORTS['mlflow']}",
            (SERVING, MONITOR, CLI),
            "the MLflow tracking server (and registry, unless `MLFLOW_REGISTRY_URI`)",
        ),
        S(
            "MLFLOW_REGISTRY_URI",
            "str",
            None,
            (SERVING,),
            "the MLflow registry serving loads from",
            shown="`MLFLOW_TRACKING_URI`",
        ),
        S(
            "MODELWATCH_MODEL_NAME",
            "str",
            "credit-default",
            (SERVING, MONITOR, CLI, DEMO, TRAINING),
            "the registered model served and watched",
        ),
        S(
            "MODELWATCH_MODELS",
            "list",
            None,
            (MONITOR, CLI),
            "comma list of the registered models one monitor watches, or `*`: every model "
            "with a version modelwatch onboarded (looked for again every 10 intervals)",
            shown="`MODELWATCH_MODEL_NAME`",
        ),
        S(
            "MODELWATCH_MODEL_ALIAS",
            "str",
            "production",
            (SERVING, MONITOR, CLI, DEMO, TRAINING),
            "the alias served",
        ),
        S(
            "MODELWATCH_CHALLENGER_ALIAS",
            "str",
            "challenger",
            (SERVING,),
            "the alias shadow-scored",
        ),
        S(
            "MODELWATCH_SHADOW",
            "bool",
            False,
            (SERVING,),
            "score the challenger beside the champion",
        ),
        # -- serving: loading models
        S(
            "MODELWATCH_RELOAD_INTERVAL",
            "float",
            10.0,
            (SERVING,),
            "seconds between alias polls; 0 disables polling",
        ),
        S(
            "MODELWATCH_MODEL_CACHE_DIR",
            "str",
            "mlruns/model-cache",
            (SERVING,),
            "the last good version of each alias, for a cold start without the registry",
        ),
        S("MODELWATCH_REGISTRY_TIMEOUT", "int", 5, (SERVING,), "seconds for one registry call"),
        S(
            "MODELWATCH_TRUST_REGISTRY",
            "bool",
            True,
            (SERVING,),
            "let MLflow deserialize the registry's models (sets "
            "`MLFLOW_ALLOW_PICKLE_DESERIALIZATION` unless that is set)",
        ),
        S(
            "MODELWATCH_SKOPS_TRUSTED_TYPES",
            "list",
            (),
            (SERVING,),
            "comma list of types a skops-saved model may hold besides those skops and its MLmodel "
            "trust",
        ),
        S(
            "MODELWATCH_COMPILE_MODEL",
            "bool",
            True,
            (SERVING,),
            "score sklearn pipelines with `serving/compiled` where it gives the same answers",
        ),
        S(
            "MODELWATCH_FALLBACK",
            "str",
            None,
            (SERVING,),
            "`default` (`serving/fallback_rules.yaml`) or a rules file, served while no model "
            "loads",
        ),
        # -- serving: the prediction log
        S(
            "MODELWATCH_STORE_URL",
            "str",
            "sqlite:///mlruns/predictions.db",
            (SERVING, MONITOR, CLI, TRAINING),
            "the prediction log; `postgresql://user:pw@host/db` in production",
        ),
        S(
            "MODELWATCH_SPILL_DIR",
            "str",
            "mlruns/spill",
            (SERVING,),
            "JSON lines kept while the store is down",
        ),
        S("MODELWATCH_LOG_BATCH_SIZE", "int", 1000, (SERVING,), "rows per store write"),
        S(
            "MODELWATCH_STORE_RETRY",
            "float",
            1.0,
            (SERVING,),
            "seconds between attempts while the store is down",
        ),
        S(
            "MODELWATCH_LOG_RETENTION_DAYS",
            "float",
            30.0,
            (SERVING,),
            "predictions older than this are deleted (0: kept forever); never shorter than the "
            "monitor's or a retraining's window",
        ),
        S(
            "MODELWATCH_LOG_PRUNE_INTERVAL",
            "float",
            300.0,
            (SERVING,),
            "seconds between prunes of expired rows",
        ),
        # -- serving: requests
        S(
            "MODELWATCH_ADMIN_TOKEN",
            "str",
            None,
            (SERVING,),
            "bearer token of `/admin/*` (unset: open, as in dev)",
        ),
        S(
            "MODELWATCH_FEEDBACK_TOKEN",
            "str",
            None,
            (SERVING, CLI, STACK, DEMO),
            "bearer token of `POST /feedback`, which serving requires and its clients send "
            "(unset: open, as in dev)",
        ),
        S(
            "MODELWATCH_MLFLOW_WEBHOOK_SECRET",
            "str",
            None,
            (SERVING,),
            "secret of the MLflow registry webhook on `POST /webhooks/mlflow`; unset, it refuses "
            "every delivery",
        ),
        S(
            "MODELWATCH_MAX_BODY_BYTES",
            "int",
            10 * MiB,
            (SERVING,),
            "largest request body, in bytes",
            shown="10 MiB",
        ),
        S("MODELWATCH_MAX_ROWS", "int", 10_000, (SERVING,), "most rows in one request"),
        S(
            "MODELWATCH_FEEDBACK_WAIT",
            "float",
            1.0,
            (SERVING,),
            "seconds `/feedback` waits for ids still being logged by other workers",
        ),
        # -- cost
        S(
            "MODELWATCH_COST_PER_CPU_HOUR",
            "float",
            None,
            (SERVING, MONITOR, TRAINING),
            "price of a CPU core for an hour (unset: no cost is computed)",
        ),
        S(
            "MODELWATCH_COST_PER_GB_HOUR",
            "float",
            None,
            (SERVING, MONITOR, TRAINING),
            "price of a GB (2^30 bytes) of resident memory for an hour",
        ),
        S(
            "MODELWATCH_COST_BUDGET_PER_1K",
            "float",
            None,
            (SERVING,),
            "what 1,000 predictions may cost",
        ),
        S(
            "MODELWATCH_RESOURCE_INTERVAL",
            "float",
            1.0,
            (SERVING,),
            "seconds between a worker's readings of its own CPU and memory",
        ),
        # -- gunicorn
        S(
            "MODELWATCH_SERVING_URL",
            "str",
            f"http://127.0.0.1:{PORTS['serving']}",
            (GUNICORN, CLI),
            "where serving listens and clients find it (`modelwatch status` asks it there when "
            "set, before the stack's pid files)",
        ),
        S(
            "MODELWATCH_BIND",
            "str",
            None,
            (GUNICORN,),
            "gunicorn's bind address",
            shown="from `MODELWATCH_SERVING_URL`",
        ),
        S("MODELWATCH_WORKERS", "int", 2, (GUNICORN, CLI, STACK), "gunicorn workers"),
        S("MODELWATCH_THREADS", "int", 4, (GUNICORN,), "threads per worker"),
        S(
            "MODELWATCH_WORKER_TIMEOUT",
            "int",
            60,
            (GUNICORN,),
            "seconds before a silent worker is replaced",
        ),
        S(
            "MODELWATCH_GRACEFUL_TIMEOUT",
            "int",
            30,
            (GUNICORN,),
            "seconds a stopping worker has to finish",
        ),
        S(
            "MODELWATCH_READ_TIMEOUT",
            "float",
            15.0,
            (GUNICORN,),
            "seconds a client may stall mid-request before its connection is dropped",
        ),
        S(
            "MODELWATCH_ACCESS_LOG",
            "str",
            None,
            (GUNICORN,),
            "gunicorn's access log (`-` for stdout)",
        ),
        S("MODELWATCH_LOG_LEVEL", "str", "info", (GUNICORN,), "gunicorn's log level"),
        # -- the monitor
        S(
            "MODELWATCH_MONITOR_URL",
            "str",
            f"http://127.0.0.1:{PORTS['monitor']}",
            (CLI,),
            "where the monitor listens (`modelwatch status` asks it there when set, before the "
            "stack's pid files)",
        ),
        S("MODELWATCH_MONITOR_INTERVAL", "float", 30.0, (MONITOR,), "seconds between windows"),
        S(
            "MODELWATCH_MONITOR_WINDOW_ROWS",
            "int",
            2000,
            (MONITOR, CLI),
            "most rows in a window (and the reference's chunk size)",
        ),
        S(
            "MODELWATCH_MONITOR_WINDOW_SECONDS",
            "float",
            3600.0,
            (MONITOR, SERVING),
            "oldest row a window takes",
        ),
        S(
            "MODELWATCH_MONITOR_MIN_ROWS",
            "int",
            500,
            (MONITOR,),
            "fewest rows a window is judged on",
        ),
        S(
            "MODELWATCH_MONITOR_MLFLOW",
            "bool",
            True,
            (MONITOR,),
            "log each window to the version's monitoring run",
        ),
        S(
            "MODELWATCH_BUILTIN_ALERTS",
            "bool",
            False,
            (MONITOR,),
            "evaluate the model rules in the monitor (the embedded stack turns it on without "
            "Prometheus and Alertmanager)",
        ),
        S(
            "MODELWATCH_SEGMENTS",
            "str",
            None,
            (MONITOR,),
            "comma list of columns judged per segment (set, even empty, it overrides the tag)",
            shown="the version's `modelwatch.segments` tag",
            keep_empty=True,
        ),
        S(
            "MODELWATCH_SENSITIVE",
            "str",
            None,
            (MONITOR,),
            "comma list of sensitive attributes (set, even empty, it overrides the tag)",
            shown="the version's `modelwatch.sensitive` tag",
            keep_empty=True,
        ),
        S(
            "MODELWATCH_FAIRNESS_MIN_RATIO",
            "float",
            None,
            (MONITOR,),
            "lowest demographic parity ratio (regressors: error ratio) before "
            "`FairnessGapExceeded`",
            shown="0.8",
        ),
        S(
            "MODELWATCH_FAIRNESS_MAX_DIFFERENCE",
            "float",
            None,
            (MONITOR,),
            "highest equalized odds difference (multi-class: accuracy difference) before "
            "`FairnessGapExceeded`",
            shown="0.1",
        ),
        S(
            "MODELWATCH_FAIRNESS_FAVOURABLE",
            "str",
            None,
            (MONITOR,),
            "the class a group wants (a loan's `0`): its rate is the selection rate",
            shown="the positive class",
        ),
        S(
            "MODELWATCH_WEBHOOK_TOKEN",
            "str",
            None,
            (MONITOR, STACK),
            "bearer token of the monitor's `POST /alerts`",
        ),
        S(
            "MODELWATCH_ALLOW_UNAUTHENTICATED",
            "bool",
            False,
            (GUNICORN, MONITOR),
            "start listening beyond loopback with a write path's token unset, with a warning (a "
            "gateway in front authenticates)",
        ),
        S(
            "MODELWATCH_SECRETS_DIR",
            "str",
            None,
            (CLI,),
            "a directory of token files (`admin_token`, `feedback_token`, `webhook_token`, as "
            "compose mounts secrets "
            "in /run/secrets): `modelwatch serve` and `monitor` read each token whose variable is "
            "unset from it",
        ),
        S(
            "MODELWATCH_RETRAIN_COOLDOWN",
            "float",
            900.0,
            (MONITOR,),
            "seconds after a retraining before the next may start",
        ),
        S(
            "MODELWATCH_RETRAIN_WINDOW",
            "duration",
            "24h",
            (MONITOR, SERVING),
            "how far back retraining reads labelled production data",
        ),
        S(
            "MODELWATCH_RETRAIN_MIN_ROWS",
            "int",
            1000,
            (MONITOR,),
            "labelled rows logged since a retraining was asked for before it starts (enough to "
            "train and judge a candidate)",
        ),
        # -- the embedded stack
        S(
            "MODELWATCH_HOME",
            "str",
            None,
            (STACK,),
            "the embedded stack's home: `mlruns/` and `run/`",
            shown="the current directory",
        ),
        S(
            "MODELWATCH_MLFLOW_PORT",
            "int",
            PORTS["mlflow"],
            (STACK,),
            "the embedded stack's MLflow server",
        ),
        S(
            "MODELWATCH_SERVING_PORT",
            "int",
            PORTS["serving"],
            (STACK,),
            "the embedded stack's serving",
        ),
        S(
            "MODELWATCH_MONITOR_PORT",
            "int",
            PORTS["monitor"],
            (STACK,),
            "the embedded stack's monitor",
        ),
        S(
            "MODELWATCH_PROMETHEUS_PORT",
            "int",
            PORTS["prometheus"],
            (STACK,),
            "the embedded stack's Prometheus",
        ),
        S(
            "MODELWATCH_ALERTMANAGER_PORT",
            "int",
            PORTS["alertmanager"],
            (STACK,),
            "the embedded stack's Alertmanager",
        ),
        S(
            "MODELWATCH_PUSHGATEWAY_PORT",
            "int",
            PORTS["pushgateway"],
            (STACK,),
            "the embedded stack's Pushgateway",
        ),
        # -- the demo
        S("MODELWATCH_DEMO_RATE", "float", 40.0, (DEMO,), "the demo's rows a second"),
        S(
            "MODELWATCH_DEMO_BASELINE_SECONDS",
            "float",
            60.0,
            (DEMO,),
            "the demo's baseline traffic",
        ),
        S(
            "MODELWATCH_DEMO_RECOVERY_SECONDS",
            "float",
            45.0,
            (DEMO,),
            "the demo's traffic after the new version serves",
        ),
        S(
            "MODELWATCH_DEMO_INTEGRITY_SECONDS",
            "float",
            90.0,
            (DEMO,),
            "the demo's broken upstream data",
        ),
        S(
            "MODELWATCH_DEMO_TIMEOUT_SECONDS",
            "float",
            420.0,
            (DEMO,),
            "the demo's longest wait for the loop to close, in seconds of a quiet machine",
        ),
    ]


SETTINGS: dict[str, Setting] = {s.name: s for s in _settings()}


def setting(name: str) -> Setting:
    try:
        return SETTINGS[name]
    except KeyError:
        raise KeyError(f"{name} is not in modelwatch/settings.py's table") from None


def default(name: str):
    return setting(name).default


def read(name: str, env: Mapping[str, str] | None = None):
    """The variable's value in `env` (default: this process's environment), parsed; its
    default when unset."""
    s = setting(name)
    text = (os.environ if env is None else env).get(name)
    if text is None or (text.strip() == "" and not s.keep_empty):
        return s.default
    return s.parse(text)


def check(reader: str, env: Mapping[str, str] | None = None) -> None:
    """Raise SettingError for the first variable of `reader` that does not parse: a
    server checks its own before it starts, so a bad value is one clear line."""
    for s in SETTINGS.values():
        if reader in s.readers:
            read(s.name, env)


def field(name: str):
    """A dataclass field of the variable `name` (in its metadata `variable`) whose default
    is the table's."""
    return dataclasses.field(default=default(name), metadata={"variable": name})


def from_fields(cls, env: Mapping[str, str] | None = None) -> dict:
    """`cls`'s fields made with `field`, read from `env`: keyword arguments for `cls`."""
    return {
        f.name: read(f.metadata["variable"], env)
        for f in dataclasses.fields(cls)
        if "variable" in f.metadata
    }


class Configuration:
    """The one shape of a service's configuration (serving's `Config`, the monitor's
    `MonitorConfig`): a frozen dataclass of `field`s. `Cls()` holds the table's defaults,
    `Cls.from_env(env, **overrides)` reads `env` (default: this process's environment), and
    `Cls.resolve(config)` takes what an app factory is given."""

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides):
        return cls(**(from_fields(cls, env) | overrides))

    @classmethod
    def resolve(cls, config):
        """None (the environment), a `cls`, or a mapping of overrides (keys are field
        names, any case) on top of the environment."""
        if config is None:
            return cls.from_env()
        if isinstance(config, cls):
            return config
        known = {f.name for f in dataclasses.fields(cls)}
        overrides = {k.lower(): v for k, v in dict(config).items()}
        unknown = set(overrides) - known
        if unknown:
            raise TypeError(f"unknown {cls.__name__} settings: {', '.join(sorted(unknown))}")
        return cls.from_env(**overrides)


# -- the README's table --------------------------------------------------------------------

README_BEGIN = (
    "<!-- settings: generated by `python -m modelwatch.settings README.md` "
    "from modelwatch/settings.py -->"
)
README_END = "<!-- end of settings -->"


def markdown_table(stack_values: Mapping[str, str] | None = None) -> str:
    """The configuration table; `stack_values`: what `modelwatch up` sets instead."""
    stack_values = stack_values or {}
    lines = [
        "| variable | default | `modelwatch up` | read by | meaning |",
        "| --- | --- | --- | --- | --- |",
    ]
    for s in SETTINGS.values():
        up = stack_values.get(s.name, "")
        lines.append(
            f"| `{s.name}` | {s.shown_default()} | {f'`{up}`' if up else ''} | "
            f"{', '.join(s.readers)} | {s.meaning} |"
        )
    return "\n".join(lines)


def rewrite_readme(text: str, table: str) -> str:
    head, rest = text.split(README_BEGIN, 1)
    _, tail = rest.split(README_END, 1)
    return f"{head}{README_BEGIN}\n{table}\n{README_END}{tail}"


def _stack_values() -> dict[str, str]:
    return {k: v for k, v in EMBEDDED_ENV.items() if k in SETTINGS}


def main(argv: list[str]) -> int:
    table = markdown_table(_stack_values())
    if not argv:
        print(table)
        return 0
    path = Path(argv[0])
    path.write_text(rewrite_readme(path.read_text(), table))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
