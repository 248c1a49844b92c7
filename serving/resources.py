"""CPU time and resident memory of a serving worker, measured by the worker itself (Linux).

prometheus_client's process collector reads /proc for the one process that answers
/metrics, and is off in multiprocess mode: under gunicorn it would see one worker of N,
or none. So every worker adds its own CPU time to one multiprocess counter (the sum
keeps a dead worker's share: the counter never goes back when a worker restarts) and sets
its own resident memory (a series per live worker, `pid` label, dropped in gunicorn's
`child_exit` with the worker). A thread of its own does it every `interval` seconds: no
reading on the request threads.
"""

from __future__ import annotations

import os
import threading
import time

PAGE_BYTES = os.sysconf("SC_PAGE_SIZE")


def resident_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * PAGE_BYTES


class ResourceMeter:
    def __init__(self, metrics, interval: float) -> None:
        self.metrics = metrics
        self.interval = interval
        self._counted = 0.0  # a forked worker's CPU time starts at 0: all of it is counted
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self.update()
        self._thread = threading.Thread(target=self._run, name="resource-meter", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop, counting the CPU time up to now (the prediction log's last flush too)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self.update()

    def update(self) -> None:
        cpu = time.process_time()
        self.metrics.cpu_seconds.inc(cpu - self._counted)
        self._counted = cpu
        self.metrics.resident_memory.set(resident_bytes())

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.update()
