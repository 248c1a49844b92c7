"""Real gunicorn, two workers: the CPU counter is the workers' own CPU time as /proc
counts it, and CPU, memory and thread-pool metrics stay right when a worker is killed and
replaced."""

from __future__ import annotations

import os
import re
import signal
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from tests.serving import modelkit
from tests.serving.conftest import gunicorn, metric_total, predict
from tests.serving.modelkit import feature_rows

pytestmark = pytest.mark.slow

MODEL = "credit-default-serving-test-resources"
THREADS = 3
CPU_PRICE = 0.05
TICK = 1 / os.sysconf("SC_CLK_TCK")
TOLERANCE = 0.05


@pytest.fixture(scope="module")
def version(mlflow_url):
    return modelkit.register_version(mlflow_url, MODEL, seed=1, alias="production")


@pytest.fixture(scope="module")
def server(mlflow_url, version, tmp_path_factory):
    env = {
        "MLFLOW_TRACKING_URI": mlflow_url,
        "MODELWATCH_MODEL_NAME": MODEL,
        "MODELWATCH_THREADS": str(THREADS),
        "MODELWATCH_COST_PER_CPU_HOUR": str(CPU_PRICE),
        "MODELWATCH_RESOURCE_INTERVAL": "0.5",
    }
    with gunicorn(
        tmp_path_factory.mktemp("resources"), env, workers=2, ready_version=version
    ) as srv:
        yield srv


def workers(master: int) -> set[int]:
    """Pids of the master's children, from /proc."""
    out = set()
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    stat = f.read()
            except OSError:  # gone meanwhile
                continue
            if int(stat.rpartition(")")[2].split()[1]) == master:
                out.add(int(entry))
    return out


def cpu_seconds(pid: int) -> float:
    """utime + stime of `pid` (all its threads), from /proc/PID/stat."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) * TICK


def metrics(url: str) -> str:
    return requests.get(f"{url}/metrics", timeout=10).text


def per_pid(text: str, name: str) -> dict[int, float]:
    found = re.findall(rf"^{name}{{([^}}]*)}} (\S+)$", text, re.MULTILINE)
    return {
        int(re.search(r'pid="(\d+)"', labels).group(1)): float(value) for labels, value in found
    }


def counted_when(url: str, at_least: float, timeout: float = 30) -> float:
    """The CPU counter once the workers' meters have counted `at_least` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        counted = metric_total(metrics(url), "modelwatch_process_cpu_seconds_total")
        if counted >= at_least or time.monotonic() > deadline:
            return counted
        time.sleep(0.1)


def load(url: str, n: int = 150) -> None:
    rows = feature_rows(200, seed=11)
    with ThreadPoolExecutor(4) as pool:
        assert set(pool.map(lambda _: predict(url, rows).status_code, range(n))) == {200}


def test_cpu_counter_is_the_workers_own_cpu_time(server):
    pids = workers(server.proc.pid)
    assert len(pids) == 2
    load(server.url)
    used = sum(cpu_seconds(p) for p in pids)
    assert used > 2.0  # enough ticks for 5% to mean something
    # Wait for the meters to count the load (two ticks a worker of /proc's rounding).
    counted = counted_when(server.url, used - 2 * TICK * len(pids))
    now = sum(cpu_seconds(p) for p in pids)
    assert abs(counted - now) <= TOLERANCE * now, (counted, used, now)


def test_memory_pool_and_price_per_live_worker(server):
    text = metrics(server.url)
    pids = workers(server.proc.pid)
    rss = per_pid(text, "modelwatch_process_resident_memory_bytes")
    assert set(rss) == pids
    for pid, value in rss.items():
        with open(f"/proc/{pid}/status") as f:
            vm_rss = int(re.search(r"VmRSS:\s+(\d+) kB", f.read()).group(1)) * 1024
        assert abs(value - vm_rss) <= 0.2 * vm_rss, (pid, value, vm_rss)
    assert per_pid(text, "modelwatch_worker_threads") == {p: THREADS for p in pids}
    busy = per_pid(text, "modelwatch_worker_busy_threads")
    assert set(busy) == pids and sum(busy.values()) == 1  # this /metrics request
    assert metric_total(text, "modelwatch_price", per="cpu_hour") == CPU_PRICE
    # Neither a memory price nor a budget is set: no series at all, not a 0.
    assert 'per="gb_hour"' not in text
    assert "modelwatch_cost_budget{" not in text


def test_metrics_stay_right_when_a_worker_is_killed_and_replaced(server, version):
    before = workers(server.proc.pid)
    victim = min(before)
    load(server.url, 50)
    victim_cpu = cpu_seconds(victim)
    counted_before = counted_when(server.url, sum(cpu_seconds(p) for p in before) - 0.1)
    os.kill(victim, signal.SIGKILL)  # no worker_exit: the master alone cleans up
    deadline = time.monotonic() + 120
    while True:
        after = workers(server.proc.pid)
        if len(after) == 2 and victim not in after and after - before:
            break
        assert time.monotonic() < deadline, "no replacement worker"
        time.sleep(0.2)
    server.wait_workers(version, 3)  # the newcomer has loaded the model too
    load(server.url, 50)
    live = sum(cpu_seconds(p) for p in after)
    counted = counted_when(server.url, victim_cpu + live - 0.1)
    # The dead worker's CPU stays in the total (up to its last reading, half a second
    # at most before the kill, while it was idle).
    expected = victim_cpu + sum(cpu_seconds(p) for p in after)
    assert counted >= counted_before
    assert abs(counted - expected) <= TOLERANCE * expected, (counted, expected)
    text = metrics(server.url)
    for name in (
        "modelwatch_process_resident_memory_bytes",
        "modelwatch_worker_threads",
        "modelwatch_worker_busy_threads",
    ):
        assert set(per_pid(text, name)) == after, name
    assert metric_total(text, "modelwatch_price", per="cpu_hour") == CPU_PRICE
