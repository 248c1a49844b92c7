"""What each window costs the monitor: CPU-seconds and, given a price, money.

    window_cost = WindowCost(metrics.registry)        # in Monitor.__init__
    return window_cost.measured(self._run_once)       # in Monitor.run_once

The CPU is the process's (modelwatch.cost) while the window runs: the window's own threads
and whatever else ran meanwhile (a scrape, a webhook call), which is little. Prices as for
serving and training (MODELWATCH_COST_PER_CPU_HOUR, MODELWATCH_COST_PER_GB_HOUR); without
one, modelwatch_monitor_window_cost is not exported at all (rather than a cost of 0).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from prometheus_client import CollectorRegistry, Gauge

from modelwatch.cost import Meter, Prices

T = TypeVar("T")


class WindowCost:
    def __init__(self, registry: CollectorRegistry, prices: Prices | None = None) -> None:
        self.prices = prices or Prices.from_env()
        self.cpu = Gauge(
            "modelwatch_monitor_window_cpu_seconds",
            "CPU time the monitor's last window took.",
            registry=registry,
        )
        priced = self.prices.per_cpu_hour is not None or self.prices.per_gb_hour is not None
        self.cost = (
            Gauge(
                "modelwatch_monitor_window_cost",
                "What the monitor's last window cost (MODELWATCH_COST_PER_*).",
                registry=registry,
            )
            if priced
            else None
        )

    def measured(self, work: Callable[[], T]) -> T:
        meter = Meter()
        try:
            return work()
        finally:
            usage = meter.usage(self.prices)
            self.cpu.set(usage["cpu_seconds"])
            if self.cost is not None:
                self.cost.set(usage["cost"])
