"""Soak: steady traffic against real gunicorn serving; does anything grow?

Run: ``.venv/bin/python -m bench.soak`` (``--minutes 10``, ``--rate 40``). Not part of
``bench.run`` unless asked (``--with-soak``): it takes its full duration.

One MLflow server, the training entry point's model, modelwatch serving under gunicorn
(2 workers, SQLite prediction log, Prometheus multiprocess dir), and a paced client
process: ``--rate`` POST /predict a second (alternately 1 and 20 records), feedback for
every prediction of every other request, and a /metrics scrape every 15 s, as Prometheus
would. Every 30 s: the RSS of the master and of each worker, the size and file count of
the Prometheus multiprocess directory, and the size of the prediction log. Growth is
reported from the first sample (after a 30 s warm-up) to the last, and as a slope over
the second half (what a leak would show; allocator warm-up is over by then).

Results go to ``bench/results/soak.json``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import requests

from bench.common import (
    RESULTS,
    START_TIMEOUT,
    environment,
    mlflow_server,
    process_tree,
    rss_mib,
    start,
    stop,
    train,
)
from tests.services import free_port, wait_http

OUTPUT = RESULTS / "soak.json"
MODEL = "credit-default-soak"


def drive(url: str, rate: float, seconds: float, stats: dict, stop_event: threading.Event) -> None:
    """Paced traffic from this thread (the sampler is another thread, mostly asleep)."""
    from modelwatch.training.simulator import FEATURES, TARGET, generate

    pool = generate(20_000, seed=5)
    records = pool[FEATURES].to_dict(orient="records")
    labels = pool[TARGET].tolist()
    session = requests.Session()
    interval = 1.0 / rate
    t0 = time.monotonic()
    i, pos, next_scrape = 0, 0, t0
    while not stop_event.is_set():
        now = time.monotonic()
        if now - t0 >= seconds:
            return
        due = t0 + i * interval
        if due > now:
            time.sleep(due - now)
        n = 1 if i % 2 == 0 else 20
        batch = records[pos : pos + n]
        batch_labels = labels[pos : pos + n]
        pos = (pos + n) % (len(records) - 20)
        try:
            r = session.post(f"{url}/predict", json={"records": batch}, timeout=30)
            stats["requests"] += 1
            if r.status_code != 200:
                stats["errors"] += 1
            elif i % 4 == 1:
                ids = r.json()["prediction_ids"]
                f = session.post(
                    f"{url}/feedback",
                    json={
                        "feedback": [
                            {"prediction_id": pid, "label": int(y)}
                            for pid, y in zip(ids, batch_labels)
                        ]
                    },
                    timeout=30,
                )
                stats["feedback"] += 1
                stats["errors"] += f.status_code != 200
            if time.monotonic() >= next_scrape:
                session.get(f"{url}/metrics", timeout=30)
                stats["scrapes"] += 1
                next_scrape += 15
        except requests.RequestException:
            stats["errors"] += 1
        i += 1


def dir_stats(path: Path) -> tuple[int, float]:
    files = [p for p in path.rglob("*") if p.is_file()]
    return len(files), sum(p.stat().st_size for p in files) / 2**20


def slope_per_min(ts: list[float], ys: list[float]) -> float:
    if len(ts) < 2:
        return 0.0
    return float(np.polyfit(np.asarray(ts) / 60.0, np.asarray(ys), 1)[0])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--rate", type=float, default=40.0, help="requests a second")
    parser.add_argument("--interval", type=float, default=30.0, help="seconds between samples")
    parser.add_argument("--output", type=Path, default=OUTPUT)
    args = parser.parse_args(argv)
    from modelwatch.cli.serve import gunicorn_argv

    tmp = Path(tempfile.mkdtemp(prefix="modelwatch-bench-soak-"))
    prom = tmp / "prometheus"
    db = tmp / "predictions.db"
    procs: list[subprocess.Popen] = []
    info = environment()
    try:
        mlflow_proc, tracking = mlflow_server(tmp)
        procs.append(mlflow_proc)
        train(tracking, MODEL)
        port = free_port()
        serving = start(
            gunicorn_argv(2, port, "127.0.0.1"),
            tmp / "serving.log",
            {
                "MLFLOW_TRACKING_URI": tracking,
                "MODELWATCH_MODEL_NAME": MODEL,
                "MODELWATCH_STORE_URL": f"sqlite:///{db}",
                "MODELWATCH_SPILL_DIR": str(tmp / "spill"),
                "MODELWATCH_MODEL_CACHE_DIR": str(tmp / "cache"),
                "PROMETHEUS_MULTIPROC_DIR": str(prom),
                "MODELWATCH_LOG_LEVEL": "warning",
            },
        )
        procs.append(serving)
        url = f"http://127.0.0.1:{port}"
        wait_http(f"{url}/ready", START_TIMEOUT, serving)
        time.sleep(3)

        stats = {"requests": 0, "errors": 0, "feedback": 0, "scrapes": 0}
        stop_event = threading.Event()
        seconds = args.minutes * 60
        driver = threading.Thread(
            target=drive, args=(url, args.rate, seconds, stats, stop_event), daemon=True
        )
        driver.start()
        t0 = time.monotonic()
        samples = []
        while True:
            time.sleep(max(0.0, t0 + (len(samples) + 1) * args.interval - time.monotonic()))
            pids = process_tree(serving.pid)
            workers = [p for p in pids if p != serving.pid]
            files, size = dir_stats(prom)
            sample = {
                "t": round(time.monotonic() - t0, 1),
                "requests": stats["requests"],
                "master_rss_mib": rss_mib(serving.pid),
                "workers": {str(p): rss_mib(p) for p in workers},
                "workers_rss_mib": sum(rss_mib(p) or 0 for p in workers),
                "prometheus_files": files,
                "prometheus_mib": size,
                "prediction_log_mib": sum(p.stat().st_size for p in tmp.glob("predictions.db*"))
                / 2**20,
            }
            samples.append(sample)
            print(
                f"  t={sample['t']:>5.0f}s requests {sample['requests']:>6} workers "
                f"{sample['workers_rss_mib']:.1f} MiB  prometheus {files} files "
                f"{size:.2f} MiB  log {sample['prediction_log_mib']:.1f} MiB",
                flush=True,
            )
            if not driver.is_alive() or time.monotonic() - t0 >= seconds:
                break
        stop_event.set()
        driver.join(10)

        first, last = samples[0], samples[-1]
        half = [s for s in samples if s["t"] >= seconds / 2]
        worker_sets = {tuple(sorted(s["workers"])) for s in samples}
        doc = {
            "benchmark": "soak: modelwatch serving under gunicorn, steady traffic",
            **info,
            "command": ".venv/bin/python -m bench.soak",
            "minutes": args.minutes,
            "rate_requests_per_second": args.rate,
            "traffic": "POST /predict alternately 1 and 20 records; feedback for every other "
            "request's predictions; /metrics every 15 s",
            "achieved_requests_per_second": stats["requests"] / seconds,
            **stats,
            "worker_pids_stable": len(worker_sets) == 1,
            "growth": {
                "workers_rss_mib": last["workers_rss_mib"] - first["workers_rss_mib"],
                "workers_rss_mib_per_min_second_half": slope_per_min(
                    [s["t"] for s in half], [s["workers_rss_mib"] for s in half]
                ),
                "master_rss_mib": (last["master_rss_mib"] or 0) - (first["master_rss_mib"] or 0),
                "prometheus_files": last["prometheus_files"] - first["prometheus_files"],
                "prometheus_mib": last["prometheus_mib"] - first["prometheus_mib"],
                "prediction_log_mib": last["prediction_log_mib"] - first["prediction_log_mib"],
            },
            "samples": samples,
        }
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(json.dumps(doc, indent=2) + "\n")
        g = doc["growth"]
        print(
            f"workers RSS {first['workers_rss_mib']:.1f} -> {last['workers_rss_mib']:.1f} MiB "
            f"({g['workers_rss_mib_per_min_second_half']:+.2f} MiB/min over the second half); "
            f"prometheus dir {first['prometheus_files']} -> {last['prometheus_files']} files, "
            f"{first['prometheus_mib']:.2f} -> {last['prometheus_mib']:.2f} MiB; errors {stats['errors']}"
        )
        print(f"written to {args.output}")
        return 0 if stats["errors"] == 0 else 1
    finally:
        for proc in reversed(procs):
            stop(proc)


if __name__ == "__main__":
    sys.exit(main())
