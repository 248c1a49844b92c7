"""`modelwatch demo` on a machine without Prometheus, Alertmanager and Pushgateway: the
monitor's built-in rules fire DataDriftDetected, one retraining is promoted and served,
and integrity_swap pages without retraining, as with Prometheus."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from mlflow import MlflowClient

from modelwatch.stack import OPTIONAL, Stack
from tests.services import free_port

pytestmark = pytest.mark.slow
MODELWATCH = str(Path(sys.executable).parent / "modelwatch")


def path_without(names, tmp: Path) -> str:
    """PATH with `names` hidden: each folder that holds one of them is replaced by a folder
    of links to everything else in it."""
    folders = []
    for i, folder in enumerate(os.environ.get("PATH", "").split(os.pathsep)):
        if not any((Path(folder) / name).exists() for name in names):
            folders.append(folder)
            continue
        links = tmp / f"path{i}"
        links.mkdir()
        for entry in Path(folder).iterdir():
            if entry.name not in names:
                (links / entry.name).symlink_to(entry)
        folders.append(str(links))
    return os.pathsep.join(folders)


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    home = tmp_path_factory.mktemp("stack")
    ports = {name: free_port() for name in ("mlflow", "serving", "monitor", "prometheus", "alertmanager", "pushgateway")}
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MODELWATCH_", "MLFLOW_"))}
    env |= {
        "PATH": path_without(OPTIONAL.values(), tmp_path_factory.mktemp("bin")),
        "MODELWATCH_HOME": str(home),
        **{f"MODELWATCH_{name.upper()}_PORT": str(port) for name, port in ports.items()},
        "MODELWATCH_MONITOR_INTERVAL": "3",
        # Short, so that only the integrity safeguards can keep integrity_swap from retraining.
        "MODELWATCH_RETRAIN_COOLDOWN": "5",
        "MODELWATCH_DEMO_BASELINE_SECONDS": "45", "MODELWATCH_DEMO_RECOVERY_SECONDS": "15",
        "MODELWATCH_DEMO_INTEGRITY_SECONDS": "75",
    }
    stack = Stack(home, ports)
    try:
        # The demo's own waits stretch on a busy machine; this deadline only stops a hang.
        done = subprocess.run([MODELWATCH, "demo"], env=env, capture_output=True, text=True, timeout=3600)
        print(done.stdout)
        yield stack, done
    finally:
        stack.down()


def test_the_builtin_rules_close_the_loop(demo):
    stack, done = demo
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    story = done.stdout
    for milestone in ("prometheus not installed", "alertmanager not installed",
                      "alerting: the monitor's built-in rules", "alerts during baseline: none",
                      "monitor: drift in income, region",
                      "monitor's built-in rules: DataDriftDetected firing -> retraining trigger",
                      "retraining started", "alias production moved", "serving hot-reloaded",
                      "Timeline"):
        assert milestone in story, milestone
    assert re.search(r"validation_status=approved, trigger=(DataDriftDetected|ModelAccuracyDegraded):builtin", story)
    assert "Prometheus:" not in story.split("Timeline")[-1]  # no URL of a Prometheus that is not there
    client = MlflowClient(stack.url("mlflow"))
    assert client.get_model_version_by_alias("credit-default", "production").version == "2"


def test_integrity_swap_pages_and_never_retrains(demo):
    _, done = demo
    raised = done.stdout.split("broken upstream data")[1].split("alerts raised: ")[1].splitlines()[0]
    assert "DataIntegrityViolation" in raised
    assert "retrainings started: 0" in raised
