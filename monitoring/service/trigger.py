"""Turning retraining requests into at most one retraining at a time, and one per drift.

Alertmanager repeats itself, and one drift can fire several alerts: a storm of requests
must make one run. Requests with the same key are one request. Besides the run under
way there is one pending slot: the first request with another reason while a run is
under way (the run after it sees all the data the others would), or a request that
waits for labels; anything else is dropped.

A pending request starts only when all of these hold, re-checked every
`recheck_seconds` (a timer, not a busy loop):
- no retraining runs, and the cooldown after the last one has passed, whatever it
  returned: a rejected run is followed by a cooldown as a promoted one is (a queued
  request run at once after a rejection made one rejected version every few seconds);
- the version it is about is still served: after a promotion, or any change of alias,
  a request about the replaced version is dropped;
- `min_rows` labelled rows were logged since it was first asked (`labelled_rows(since)`):
  a candidate trained and judged on a handful of drifted rows is rejected, and the drift
  asks again after the cooldown; until then its state is `waiting_for_labels`;
- nothing holds retraining (`held()`: broken data, a suspect label feed); until then its
  state is `held`.
A request that arrives within the cooldown with nothing pending is dropped
(`cooling_down`): the alert that still fires asks again.

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
>>> rows = RetrainTrigger(
...     lambda reason: "rejected", 0, labelled_rows=lambda since: 120, min_rows=500
... )
>>> rows.request("ConceptDriftDetected:def"), rows.pending["state"], rows.pending["labelled_rows"]
('waiting_for_labels', 'waiting_for_labels', 120)
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

log = logging.getLogger(__name__)

# A runner trains, gates and returns what happened: "promoted", "rejected",
# "needs_review" or "failed"; or raises Refused, which the trigger records as UNSUPPORTED.
Runner = Callable[[str], str]
Listener = Callable[[str, str], None]  # (event, detail): "started"/"finished"
UNSUPPORTED = "unsupported"
WAITING_FOR_LABELS = "waiting_for_labels"


class Refused(Exception):
    """Raised by a runner that will not retrain this model; the message says why."""


@dataclass
class Request:
    key: str
    reason: str
    version: str | None  # the served version it is about; None: whichever is served
    since: float = field(default_factory=time.time)  # when it was first asked (epoch)
    state: str = "queued"
    labelled_rows: int | None = None


class RetrainTrigger:
    def __init__(
        self,
        runner: Runner,
        cooldown_seconds: float,
        on_event: Listener | None = None,
        clock: Callable[[], float] = time.monotonic,
        labelled_rows: Callable[[float], int] | None = None,
        min_rows: int = 0,
        served_version: Callable[[], str | None] | None = None,
        recheck_seconds: float = 30.0,
        held: Callable[[], str] | None = None,
    ):
        """`labelled_rows(since)` counts the labelled rows logged since an epoch time (read
        at most `min_rows` of them); `served_version()` is the version served now (None
        when unknown: nothing is dropped then); `held()` says why retraining must wait now
        ("" when nothing holds it)."""
        self._runner = runner
        self._cooldown = cooldown_seconds
        self._on_event = on_event or (lambda event, detail: None)
        self._clock = clock
        self._labelled_rows = labelled_rows
        self.min_rows = min_rows if labelled_rows is not None else 0
        self._served_version = served_version or (lambda: None)
        self._recheck = recheck_seconds
        self._held = held or (lambda: "")
        self._lock = threading.Lock()
        self._running: Request | None = None
        self._pending: Request | None = None
        self._timer: threading.Timer | None = None
        self._finished_at: float | None = None
        self.last: dict | None = None  # the last retraining: reason, result, detail, when it ended
        self._idle = threading.Event()
        self._idle.set()

    def request(self, reason: str, key: str | None = None, version: str | None = None) -> str:
        """Ask for a retraining because of `reason` (about the served `version`); says
        what became of the request: started, queued, waiting_for_labels, duplicate,
        cooling_down or stale (about a version no longer served).

        Requests with the same `key` (default: the reason) are the same request: an
        alert that fires for many series, or repeats, asks once.
        """
        key = key or reason
        with self._lock:
            if self._running is not None:
                if key == self._running.key or self._pending is not None:
                    return "duplicate"
                self._pending = Request(key, reason, version)
                return "queued"
            if self._pending is not None:
                return self._pending.state if key == self._pending.key else "duplicate"
            if self._cooling_down():
                return "cooling_down"
            self._pending = Request(key, reason, version)
        return self._try_pending()

    @property
    def running(self) -> str | None:
        """The reason of the retraining under way, if any."""
        running = self._running
        return running.reason if running else None

    @property
    def pending(self) -> dict | None:
        """The request that waits (reason, state, labelled rows so far and needed), if any."""
        pending = self._pending
        if pending is None:
            return None
        return {
            "reason": pending.reason,
            "state": pending.state,
            "version": pending.version,
            "since": pending.since,
            "labelled_rows": pending.labelled_rows,
            "min_rows": self.min_rows,
        }

    def wait_idle(self, timeout: float | None = None) -> bool:
        """Wait until no retraining runs (a pending request may still wait)."""
        return self._idle.wait(timeout)

    def close(self) -> None:
        """Stop re-checking (a pending request is dropped)."""
        with self._lock:
            self._pending = None
            if self._timer is not None:
                self._timer.cancel()

    def _cooling_down(self) -> bool:
        return self._finished_at is not None and self._clock() - self._finished_at < self._cooldown

    def _try_pending(self) -> str:
        """Start the pending request if it may start now; else keep it (re-checked later) or
        drop it. Answers its state. The checks read the registry and the log outside the lock."""
        with self._lock:
            request = self._pending
            if request is None or self._running is not None:
                return request.state if request else "duplicate"
        served = self._served_version()
        if request.version is not None and served is not None and served != request.version:
            log.info(
                "retraining for %s dropped: version %s is no longer served (%s is)",
                request.reason,
                request.version,
                served,
            )
            return self._drop(request, "stale")
        if self.min_rows:
            request.labelled_rows = self._count(request.since)
        hold = self._held()
        with self._lock:
            if self._pending is not request or self._running is not None:
                return "duplicate"
            if self._cooling_down():
                request.state = "cooling_down"
            elif request.labelled_rows is not None and request.labelled_rows < self.min_rows:
                request.state = WAITING_FOR_LABELS
            elif hold:
                request.state = "held"
            else:
                self._pending = None
                self._start(request)
                return "started"
            self._schedule()
            return request.state

    def _count(self, since: float) -> int:
        try:
            return int(self._labelled_rows(since))
        except Exception as exc:  # the log is away: wait, and ask it again at the next check
            log.warning("cannot count the labelled rows for retraining: %s", exc)
            return 0

    def _drop(self, request: Request, why: str) -> str:
        with self._lock:
            if self._pending is request:
                self._pending = None
        return why

    def _schedule(self) -> None:  # with the lock held
        if self._timer is not None:
            self._timer.cancel()
        self._timer = threading.Timer(self._recheck, self._try_pending)
        self._timer.daemon = True
        self._timer.start()

    def _start(self, request: Request) -> None:  # with the lock held
        self._running = request
        self._idle.clear()
        self._on_event("started", request.reason)
        threading.Thread(target=self._run, args=(request,), name="retrain", daemon=True).start()

    def _run(self, request: Request) -> None:
        result, detail = self._attempt(request.reason)
        log.info("retraining for %s: %s", request.reason, result)
        self._on_event("finished", result)
        with self._lock:
            self._finished_at = self._clock()
            self.last = {
                "reason": request.reason,
                "result": result,
                "detail": detail,
                "finished_at": time.time(),
            }
            self._running = None
            if result == "promoted":
                self._pending = (
                    None  # it was about the version just replaced: the new one is judged afresh
                )
            if self._pending is not None:
                self._pending.state = "cooling_down"
                self._schedule()
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
