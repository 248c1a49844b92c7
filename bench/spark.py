"""monitor-batch on Spark local[2] vs the local engine vs the in-process monitor vs Evidently.

Run: ``.venv/bin/python -m bench.spark --rows 1000000 10000000`` (``--engines`` to choose
among inprocess, local, spark, evidently; ``--spark-only N`` adds a Spark-only size).

For each size a prediction log of N rows x 30 feature columns (24 numeric, 6
categorical; a binary model's prediction and probability; half the rows labelled; three
columns drifted) is written once as an export lays it out (a Parquet file an hour, a
million rows an hour). Each engine then judges all of it in a process of its own, so
that its peak memory is its own:

- ``inprocess``: the online monitor's way, the rows read into one pandas frame and
  `evaluate`d (docs/DESIGN.md, "How the monitor judges a window");
- ``local``: ``monitor-batch --engine local``'s computation, a file at a time;
- ``spark``: ``monitor-batch --engine spark`` on ``local[2]``, from the Parquet;
- ``evidently``: Evidently's DataDriftPreset on the reference and the rows' features.

Peak memory is the driver process's peak RSS (VmHWM), and for Spark also the JVM's
(read before the session stops); the executors' Python workers are not counted.
Agreement: every verdict (each metric's alert, the drifted columns, the dataset verdict)
of each engine against the in-process one; Evidently's per-column verdicts against ours.
Results go to ``bench/results/spark.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

RESULTS = Path(__file__).resolve().parent / "results" / "spark.json"
NUMERIC, CATEGORICAL = 24, 6
ROWS_PER_HOUR = 1_000_000
REFERENCE_ROWS = 20_000
START = 1_764_576_000  # an hour boundary
DRIFTED = ("n0", "n1", "c0")


def frame(rows: int, seed: int, drift: bool) -> pd.DataFrame:
    """Features, the model's prediction and probability, and labels for half the rows."""
    rng = np.random.default_rng(seed)
    data = {}
    for i in range(NUMERIC):
        shift = 0.5 if drift and f"n{i}" in DRIFTED else 0.0
        column = (
            rng.normal(shift, 1.0, rows)
            if i % 3
            else np.round(rng.lognormal(3 + shift, 0.5, rows), 1)
        )
        data[f"n{i}"] = column
    for i in range(CATEGORICAL):
        k = 5 + 3 * i
        p = np.arange(1, k + 1, dtype=float)
        if drift and f"c{i}" in DRIFTED:
            p = p[::-1]
        data[f"c{i}"] = np.array([f"v{j}" for j in range(k)], dtype=object)[
            rng.choice(k, rows, p=p / p.sum())
        ]
    out = pd.DataFrame(data)
    score = 0.8 * out["n1"] - 0.6 * out["n2"] + 0.3 * (out["c1"] == "v0")
    p = 1 / (1 + np.exp(-score.to_numpy()))
    out["prediction"] = (p > 0.5).astype(int).astype(str)
    out["probability"] = p
    truth = (rng.uniform(size=rows) < p).astype(int).astype(str)
    out["label"] = np.where(rng.uniform(size=rows) < 0.5, truth, None)
    return out


def reference():
    from modelwatch.monitoring.reference import MonitoringReference

    ref = frame(REFERENCE_ROWS, 0, drift=False)
    features = ref.drop(columns=["prediction", "probability", "label"])
    p = ref["probability"].to_numpy()
    truth = (np.random.default_rng(1).uniform(size=len(p)) < p).astype(int)
    return MonitoringReference.from_scores(
        features,
        truth,
        ref["prediction"].astype(int),
        np.column_stack([1 - p, p]),
        classes=[0, 1],
        target="y",
    )


