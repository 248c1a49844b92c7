"""gunicorn settings for modelwatch serving.

    gunicorn -c serving/gunicorn.conf.py "modelwatch.serving.app:create_app()"

Prometheus multiprocess mode: PROMETHEUS_MULTIPROC_DIR is set here, in the master, before
any worker imports prometheus_client; the directory is wiped when gunicorn starts, a dead
worker's live gauges are dropped in `child_exit`, and `/metrics` aggregates every
worker's files. Each worker builds its own app (no preload): its model poller and
prediction-log writer threads are its own, and `worker_exit` flushes the log on SIGTERM.
"""

import os
import shutil
import sys
import tempfile

from modelwatch.serving.config import Config
from modelwatch.settings import read


def _bind_from_url(url: str) -> str:
    return url.split("://", 1)[-1].rstrip("/")


# Every worker builds its serving Config from this environment: a bad value is refused
# here, once, in one line, instead of a traceback from each worker.
try:
    Config.from_env()
    bind = read("MODELWATCH_BIND") or _bind_from_url(read("MODELWATCH_SERVING_URL"))
    workers = read("MODELWATCH_WORKERS")
    threads = read("MODELWATCH_THREADS")
    timeout = read("MODELWATCH_WORKER_TIMEOUT")
    graceful_timeout = read("MODELWATCH_GRACEFUL_TIMEOUT")
    # Seconds a worker thread waits for the next bytes of a request (headers or body) or
    # for the client to take the answer. gunicorn's `timeout` only restarts a worker that
    # stopped answering the master; in the gthread worker it never fires on a slow client,
    # and a dozen connections that send part of a request and stall would hold every thread.
    read_timeout = read("MODELWATCH_READ_TIMEOUT")
    accesslog = read("MODELWATCH_ACCESS_LOG")
    loglevel = read("MODELWATCH_LOG_LEVEL")
except ValueError as exc:
    sys.exit(f"error: {exc}")  # SystemExit passes through gunicorn's config loader
worker_class = "gthread"
preload_app = False
keepalive = 5
# gunicorn's control socket defaults to one path per user: two servers would fight over it.
control_socket_disable = True

_created_dir = False
if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="modelwatch-prometheus-")
    _created_dir = True
raw_env = [f"PROMETHEUS_MULTIPROC_DIR={os.environ['PROMETHEUS_MULTIPROC_DIR']}"]


def on_starting(server):
    _refuse_open_write_paths(server)
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


def _refuse_open_write_paths(server):
    """The bind is final only here (`--bind` on the command line wins over this file)."""
    from modelwatch.tokens import SERVING_TOKENS, ExposedWithoutTokens, check_exposure

    try:
        warning = check_exposure("serving", server.cfg.bind, SERVING_TOKENS)
    except ExposedWithoutTokens as exc:
        on_exit(server)
        sys.exit(f"error: {exc}")
    if warning:
        server.log.warning("%s", warning)


def post_fork(server, worker):
    import logging

    from modelwatch.redaction import redact_credentials

    class Redacting(logging.Formatter):
        # Tracebacks too: an exception's text may carry a URL with user:password in it.
        def format(self, record):
            return redact_credentials(super().format(record))

    logging.basicConfig(level=getattr(logging, loglevel.upper(), logging.INFO))
    for handler in logging.getLogger().handlers:
        handler.setFormatter(Redacting(
            "%(asctime)s [%(process)d] [%(levelname)s] %(name)s: %(message)s"))


def post_worker_init(worker):
    _bound_graceful_shutdown(worker)
    _bound_socket_reads(worker)
    _wait_for_the_first_model(worker)
    _export_pool_size(worker)


def _export_pool_size(worker):
    """Busy threads are judged against the pool's size, and only gunicorn knows it."""
    app = getattr(worker, "wsgi", None)
    state = getattr(app, "extensions", {}).get("modelwatch") if app is not None else None
    if state is not None:
        state.metrics.worker_threads.set(worker.cfg.threads)


def _wait_for_the_first_model(worker):
    """Accept no connection before the first model load has been tried.

    A worker that replaces a dead one would otherwise take its share of the connections
    at once and answer 503 (no model yet) for the seconds the load takes, while the
    other workers serve. Waiting here keeps its listener out of the game until then:
    its model is loaded, or the first attempt failed (then /ready says why). Bounded
    well inside the master's worker timeout.
    """
    import time

    app = getattr(worker, "wsgi", None)
    state = getattr(app, "extensions", {}).get("modelwatch") if app is not None else None
    if state is None:
        return
    models = state.models
    deadline = time.monotonic() + max(1.0, worker.cfg.timeout / 2)
    while models.current is None and models.last_error is None and worker.alive \
            and time.monotonic() < deadline:
        models.ready.wait(0.05)


def _bound_socket_reads(worker):
    """Give every blocking read and write on a client socket the `read_timeout`.

    The gthread worker switches a connection's socket to blocking (no timeout at all)
    before it parses the request; here "blocking" means blocking for at most
    `read_timeout` seconds. A stalled client then costs a thread that long, not forever:
    the parser or the app's body read fails, and the connection is closed.
    """
    import socket

    handle = getattr(worker, "handle", None)
    if handle is None or read_timeout <= 0:
        return

    class TimedSocket(socket.socket):
        __slots__ = ()

        def setblocking(self, flag):
            if flag:
                self.settimeout(read_timeout)
            else:
                super().setblocking(False)

    def handle_with_timeout(conn):
        sock = getattr(conn, "sock", None)
        if type(sock) is socket.socket:
            sock.__class__ = TimedSocket
        return handle(conn)

    worker.handle = handle_with_timeout


def _bound_graceful_shutdown(worker):
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
