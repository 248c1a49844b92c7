"""`modelwatch`: the one command a user types.

Each subcommand is a thin layer over the package that does the work; see docs/DESIGN.md,
"The command line".
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

from modelwatch.cli import export, monitor_batch
from modelwatch.project import PROJECT_DIR, mlflow_command
from modelwatch.settings import SettingError, read

# The `main` entry point's parameters (MLproject), as `--flag` options.
TRAIN_PARAMS = (
    "data",
    "target",
    "model_name",
    "model_type",
    "n_rows",
    "seed",
    "holdout",
    "promote",
    "trigger",
    "min_score",
    "tolerance",
    "task",
    "segments",
    "sensitive",
)
RETRAIN_PARAMS = ("model_name", "window", "max_rows", "trigger", "promote", "store_url", "holdout")
SCENARIOS = (
    "baseline",
    "covariate",
    "concept",
    "integrity_swap",
    "integrity_missing",
    "gradual",
    "channel_break",
    "group_bias",
)  # training/simulator.py's, without importing it


def main(argv: list[str] | None = None) -> int:
    try:
        parser = build_parser()
        args = parser.parse_args(argv)
        if not hasattr(args, "run"):
            parser.print_help()
            return 2
        return args.run(args) or 0
    except SettingError as exc:  # a variable that does not parse: one line, no traceback
        print(f"error: {exc}", file=sys.stderr)
        return 2


def _host_port(url: str) -> tuple[str, int]:
    """The host and port of a URL like http://127.0.0.1:8000."""
    host, _, port = url.split("://", 1)[-1].rstrip("/").rpartition(":")
    try:
        return host, int(port)
    except ValueError:
        raise SettingError(f"{url!r} has no port") from None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="modelwatch", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(title="commands")

    train = commands.add_parser(
        "train", help="mlflow run the `main` entry point: train, register, gate"
    )
    _parameters(train, TRAIN_PARAMS)
    train.set_defaults(run=_mlflow_run, entry_point="main", params=TRAIN_PARAMS)

    retrain = commands.add_parser("retrain", help="mlflow run the `retrain` entry point by hand")
    _parameters(retrain, RETRAIN_PARAMS)
    retrain.set_defaults(run=_mlflow_run, entry_point="retrain", params=RETRAIN_PARAMS)

    onboard = commands.add_parser(
        "onboard", help="monitor a registered model modelwatch did not train"
    )
    onboard.add_argument("--model-name", required=True)
    onboard.add_argument("--version", help="this version (wins over --alias)")
    onboard.add_argument(
        "--alias",
        default=read("MODELWATCH_MODEL_ALIAS"),
        help="the version under this alias (default: MODELWATCH_MODEL_ALIAS)",
    )
    onboard.add_argument(
        "--reference", required=True, help="held-out rows, CSV or Parquet, with the target"
    )
    onboard.add_argument("--target", help="the label column; without it, drift and integrity only")
    onboard.add_argument(
        "--task", default="auto", choices=("auto", "binary", "multiclass", "regression")
    )
    onboard.add_argument(
        "--chunk-rows",
        type=int,
        default=read("MODELWATCH_MONITOR_WINDOW_ROWS"),
        help="rows of a monitor window: the reference is judged in chunks of this size",
    )
    onboard.add_argument(
        "--segments", default="", help="comma list of input columns to judge per segment"
    )
    onboard.add_argument(
        "--sensitive", default="", help="comma list of sensitive input columns (fairness per group)"
    )
    onboard.add_argument(
        "--domain",
        help="JSON file of columns' valid values, {column: {min, max, integer, categories}}: "
        "outside them a value is an integrity error (default: inferred, conservatively)",
    )
    onboard.set_defaults(run=_onboard)

    serve = commands.add_parser("serve", help="the serving API under gunicorn")
    host, port = _host_port(read("MODELWATCH_SERVING_URL"))
    serve.add_argument("--workers", type=int, default=read("MODELWATCH_WORKERS"))
    serve.add_argument("--port", type=int, default=port, help="default: MODELWATCH_SERVING_URL's")
    serve.add_argument("--host", default=host, help="default: MODELWATCH_SERVING_URL's")
    serve.set_defaults(run=_serve)

    monitor = commands.add_parser("monitor", help="the monitor service")
    host, port = _host_port(read("MODELWATCH_MONITOR_URL"))
    monitor.add_argument("--port", type=int, default=port, help="default: MODELWATCH_MONITOR_URL's")
    monitor.add_argument("--host", default=host, help="default: MODELWATCH_MONITOR_URL's")
    monitor.add_argument(
        "--interval", type=float, help="seconds between windows (MODELWATCH_MONITOR_INTERVAL)"
    )
    monitor.set_defaults(run=_monitor)

    simulate = commands.add_parser(
        "simulate", help="drive /predict and /feedback with the simulated stream"
    )
    simulate.add_argument("--scenario", required=True, choices=SCENARIOS)
    simulate.add_argument("--rate", type=float, default=20.0, help="rows a second")
    simulate.add_argument("--duration", type=float, default=60.0, help="seconds")
    simulate.add_argument("--batch", type=int, default=10, help="rows a request")
    simulate.add_argument(
        "--label-delay", type=float, default=5.0, help="seconds before a label arrives"
    )
    simulate.add_argument(
        "--label-coverage", type=float, default=1.0, help="share of rows that get a label"
    )
    simulate.add_argument("--seed", type=int, default=0)
    simulate.add_argument("--url", default=read("MODELWATCH_SERVING_URL"))
    simulate.set_defaults(run=_simulate)

    up = commands.add_parser("up", help="start the embedded stack (idempotent)")
    up.set_defaults(run=_up)
    down = commands.add_parser("down", help="stop the embedded stack")
    down.set_defaults(run=_down)
    status = commands.add_parser(
        "status", help="each component's health, the served version, alerts, retraining"
    )
    status.add_argument("--json", action="store_true")
    status.set_defaults(run=_status)

    demo = commands.add_parser("demo", help="the whole story on the embedded stack, narrated")
    demo.set_defaults(run=_demo)

    drift = commands.add_parser("drift", help="drift between two CSV or Parquet files")
    drift.add_argument("reference")
    drift.add_argument("current")
    drift.add_argument("--json", action="store_true", help="the full result as JSON")
    drift.set_defaults(run=_drift)

    # Their modules import what they run only when they run: the parsers are cheap.
    export.add_parser(commands)
    monitor_batch.add_parser(commands)
    return parser


