"""What each window costs the monitor: CPU-seconds and, given a price, money.

    window_cost = WindowCost(registry)                      # one per monitor process
    return window_cost.measured(self._run_once, "credit-default")   # in a model's loop

The CPU is the loop thread's own while the window runs (`time.thread_time`): each model's
loop is a thread of one process, and the process's CPU would charge one model with the
windows the others judged meanwhile. Prices as for serving and training
(MODELWATCH_COST_PER_CPU_HOUR, MODELWATCH_COST_PER_GB_HOUR); without one,
modelwatch_monitor_window_cost is not exported at all (rather than a cost of 0).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

from prometheus_client import CollectorRegistry, Gauge

from modelwatch.cost import Prices, cost, peak_rss_bytes

T = TypeVar("T")


class WindowCost:
    def __init__(self, registry: CollectorRegistry, prices: Prices | None = None) -> None:
        self.prices = prices or Prices.from_env()
        self.cpu = Gauge(
            "modelwatch_monitor_window_cpu_seconds",
            "CPU time the model's last window took.",
            ("model",),
            registry=registry,
        )
        priced = self.prices.per_cpu_hour is not None or self.prices.per_gb_hour is not None
        self.cost = (
            Gauge(
                "modelwatch_monitor_window_cost",
                "What the model's last window cost (MODELWATCH_COST_PER_*).",
                ("model",),
                registry=registry,
            )
            if priced
            else None
        )

    def measured(self, work: Callable[[], T], model: str) -> T:
        cpu_start, wall_start = time.thread_time(), time.monotonic()
        try:
            return work()
        finally:
            cpu = time.thread_time() - cpu_start
            self.cpu.labels(model).set(cpu)
            if self.cost is not None:
                wall = time.monotonic() - wall_start
                self.cost.labels(model).set(cost(cpu, peak_rss_bytes(), wall, self.prices))
