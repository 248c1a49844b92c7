"""`modelwatch demo` on a machine without Prometheus, Alertmanager and Pushgateway: the
monitor's built-in rules fire DataDriftDetected, one retraining is promoted and served,
and integrity_swap pages without retraining, as with Prometheus."""

from __future__ import annotations

import re

import pytest
from mlflow import MlflowClient

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def demo(demos):
    """The demo with Prometheus, Alertmanager and Pushgateway hidden from PATH (started
    beside the one with them: tests/loop/conftest.py)."""
    run = demos["builtin"]
    yield run.stack, run.finished()
    run.stop()


def test_the_builtin_rules_close_the_loop(demo):
    stack, done = demo
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    story = done.stdout
    for milestone in (
        "prometheus not installed",
        "alertmanager not installed",
        "alerting: the monitor's built-in rules",
        "alerts during baseline: none",
        "monitor: drift in income, region",
        "monitor's built-in rules: DataDriftDetected firing -> retraining trigger",
        "retraining started",
        "alias production moved",
        "serving hot-reloaded",
        "Timeline",
    ):
        assert milestone in story, milestone
    assert re.search(
        r"validation_status=approved, trigger=(DataDriftDetected|ModelAccuracyDegraded):builtin",
        story,
    )
    assert (
        "Prometheus:" not in story.split("Timeline")[-1]
    )  # no URL of a Prometheus that is not there
    client = MlflowClient(stack.url("mlflow"))
    assert client.get_model_version_by_alias("credit-default", "production").version == "2"


def test_integrity_swap_pages_and_never_retrains(demo):
    _, done = demo
    raised = (
        done.stdout.split("broken upstream data")[1].split("alerts raised: ")[1].splitlines()[0]
    )
    assert "DataIntegrityViolation" in raised
    assert "retrainings started: 0" in raised
