"""The monitor's cost per window: its CPU-seconds always, its money only with a price."""

from __future__ import annotations

import threading
import time

import pytest
from modelwatch.monitoring.service.cost import WindowCost
from prometheus_client import CollectorRegistry

from modelwatch.cost import Prices


def burn(seconds: float) -> str:
    end = time.process_time() + seconds
    while time.process_time() < end:
        pass
    return "done"


def value(registry: CollectorRegistry, name: str) -> float | None:
    return registry.get_sample_value(name, {"model": "m"})


def test_cpu_of_the_window_and_no_cost_without_a_price():
    registry = CollectorRegistry()
    window_cost = WindowCost(registry, Prices())
    assert window_cost.measured(lambda: burn(0.3), "m") == "done"
    assert value(registry, "modelwatch_monitor_window_cpu_seconds") == pytest.approx(0.3, rel=0.05)
    assert value(registry, "modelwatch_monitor_window_cost") is None


def test_cost_with_a_price_even_when_the_window_fails():
    registry = CollectorRegistry()
    window_cost = WindowCost(registry, Prices(per_cpu_hour=36.0))

    def failing():
        burn(0.2)
        raise RuntimeError("store down")

    with pytest.raises(RuntimeError):
        window_cost.measured(failing, "m")
    cpu = value(registry, "modelwatch_monitor_window_cpu_seconds")
    assert cpu == pytest.approx(0.2, rel=0.05)
    assert value(registry, "modelwatch_monitor_window_cost") == pytest.approx(cpu / 100)


def test_another_thread_is_not_the_window_s_cpu():
    """Each model's loop is a thread: CPU another thread burns meanwhile is not this window's."""
    registry = CollectorRegistry()
    window_cost = WindowCost(registry, Prices())
    other = threading.Thread(target=burn, args=(0.4,))

    def window():
        other.start()
        other.join()  # waiting, not computing
        return burn(0.1)

    window_cost.measured(window, "m")
    assert value(registry, "modelwatch_monitor_window_cpu_seconds") == pytest.approx(0.1, abs=0.05)
