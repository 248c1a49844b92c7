"""gunicorn settings for modelwatch serving.

    gunicorn -c serving/gunicorn.conf.py "serving.app:create_app()"

Prometheus multiprocess mode: PROMETHEUS_MULTIPROC_DIR is set here, in the master, before
any worker imports prometheus_client; the directory is wiped when gunicorn starts, a dead
worker's live gauges are dropped in `child_exit`, and `/metrics` aggregates every
worker's files. Each worker builds its own app (no preload): its model poller and
prediction-log writer threads are its own, and `worker_exit` flushes the log on SIGTERM.
"""

import os
import shutil
import tempfile


def _bind_from_url(url: str) -> str:
    url = url.split("://", 1)[-1].rstrip("/")
    return url or "127.0.0.1:8000"


bind = os.environ.get("MODELWATCH_BIND") or _bind_from_url(
    os.environ.get("MODELWATCH_SERVING_URL", "127.0.0.1:8000"))
workers = int(os.environ.get("MODELWATCH_WORKERS", "2"))
worker_class = "gthread"
threads = int(os.environ.get("MODELWATCH_THREADS", "4"))
preload_app = False
timeout = int(os.environ.get("MODELWATCH_WORKER_TIMEOUT", "60"))
graceful_timeout = int(os.environ.get("MODELWATCH_GRACEFUL_TIMEOUT", "30"))
keepalive = 5
accesslog = os.environ.get("MODELWATCH_ACCESS_LOG") or None
loglevel = os.environ.get("MODELWATCH_LOG_LEVEL", "info")

_created_dir = False
if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="modelwatch-prometheus-")
    _created_dir = True
raw_env = [f"PROMETHEUS_MULTIPROC_DIR={os.environ['PROMETHEUS_MULTIPROC_DIR']}"]


def on_starting(server):
    path = os.environ["PROMETHEUS_MULTIPROC_DIR"]
    os.makedirs(path, exist_ok=True)
    for name in os.listdir(path):  # stale values of an earlier run would be summed in
        full = os.path.join(path, name)
        if os.path.isdir(full):
            shutil.rmtree(full, ignore_errors=True)
        else:
            os.unlink(full)


def post_fork(server, worker):
    import logging

    logging.basicConfig(
        level=getattr(logging, loglevel.upper(), logging.INFO),
        format="%(asctime)s [%(process)d] [%(levelname)s] %(name)s: %(message)s")


def child_exit(server, worker):
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


def worker_exit(server, worker):
    app = getattr(worker, "wsgi", None)
    state = getattr(app, "extensions", {}).get("modelwatch") if app is not None else None
    if state is not None:
        state.shutdown()


def on_exit(server):
    if _created_dir:
        shutil.rmtree(os.environ["PROMETHEUS_MULTIPROC_DIR"], ignore_errors=True)