def write_log(root: Path, rows: int) -> None:
    """The log as the export lays it out: a file an hour under model and version."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from modelwatch.log.lake import FILE_NAME, partition_dir

    for hour, start in enumerate(range(0, rows, ROWS_PER_HOUR)):
        n = min(ROWS_PER_HOUR, rows - start)
        part = frame(n, 100 + hour, drift=True)
        part["ts"] = pd.to_datetime(
            START + hour * 3600 + np.arange(n) * (3600 / n), unit="s", utc=True
        )
        directory = Path(partition_dir(str(root), "bench", "1", START // 3600 + hour))
        directory.mkdir(parents=True, exist_ok=True)
        pq.write_table(pa.Table.from_pandas(part, preserve_index=False), directory / FILE_NAME)


# -- one engine, in a process of its own ------------------------------------------------------------
def child(engine: str, log: Path, reference_dir: Path) -> dict:
    from modelwatch.monitoring.reference import MonitoringReference
    from modelwatch.monitoring.suite import fit_calculators

    ref = MonitoringReference.load(reference_dir)
    calculators = fit_calculators(ref, 2000)
    started = time.perf_counter()
    jvm = jvm_started = None
    if engine == "evidently":
        verdicts = _evidently(ref, log)
    elif engine == "spark":
        from modelwatch.monitoring.batch import spark

        session = spark.session(
            "local[2]", spark_driver_memory="2g", spark_sql_shuffle_partitions="2"
        )
        jvm_started = time.perf_counter() - started  # the JVM's start, a fixed cost of each run
        window = spark.judge(
            spark.read_export(session, str(log), "bench", "1"), "1", calculators, ref
        )
        jvm = _jvm_peak()
        session.stop()
        verdicts = _verdicts(window)
    elif engine == "local":
        from modelwatch.monitoring.batch import local

        verdicts = _verdicts(
            local.judge("1", calculators, ref, local.parts(str(log), "bench", "1"))
        )
    else:
        from modelwatch.monitoring.batch.local import parquet_parts
        from modelwatch.monitoring.window import evaluate

        rows = pd.concat(
            list(parquet_parts(str(log), "bench", "1")), ignore_index=True
        )  # the monitor reads a window whole
        verdicts = _verdicts(evaluate("1", calculators, ref, rows))
    return {
        "engine": engine,
        "seconds": time.perf_counter() - started,
        "driver_peak_mb": _peak_mb(Path("/proc/self/status")),
        "jvm_peak_mb": jvm,
        "session_start_seconds": jvm_started,
        "verdicts": verdicts,
    }


def _verdicts(window) -> dict:
    from modelwatch.monitoring.calculators.classification import LIVE_ROC_AUC
    from modelwatch.monitoring.calculators.inputs import DriftDetails

    bounds = window.details_of(DriftDetails).error_bounds
    return {
        "alerts": {f"{m.name}{dict(m.labels)}": m.alert for m in window.metrics},
        "drifted": sorted(n for n, c in window.drift["columns"].items() if c["drifted"]),
        "dataset_drift": bool(window.drift["dataset_drift"]),
        "rows": window.rows,
        "statistics": {n: c["statistic"] for n, c in window.drift["columns"].items()},
        "largest_error_bound": max(bounds.values(), default=0.0),
        "auc_error_bound": next(
            (
                r.details.error_bounds.get(LIVE_ROC_AUC.name, 0.0)
                for r in window.results
                if r.get(LIVE_ROC_AUC.name)
            ),
            0.0,
        ),
    }


def _evidently(ref, log: Path) -> dict:
    import warnings

    from modelwatch.monitoring.batch.local import parquet_parts
    from modelwatch.monitoring.report import evidently_drift

    rows = pd.concat(list(parquet_parts(str(log), "bench", "1")), ignore_index=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        found = evidently_drift(ref.sample[ref.features], rows[ref.features])
    return {
        "drifted": sorted(n for n, c in found["columns"].items() if c["drifted"]),
        "dataset_drift": bool(found["dataset_drift"]),
        "rows": len(rows),
    }


def _peak_mb(status: Path) -> float:
    """A process's peak RSS (VmHWM). Not getrusage's ru_maxrss: that survives exec, so a
    child would report its parent's peak (the one that generated the rows)."""
    line = next(line for line in status.read_text().splitlines() if line.startswith("VmHWM:"))
    return int(line.split()[1]) / 1024


