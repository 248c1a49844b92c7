"""Many serving replicas on one PostgreSQL prediction log: 1, 2 and 4 instances.

Run: ``.venv/bin/python -m bench.replicas`` (``--instances 1,2,4 --rows 1,100``,
``--quick``: 2 rounds).

One MLflow server and the training entry point's model (as bench/serving.py), one
throwaway PostgreSQL cluster (tests/serving/pgcluster.py: fsync and synchronous commit
off, so the store's CPU is priced and not a disk), and four `modelwatch serve` instances
(real gunicorn, serving/gunicorn.conf.py, 2 workers x 4 threads each, every one on its own
port and writing the same log). A configuration of N instances sends the load
generator's 8 keep-alive connections to the first N of them in turn (bench/loadgen.py,
closed loop). The configurations are measured in alternating rounds, so the machine's
other load hits all alike. After each round the bench waits until PostgreSQL holds a row
for every prediction answered with 200 (warm-up included), then reads the CPU seconds of
each instance's process tree and of PostgreSQL's (the postmaster's tree) from /proc.
At the end the instances are stopped (SIGTERM: the writers drain) and the rows counted
again: lost = answered - stored, and no spill file may be left.

This machine has 2 cores: 4 instances on it measure contention for the cores, not
scale-out. What carries over is CPU per prediction (of an instance, of the store) and
the store's share of all the CPU a prediction costs.

Results go to ``bench/results/replicas.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from bench.common import (
    RESULTS,
    ROOT,
    START_TIMEOUT,
    cpu_seconds,
    environment,
    mlflow_server,
    process_tree,
    start,
    stop,
    train,
    write_results,
)
from tests.services import free_port, wait_for, wait_http
from tests.serving.pgcluster import Cluster

MODEL = "credit-default-replicas"
OUTPUT = RESULTS / "replicas.json"
FLUSH_TIMEOUT = 120  # seconds for every answered prediction to be in PostgreSQL


def launch(tmp: Path, tracking: str, store_url: str, count: int) -> list[tuple[str, object]]:
    """`count` serving instances on one store: [(base url, process)]."""
    from modelwatch.cli.serve import gunicorn_argv

    out = []
    for i in range(count):
        port, home = free_port(), tmp / f"instance-{i}"
        proc = start(
            gunicorn_argv(2, port, "127.0.0.1"),
            tmp / f"instance-{i}.log",
            {
                "MLFLOW_TRACKING_URI": tracking,
                "MODELWATCH_MODEL_NAME": MODEL,
                "MODELWATCH_STORE_URL": store_url,
                "MODELWATCH_SPILL_DIR": str(home / "spill"),
                "MODELWATCH_MODEL_CACHE_DIR": str(home / "cache"),
                "OMP_NUM_THREADS": "1",
                "PROMETHEUS_MULTIPROC_DIR": str(home / "prometheus"),
                "MODELWATCH_LOG_LEVEL": "warning",
            },
        )
        out.append((f"http://127.0.0.1:{port}", proc))
    for url, proc in out:
        wait_http(url + "/ready", START_TIMEOUT, proc)
    return out


def postmaster_pid(cluster: Cluster) -> int:
    return int((cluster.data / "postmaster.pid").read_text().split()[0])


def loadgen(urls: list[str], body: Path, threads: int, seconds: float) -> dict:
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench.loadgen",
            ",".join(urls),
            str(body),
            "--threads",
            str(threads),
            "--seconds",
            str(seconds),
            "--warmup",
            "1",
            "--summary",
        ],
        cwd=ROOT,
        check=True,
        capture_output=True,
    )
    return json.loads(out.stdout)


def store_pids(pg_pid: int, own_backend: int) -> list[int]:
    """PostgreSQL's processes but the bench's own backend (its counting is no store cost)."""
    return [p for p in process_tree(pg_pid) if p != own_backend]


def one_round(instances, n: int, rows: int, body: Path, store, pg: tuple, args) -> dict:
    """N instances under load for one round; CPU read once the log holds every row."""
    used = instances[:n]
    trees = [process_tree(proc.pid) for _, proc in used]
    pg_tree = store_pids(*pg)
    before = store.count()
    cpu0, pg0 = [cpu_seconds(t) for t in trees], cpu_seconds(pg_tree)
    run = loadgen([url + "/predict" for url, _ in used], body, args.threads, args.seconds)
    expected = before + run["all_ok"] * rows
    wait_for(lambda: store.count() >= expected, FLUSH_TIMEOUT, "the writers to flush", poll=0.25)
    cpu = [cpu_seconds(t) - c for t, c in zip(trees, cpu0)]
    # Backends that exited since are in the postmaster's reaped-children time.
    pg_cpu = cpu_seconds(sorted(set(store_pids(*pg)) | set(pg_tree))) - pg0
    stored = store.count() - before
    predictions = [k * rows for k in run["all_ok_by_url"]]
    return {
        "instances": n,
        "rows_per_request": rows,
        "predictions_per_second": run["requests_per_second"] * rows,
        "p50_ms": run["p50_ms"],
        "p99_ms": run["p99_ms"],
        "errors": run["errors"],
        "answered_predictions": run["all_ok"] * rows,
        "stored_predictions": stored,
        "instance_cpu_ms_per_prediction": [1000 * c / max(1, p) for c, p in zip(cpu, predictions)],
        "serving_cpu_ms_per_prediction": 1000 * sum(cpu) / max(1, sum(predictions)),
        "store_cpu_ms_per_prediction": 1000 * pg_cpu / max(1, sum(predictions)),
        "store_share": pg_cpu / max(1e-9, pg_cpu + sum(cpu)),
    }


def summarize(runs: list[dict]) -> dict:
    """Medians over the rounds of one configuration."""
    med = {
        k: statistics.median(r[k] for r in runs)
        for k in (
            "predictions_per_second",
            "serving_cpu_ms_per_prediction",
            "store_cpu_ms_per_prediction",
            "store_share",
            "p50_ms",
            "p99_ms",
        )
    }
    per_instance = [
        statistics.median(r["instance_cpu_ms_per_prediction"][i] for r in runs)
        for i in range(runs[0]["instances"])
    ]
    return {
        "instances": runs[0]["instances"],
        "rows_per_request": runs[0]["rows_per_request"],
        **med,
        "instance_cpu_ms_per_prediction": per_instance,
        "rounds_predictions_per_second": [round(r["predictions_per_second"], 1) for r in runs],
        "answered_predictions": sum(r["answered_predictions"] for r in runs),
        "stored_predictions": sum(r["stored_predictions"] for r in runs),
        "errors": sum(r["errors"] for r in runs),
    }


def report(entries: list[dict]) -> None:
    base = {e["rows_per_request"]: e for e in entries if e["instances"] == 1}
    for e in entries:
        b = base[e["rows_per_request"]]
        e["throughput_vs_1"] = e["predictions_per_second"] / b["predictions_per_second"]
        e["serving_cpu_vs_1"] = (
            e["serving_cpu_ms_per_prediction"] / b["serving_cpu_ms_per_prediction"]
        )
        print(
            f"  {e['rows_per_request']:>3} rows/request, {e['instances']} instance(s): "
            f"{e['predictions_per_second']:8.1f} predictions/s ({e['throughput_vs_1']:.2f}x), "
            f"serving {e['serving_cpu_ms_per_prediction']:.3f} ms CPU/prediction "
            f"(per instance {', '.join(f'{x:.3f}' for x in e['instance_cpu_ms_per_prediction'])}), "
            f"store {e['store_cpu_ms_per_prediction']:.3f} ms ({100 * e['store_share']:.1f}%), "
            f"stored {e['stored_predictions']:,}/{e['answered_predictions']:,}",
            flush=True,
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--instances", default="1,2,4")
    parser.add_argument("--rows", default="1,100", help="records per request")
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=6.0)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--quick", action="store_true", help="2 rounds of 4 s")
    parser.add_argument("--output", type=Path, default=OUTPUT)
    args = parser.parse_args(argv)
    if args.quick:
        args.seconds, args.rounds = 4.0, 2
    counts = [int(x) for x in args.instances.split(",")]
    sizes = [int(x) for x in args.rows.split(",")]

    from modelwatch.training.simulator import FEATURES, generate

    from modelwatch.log import open_store

    tmp = Path(tempfile.mkdtemp(prefix="modelwatch-bench-replicas-"))
    info = environment()
    procs, cluster = [], Cluster().init()
    try:
        cluster.start()
        mlflow_proc, tracking = mlflow_server(tmp)
        procs.append(mlflow_proc)
        train(tracking, MODEL)
        instances = launch(tmp, tracking, cluster.url, max(counts))
        procs.extend(proc for _, proc in instances)
        store = open_store(cluster.url)
        own = store._run(lambda conn: conn.execute("SELECT pg_backend_pid()").fetchone()[0])
        pg = (postmaster_pid(cluster), own)
        entries = []
        for rows in sizes:
            body = tmp / f"body-{rows}.json"
            body.write_text(
                json.dumps(
                    {
                        "records": json.loads(
                            generate(rows, seed=rows)[FEATURES].to_json(orient="records")
                        )
                    }
                )
            )
            runs = {n: [] for n in counts}
            for r in range(args.rounds):
                for n in counts[r % len(counts) :] + counts[: r % len(counts)]:
                    runs[n].append(one_round(instances, n, rows, body, store, pg, args))
            entries += [summarize(runs[n]) for n in counts]
        answered = sum(e["answered_predictions"] for e in entries)
        for _, proc in instances:  # SIGTERM: every writer drains before its worker exits
            stop(proc)
        stored = store.count()
        spilled = [str(p) for p in tmp.glob("instance-*/spill/*.jsonl")]
        store.close()
        report(entries)
        print(
            f"answered {answered:,} predictions, PostgreSQL holds {stored:,} rows; "
            f"lost {answered - stored}; spill files left: {len(spilled)}"
        )
        doc = {
            "benchmark": "replicas: 1, 2 and 4 modelwatch serving instances on one "
            "PostgreSQL prediction log",
            **info,
            "loadavg_at_end": os.getloadavg()[0],
            "command": ".venv/bin/python -m bench.replicas",
            "client": f"bench.loadgen: {args.threads} keep-alive threads over the instances, "
            f"closed loop; {args.rounds} rounds of {args.seconds:g} s per configuration",
            "instance": "modelwatch serve (gunicorn, 2 workers x 4 threads)",
            "results": entries,
            "answered_predictions": answered,
            "stored_predictions": stored,
            "lost_predictions": answered - stored,
            "spill_files_left": spilled,
        }
        write_results(args.output, doc)
        return 0 if answered == stored and not spilled else 1
    finally:
        for proc in reversed(procs):
            stop(proc)
        cluster.destroy()


if __name__ == "__main__":
    sys.exit(main())
