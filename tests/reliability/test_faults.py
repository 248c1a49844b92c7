"""Faults under load, with real processes: a gunicorn worker SIGKILLed mid-traffic, the
MLflow server stopped and started again on the same port and backend, and the spill
directory's disk full while the prediction store is down."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import pytest
import requests

from modelwatch.log import open_store
from tests import services
from tests.reliability.conftest import ADMIN_TOKEN, serving_env
from tests.serving import modelkit
from tests.serving.conftest import gunicorn, metric_total
from tests.serving.modelkit import feature_rows

pytestmark = pytest.mark.slow
ROWS = feature_rows(3, seed=21)
URI_PASSWORD = "uri-pw-2e9b7d4c1a"


def worker_pids(master: int) -> set[int]:
    path = Path(f"/proc/{master}/task/{master}/children")
    return {int(p) for p in path.read_text().split()} if path.exists() else set()


def requests_total(url: str) -> float:
    text = requests.get(f"{url}/metrics", timeout=10).text
    return metric_total(text, "modelwatch_http_requests_total")


# -- a worker killed -----------------------------------------------------------------------


def test_sigkill_a_worker_under_load_loses_no_acknowledged_feedback(server, model):
    """Clients predict and send feedback; one worker is SIGKILLed. Every feedback id the
    server answered as accepted is labelled in the store afterwards, the request counter
    of /metrics never goes back (a dead worker's counts stay in the sum), and the
    replacement worker answers no 503 while it loads its model."""
    url = server.url
    stop = threading.Event()
    acknowledged: dict[str, int] = {}
    failures: list[str] = []
    totals: list[float] = []
    lock = threading.Lock()

    def client(seed: int):
        session = requests.Session()
        label = seed % 2
        while not stop.is_set():
            try:
                r = session.post(f"{url}/predict", json={"records": ROWS}, timeout=10)
                if r.status_code != 200:
                    failures.append(f"predict {r.status_code}")
                    continue
                ids = r.json()["prediction_ids"]
                fb = session.post(
                    f"{url}/feedback",
                    timeout=10,
                    json={"feedback": [{"prediction_id": i, "label": label} for i in ids]},
                )
            except requests.RequestException as exc:  # the killed worker's connections
                failures.append(type(exc).__name__)
                session = requests.Session()
                continue
            if fb.status_code == 200:
                unknown = set(fb.json()["unknown"])
                with lock:
                    acknowledged.update({i: label for i in ids if i not in unknown})

    def sampler():
        while not stop.is_set():
            try:
                totals.append(requests_total(url))
            except requests.RequestException:
                pass
            time.sleep(0.1)

    before = requests_total(url)
    pids = worker_pids(server.proc.pid)
    assert len(pids) == 2, pids
    threads = [threading.Thread(target=client, args=(i,)) for i in range(3)]
    threads.append(threading.Thread(target=sampler))
    for t in threads:
        t.start()
    try:
        time.sleep(1.5)
        victim = sorted(pids)[0]
        acked_before_kill = len(acknowledged)
        os.kill(victim, signal.SIGKILL)
        # The master replaces it; the new worker serves once its model is loaded.
        deadline = time.monotonic() + 60
        while True:
            now = worker_pids(server.proc.pid)
            if len(now) == 2 and victim not in now:
                break
            assert time.monotonic() < deadline, f"no replacement worker: {now}"
            time.sleep(0.1)
        # The replacement takes connections only once its model is loaded: requests on
        # new connections, from its boot until a second after its load, are all answered.
        (new,) = now - pids
        fresh: list[int] = []
        loaded_at = None
        while loaded_at is None or time.monotonic() < loaded_at + 1.0:
            fresh.append(
                requests.post(f"{url}/predict", json={"records": ROWS}, timeout=10).status_code
            )
            if loaded_at is None and new in server.pids_serving(model.version):
                loaded_at = time.monotonic()
            assert time.monotonic() < deadline, "the replacement never loaded its model"
        assert set(fresh) == {200}, fresh
    finally:
        stop.set()
        for t in threads:
            t.join(30)
    after = requests_total(url)

    assert acked_before_kill > 0 and len(acknowledged) > acked_before_kill, (
        "no traffic on both sides of the kill"
    )
    store = open_store(f"sqlite:///{server.tmp / 'predictions.db'}")
    try:
        stored = store.labels(list(acknowledged))
    finally:
        store.close()
    lost = [i for i in acknowledged if i not in stored]
    assert not lost, f"{len(lost)} of {len(acknowledged)} acknowledged labels are not stored"
    assert all(int(stored[i]) == label for i, label in acknowledged.items())
    assert totals and all(b >= a for a, b in zip(totals, totals[1:])), (
        "modelwatch_http_requests_total went back"
    )
    assert before <= min(totals) and after >= max(totals)
    # Killing a worker drops only what was in flight on it.
    # Only what was in flight on the killed worker failed, and no answer was a 5xx.
    assert set(failures) <= {"ConnectionError"} and len(failures) <= 3, failures
    assert f"Worker (pid:{victim}) was sent SIGKILL" in server.log.read_text()


# -- the MLflow server restarted -------------------------------------------------------------


def test_mlflow_server_restarted_while_serving(tmp_path):
    """A second real MLflow server on a fixed port with its own SQLite backend is stopped
    and started again on the same port and backend while clients predict: every request
    is answered by the loaded model, a reload says the registry is unavailable while it
    is down, and after the restart the registry (same backend, same alias) answers again.
    The tracking URI carries a user:password, which no answer and no log line shows."""
    root = tmp_path / "mlflow"
    root.mkdir()
    port = services.free_port()
    name = "credit-default-reliability-restart"
    stop = threading.Event()
    answered: list[str] = []
    failures: list[str] = []
    auth = {"Authorization": f"Bearer {ADMIN_TOKEN}"}

    def client(url: str):
        session = requests.Session()
        while not stop.is_set():
            try:
                r = session.post(f"{url}/predict", json={"records": ROWS}, timeout=10)
                if r.status_code == 200:
                    answered.append(r.json()["model"]["version"])
                else:
                    failures.append(f"{r.status_code} {r.text[:200]}")
            except requests.RequestException as exc:
                failures.append(repr(exc))
            time.sleep(0.02)

    with services.mlflow_server_process(root, port) as (url, registry):
        version = modelkit.register_version(url, name, seed=3, alias="production", n_rows=1000)
        # Credentials in the tracking URI (the MLflow server ignores them): they must
        # show in no answer and no log line while the registry is down.
        with_creds = url.replace("http://", f"http://modelwatch:{URI_PASSWORD}@")
        env = {
            "MLFLOW_TRACKING_URI": with_creds,
            "MODELWATCH_MODEL_NAME": name,
            "MODELWATCH_ADMIN_TOKEN": ADMIN_TOKEN,
            "MODELWATCH_RELOAD_INTERVAL": "1",
            "MODELWATCH_LOG_LEVEL": "debug",
        }
        with gunicorn(tmp_path / "serve", env, workers=2, ready_version=version) as srv:
            thread = threading.Thread(target=client, args=(srv.url,))
            thread.start()
            try:
                time.sleep(0.5)
                services.stop(registry)  # the with-block's own stop is then a no-op
                with pytest.raises(requests.ConnectionError):
                    requests.get(f"{url}/health", timeout=2)
                down_at = len(answered)
                time.sleep(2.5)  # every worker's poller fails at least twice meanwhile
                r = requests.post(f"{srv.url}/admin/reload", headers=auth, timeout=60)
                assert r.status_code == 503, r.text
                assert r.json()["error"]["code"] == "registry_unavailable"
                assert "http://***@127.0.0.1" in r.text and URI_PASSWORD not in r.text
                assert len(answered) > down_at, "no prediction while MLflow was down"
                with services.mlflow_server_process(root, port) as (
                    again,
                    _,
                ):  # same port, same backend
                    assert again == url
                    r = requests.post(f"{srv.url}/admin/reload", headers=auth, timeout=60)
                    assert r.status_code == 200, r.text
                    assert r.json()["result"] == "unchanged"
                    assert r.json()["current"]["version"] == version
                    assert (
                        requests.get(f"{srv.url}/ready", timeout=10).json()["model"]["source"]
                        == "registry"
                    )
                    time.sleep(0.5)
            finally:
                stop.set()
                thread.join(30)
            log = srv.log.read_text(errors="replace")
    assert failures == []
    assert len(answered) > 20 and set(answered) == {version}
    assert "registered-models/alias" in log and URI_PASSWORD not in log


# -- the spill directory's disk full ---------------------------------------------------------


@contextmanager
def tiny_disk(path: Path, size: str = "256k"):
    """`path` on a tmpfs of `size` (root only); else a regular file in place of the
    directory, which refuses every spill the same way. Yields what was done."""
    path.mkdir(parents=True)
    mounted = (
        subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], capture_output=True
        ).returncode
        == 0
    )
    if not mounted:
        path.rmdir()
        path.write_text("not a directory: spilling here fails\n")
    try:
        yield "tmpfs" if mounted else "file"
    finally:
        if mounted:
            subprocess.run(["umount", "-l", str(path)], check=False)
        elif path.is_file():
            path.unlink()


def test_spill_disk_full_while_the_store_is_down_serving_goes_on(model, tmp_path):
    """The prediction store (PostgreSQL) does not answer and the spill directory sits on
    a 256 KiB filesystem: predictions keep being answered, the spilled records fill the
    disk, then modelwatch_prediction_log_records_total{outcome="lost"} counts every
    record that could be kept nowhere, and the log says so."""
    spill = tmp_path / "spill"
    with tiny_disk(spill) as how:
        env = serving_env(
            model,
            MODELWATCH_STORE_URL=f"postgresql://modelwatch:pw@127.0.0.1:"
            f"{services.free_port()}/predictions",
            MODELWATCH_SPILL_DIR=str(spill),
            MODELWATCH_STORE_RETRY="0.5",
        )
        with gunicorn(tmp_path / "serve", env, workers=1, ready_version=model.version) as srv:
            rows = feature_rows(50, seed=22)
            session = requests.Session()
            scored = 0
            for _ in range(60):  # 3000 rows of ~300 bytes: far more than 256 KiB
                r = session.post(f"{srv.url}/predict", json={"records": rows}, timeout=30)
                assert r.status_code == 200, r.text
                scored += len(r.json()["prediction_ids"])
            fb = session.post(
                f"{srv.url}/feedback",
                timeout=30,
                json={"feedback": [{"prediction_id": r.json()["prediction_ids"][0], "label": 1}]},
            )
            assert fb.status_code == 503 and fb.json()["error"]["code"] == "store_unavailable"
            deadline = time.monotonic() + 30
            while True:
                text = session.get(f"{srv.url}/metrics", timeout=10).text
                spilled = metric_total(
                    text, "modelwatch_prediction_log_records_total", outcome="spilled"
                )
                lost = metric_total(text, "modelwatch_prediction_log_records_total", outcome="lost")
                if spilled + lost >= scored or time.monotonic() > deadline:
                    break
                time.sleep(0.2)
            assert spilled + lost == scored
            assert lost > 0, "the disk never filled"
            if how == "tmpfs":
                assert spilled > 0  # what fitted was kept
                usage = shutil.disk_usage(spill)
                assert usage.used > usage.total / 2, usage
            assert (
                metric_total(text, "modelwatch_prediction_log_records_total", outcome="stored") == 0
            )
            # Serving goes on with the disk full.
            assert session.get(f"{srv.url}/ready", timeout=10).status_code == 200
            r = session.post(f"{srv.url}/predict", json={"records": rows[:2]}, timeout=30)
            assert r.status_code == 200
            log = srv.log.read_text(errors="replace")
            assert "prediction store unavailable, spilling to" in log
            assert "could not spill" in log and "prediction-log records" in log
