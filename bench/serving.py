"""Serving throughput and latency: modelwatch vs a bare Flask app vs `mlflow models serve`.

Run: ``.venv/bin/python -m bench.serving`` (``--quick``: shorter measurements).

All serve the same registered model (the training entry point's gbm pipeline, 20,000
simulator rows) from one MLflow server, with two workers each:

* ``modelwatch``: serving/ under gunicorn (gthread, 2 workers x 4 threads), monitoring
  on: signature validation, the prediction log (SQLite, its own writer thread) and the
  Prometheus metrics (multiprocess files); ``POST /predict``.
* ``modelwatch_nolog``: the same app with the prediction log's submit a no-op
  (``bench.apps:modelwatch_nolog_app``): what the log costs.
* ``modelwatch_sklearn``: the same app with ``MODELWATCH_COMPILE_MODEL=0``: sklearn's
  ``predict_proba`` on a DataFrame instead of the compiled pipeline.
* ``bare``: a hand-written Flask app under the same gunicorn worker model
  (``bench.apps:bare_app``): ``mlflow.sklearn.load_model``, ``predict_proba`` on a
  DataFrame of the records, predictions and probabilities back; ``POST /predict``.
* ``flask_floor``: a Flask app under the same gunicorn settings that parses the records
  and answers a constant (``bench.apps:floor_app``): the least any Flask-under-gunicorn
  server can do per request. Its answers are not compared.
* ``mlflow_models_serve``: ``mlflow models serve --workers 2``; ``POST /invocations``
  with the same records as ``dataframe_records``.

OMP_NUM_THREADS=1 for every server, so that no one's OpenMP team fights another's over
the two cores. The load generator (``bench.loadgen``) is a separate process of 8
keep-alive client threads on loopback, closed loop. Servers are measured one at a time,
in 8 short rounds (3 s each) that rotate their order, so bursts of the machine's other
load hit all alike;
requests per second is the median over rounds, latency percentiles are over all
measured requests. Only ratios mean anything on a shared machine.
Results go to ``bench/results/serving.json``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests

from bench.common import (
    RESULTS,
    ROOT,
    START_TIMEOUT,
    VENV_BIN,
    cpu_seconds,
    environment,
    mlflow_server,
    process_tree,
    start,
    stop,
    train,
    write_results,
)
from tests.services import free_port, wait_http

MODEL = "credit-default-bench"
OUTPUT = RESULTS / "serving.json"
SERVERS = (
    "modelwatch",
    "modelwatch_nolog",
    "modelwatch_sklearn",
    "bare",
    "flask_floor",
    "mlflow_models_serve",
)
# (a, b): the results give a / b as "a_vs_b", in requests per second and in CPU.
COMPARED = (
    ("modelwatch", "bare"),
    ("modelwatch", "mlflow_models_serve"),
    ("modelwatch_nolog", "bare"),
    ("modelwatch", "modelwatch_nolog"),
    ("modelwatch", "modelwatch_sklearn"),
    ("modelwatch_sklearn", "bare"),
    ("bare", "mlflow_models_serve"),
    ("flask_floor", "mlflow_models_serve"),
)


def _gunicorn(conf: Path, app: str, port: int) -> list[str]:
    return [
        sys.executable,
        "-m",
        "gunicorn",
        "--config",
        str(conf),
        "--workers",
        "2",
        "--threads",
        "4",
        "--bind",
        f"127.0.0.1:{port}",
        app,
    ]


def launch(tmp: Path, tracking: str) -> tuple[dict, dict]:
    """Start the servers; {name: (base url, path, body key, ready path)} and
    {name: process}."""
    base_env = {
        "MLFLOW_TRACKING_URI": tracking,
        "MODELWATCH_MODEL_NAME": MODEL,
        "MLFLOW_ALLOW_PICKLE_DESERIALIZATION": "true",
        "OMP_NUM_THREADS": "1",
        "PATH": f"{VENV_BIN}:/usr/bin:/bin",
    }
    conf = ROOT / "serving" / "gunicorn.conf.py"
    servers, procs = {}, []
    for name, app, compile_model in (
        ("modelwatch", "modelwatch.serving.app:create_app()", "1"),
        ("modelwatch_nolog", "bench.apps:modelwatch_nolog_app()", "1"),
        ("modelwatch_sklearn", "modelwatch.serving.app:create_app()", "0"),
    ):
        port = free_port()
        procs.append(
            start(
                _gunicorn(conf, app, port),
                tmp / f"{name}.log",
                {
                    **base_env,
                    "MODELWATCH_COMPILE_MODEL": compile_model,
                    "MODELWATCH_STORE_URL": f"sqlite:///{tmp / name / 'predictions.db'}",
                    "MODELWATCH_SPILL_DIR": str(tmp / name / "spill"),
                    "MODELWATCH_MODEL_CACHE_DIR": str(tmp / name / "cache"),
                    "MODELWATCH_LOG_LEVEL": "warning",
                    "PROMETHEUS_MULTIPROC_DIR": str(tmp / name / "prometheus"),
                },
            )
        )
        servers[name] = (f"http://127.0.0.1:{port}", "/predict", "records", "/ready")
    port = free_port()
    procs.append(
        start(
            _gunicorn(ROOT / "bench" / "gunicorn_bare.py", "bench.apps:bare_app()", port),
            tmp / "bare.log",
            base_env,
        )
    )
    servers["bare"] = (f"http://127.0.0.1:{port}", "/predict", "records", "/ready")
    port = free_port()
    procs.append(
        start(
            _gunicorn(ROOT / "bench" / "gunicorn_bare.py", "bench.apps:floor_app()", port),
            tmp / "flask_floor.log",
            base_env,
        )
    )
    servers["flask_floor"] = (f"http://127.0.0.1:{port}", "/predict", "records", "/ready")
    port = free_port()
    procs.append(
        start(
            [
                str(VENV_BIN / "mlflow"),
                "models",
                "serve",
                "-m",
                f"models:/{MODEL}@production",
                "--env-manager",
                "local",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--workers",
                "2",
            ],
            tmp / "mlflow_models_serve.log",
            base_env,
        )
    )
    servers["mlflow_models_serve"] = (
        f"http://127.0.0.1:{port}",
        "/invocations",
        "dataframe_records",
        "/ping",
    )
    for (url, _, _, ready), proc in zip(servers.values(), procs):
        wait_http(url + ready, START_TIMEOUT, proc)
    return servers, dict(zip(servers, procs))


def loadgen(url: str, body_file: Path, threads: int, seconds: float) -> dict:
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench.loadgen",
            url,
            str(body_file),
            "--threads",
            str(threads),
            "--seconds",
            str(seconds),
            "--warmup",
            "1",
        ],
        cwd=ROOT,
        check=True,
        capture_output=True,
    )
    return json.loads(out.stdout)


def pct(values: list[float], p: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2 rounds of 3 s")
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--output", type=Path, default=OUTPUT)
    args = parser.parse_args(argv)
    if args.quick:
        args.seconds, args.rounds = 3.0, 2

    from modelwatch.training.simulator import FEATURES, generate

    tmp = Path(tempfile.mkdtemp(prefix="modelwatch-bench-serving-"))
    procs: list[subprocess.Popen] = []
    env_info = environment()
    try:
        mlflow_proc, tracking = mlflow_server(tmp)
        procs.append(mlflow_proc)
        train(tracking, MODEL)
        servers, started = launch(tmp, tracking)
        procs.extend(started.values())
        time.sleep(3)
        engines = {
            name: requests.get(url + "/model", timeout=10).json()["engine"]
            for name, (url, *_) in servers.items()
            if name.startswith("modelwatch")
        }
        print("engines: " + ", ".join(f"{k} {v}" for k, v in engines.items()))

        results = []
        for rows in (1, 100):
            records = json.loads(generate(rows, seed=rows)[FEATURES].to_json(orient="records"))
            bodies, answers = {}, {}
            for name, (url, path, key, _) in servers.items():
                bodies[name] = tmp / f"body-{name}-{rows}.json"
                bodies[name].write_text(json.dumps({key: records}))
                answers[name] = requests.post(
                    url + path,
                    data=bodies[name].read_bytes(),
                    headers={"Content-Type": "application/json"},
                    timeout=30,
                ).json()["predictions"]
            agree = all(
                a == answers["bare"] for name, a in answers.items() if name != "flask_floor"
            )
            runs: dict[str, list[dict]] = {name: [] for name in servers}
            for r in range(args.rounds):
                order = list(servers)[r % len(servers) :] + list(servers)[: r % len(servers)]
                for name in order:
                    url, path, _, _ = servers[name]
                    tree = process_tree(started[name].pid)
                    cpu0 = cpu_seconds(tree)
                    run = loadgen(url + path, bodies[name], args.threads, args.seconds)
                    cpu = cpu_seconds(tree) - cpu0
                    # CPU per request: the warm-up second's requests burn CPU too, so
                    # divide by every request the run made, measured or not.
                    run["cpu_ms_per_request"] = 1000.0 * cpu / max(1, run["all_requests"])
                    runs[name].append(run)
            entry = {"rows_per_request": rows, "predictions_agree": agree}
            for name, rs in runs.items():
                lat = [x for run in rs for x in run["latencies_ms"]]
                entry[name] = {
                    "requests_per_second": statistics.median(r["requests_per_second"] for r in rs),
                    "rps_per_round": [round(r["requests_per_second"], 1) for r in rs],
                    "p50_ms": pct(lat, 50),
                    "p99_ms": pct(lat, 99),
                    "cpu_ms_per_request": statistics.median(r["cpu_ms_per_request"] for r in rs),
                    "requests": len(lat),
                    "errors": sum(r["errors"] for r in rs),
                }
            rps = {name: entry[name]["requests_per_second"] for name in servers}
            cpu = {name: entry[name]["cpu_ms_per_request"] for name in servers}
            # Requests per second ours over theirs; server CPU per request theirs over ours:
            # the throughput ratio a CPU-bound machine would settle at, and much less noisy
            # than req/s on a shared one.
            entry["ratios"] = {f"{a}_vs_{b}": rps[a] / rps[b] for a, b in COMPARED}
            entry["cpu_ratios"] = {f"{a}_vs_{b}": cpu[b] / cpu[a] for a, b in COMPARED}
            results.append(entry)
            print(f"{rows} rows/request (predictions agree: {agree})")
            for name in servers:
                e = entry[name]
                print(
                    f"  {name:<20} {e['requests_per_second']:8.1f} req/s  p50 {e['p50_ms']:7.2f} ms"
                    f"  p99 {e['p99_ms']:7.2f} ms  cpu {e['cpu_ms_per_request']:6.2f} ms/req"
                    f"  errors {e['errors']}"
                )
            print("  req/s: " + "  ".join(f"{k} {v:.2f}x" for k, v in entry["ratios"].items()))
            print("  cpu:   " + "  ".join(f"{k} {v:.2f}x" for k, v in entry["cpu_ratios"].items()))

        metrics = requests.get(servers["modelwatch"][0] + "/metrics", timeout=10).text
        doc = {
            "benchmark": "serving: modelwatch vs bare Flask+gunicorn vs `mlflow models serve` "
            "(2 workers each, same registered model)",
            **env_info,
            "loadavg_at_end": __import__("os").getloadavg()[0],
            "client": f"bench.loadgen: {args.threads} keep-alive threads, closed loop, "
            f"separate process; {args.rounds} rounds of {args.seconds:g} s per server",
            "command": ".venv/bin/python -m bench.serving",
            "modelwatch_engines": engines,
            "results": [{k: v for k, v in e.items()} for e in results],
            "modelwatch_prediction_log": [
                line
                for line in metrics.splitlines()
                if line.startswith("modelwatch_prediction_log_records_total")
            ],
        }
        write_results(args.output, doc)
        return 0
    finally:
        for proc in reversed(procs):
            stop(proc)


if __name__ == "__main__":
    sys.exit(main())