def _parameters(parser: argparse.ArgumentParser, params: tuple[str, ...]) -> None:
    """An entry point's parameters as options. Unset, MLproject's defaults apply, but the
    model is the one serving and the monitor read (MODELWATCH_MODEL_NAME)."""
    for name in params:
        default = read("MODELWATCH_MODEL_NAME") if name == "model_name" else None
        parser.add_argument(f"--{name.replace('_', '-')}", dest=name, default=default)


def _onboard(args: argparse.Namespace) -> int:
    from modelwatch.cli.onboard import main as onboard  # noqa: PLC0415 (each command imports its own)

    return onboard(args)


def _demo(args: argparse.Namespace) -> int:
    from modelwatch.cli.demo import run  # noqa: PLC0415 (each command imports its own)

    return run()


def _up(args: argparse.Namespace) -> int:
    from modelwatch.cli.stack import Stack, StackError  # noqa: PLC0415 (each command imports its own)

    try:
        stack = Stack.default()
        states = stack.up()
    except StackError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    for name, state in states.items():
        where = (
            stack.url(name)
            if state != "not installed"
            else "(the monitor applies the alert rules itself)"
            if name == "prometheus"
            else ""
        )
        print(f"{name:<13} {state:<14} {where}")
    print(f"logs in {stack.run_dir / 'logs'}; `modelwatch down` stops it all")
    return 0


def _down(args: argparse.Namespace) -> int:
    from modelwatch.cli.stack import Stack, StackError  # noqa: PLC0415 (each command imports its own)

    try:
        stopped = Stack.default().down()
    except StackError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print("stopped: " + (", ".join(stopped) if stopped else "nothing was running"))
    return 0


def _status(args: argparse.Namespace) -> int:
    from modelwatch.cli.stack import Stack, StackError  # noqa: PLC0415 (each command imports its own)
    from modelwatch.cli.status import report  # noqa: PLC0415 (each command imports its own)

    try:
        info = report(Stack.default())
    except StackError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(info, indent=2, default=str))
    else:
        print(info["text"])
    return 0 if info["healthy"] else 1


def _serve(args: argparse.Namespace) -> int:
    from modelwatch.cli.serve import serve  # noqa: PLC0415 (each command imports its own)
    from modelwatch.tokens import load_token_files  # noqa: PLC0415 (each command imports its own)

    load_token_files(os.environ)  # gunicorn and its workers inherit them
    serve(args.workers, args.port, args.host)  # execs gunicorn
    return 0


def _monitor(args: argparse.Namespace) -> int:
    # mlflow, flask and the calculators: only this command needs them, and others start fast
    from modelwatch.monitoring.service.app import serve  # noqa: PLC0415 (heavy, see above)
    from modelwatch.monitoring.service.config import MonitorConfig  # noqa: PLC0415 (likewise)
    from modelwatch.tokens import load_token_files  # noqa: PLC0415 (each command imports its own)
    from modelwatch.training.retrain_run import project_runner  # noqa: PLC0415 (heavy)

    load_token_files(os.environ)
    interval = {} if args.interval is None else {"interval_seconds": args.interval}
    config = MonitorConfig.from_env(**interval)
    # The monitor does not know how a retraining runs: this project's `retrain` entry point,
    # run for the model whose alert asked.
    serve(
        config,
        args.port,
        args.host,
        lambda model: project_runner(config.tracking_uri, model, config.retrain_window),
    )
    return 0


def _simulate(args: argparse.Namespace) -> int:
    from modelwatch.cli.stack import Stack  # noqa: PLC0415 (each command imports its own)
    from modelwatch.cli.traffic import simulate  # noqa: PLC0415 (each command imports its own)
    from modelwatch.tokens import client_token  # noqa: PLC0415 (each command imports its own)

    # Outside the embedded stack the variable; beside it, the token `modelwatch up` keeps.
    token = client_token("MODELWATCH_FEEDBACK_TOKEN", Stack.default().run_dir)
    summary = simulate(
        args.url,
        args.scenario,
        args.rate,
        args.duration,
        args.batch,
        args.label_delay,
        args.label_coverage,
        args.seed,
        progress=True,
        feedback_token=token,
    )
    print(summary.line())
    return 0 if summary.predicted else 1


def _drift(args: argparse.Namespace) -> int:
    from modelwatch.cli.drift import drift_command  # noqa: PLC0415 (each command imports its own)

    return drift_command(args.reference, args.current, args.json)


def _mlflow_run(args: argparse.Namespace) -> int:
    """`mlflow run` of an entry point in the active environment, passing the given parameters."""
    command = mlflow_command(
        "run", str(PROJECT_DIR), "-e", args.entry_point, "--env-manager", "local"
    )
    for name in args.params:
        value = getattr(args, name)
        if value is not None:
            command += ["-P", f"{name}={value}"]
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        "MLFLOW_TRACKING_URI": read("MLFLOW_TRACKING_URI"),
    }
    return subprocess.call(command, env=env)