def _jvm_peak() -> float | None:
    """Peak RSS (MB) of the JVM this process started (py4j's child `java`)."""
    for pid in Path("/proc").iterdir():
        try:
            status = (pid / "status").read_text()
        except (OSError, ValueError):
            continue
        fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
        if fields.get("Name", "").strip() == "java" and fields.get("PPid", "").strip() == str(
            os.getpid()
        ):
            return _peak_mb(pid / "status")
    return None


# -- the comparison -----------------------------------------------------------------------------
def agreement(result: dict, baseline: dict) -> dict:
    mine, theirs = result["verdicts"], baseline["verdicts"]
    out = {
        "drifted": mine["drifted"] == theirs["drifted"],
        "dataset_drift": mine["dataset_drift"] == theirs["dataset_drift"],
    }
    if "alerts" in mine:
        shared = set(mine["alerts"]) & set(theirs["alerts"])
        out["alerts"] = (
            f"{sum(mine['alerts'][k] == theirs['alerts'][k] for k in shared)}/{len(theirs['alerts'])}"
        )
    return out


def run_size(rows: int, engines: list[str], tmp: Path) -> list[dict]:
    log, reference_dir = tmp / f"log-{rows}", tmp / "reference"
    if not reference_dir.exists():
        reference().save(reference_dir)
    started = time.perf_counter()
    write_log(log, rows)
    print(f"{rows:,} rows written in {time.perf_counter() - started:.0f} s", flush=True)
    results = []
    for engine in engines:
        command = [
            sys.executable,
            "-m",
            "bench.spark",
            "--child",
            engine,
            "--log",
            str(log),
            "--reference",
            str(reference_dir),
        ]
        done = subprocess.run(
            command, capture_output=True, text=True, cwd=Path(__file__).resolve().parent.parent
        )
        if done.returncode != 0:
            results.append({"engine": engine, "rows": rows, "error": done.stderr[-2000:]})
            print(f"{engine}: failed\n{done.stderr[-2000:]}", flush=True)
            continue
        result = json.loads(done.stdout.strip().splitlines()[-1]) | {
            "rows": rows,
            "load": os.getloadavg()[0],
        }
        results.append(result)
        jvm = "" if result["jvm_peak_mb"] is None else f", JVM {result['jvm_peak_mb']:.0f} MB"
        print(
            f"{rows:,} {engine}: {result['seconds']:.1f} s, driver {result['driver_peak_mb']:.0f} MB{jvm}",
            flush=True,
        )
    baseline = next((r for r in results if r["engine"] == "inprocess" and "error" not in r), None)
    for result in results:
        if baseline is not None and "error" not in result and result is not baseline:
            result["agreement_with_inprocess"] = agreement(result, baseline)
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="*", default=[1_000_000, 10_000_000])
    parser.add_argument("--engines", default="inprocess,local,spark,evidently")
    parser.add_argument("--spark-only", type=int, nargs="*", default=[])
    parser.add_argument("--child")
    parser.add_argument("--log", type=Path)
    parser.add_argument("--reference", type=Path)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(child(args.child, args.log, args.reference)))
        return 0
    results = []
    with tempfile.TemporaryDirectory(prefix="bench-spark-") as tmp:
        for rows in args.rows:
            results += run_size(rows, args.engines.split(","), Path(tmp))
        for rows in args.spark_only:
            results += run_size(rows, ["spark"], Path(tmp))
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(
        json.dumps(
            {
                "benchmark": "monitor-batch: spark local[2] vs local vs in-process vs evidently",
                "machine": platform.platform(),
                "cpus": os.cpu_count(),
                "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                "results": results,
            },
            indent=1,
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
