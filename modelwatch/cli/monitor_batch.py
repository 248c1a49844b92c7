"""`modelwatch monitor-batch`: judge any time range of the prediction log, on this machine or Spark.

The rows of one model version in [--since, --until), from a Parquet export
(`modelwatch export-log`) or a store URL, are judged by the version's calculators as the
online monitor judges a window (docs/DESIGN.md, "How the monitor judges a window"), with
the local engine or on Spark (`--engine spark --master URL`). It prints what the
monitor's /status shows as `last_window` (`--json`: that object), logs the window to
MLflow as a run of the model's monitoring experiment, and pushes its metrics to a
Pushgateway when `--pushgateway` is given.

Exit codes: 0 judged, 2 bad input (no such path or version, no rows in the range, a
version without a monitoring reference), 1 anything else.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import time

from modelwatch.settings import read

# The calculators, mlflow and pyspark are imported by the functions that use them, each
# with `noqa: PLC0415 (heavy)`: `modelwatch --help` and every other command import this
# module for its parser and must not wait seconds for them.
JOB = "modelwatch_monitor_batch"


class BadInput(Exception):
    """What the user asked for does not exist: exit 2."""


def add_parser(commands) -> None:
    batch = commands.add_parser(
        "monitor-batch", help="judge a time range of the prediction log (local or Spark)"
    )
    batch.add_argument(
        "--log",
        required=True,
        help="an export's directory or URL, or a store URL (postgresql://, sqlite://)",
    )
    batch.add_argument("--model-name", required=True)
    batch.add_argument("--version", required=True)
    batch.add_argument(
        "--since", help="ISO time, epoch seconds or an age (24h, 7d); default: the oldest row"
    )
    batch.add_argument("--until", help="the same; default: now")
    batch.add_argument("--engine", choices=("local", "spark"), default="local")
    batch.add_argument("--master", default="local[2]", help="Spark master URL (--engine spark)")
    batch.add_argument("--pushgateway", default="", help="host:port of a Pushgateway, or empty")
    batch.add_argument("--json", action="store_true", help="the window as /status's last_window")
    batch.set_defaults(run=main)


def main(args: argparse.Namespace) -> int:
    from modelwatch.monitoring.batch.plan import BatchDetails  # noqa: PLC0415 (heavy)
    from modelwatch.monitoring.window import window_status  # noqa: PLC0415 (heavy)

    try:
        context = _context(args.model_name, args.version)
        result = run(args, context)
    except BadInput as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    status = window_status(result, context.reference, context.estimates)
    status["batch"] = result.details_of(BatchDetails).to_dict() | {
        "since": args.since,
        "until": args.until,
        "log": args.log,
    }
    with contextlib.redirect_stdout(
        sys.stderr
    ):  # MLflow prints its run's link: stdout is the JSON's
        _log_to_mlflow(result, context, status)
        if args.pushgateway:
            _push(args.pushgateway, context, result)
    print(json.dumps(status, default=str, indent=1) if args.json else _summary(status))
    return 0


def run(args: argparse.Namespace, context):
    """The window of the range, from the engine asked for."""
    from modelwatch.log.schema import time_range  # noqa: PLC0415 (pandas)
    from modelwatch.monitoring.batch import local  # noqa: PLC0415 (heavy)

    try:
        time_range(args.since, args.until)
    except ValueError as exc:
        raise BadInput(str(exc)) from None
    try:
        if args.engine == "spark":
            return _on_spark(args, context)
        parts = local.parts(args.log, args.model_name, args.version, args.since, args.until)
        return local.judge(context.version, context.calculators, context.reference, parts)
    except (FileNotFoundError, local.NoRows) as exc:
        raise BadInput(
            f"{exc} ({args.model_name} version {args.version}, log {args.log})"
        ) from None


def _on_spark(args: argparse.Namespace, context):
    from modelwatch.log import is_store_url  # noqa: PLC0415 (pandas)
    from modelwatch.monitoring.batch import spark  # noqa: PLC0415 (heavy; pyspark)

    session = spark.session(args.master)
    if is_store_url(args.log):
        if not args.log.startswith(("postgresql://", "postgres://")):
            raise BadInput(f"Spark reads a PostgreSQL log or a Parquet export, not {args.log!r}")
        frame = spark.read_postgres(
            session, args.log, args.model_name, args.version, args.since, args.until
        )
    else:
        frame = spark.read_export(
            session, args.log, args.model_name, args.version, args.since, args.until
        )
    return spark.judge(frame, context.version, context.calculators, context.reference)


def _context(model_name: str, version: str):
    from mlflow import MlflowClient  # noqa: PLC0415 (heavy)
    from mlflow.exceptions import MlflowException  # noqa: PLC0415 (heavy)

    from modelwatch.monitoring.registry import NotOnboarded  # noqa: PLC0415 (heavy)
    from modelwatch.monitoring.service.context import VersionContext  # noqa: PLC0415 (heavy)

    client = MlflowClient(read("MLFLOW_TRACKING_URI"))
    try:
        return VersionContext.load(
            client, model_name, str(version), read("MODELWATCH_MONITOR_WINDOW_ROWS")
        )
    except NotOnboarded as exc:
        raise BadInput(str(exc)) from None
    except MlflowException as exc:
        if exc.error_code in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"):
            raise BadInput(
                f"no version {version} of {model_name} in the registry: {exc.message}"
            ) from None
        raise


def _log_to_mlflow(result, context, status: dict) -> None:
    """A run of its own in the model's monitoring experiment (the online monitor's runs
    are one a version, a step a window): the window's metrics and its JSON."""
    from mlflow import MlflowClient  # noqa: PLC0415 (heavy)
    from mlflow.entities import Metric  # noqa: PLC0415 (heavy)

    client = MlflowClient(read("MLFLOW_TRACKING_URI"))
    name = f"{context.model_name}-monitoring"
    experiment = client.get_experiment_by_name(name)
    experiment_id = experiment.experiment_id if experiment else client.create_experiment(name)
    batch = status["batch"]
    run = client.create_run(
        experiment_id,
        run_name=f"monitor-batch {context.model_name} v{context.version}",
        tags={
            "modelwatch.model_name": context.model_name,
            # not model_version: the online monitor appends to the run that has it
            "modelwatch.batch_version": context.version,
            "modelwatch.training_run_id": context.run_id,
            "modelwatch.batch_engine": batch["engine"],
            "modelwatch.batch_since": str(batch["since"] or ""),
            "modelwatch.batch_until": str(batch["until"] or ""),
        },
    )
    ms = int(result.evaluated_at * 1000)
    metrics = [Metric(k, v, ms, 0) for k, v in result.flat().items()]
    for i in range(0, len(metrics), 900):  # MLflow takes at most 1000 metrics a batch
        client.log_batch(run.info.run_id, metrics=metrics[i : i + 900])
    client.log_text(run.info.run_id, json.dumps(status, default=str, indent=1), "window.json")
    client.set_terminated(run.info.run_id)


