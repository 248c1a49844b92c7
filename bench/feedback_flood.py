"""/predict's latency under a flood of /feedback for unknown ids, as a ratio to without it.

Run: ``.venv/bin/python -m bench.feedback_flood`` (``--quick``: 2 rounds of 4 s).

One real gunicorn (serving/gunicorn.conf.py, 2 workers x 4 threads, SQLite log,
MODELWATCH_FEEDBACK_WAIT at its default of 1 s) serves a small registered model. One
client thread (``bench.loadgen``, its own process) sends one-row ``POST /predict``
requests back to back: alone ("quiet"), while 16 client threads (another process) loop
on ``POST /feedback`` with one id the log does not hold, each sending one request every
2 s (8 requests/s, the rate issue 23 saw: "paced"), and while the same 16 send back to
back ("closed"). The three alternate over the rounds, so the machine's other load hits
all alike; the results are /predict's median latency in each and the ratios to quiet
(goal for paced: within 1.5x). When every request with an unknown id held a worker thread
for the whole wait, the paced flood took /predict's median from 6 ms to 2,970 ms (issue
23). Closed, the flood is as many requests as two cores answer: /predict then shares the
CPU, as under any flood of cheap requests. Loopback only; every loop is bounded by its
seconds. ``--app`` serves another gunicorn app spec (a before/after comparison).
Results go to ``bench/results/feedback_flood.json``.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import requests

from bench.common import (
    RESULTS,
    ROOT,
    START_TIMEOUT,
    environment,
    mlflow_server,
    start,
    stop,
    write_results,
)
from tests.services import free_port, wait_http
from tests.serving import modelkit

MODEL = "credit-default-flood"
OUTPUT = RESULTS / "feedback_flood.json"
FLOODERS = 16
FLOODS = {"paced": 2.0, "closed": 0.0}  # seconds between one flooder's requests


def serve(tmp: Path, tracking: str, app: str) -> tuple[subprocess.Popen, str]:
    port = free_port()
    proc = start(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "--config",
            str(ROOT / "serving" / "gunicorn.conf.py"),
            "--workers",
            "2",
            "--threads",
            "4",
            "--bind",
            f"127.0.0.1:{port}",
            app,
        ],
        tmp / "gunicorn.log",
        {
            "MLFLOW_TRACKING_URI": tracking,
            "MODELWATCH_MODEL_NAME": MODEL,
            "MLFLOW_ALLOW_PICKLE_DESERIALIZATION": "true",
            "OMP_NUM_THREADS": "1",
            "MODELWATCH_STORE_URL": f"sqlite:///{tmp / 'predictions.db'}",
            "MODELWATCH_SPILL_DIR": str(tmp / "spill"),
            "MODELWATCH_MODEL_CACHE_DIR": str(tmp / "cache"),
            "MODELWATCH_LOG_LEVEL": "warning",
            "PROMETHEUS_MULTIPROC_DIR": str(tmp / "prometheus"),
        },
    )
    url = f"http://127.0.0.1:{port}"
    wait_http(f"{url}/ready", START_TIMEOUT, proc)
    return proc, url


def loadgen(url: str, body: Path, threads: int, seconds: float) -> subprocess.Popen:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "bench.loadgen",
            url,
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
        stdout=subprocess.PIPE,
    )


def finish(proc: subprocess.Popen) -> dict:
    out, _ = proc.communicate(timeout=300)
    assert proc.returncode == 0, out
    return json.loads(out)


def flood(url: str, seconds: float, interval: float) -> multiprocessing.Process:
    """FLOODERS threads in a process of their own, each posting one unknown id every
    `interval` seconds (0: back to back) for `seconds`."""
    proc = multiprocessing.Process(target=_flood, args=(url, seconds, interval), daemon=True)
    proc.start()
    return proc


def _flood(url: str, seconds: float, interval: float) -> None:
    body = {"feedback": [{"prediction_id": "no-such-id", "label": 1}]}
    end = time.monotonic() + seconds

    def client(i: int) -> None:
        session = requests.Session()
        due = time.monotonic() + interval * i / FLOODERS  # spread over the interval
        while due < end:
            time.sleep(max(0.0, due - time.monotonic()))
            session.post(url, json=body, timeout=60)
            due = max(due + interval, time.monotonic()) if interval else time.monotonic()

    threads = [threading.Thread(target=client, args=(i,)) for i in range(FLOODERS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def measure(url: str, tmp: Path, rounds: int, seconds: float) -> dict:
    predict = tmp / "predict.json"
    predict.write_text(json.dumps({"records": modelkit.feature_rows(1)}))
    runs: dict[str, list[dict]] = {mode: [] for mode in ("quiet", *FLOODS)}
    for _ in range(rounds):
        for mode in runs:
            flooding = (
                flood(f"{url}/feedback", seconds + 2, FLOODS[mode]) if mode in FLOODS else None
            )
            runs[mode].append(finish(loadgen(f"{url}/predict", predict, 1, seconds)))
            if flooding is not None:
                flooding.join(120)
    out = {
        f"{mode}_p50_ms": statistics.median(r["p50_ms"] for r in rs) for mode, rs in runs.items()
    }
    out["predict_errors"] = sum(r["errors"] for rs in runs.values() for r in rs)
    for mode in FLOODS:
        out[f"{mode}_vs_quiet_p50"] = out[f"{mode}_p50_ms"] / out["quiet_p50_ms"]
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2 rounds of 4 s")
    parser.add_argument("--app", default="modelwatch.serving.app:create_app()")
    parser.add_argument("--output", type=Path, default=OUTPUT)
    args = parser.parse_args(argv)
    rounds, seconds = (2, 4.0) if args.quick else (4, 8.0)
    with tempfile.TemporaryDirectory(prefix="bench-flood-") as name:
        tmp = Path(name)
        mlflow, tracking = mlflow_server(tmp)
        server = None
        try:
            modelkit.register_version(tracking, MODEL, seed=1, alias="production")
            server, url = serve(tmp, tracking, args.app)
            result = measure(url, tmp, rounds, seconds)
        finally:
            if server is not None:
                stop(server)
            stop(mlflow)
    doc = {
        "environment": environment(),
        "app": args.app,
        "rounds": rounds,
        "seconds_per_round": seconds,
        "flooders": FLOODERS,
        "workers": 2,
        "threads": 4,
        "feedback_wait_seconds": 1.0,
        "seconds_between_paced_requests": FLOODS["paced"],
        "result": result,
    }
    print(json.dumps(result, indent=2))
    write_results(args.output, doc)
    return 0


if __name__ == "__main__":
    sys.exit(main())
