"""Turning retraining requests into at most one retraining at a time.

Alertmanager repeats itself, and one drift can fire several alerts: a storm of requests
must make one run. While a retraining runs, the first request with another reason is
queued (one slot: the run after it sees all the data the others would); anything else is
dropped, and so is every request within the cooldown after a run ends. A run that
promoted a new version drops the queued request too: it was about the version replaced.

A runner that cannot retrain this model at all (no target to learn, no labelled rows)
raises `Refused`: the result is "unsupported", which pages nobody, since no retry or
on-call action fixes it; the reason is in the log and in `last`.

>>> import threading
>>> done = threading.Event()
>>> trigger = RetrainTrigger(lambda reason: done.set() or "promoted", cooldown_seconds=60)
>>> trigger.request("DataDriftDetected:abc")
'started'
>>> done.wait(5) and trigger.wait_idle(5)
True
>>> trigger.request("DataDriftDetected:abc")
'cooling_down'
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Callable

log = logging.getLogger(__name__)

# A runner trains, gates and returns what happened: "promoted", "rejected" or "failed";
# or raises Refused, which the trigger records as UNSUPPORTED.
Runner = Callable[[str], str]
Listener = Callable[[str, str], None]  # (event, detail): "started"/"finished"
UNSUPPORTED = "unsupported"


class Refused(Exception):
    """Raised by a runner that will not retrain this model; the message says why."""


class RetrainTrigger:
    def __init__(self, runner: Runner, cooldown_seconds: float, on_event: Listener | None = None,
                 clock: Callable[[], float] = time.monotonic):
        self._runner = runner
        self._cooldown = cooldown_seconds
        self._on_event = on_event or (lambda event, detail: None)
        self._clock = clock
        self._lock = threading.Lock()
        self._running: tuple[str, str] | None = None  # (key, reason)
        self._queued: tuple[str, str] | None = None
        self._finished_at: float | None = None
        self.last: dict | None = None  # the last retraining: reason, result, detail, when it ended
        self._idle = threading.Event()
        self._idle.set()

    def request(self, reason: str, key: str | None = None) -> str:
        """Ask for a retraining because of `reason`; says what became of the request.

        Requests with the same `key` (default: the reason) are the same request: an
        alert that fires for many series, or repeats, asks once.
        """
        key = key or reason
        with self._lock:
            if self._running is not None:
                if key == self._running[0] or self._queued is not None:
                    return "duplicate"
                self._queued = (key, reason)
                return "queued"
            if self._finished_at is not None and self._clock() - self._finished_at < self._cooldown:
                return "cooling_down"
            self._start((key, reason))
            return "started"

    @property
    def running(self) -> str | None:
        """The reason of the retraining under way, if any."""
        return self._running[1] if self._running else None

    def wait_idle(self, timeout: float | None = None) -> bool:
        return self._idle.wait(timeout)

    def _start(self, request: tuple[str, str]) -> None:  # with the lock held
        self._running = request
        self._idle.clear()
        self._on_event("started", request[1])
        threading.Thread(target=self._run, args=(request[1],), name="retrain", daemon=True).start()

    def _run(self, reason: str) -> None:
        result, detail = self._attempt(reason)
        log.info("retraining for %s: %s", reason, result)
        self._on_event("finished", result)
        with self._lock:
            self._finished_at = self._clock()
            self.last = {"reason": reason, "result": result, "detail": detail, "finished_at": time.time()}
            queued, self._queued, self._running = self._queued, None, None
            if result == "promoted":
                queued = None  # it was about the version just replaced: the new one is judged afresh
            if queued is not None:
                self._start(queued)
            else:
                self._idle.set()

    def _attempt(self, reason: str) -> tuple[str, str | None]:
        try:
            return self._runner(reason), None
        except Refused as exc:
            log.warning("retraining for %s refused: %s", reason, exc)
            return UNSUPPORTED, str(exc)
        except Exception as exc:  # the trigger must survive a runner that breaks
            log.exception("retraining for %s failed", reason)
            return "failed", str(exc)