def _push(gateway: str, context, result) -> None:
    from prometheus_client import push_to_gateway  # noqa: PLC0415 (with the metrics)

    from modelwatch.monitoring.service.metrics import MonitorMetrics  # noqa: PLC0415 (heavy)

    metrics = MonitorMetrics().model(context.model_name)
    metrics.publish(context.version, result.metrics)
    metrics.window_rows.labels(model_version=context.version).set(result.rows)
    metrics.last_run.set(time.time())
    try:
        push_to_gateway(
            gateway,
            job=JOB,
            registry=metrics.registry,
            grouping_key={"model_name": context.model_name, "model_version": context.version},
            timeout=10,
        )
    except OSError as exc:  # the window is judged and logged; a missing gateway must not fail it
        print(f"warning: could not push metrics to {gateway}: {exc}", file=sys.stderr)


def _summary(status: dict) -> str:
    engine = status["batch"]["engine"]
    issues = ", ".join(i["kind"] + " " + "+".join(i["columns"]) for i in status["integrity"])
    lines = [
        f"{status['rows']} rows of version {status['version']} ({engine} engine)",
        f"drifted features: {', '.join(status['drifted_features']) or 'none'} "
        f"(share {status['drift_share']:.2f}, dataset drift {status['dataset_drift']})",
        f"integrity: {issues or 'ok'}",
    ]
    for name, m in status["metrics"].items():
        lines.append(f"{name}: {m['value']:.4f}{'  ALERT' if m['alert'] else ''}")
    if status["batch"]["left_out"]:
        lines.append(f"not computed in a batch: {', '.join(status['batch']['left_out'])}")
    return "\n".join(lines)
