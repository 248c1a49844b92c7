"""The `main` entry point: train, log, register, gate.

    python -m modelwatch.training.train --data their.csv --target their_label \
        --model-name their-model

runs as `mlflow run . -P data=their.csv -P target=their_label ...` and by hand alike.
The task (binary, multiclass, regression) is `--task`, or inferred from the target
(`modelwatch.training.data.infer_task`: a numeric target with more than 20 distinct values is a
regression target, anything else class labels).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import skops.io
from mlflow import MlflowClient
from mlflow.models import infer_signature
from modelwatch.monitoring import registry
from modelwatch.monitoring.reference import MonitoringReference
from modelwatch.training import data as data_module
from modelwatch.training import evaluate, gate, pipeline
from sklearn.model_selection import train_test_split

from modelwatch import cost
from modelwatch.settings import default, read

# An optional column of per-row training weights (the retrain entry point weighs recent
# traffic up); never a feature.
WEIGHT_COLUMN = "__sample_weight__"
# Columns a later analysis reads per segment and per sensitive attribute (issue 13).
# Every run keeps the trusted labelled rows its gate judged on (rows of the user's own
# data, never of the feedback path): a retraining is judged on its champion's.
TRUSTED_ARTIFACT = "gate/trusted_holdout.parquet"


@dataclass(frozen=True)
class TrainConfig:
    model_name: str = default("MODELWATCH_MODEL_NAME")
    model_type: str = "gbm"
    seed: int = 42
    promote: str = "auto"
    trigger: str = "manual"
    min_score: str = "auto"
    tolerance: float = 0.01
    segments: tuple[str, ...] = ()
    sensitive: tuple[str, ...] = ()


@dataclass(frozen=True)
class Splits:
    train: pd.DataFrame
    calibration: pd.DataFrame  # fits the calibrator; the reference sample comes from here
    holdout: pd.DataFrame  # the gate's: neither candidate nor calibrator saw it


@dataclass(frozen=True)
class Outcome:
    run_id: str
    version: str
    alias: str
    decision: gate.Decision
    metrics: dict


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        _check_options(args)
        dataset = data_module.load(args.data, args.target, args.n_rows, args.seed, args.task)
        pipeline.check(args.model_type, dataset.task)
        config = TrainConfig(
            args.model_name,
            args.model_type,
            args.seed,
            args.promote,
            args.trigger,
            args.min_score,
            args.tolerance,
            data_module.column_list(args.segments, dataset, "--segments"),
            data_module.column_list(args.sensitive, dataset, "--sensitive"),
        )
        holdout = data_module.load_holdout(args.holdout, dataset) if args.holdout else None
    except (data_module.DataError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    outcome = run(dataset, config, holdout)
    report(outcome)
    return 0


def run(
    dataset: data_module.Dataset,
    config: TrainConfig,
    holdout: pd.DataFrame | None = None,
    reference: pd.DataFrame | None = None,
    trusted: pd.DataFrame | None = None,
) -> Outcome:
    """Train on `dataset`, log everything to one MLflow run, register and gate the version.

    The gate scores on `holdout` when given (labelled rows, the same columns), otherwise
    on a split of `dataset` that nothing trained on. `trusted` (a retraining's: rows the
    feedback path never wrote) is a second holdout the candidate must not lose on
    (`gate.review`); without it the holdout is the trusted one, the user's own data. The
    trusted rows are kept in the run (TRUSTED_ARTIFACT), so the next retraining is judged
    on them too. The drift reference is `reference` when given (the traffic the model is
    expected to see: for a retraining, the newest rows), otherwise the training rows.
    """
    splits = split(dataset, config.seed)
    if holdout is not None:
        splits = Splits(splits.train, splits.calibration, holdout)
    with mlflow.start_run() as active, cost.logged_to_mlflow():
        mlflow.set_tags(
            {
                "trigger": config.trigger,
                "data_digest": dataset.digest,
                "modelwatch.model_name": config.model_name,
            }
        )
        _log_params(dataset, config, splits)
        started = time.perf_counter()
        model = pipeline.build(
            config.model_type, dataset.numeric, dataset.categorical, config.seed, dataset.task
        )
        weights = (
            {"model__sample_weight": splits.train[WEIGHT_COLUMN].to_numpy()}
            if WEIGHT_COLUMN in splits.train
            else {}
        )
        model.fit(splits.train[dataset.features], splits.train[dataset.target], **weights)
        mlflow.log_metric("training_seconds", time.perf_counter() - started)

        holdout_metrics = _scores(model, splits.holdout, dataset)
        mlflow.log_metrics(holdout_metrics)
        _log_datasets(dataset, splits)
        # The monitoring reference; dataset.task tells it binary, multiclass or regression.
        monitoring_reference = _log_reference(dataset, splits, model, reference)
        version = _log_and_register(model, dataset, splits, config.model_name)
        registry.link_reference(
            MlflowClient(), monitoring_reference, config.model_name, version, active.info.run_id
        )
        decision = _judge(model, dataset, splits, config, holdout_metrics, version, trusted)
        alias = _apply(decision, config, version, dataset.digest)
        mlflow.log_dict(decision.to_dict(), "gate/decision.json")
        _log_trusted(splits.holdout if trusted is None else trusted)
        return Outcome(active.info.run_id, version, alias, decision, holdout_metrics)


def split(dataset: data_module.Dataset, seed: int) -> Splits:
    """70% train, 15% calibration, 15% holdout; stratified when every class allows it."""
    frame, y = dataset.frame, dataset.frame[dataset.target]
    stratify = y if not dataset.is_regression and y.value_counts().min() >= 4 else None
    train, rest = train_test_split(frame, test_size=0.3, random_state=seed, stratify=stratify)
    rest_y = rest[dataset.target]
    stratify = rest_y if stratify is not None and rest_y.value_counts().min() >= 2 else None
    calibration, holdout = train_test_split(
        rest, test_size=0.5, random_state=seed, stratify=stratify
    )
    return Splits(train, calibration, holdout)


def report(outcome: Outcome) -> None:
    d = outcome.decision
    print(
        f"run {outcome.run_id}: version {outcome.version} -> alias {outcome.alias}; "
        f"{d.metric}={d.candidate:.4f}; validation_status={d.status}"
    )


def _log_params(dataset, config: TrainConfig, splits: Splits) -> None:
    """The run's parameters; under `mlflow run` the project's own are logged already,
    and MLflow refuses to change a logged value, so those keys are left alone."""
    params = {
        "target": dataset.target,
        "task": dataset.task,
        "model_name": config.model_name,
        "model_type": config.model_type,
        "seed": config.seed,
        "promote": config.promote,
        "trigger": config.trigger,
        "min_score": config.min_score,
        "tolerance": config.tolerance,
        "data_source": dataset.source,
        "rows_used": len(dataset.frame),
        "n_train": len(splits.train),
        "n_calibration": len(splits.calibration),
        "n_holdout": len(splits.holdout),
        "numeric_features": ",".join(dataset.numeric),
        "categorical_features": ",".join(dataset.categorical),
        "segments": ",".join(config.segments),
        "sensitive": ",".join(config.sensitive),
    }
    logged = mlflow.get_run(mlflow.active_run().info.run_id).data.params
    mlflow.log_params({k: v for k, v in params.items() if k not in logged})


def _log_datasets(dataset, splits: Splits) -> None:
    source = dataset.source if Path(dataset.source).is_file() else None
    for context, frame in (("training", splits.train), ("evaluation", splits.holdout)):
        logged = mlflow.data.from_pandas(frame, source=source, targets=dataset.target, name=context)
        mlflow.log_input(logged, context=context)


def _log_reference(
    dataset, splits: Splits, model, reference: pd.DataFrame | None
) -> MonitoringReference:
    """The monitoring reference (monitoring/reference.py), under `reference/` in this run:
    held-out rows scored by the model with their labels, which the monitor's calculators
    are fitted on, and a profile of the inputs drift is measured against (the training
    rows, or `reference` when given: for a retraining, the newest traffic)."""
    held_out = splits.calibration if reference is None else reference
    rows = held_out[dataset.features]
    proba = classes = None
    if dataset.task == "regression":
        prediction = model.predict(rows)
    else:
        proba, classes = model.predict_proba(rows), model.classes_
        prediction = classes[proba.argmax(axis=1)]
    monitoring_reference = MonitoringReference.from_scores(
        rows,
        held_out[dataset.target],
        prediction,
        proba,
        classes,
        dataset.target,
        dataset.task,
        profile_rows=splits.train if reference is None else reference,
    )
    registry.log_reference(monitoring_reference)
    return monitoring_reference


def _log_and_register(model, dataset, splits: Splits, model_name: str) -> str:
    example = splits.train[dataset.features].head(5)
    signature = infer_signature(example, model.predict(example))
    info = mlflow.sklearn.log_model(
        model,
        name="model",
        signature=signature,
        input_example=example,
        registered_model_name=model_name,
        skops_trusted_types=own_types(model),
        pip_requirements=_model_requirements(),
    )
    return str(info.registered_model_version)


def _model_requirements() -> list[str]:
    """What the model needs to load, pinned to this environment. Stating it spares MLflow's
    inference, which imports the model in a subprocess (about 10 s a run)."""
    return [
        f"{name}=={metadata.version(name)}"
        for name in ("mlflow", "scikit-learn", "numpy", "pandas", "scipy", "skops")
    ]


def own_types(model) -> list[str]:
    """The types skops must be told to trust to load this model: we built it, so all of
    them. skops (MLflow's default format) refuses, unlike pickle, to run anything else."""
    return skops.io.get_untrusted_types(data=skops.io.dumps(model))


def _scores(model, frame: pd.DataFrame, dataset) -> dict[str, float]:
    """The metrics of `model` (the candidate, or the champion) on the labelled `frame`."""
    features, y = frame[dataset.features], frame[dataset.target]
    if dataset.is_regression:
        return evaluate.evaluate_regression(y, model.predict(features))
    return evaluate.evaluate(y, model.predict_proba(features), model.classes_)


def _judge(
    model,
    dataset,
    splits: Splits,
    config: TrainConfig,
    metrics: dict,
    version: str,
    trusted: pd.DataFrame | None,
) -> gate.Decision:
    metric = evaluate.primary_metric(dataset.task)
    champion_version, champion = _champion(config.model_name, version)
    champion_score = _champion_score(champion_version, champion, splits.holdout, dataset, metric)
    decision = gate.decide(
        metric,
        metrics[metric],
        _floor(config.min_score, metric, splits, dataset.target),
        config.tolerance,
        champion_score,
        champion_version if champion_score is not None else None,
    )
    if trusted is None:
        return decision
    trusted_score = _scores(model, trusted, dataset)[metric]
    mlflow.log_metric(f"trusted_{metric}", trusted_score)
    champion_trusted = _champion_score(
        champion_version, champion, trusted, dataset, metric, "champion_trusted_"
    )
    return gate.review(decision, trusted_score, champion_trusted)


def _champion(model_name: str, candidate_version: str):
    """The current production version and its model, or (None, None)."""
    client = MlflowClient()
    try:
        champion = client.get_model_version_by_alias(model_name, gate.PRODUCTION)
    except mlflow.exceptions.MlflowException:
        return None, None
    if champion.version == candidate_version:
        return None, None
    try:
        return champion.version, mlflow.sklearn.load_model(
            f"models:/{model_name}/{champion.version}"
        )
    except Exception as exc:  # not a model this gate can score
        print(
            f"warning: champion version {champion.version} cannot be loaded ({exc}); "
            "judging against the floor alone",
            file=sys.stderr,
        )
        return None, None


def _champion_score(
    champion_version, model, holdout, dataset, metric: str, prefix: str = "champion_"
):
    """The champion's score on `holdout`, or None."""
    if model is None:
        return None
    try:
        score = _scores(model, holdout, dataset)[metric]
    except Exception as exc:  # a champion trained on other columns cannot be compared
        print(
            f"warning: champion version {champion_version} cannot score this holdout ({exc}); "
            "judging against the floor alone",
            file=sys.stderr,
        )
        return None
    mlflow.log_metric(f"{prefix}{metric}", score)
    return score


def _log_trusted(rows: pd.DataFrame) -> None:
    """The trusted holdout, for the next retraining's gate (retrain.trusted_holdout)."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp, Path(TRUSTED_ARTIFACT).name)
        rows.drop(columns=[WEIGHT_COLUMN], errors="ignore").to_parquet(path, index=False)
        mlflow.log_artifact(str(path), str(Path(TRUSTED_ARTIFACT).parent))


def _floor(min_score: str, metric: str, splits: Splits, target: str) -> float:
    """`auto`: ROC AUC must reach 0.6; accuracy must beat always guessing the commonest
    class; RMSE must beat always predicting the training mean (a ceiling, see gate)."""
    if min_score != "auto":
        return float(min_score)
    y_holdout = splits.holdout[target]
    if metric == "roc_auc":
        return 0.6
    if metric == "rmse":
        mean = np.full(len(y_holdout), splits.train[target].mean())
        return evaluate.evaluate_regression(y_holdout, mean)["rmse"]
    return float(y_holdout.value_counts(normalize=True).max())


def _apply(decision: gate.Decision, config: TrainConfig, version: str, digest: str) -> str:
    client = MlflowClient()
    alias = gate.alias_for(decision, config.promote)
    for key, value in {
        "validation_status": decision.status,
        "trigger": config.trigger,
        "data_digest": digest,
        "gate_metric": decision.metric,
        "gate_score": f"{decision.candidate:.6f}",
        **_score_tags(decision),
        registry.TAG_SEGMENTS: ",".join(config.segments),
        registry.TAG_SENSITIVE: ",".join(config.sensitive),
    }.items():
        client.set_model_version_tag(config.model_name, version, key, value)
    client.set_registered_model_alias(config.model_name, alias, version)
    mlflow.set_tags(
        {"registered_version": version, "alias": alias, "validation_status": decision.status}
    )
    return alias


def _score_tags(decision: gate.Decision) -> dict:
    """What each holdout scored: the champion on recent traffic's, both on the trusted one."""
    scores = {
        "gate_champion_score": decision.champion,
        "gate_trusted_score": decision.trusted_candidate,
        "gate_champion_trusted_score": decision.trusted_champion,
    }
    return {key: f"{value:.6f}" for key, value in scores.items() if value is not None}


def _check_options(args: argparse.Namespace) -> None:
    """What can be checked before the data is read."""
    if args.task not in data_module.TASKS:
        raise ValueError(
            f"unknown task {args.task!r}; choose one of {', '.join(data_module.TASKS)}"
        )
    pipeline.check(args.model_type, args.task)
    gate.alias_for(gate.decide("x", 1.0, 0.0, 0.0), args.promote)  # raises on an unknown mode
    if args.min_score != "auto":
        try:
            float(args.min_score)
        except ValueError:
            raise ValueError(
                f"min_score must be a number or 'auto', not {args.min_score!r}"
            ) from None


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m modelwatch.training.train", description=__doc__.splitlines()[0]
    )
    p.add_argument("--data", default="", help="CSV or Parquet file; empty for the simulator")
    p.add_argument("--target", default="defaulted")
    p.add_argument("--model-name", default=read("MODELWATCH_MODEL_NAME"))
    p.add_argument(
        "--task", default="auto", help="auto (from the target), binary, multiclass or regression"
    )
    p.add_argument(
        "--model-type", default="gbm", help="gbm, logreg or rf; for regression gbm, rf or linear"
    )
    p.add_argument(
        "--n-rows",
        type=lambda v: int(float(v)),
        default=20_000,
        help="rows drawn from the simulator",
    )
    p.add_argument("--holdout", default="", help="trusted labelled rows the gate scores on")
    p.add_argument("--seed", type=lambda v: int(float(v)), default=42)
    p.add_argument("--promote", default="auto", help="auto, always or never")
    p.add_argument("--trigger", default="manual", help="why this run: an alert, or manual")
    p.add_argument("--min-score", default="auto", help="the gate's floor on its metric, or auto")
    p.add_argument(
        "--tolerance",
        type=float,
        default=0.01,
        help="how far below the champion is not worse (for an error metric, a share of its error)",
    )
    p.add_argument(
        "--segments", default="", help="comma list of feature columns to report per segment"
    )
    p.add_argument("--sensitive", default="", help="comma list of sensitive feature columns")
    return p


if __name__ == "__main__":
    sys.exit(main())
