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
# gunicorn's control socket defaults to one path per user: two servers would fight over it.
control_socket_disable = True
accesslog = os.environ.get("MODELWATCH_ACCESS_LOG") or None
loglevel = os.environ.get("MODELWATCH_LOG_LEVEL", "info")

_created_dir = False
if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="modelwatch-prometheus-")
    _created_dir = True
raw_env = [f"PROMETHEUS_MULTIPROC_DIR={os.environ['PROMETHEUS_MULTIPROC_DIR']}"]


def on_starting(server):
    # One OpenMP team per core in all: N workers each spinning up a team of every core
    # (scikit-learn's tree ensembles predict with OpenMP) oversubscribe the machine.
    if not os.environ.get("OMP_NUM_THREADS"):
        per_worker = max(1, (os.cpu_count() or 1) // max(1, server.cfg.workers))
        os.environ["OMP_NUM_THREADS"] = str(per_worker)
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


def post_worker_init(worker):
    """Bound the gthread worker's graceful shutdown by live requests, not idle clients.

    gunicorn 26's gthread worker, once told to stop, waits in select() for up to the whole
    graceful_timeout while any connection is open, and only closes expired keep-alive
    connections after select returns: one idle keep-alive client holds the worker for
    the full timeout, and the master's SIGKILL at that moment would beat our prediction
    log flush in worker_exit. Here the wait is sliced and idle keep-alive connections are
    closed as soon as the worker stops; requests in flight still finish.
    """
    wait = getattr(worker, "wait_for_and_dispatch_events", None)
    if wait is None or not hasattr(worker, "keepalived_conns"):
        return

    def wait_while_stopping(timeout):
        if not worker.alive:
            for conn in list(worker.keepalived_conns):
                conn.timeout = 0  # idle: murder_keepalived closes it right after this
            timeout = min(timeout, 0.25)
        return wait(timeout)

    worker.wait_for_and_dispatch_events = wait_while_stopping


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
