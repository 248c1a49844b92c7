"""Serving latency and throughput: modelwatch serving vs `mlflow models serve`.

Run: ``.venv/bin/python -m bench.serving`` (``--quick`` for fewer requests).

Both serve the same registered model (the training entry point's, on 2,000 simulator
rows) with two workers on this machine, and get the same `POST /invocations` requests
(`dataframe_records`, 1 and 100 rows) from a few client threads. modelwatch also
validates every request against the signature, logs every prediction (SQLite, off the
request thread) and counts its metrics; `mlflow models serve` only scores. Both answers
are checked to agree. Latency percentiles are per request, as the client saw them.
Results go to ``bench/results/serving.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results" / "serving.json"
VENV_BIN = Path(sys.executable).parent
MODEL = "credit-default-bench"


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait(url: str, proc: subprocess.Popen, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args[:3]} exited with {proc.returncode}")
        try:
            if requests.get(url, timeout=2).ok:
                return
        except requests.RequestException:
            pass
        time.sleep(0.3)
    raise TimeoutError(url)


def _start(args: list[str], log: Path, env: dict) -> subprocess.Popen:
    with open(log, "ab") as out:
        return subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, cwd=ROOT,
                                env={**os.environ, **env}, start_new_session=True)


def _stop(proc: subprocess.Popen) -> None:
    import signal

    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def load(url: str, body: dict, requests_total: int, threads: int) -> dict:
    """Send `requests_total` POSTs from `threads` keep-alive clients; latency in ms."""
    latencies: list[float] = []
    errors = [0]
    lock = threading.Lock()
    counter = iter(range(requests_total))
    payload = json.dumps(body)
    headers = {"Content-Type": "application/json"}

    def client():
        session = requests.Session()
        while True:
            with lock:
                if next(counter, None) is None:
                    return
            start = time.perf_counter()
            try:
                ok = session.post(url, data=payload, headers=headers, timeout=30).ok
            except requests.RequestException:
                ok = False
            elapsed = (time.perf_counter() - start) * 1000.0
            with lock:
                if ok:
                    latencies.append(elapsed)
                else:
                    errors[0] += 1

    workers = [threading.Thread(target=client) for _ in range(threads)]
    start = time.perf_counter()
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    wall = time.perf_counter() - start
    latencies.sort()

    def pct(p: float) -> float:
        return latencies[min(len(latencies) - 1, int(round(p / 100 * (len(latencies) - 1))))]

    return {"requests": requests_total, "errors": errors[0], "threads": threads,
            "requests_per_second": len(latencies) / wall,
            "p50_ms": pct(50), "p95_ms": pct(95), "p99_ms": pct(99),
            "mean_ms": statistics.fmean(latencies)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--threads", type=int, default=4)
    args = parser.parse_args(argv)
    n_requests = 200 if args.quick else 1000

    sys.path.insert(0, str(ROOT))
    from serving.cli import gunicorn_argv
    from training.simulator import FEATURES, generate

    tmp = Path(tempfile.mkdtemp(prefix="modelwatch-bench-serving-"))
    procs: list[subprocess.Popen] = []
    try:
        mlflow_port = _free_port()
        tracking = f"http://127.0.0.1:{mlflow_port}"
        procs.append(_start([str(VENV_BIN / "mlflow"), "server", "--backend-store-uri",
                             f"sqlite:///{tmp / 'mlflow.db'}", "--artifacts-destination",
                             str(tmp / "artifacts"), "--host", "127.0.0.1", "--port",
                             str(mlflow_port), "--workers", "1"], tmp / "mlflow.log", {}))
        _wait(f"{tracking}/health", procs[-1])
        env = {"MLFLOW_TRACKING_URI": tracking}
        subprocess.run([sys.executable, "-m", "training.train", "--n-rows", "2000",
                        "--model-name", MODEL, "--promote", "always"], cwd=ROOT, check=True,
                       env={**os.environ, **env}, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)

        ours_port, peer_port = _free_port(), _free_port()
        procs.append(_start(gunicorn_argv(2, ours_port, "127.0.0.1"), tmp / "ours.log", {
            **env, "MODELWATCH_MODEL_NAME": MODEL,
            "MODELWATCH_STORE_URL": f"sqlite:///{tmp / 'predictions.db'}",
            "MODELWATCH_SPILL_DIR": str(tmp / "spill"),
            "MODELWATCH_MODEL_CACHE_DIR": str(tmp / "cache"),
            "PROMETHEUS_MULTIPROC_DIR": str(tmp / "prometheus")}))
        procs.append(_start([str(VENV_BIN / "mlflow"), "models", "serve", "-m",
                             f"models:/{MODEL}@production", "--env-manager", "local",
                             "--host", "127.0.0.1", "--port", str(peer_port),
                             "--workers", "2"], tmp / "peer.log",
                            {**env, "MLFLOW_ALLOW_PICKLE_DESERIALIZATION": "true",
                             # it execs `uvicorn` from PATH
                             "PATH": f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}"}))
        ours = f"http://127.0.0.1:{ours_port}"
        peer = f"http://127.0.0.1:{peer_port}"
        _wait(f"{ours}/ready", procs[1])
        _wait(f"{peer}/ping", procs[2])
        time.sleep(5)  # let every worker of both finish loading

        results = []
        for rows in (1, 100):
            frame = generate(rows, seed=rows)[FEATURES]
            body = {"dataframe_records": frame.to_dict(orient="records")}
            a = requests.post(f"{ours}/invocations", json=body, timeout=30).json()
            b = requests.post(f"{peer}/invocations", json=body, timeout=30).json()
            agree = a["predictions"] == b["predictions"]
            entry = {"rows_per_request": rows, "predictions_agree": agree}
            for name, url in (("modelwatch", ours), ("mlflow_models_serve", peer)):
                load(f"{url}/invocations", body, max(20, n_requests // 10), args.threads)
                entry[name] = load(f"{url}/invocations", body, n_requests, args.threads)
            entry["throughput_ratio"] = (entry["modelwatch"]["requests_per_second"]
                                         / entry["mlflow_models_serve"]["requests_per_second"])
            results.append(entry)
            print(json.dumps(entry, indent=2))
        logged = requests.get(f"{ours}/metrics", timeout=10).text
        doc = {
            "benchmark": "serving: modelwatch (gunicorn gthread, 2 workers, validation + "
                         "prediction log + metrics) vs `mlflow models serve` (2 workers)",
            "python": platform.python_version(), "cpus": os.cpu_count(),
            "machine": platform.machine(),
            "timestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "client": f"{args.threads} keep-alive threads on the same machine",
            "results": results,
            "modelwatch_prediction_log": [line for line in logged.splitlines()
                                          if line.startswith(
                                              "modelwatch_prediction_log_records_total")],
        }
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        RESULTS.write_text(json.dumps(doc, indent=2) + "\n")
        print(f"wrote {RESULTS}")
        return 0
    finally:
        for proc in reversed(procs):
            _stop(proc)


if __name__ == "__main__":
    sys.exit(main())
