"""A recording stand-in for the retraining subprocess (a real `mlflow run` takes a minute).

It records every reason it was run for and can hold each run until released, so a test
controls exactly when a retraining "is running".
"""

from __future__ import annotations

import threading
import time


class RecordingRunner:
    def __init__(self, result: str = "promoted", hold: bool = False, fail: bool = False):
        self.result = result
        self.fail = fail
        self.calls: list[str] = []
        self.started = threading.Semaphore(0)
        self._release = threading.Event()
        if not hold:
            self._release.set()
        self._lock = threading.Lock()

    def __call__(self, reason: str) -> str:
        with self._lock:
            self.calls.append(reason)
        self.started.release()
        if not self._release.wait(30):
            raise TimeoutError("the test never released the retraining")
        if self.fail:
            raise RuntimeError("mlflow run exploded")
        return self.result

    def wait_started(self, n: int = 1, timeout: float = 5.0) -> None:
        deadline = time.monotonic() + timeout
        for _ in range(n):
            if not self.started.acquire(timeout=max(0.0, deadline - time.monotonic())):
                raise TimeoutError(f"the runner was not started {n} times: {self.calls}")

    def release(self) -> None:
        self._release.set()

    def hold(self) -> None:
        self._release.clear()


class FakeClock:
    """A monotonic clock a test moves by hand (cooldowns without sleeping)."""

    def __init__(self, now: float = 1000.0):
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds
