"""The `batch_score` entry point: score a file with the production model.

    python -m modelwatch.training.batch_score --data new.parquet --output scored.parquet \
        --pushgateway 127.0.0.1:9091

The output is the input with `prediction` and `probability` columns added. With a
Pushgateway, the job's metrics are pushed there, since a batch job is gone before
Prometheus could scrape it.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
from modelwatch.training import data as data_module
from prometheus_client import CollectorRegistry, Gauge, push_to_gateway

from modelwatch.settings import read

JOB = "modelwatch_batch_score"


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    started = time.time()
    try:
        frame = data_module.read_table(args.data)
        model = _load(args.model_name, args.alias)
        scored = score(model, frame)
    except (data_module.DataError, mlflow.exceptions.MlflowException, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        _push(
            args.pushgateway, args.model_name, started, rows=0, positive_rate=float("nan"), ok=False
        )
        return 2
    _write(scored, Path(args.output))
    positive_rate = float(np.mean(scored["prediction"] == model.classes_[-1]))
    _push(
        args.pushgateway,
        args.model_name,
        started,
        rows=len(scored),
        positive_rate=positive_rate,
        ok=True,
    )
    print(f"scored {len(scored)} rows of {args.data} -> {args.output}")
    return 0


def score(model, frame: pd.DataFrame) -> pd.DataFrame:
    """`frame` with the model's `prediction` and `probability` (positive or top class)."""
    features = list(model.feature_names_in_)
    missing = [c for c in features if c not in frame.columns]
    if missing:
        raise ValueError(f"the data lacks the model's feature columns: {', '.join(missing)}")
    proba = model.predict_proba(_cast_like_training(frame[features]))
    out = frame.copy()
    out["prediction"] = model.classes_[proba.argmax(axis=1)]
    out["probability"] = proba[:, 1] if proba.shape[1] == 2 else proba.max(axis=1)
    return out


def _cast_like_training(features: pd.DataFrame) -> pd.DataFrame:
    numeric = features.select_dtypes("number").columns
    return features.astype({c: "float64" for c in numeric})


def _load(model_name: str, alias: str):
    return mlflow.sklearn.load_model(f"models:/{model_name}@{alias}")


def _write(frame: pd.DataFrame, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix.lower() in {".parquet", ".pq"}:
        frame.to_parquet(path, index=False)
    else:
        frame.to_csv(path, index=False)


def _push(
    gateway: str, model_name: str, started: float, rows: int, positive_rate: float, ok: bool
) -> None:
    if not gateway:
        return
    registry = CollectorRegistry()
    labels = {"model": model_name}
    Gauge(
        "modelwatch_batch_rows_scored",
        "Rows scored by the last batch job.",
        list(labels),
        registry=registry,
    ).labels(**labels).set(rows)
    Gauge(
        "modelwatch_batch_duration_seconds",
        "Wall time of the last batch job.",
        list(labels),
        registry=registry,
    ).labels(**labels).set(time.time() - started)
    Gauge(
        "modelwatch_batch_positive_rate",
        "Share of rows predicted positive.",
        list(labels),
        registry=registry,
    ).labels(**labels).set(positive_rate)
    Gauge(
        "modelwatch_batch_success",
        "1 if the last batch job succeeded.",
        list(labels),
        registry=registry,
    ).labels(**labels).set(int(ok))
    if ok:
        Gauge(
            "modelwatch_batch_last_success_timestamp_seconds",
            "When a batch job last succeeded.",
            list(labels),
            registry=registry,
        ).labels(**labels).set_to_current_time()
    try:
        push_to_gateway(gateway, job=JOB, registry=registry, grouping_key=labels, timeout=10)
    except OSError as exc:  # the scores are written; a missing gateway must not fail the job
        print(f"warning: could not push metrics to {gateway}: {exc}", file=sys.stderr)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m modelwatch.training.batch_score", description=__doc__.splitlines()[0]
    )
    p.add_argument("--data", required=True, help="CSV or Parquet file to score")
    p.add_argument(
        "--output", required=True, help="where to write the scored rows (CSV or Parquet)"
    )
    p.add_argument("--pushgateway", default="", help="host:port of a Pushgateway, or empty")
    p.add_argument("--model-name", default=read("MODELWATCH_MODEL_NAME"))
    p.add_argument("--alias", default=read("MODELWATCH_MODEL_ALIAS"))
    return p


if __name__ == "__main__":
    sys.exit(main())
