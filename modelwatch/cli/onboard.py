"""`modelwatch onboard`: monitor a registered model that modelwatch did not train.

    modelwatch onboard --model-name wine --alias production \
        --reference held_out.parquet --target class

Scores the reference file with the registered version, fits every calculator on it (so
what cannot work fails here, not in the monitor), and logs the monitoring reference in
an MLflow run of its own, in the experiment `modelwatch-onboarding`. The version gets the
tags that link it to that run (`modelwatch.reference_run`, `modelwatch.task`,
`modelwatch.target`); the run that logged the model is never modified. Without
`--target` the monitor judges drift and integrity only, and says so. Onboarding a
version again keeps the reference run it replaces (listed in the version's tag
`modelwatch.replaced_reference_runs`) and says which it is.

The reference should be held-out rows (not the training set) labelled with the truth:
the thresholds are the spread of each metric over chunks of it the size of a monitor
window (a reference smaller than one window is warned about: its bounds are those of
windows its size). The bounds printed are the ones the monitor applies to a full window:
the same fit (`suite.thresholds`), not a formula of their own.

scikit-learn models are scored with their own `predict_proba` (the class probabilities
the estimates need); other flavors through `mlflow.pyfunc`, which gives labels or values
only. MLflow 3.17 saves scikit-learn models with skops, which loads only the types the
logging script trusted (`skops_trusted_types=`): a model with custom types fails to load
with skops' list of them, here and in serving alike.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from modelwatch.log.scored import TASKS
from modelwatch.monitoring import suite
from modelwatch.monitoring.reference import MonitoringReference
from modelwatch.monitoring.registry import TAG_REPLACED_RUNS, link_reference, log_reference
from modelwatch.settings import read
from modelwatch.training.data import DataError, read_table

EXPERIMENT = "modelwatch-onboarding"


class OnboardError(ValueError):
    """The model and the reference do not fit together; nothing was attached."""


@dataclass(frozen=True)
class Onboarding:
    model_name: str
    version: str
    run_id: str
    task: str
    target: str | None
    rows: int
    thresholds: dict
    window_rows: int
    replaces: str | None = None  # the reference run this onboarding replaced (kept)

    def summary(self) -> str:
        lines = [
            f"onboarded {self.model_name} version {self.version}: {self.task}, "
            f"{self.rows} reference rows, run {self.run_id}"
        ]
        if self.replaces:
            lines.append(
                f"replaces reference run {self.replaces} (kept; the version's tag "
                f"{TAG_REPLACED_RUNS} lists every replaced run)"
            )
        if self.target is None:
            lines.append("no target: the monitor judges drift and integrity only (no performance)")
        for name, b in sorted(self.thresholds.items()):
            side = "lower" if b["direction"] == "higher" else "upper"
            lines.append(
                f"  {name:<20} reference {b['mean']:.4g}, {side} bound {b[side]:.4g} "
                f"(windows of {self.window_rows} rows)"
            )
        return "\n".join(lines)

    def warnings(self) -> list[str]:
        if self.rows >= self.window_rows:
            return []
        return [
            f"warning: the reference holds {self.rows} rows, fewer than one monitor window of "
            f"{self.window_rows} (MODELWATCH_MONITOR_WINDOW_ROWS, --chunk-rows): its bounds "
            f"are the spread of resampled {self.rows}-row chunks, the bounds of {self.rows}-row "
            f"windows, wider than a {self.window_rows}-row window needs; give at least "
            f"{self.window_rows} held-out rows ({6 * self.window_rows} for disjoint chunks)"
        ]


def onboard(
    model_name: str,
    reference_path: str,
    target: str | None = None,
    version: str | None = None,
    alias: str | None = None,
    task: str = "auto",
    chunk_rows: int | None = None,
    client: MlflowClient | None = None,
    segments: tuple[str, ...] = (),
    sensitive: tuple[str, ...] = (),
    domain: dict | None = None,
) -> Onboarding:
    """`segments` and `sensitive` name feature columns the monitor judges per segment and
    per group; they are recorded as the version's tags, as training records them.
    `chunk_rows` is the monitor's window (MODELWATCH_MONITOR_WINDOW_ROWS unless given).
    `domain` declares columns' valid values ({column: {min, max, integer, categories}}):
    outside them a value is an integrity error, past the reference's range only drift."""
    client = client or MlflowClient()
    chunk_rows = int(chunk_rows or read("MODELWATCH_MONITOR_WINDOW_ROWS"))
    if task != "auto" and task not in TASKS:
        raise OnboardError(f"--task must be auto or one of {', '.join(TASKS)}, not {task!r}")
    version = _resolve(client, model_name, version, alias)
    frame = _read(reference_path, target)
    model_uri = f"models:/{model_name}/{version}"
    features = _features(model_uri, frame, target)
    unknown = [c for c in (*segments, *sensitive) if c not in features]
    if unknown:
        raise OnboardError(
            f"--segments/--sensitive: {', '.join(unknown)} is not an input column of the model "
            f"(its inputs: {', '.join(features)})"
        )
    prediction, proba, classes = score(model_uri, frame[features])
    y = frame[target] if target else None
    if task == "regression" and proba is not None:
        raise OnboardError(
            f"{model_name} version {version} gives class probabilities: "
            "it is a classifier, not a regression"
        )
    try:
        reference = MonitoringReference.from_scores(
            frame[features], y, prediction, proba, classes, target, task, domain=domain
        )
    except ValueError as exc:  # a declared domain that does not fit the reference, say
        raise OnboardError(str(exc)) from exc
    try:
        calculators = suite.fit_calculators(reference, chunk_rows, segments, sensitive)
    except ValueError as exc:
        raise OnboardError(
            f"the reference cannot be used to monitor {model_name} version {version}: {exc}"
        ) from exc
    thresholds = suite.thresholds(calculators)
    run_id = _log(client, model_name, version, reference, thresholds, reference_path)
    replaces = link_reference(client, reference, model_name, version, run_id, segments, sensitive)
    if replaces:
        client.set_tag(run_id, "modelwatch.replaces_reference_run", replaces)
    return Onboarding(
        model_name,
        version,
        run_id,
        reference.task,
        reference.target,
        len(reference.sample),
        thresholds,
        chunk_rows,
        replaces,
    )


