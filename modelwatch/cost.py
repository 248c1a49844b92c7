"""What a piece of work costs: its CPU-seconds, peak memory and, given prices, money.

On the ground floor because training (each run logs its cost) and the monitor (each window
exports its cost, monitoring/service/cost.py) measure work the same way, and the monitor
never imports training.

Measured from the process's own accounting (getrusage), so it holds for any model type:
CPU time of every thread (OpenMP and BLAS included) and of child processes that ended
meanwhile. Prices are the environment's, as for serving (serving/config.py):
MODELWATCH_COST_PER_CPU_HOUR, the price of a CPU core for an hour, and
MODELWATCH_COST_PER_GB_HOUR, of a GB (2**30 bytes) of resident memory for an hour. The
memory is priced at the peak, for the whole wall time: what the work had to reserve.
Without a price there is no cost, left out rather than 0.

    with cost.logged_to_mlflow():   # inside an active run: cpu_seconds, peak_rss_bytes, cost
        model.fit(...)
"""

from __future__ import annotations

import resource
import sys
import time
from collections.abc import Mapping
from contextlib import contextmanager
from dataclasses import dataclass

import mlflow

from modelwatch.settings import read

GB = 2**30
# ru_maxrss is in KiB on Linux, in bytes on macOS.
MAXRSS_BYTES = 1 if sys.platform == "darwin" else 1024


@dataclass(frozen=True)
class Prices:
    per_cpu_hour: float | None = None
    per_gb_hour: float | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Prices:
        return cls(
            read("MODELWATCH_COST_PER_CPU_HOUR", env), read("MODELWATCH_COST_PER_GB_HOUR", env)
        )


def cpu_seconds() -> float:
    """User and system CPU time of this process and of its children that ended."""
    total = 0.0
    for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN):
        usage = resource.getrusage(who)
        total += usage.ru_utime + usage.ru_stime
    return total


def peak_rss_bytes() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * MAXRSS_BYTES


class Meter:
    """CPU and wall time from its creation on; the process's peak resident memory."""

    def __init__(self) -> None:
        self.cpu_start = cpu_seconds()
        self.wall_start = time.monotonic()

    def usage(self, prices: Prices) -> dict[str, float]:
        cpu = cpu_seconds() - self.cpu_start
        peak = peak_rss_bytes()
        out = {"cpu_seconds": cpu, "peak_rss_bytes": float(peak)}
        money = cost(cpu, peak, time.monotonic() - self.wall_start, prices)
        if money is not None:
            out["cost"] = money
        return out


def cost(cpu: float, memory_bytes: float, wall_seconds: float, prices: Prices) -> float | None:
    """Money for `cpu` CPU-seconds and `memory_bytes` held for `wall_seconds`; None
    without any price."""
    if prices.per_cpu_hour is None and prices.per_gb_hour is None:
        return None
    money = 0.0
    if prices.per_cpu_hour is not None:
        money += cpu / 3600 * prices.per_cpu_hour
    if prices.per_gb_hour is not None:
        money += memory_bytes / GB * wall_seconds / 3600 * prices.per_gb_hour
    return money


@contextmanager
def logged_to_mlflow(prices: Prices | None = None):
    """Log what the block cost as metrics of the active MLflow run, failed or not."""
    meter = Meter()
    try:
        yield meter
    finally:
        mlflow.log_metrics(meter.usage(prices or Prices.from_env()))
