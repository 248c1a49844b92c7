"""A full disk loses prediction log records, and that pages: real gunicorn with its SQLite
log and spill directory on a real 3 MB tmpfs, answering predictions until records are
lost, scraped by a real Prometheus (Debian's) with the project's rules, which fires
PredictionLogLosingData."""

from __future__ import annotations

import shutil
import subprocess
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import pytest
import requests
import yaml

from tests import services
from tests.reliability.conftest import serving_env
from tests.serving import modelkit
from tests.serving.conftest import gunicorn, metric_total, predict
from tests.stack_config import contract as c

pytestmark = pytest.mark.slow  # starts gunicorn and Prometheus
PROMETHEUS = shutil.which("prometheus")
ROWS_PER_REQUEST = 500


@contextmanager
def small_disk(path: Path, size: str = "3m"):
    """A tmpfs of `size` at `path`; skips where this process may not mount one."""
    path.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        pytest.skip(
            f"cannot mount a tmpfs here (needs root and CAP_SYS_ADMIN): {done.stderr.strip()}"
        )
    try:
        yield path
    finally:
        if subprocess.run(["umount", str(path)], capture_output=True).returncode != 0:
            subprocess.run(["umount", "-l", str(path)], check=True)  # a file still open: detach it


@contextmanager
def prometheus_scraping(tmp_path: Path, target: str):
    """Debian's Prometheus with the project's rule files, scraping `target` as job
    `serving` and evaluating every second."""
    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(p) for p in c.rule_files()],
        "scrape_configs": [{"job_name": "serving", "static_configs": [{"targets": [target]}]}],
    }
    tmp_path.mkdir(parents=True, exist_ok=True)
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config))
    port = services.free_port()
    args = [
        PROMETHEUS,
        f"--config.file={tmp_path / 'prometheus.yml'}",
        f"--storage.tsdb.path={tmp_path / 'tsdb'}",
        f"--web.listen-address=127.0.0.1:{port}",
    ]
    with services.process(args, tmp_path / "prometheus.log") as proc:
        url = f"http://127.0.0.1:{port}"
        services.wait_http(f"{url}/-/ready", timeout=60, proc=proc)
        yield url


@contextmanager
def predicting(url: str):
    """Predictions sent one after another until the block ends; yields the answered count."""
    rows = modelkit.feature_rows(ROWS_PER_REQUEST, seed=11)
    answered, stop = [0], threading.Event()

    def send():
        while not stop.is_set():
            if predict(url, rows).status_code == 200:
                answered[0] += ROWS_PER_REQUEST

    sender = threading.Thread(target=send, daemon=True)
    sender.start()
    try:
        yield answered
    finally:
        stop.set()
        sender.join(60)


def lost_records(url: str) -> float:
    text = requests.get(f"{url}/metrics", timeout=10).text
    return metric_total(text, "modelwatch_prediction_log_records_total", outcome="lost")


def firing(prometheus: str, alertname: str) -> list[dict]:
    alerts = requests.get(f"{prometheus}/api/v1/alerts", timeout=10).json()["data"]["alerts"]
    return [a for a in alerts if a["labels"]["alertname"] == alertname and a["state"] == "firing"]


@pytest.mark.skipif(
    PROMETHEUS is None, reason="prometheus is not installed (Debian package `prometheus`)"
)
def test_a_full_disk_fires_prediction_log_losing_data(model, tmp_path):
    with small_disk(tmp_path / "disk") as disk:
        env = serving_env(
            model,
            MODELWATCH_STORE_URL=f"sqlite:///{disk / 'predictions.db'}",
            MODELWATCH_SPILL_DIR=str(disk / "spill"),
        )
        with (
            gunicorn(tmp_path / "serving", env, workers=1, ready_version=model.version) as serving,
            prometheus_scraping(
                tmp_path / "prometheus", serving.url.removeprefix("http://")
            ) as prometheus,
        ):
            assert not firing(prometheus, "PredictionLogLosingData"), (
                "fired before anything was lost"
            )
            with predicting(serving.url) as answered:
                services.wait_for(
                    lambda: lost_records(serving.url), 300, "serving to count lost records"
                )
                first_loss = time.monotonic()
                (alert,) = services.wait_for(
                    lambda: firing(prometheus, "PredictionLogLosingData"),
                    180,
                    "PredictionLogLosingData to fire in Prometheus",
                )
            lost = lost_records(serving.url)
            print(
                f"full disk: {lost:.0f} log records lost of {answered[0]} answered predictions; "
                f"firing {time.monotonic() - first_loss:.1f} s after serving first counted a loss"
            )
            assert answered[0] > lost > 0
            assert alert["labels"]["severity"] == "critical" and alert["labels"]["action"] == "page"
            assert alert["labels"]["job"] == "serving"
            assert shutil.disk_usage(disk).free < 64 * 1024, "the disk is full"