def score(model_uri: str, features: pd.DataFrame):
    """(predictions, class probabilities or None, classes or None), as serving scores them."""
    info = mlflow.models.get_model_info(model_uri)
    pyfunc = mlflow.pyfunc.load_model(model_uri)
    try:
        output = pyfunc.predict(features)  # enforces the signature: a misfit names its columns
    except MlflowException as exc:
        raise OnboardError(
            f"the reference does not fit the model's signature: {exc.message}"
        ) from exc
    if "sklearn" in info.flavors:
        model = mlflow.sklearn.load_model(model_uri)
        classes = getattr(model, "classes_", None)
        if hasattr(model, "predict_proba") and classes is not None:
            proba = np.asarray(model.predict_proba(features), dtype=float)
            return np.asarray(classes)[proba.argmax(axis=1)], proba, list(classes)
    return _first_column(output), None, None


def _first_column(output) -> np.ndarray:
    if isinstance(output, pd.DataFrame):
        return output.iloc[:, 0].to_numpy()
    return np.asarray(output).reshape(len(output), -1)[:, 0]


def _resolve(client: MlflowClient, model_name: str, version: str | None, alias: str | None) -> str:
    alias = alias or read("MODELWATCH_MODEL_ALIAS")
    try:
        if version is not None:
            return str(client.get_model_version(model_name, str(version)).version)
        return str(client.get_model_version_by_alias(model_name, alias).version)
    except MlflowException as exc:
        which = f"version {version}" if version is not None else f"alias {alias}"
        raise OnboardError(f"{model_name} {which}: {exc.message}") from exc


def _read(path: str, target: str | None) -> pd.DataFrame:
    try:
        frame = read_table(path)
    except (DataError, OSError, ValueError) as exc:
        raise OnboardError(f"cannot read the reference {path}: {exc}") from exc
    if target is not None and target not in frame.columns:
        raise OnboardError(
            f"the reference has no target column {target!r} "
            f"(its columns: {', '.join(map(str, frame.columns))})"
        )
    if target is not None and frame[target].isna().all():
        raise OnboardError(f"the target column {target!r} of the reference holds no labels")
    return frame


def _features(model_uri: str, frame: pd.DataFrame, target: str | None) -> list[str]:
    """The model's input columns (its signature's), all present in the reference."""
    signature = mlflow.models.get_model_info(model_uri).signature
    if signature is None or not signature.inputs.has_input_names():
        return [c for c in frame.columns if c != target]
    wanted = signature.inputs.input_names()
    missing = [c for c in wanted if c not in frame.columns]
    if missing:
        raise OnboardError(f"the reference lacks the model's input columns: {', '.join(missing)}")
    return wanted


def _log(
    client: MlflowClient,
    model_name: str,
    version: str,
    reference: MonitoringReference,
    thresholds: dict,
    source: str,
) -> str:
    experiment = client.get_experiment_by_name(EXPERIMENT)
    experiment_id = experiment.experiment_id if experiment else client.create_experiment(EXPERIMENT)
    tags = {
        "modelwatch.model_name": model_name,
        "modelwatch.model_version": version,
        "modelwatch.kind": "onboarding",
    }
    with mlflow.start_run(
        experiment_id=experiment_id,
        run_name=f"onboard {model_name} v{version}",
        tags=tags,
        nested=mlflow.active_run() is not None,
    ) as run:
        mlflow.log_params(
            {
                "task": reference.task,
                "target": reference.target or "",
                "reference": source,
                "rows": len(reference.sample),
            }
        )
        mlflow.log_metrics({f"reference_{name}": b["mean"] for name, b in thresholds.items()})
        log_reference(reference, thresholds)
        return run.info.run_id


def read_domain(path: str | None) -> dict | None:
    """The JSON file of `--domain`, or None without one."""
    if not path:
        return None
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        raise OnboardError(f"--domain {path}: {exc}") from exc


def _columns(text: str | None) -> tuple[str, ...]:
    return tuple(c.strip() for c in (text or "").split(",") if c.strip())


def main(args) -> int:
    try:
        done = onboard(
            args.model_name,
            args.reference,
            args.target or None,
            args.version or None,
            args.alias or None,
            args.task,
            args.chunk_rows,
            segments=_columns(args.segments),
            sensitive=_columns(args.sensitive),
            domain=read_domain(args.domain),
        )
    except OnboardError as exc:
        print(f"error: {exc}\nnothing was attached to the model version", file=sys.stderr)
        return 2
    print(done.summary())
    for warning in done.warnings():
        print(warning, file=sys.stderr)
    return 0
