"""RetrainTrigger: at most one retraining at a time, one queued slot, a cooldown, and a
trigger that outlives a runner that breaks."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

from modelwatch.monitoring.service.trigger import RetrainTrigger

from tests.monitor_service.runners import FakeClock, RecordingRunner


class Events:
    def __init__(self):
        self.seen: list[tuple[str, str]] = []
        self._lock = threading.Lock()

    def __call__(self, event: str, detail: str) -> None:
        with self._lock:
            self.seen.append((event, detail))


def test_a_storm_of_identical_requests_makes_one_run():
    runner, events = RecordingRunner(hold=True), Events()
    trigger = RetrainTrigger(runner, cooldown_seconds=600, on_event=events)
    barrier = threading.Barrier(20)

    def ask(i):
        if i < 20:
            barrier.wait()  # the first 20 arrive at the same instant
        return trigger.request("DataDriftDetected:abc", key="DataDriftDetected")

    with ThreadPoolExecutor(20) as pool:
        answers = list(pool.map(ask, range(100)))
    assert answers.count("started") == 1
    assert answers.count("duplicate") == 99
    runner.wait_started()
    assert trigger.running == "DataDriftDetected:abc"

    runner.release()
    assert trigger.wait_idle(10)
    assert runner.calls == ["DataDriftDetected:abc"]
    assert events.seen == [("started", "DataDriftDetected:abc"), ("finished", "promoted")]
    assert trigger.running is None
    assert (
        trigger.last["result"] == "promoted" and trigger.last["reason"] == "DataDriftDetected:abc"
    )
    # the same alert repeating after the run is inside the cooldown: still one run
    assert trigger.request("DataDriftDetected:abc", key="DataDriftDetected") == "cooling_down"
    assert runner.calls == ["DataDriftDetected:abc"]


def test_another_reason_while_running_is_queued_once_and_runs_after_the_cooldown():
    """A rejected run is followed by the cooldown as a promoted one is: the queued request
    waits for it (run at once, it made one rejected version every few seconds)."""
    clock = FakeClock()
    runner = RecordingRunner(result="rejected", hold=True)
    trigger = RetrainTrigger(runner, cooldown_seconds=600, clock=clock, recheck_seconds=0.05)
    assert trigger.request("DataDriftDetected:a") == "started"
    runner.wait_started()
    assert trigger.request("ModelAccuracyDegraded:b") == "queued"
    assert trigger.request("ModelAccuracyDegraded:b") == "duplicate"  # queued once
    assert trigger.request("ConceptDriftDetected:c") == "duplicate"  # one slot only
    assert trigger.request("DataDriftDetected:a") == "duplicate"
    assert runner.calls == ["DataDriftDetected:a"]

    runner.release()
    assert trigger.wait_idle(10)
    assert _stays(lambda: runner.calls == ["DataDriftDetected:a"], seconds=0.5)  # many re-checks
    assert trigger.pending["state"] == "cooling_down"
    assert trigger.request("ConceptDriftDetected:c") == "duplicate"
    clock.now += 601
    runner.wait_started()
    assert trigger.wait_idle(10)
    assert runner.calls == ["DataDriftDetected:a", "ModelAccuracyDegraded:b"]
    assert trigger.last["reason"] == "ModelAccuracyDegraded:b" and trigger.pending is None
    # and afterwards the cooldown holds every reason back
    assert trigger.request("ConceptDriftDetected:c") == "cooling_down"
    assert len(runner.calls) == 2


def test_a_queued_request_about_a_version_no_longer_served_is_dropped():
    served = ["1"]
    runner = RecordingRunner(result="rejected", hold=True)
    trigger = RetrainTrigger(
        runner, cooldown_seconds=0, served_version=lambda: served[0], recheck_seconds=0.05
    )
    assert trigger.request("DataDriftDetected:a", version="1") == "started"
    runner.wait_started()
    assert trigger.request("ModelAccuracyDegraded:b", version="1") == "queued"
    served[0] = "2"  # someone moved the alias meanwhile
    runner.release()
    assert trigger.wait_idle(10)
    assert _eventually(lambda: trigger.pending is None)  # the next re-check drops it
    assert runner.calls == ["DataDriftDetected:a"]
    assert trigger.request("ModelAccuracyDegraded:b", version="1") == "stale"
    assert trigger.request("ModelAccuracyDegraded:b", version="2") == "started"


def test_a_request_waits_for_enough_labelled_rows_then_starts_once():
    rows = [0]
    asked = []

    def labelled_rows(since):
        asked.append(since)
        return rows[0]

    runner = RecordingRunner(result="rejected")
    trigger = RetrainTrigger(
        runner,
        cooldown_seconds=600,
        labelled_rows=labelled_rows,
        min_rows=500,
        recheck_seconds=0.05,
    )
    assert trigger.request("ConceptDriftDetected:a") == "waiting_for_labels"
    assert trigger.request("ConceptDriftDetected:a") == "waiting_for_labels"  # the alert repeats
    assert (
        trigger.request("ModelAccuracyDegraded:b") == "duplicate"
    )  # the same drift, another alert
    rows[0] = 499
    assert _stays(lambda: runner.calls == [], seconds=0.3)
    assert trigger.pending == {
        **trigger.pending,
        "state": "waiting_for_labels",
        "labelled_rows": 499,
        "min_rows": 500,
    }
    assert len(set(asked)) == 1  # counted since the request was first made
    rows[0] = 500
    runner.wait_started()
    assert trigger.wait_idle(10)
    assert runner.calls == ["ConceptDriftDetected:a"] and trigger.pending is None
    assert trigger.request("ModelAccuracyDegraded:b") == "cooling_down"


def _eventually(condition, seconds: float = 5.0) -> bool:
    import time

    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def _stays(condition, seconds: float) -> bool:
    """`condition` holds throughout `seconds` (checked often): what must not happen does not."""
    import time

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not condition():
            return False
        time.sleep(0.02)
    return True


def test_a_promotion_drops_the_request_queued_about_the_version_it_replaced():
    runner = RecordingRunner(hold=True)  # promotes
    trigger = RetrainTrigger(runner, cooldown_seconds=600)
    assert trigger.request("DataDriftDetected:a") == "started"
    runner.wait_started()
    assert trigger.request("ModelAccuracyDegraded:b") == "queued"
    runner.release()
    assert trigger.wait_idle(10)
    assert runner.calls == ["DataDriftDetected:a"]
    assert trigger.last["result"] == "promoted" and trigger.running is None


def test_requests_during_the_cooldown_are_dropped():
    clock = FakeClock()
    runner = RecordingRunner()
    trigger = RetrainTrigger(runner, cooldown_seconds=300, clock=clock)
    assert trigger.request("DataDriftDetected:a") == "started"
    assert trigger.wait_idle(10)

    for seconds in (0, 1, 150, 299):
        clock.now = 1000.0 + seconds
        assert trigger.request("DataDriftDetected:a") == "cooling_down"
        assert trigger.request("ModelAccuracyDegraded:b") == "cooling_down"
    assert runner.calls == ["DataDriftDetected:a"]
    assert trigger.wait_idle(0)  # nothing was queued either

    clock.now = 1000.0 + 301
    assert trigger.request("ModelAccuracyDegraded:b") == "started"
    assert trigger.wait_idle(10)
    assert runner.calls == ["DataDriftDetected:a", "ModelAccuracyDegraded:b"]


def test_a_runner_that_raises_counts_as_failed_and_the_trigger_keeps_working():
    runner, events = RecordingRunner(fail=True), Events()
    trigger = RetrainTrigger(runner, cooldown_seconds=0, on_event=events)
    assert trigger.request("DataDriftDetected:a") == "started"
    assert trigger.wait_idle(10)
    assert events.seen == [("started", "DataDriftDetected:a"), ("finished", "failed")]
    assert trigger.last["result"] == "failed"
    assert trigger.running is None

    runner.fail = False
    assert trigger.request("DataDriftDetected:a") == "started"
    assert trigger.wait_idle(10)
    assert events.seen[-1] == ("finished", "promoted")
    assert runner.calls == ["DataDriftDetected:a", "DataDriftDetected:a"]


def test_a_failure_with_a_queued_request_still_runs_the_queued_one_after_the_cooldown():
    clock = FakeClock()
    runner = RecordingRunner(hold=True, fail=True)
    trigger = RetrainTrigger(runner, cooldown_seconds=600, clock=clock, recheck_seconds=0.05)
    assert trigger.request("DataDriftDetected:a") == "started"
    runner.wait_started()
    assert trigger.request("ModelAccuracyDegraded:b") == "queued"
    runner.release()
    assert trigger.wait_idle(10)
    assert trigger.last["result"] == "failed" and runner.calls == ["DataDriftDetected:a"]
    clock.now += 600
    runner.wait_started()
    assert trigger.wait_idle(10)
    assert runner.calls == ["DataDriftDetected:a", "ModelAccuracyDegraded:b"]
    assert trigger.last == {**trigger.last, "reason": "ModelAccuracyDegraded:b", "result": "failed"}


def test_a_request_waits_while_something_holds_retraining():
    """A request made before the labels turned suspect does not start while they are."""
    hold = ["suspect labels: live_accuracy 0.2200 is 0.5600 below its label-free estimate"]
    runner = RecordingRunner()
    trigger = RetrainTrigger(runner, cooldown_seconds=0, held=lambda: hold[0], recheck_seconds=0.05)
    assert trigger.request("DataDriftDetected:a") == "held"
    assert _stays(lambda: runner.calls == [] and trigger.pending["state"] == "held", seconds=0.3)
    hold[0] = ""
    runner.wait_started()
    assert trigger.wait_idle(10) and runner.calls == ["DataDriftDetected:a"]
