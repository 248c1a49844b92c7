"""The two whole-demo runs, started together.

Each `modelwatch demo` spends most of its minutes waiting on the clock (traffic at a set
rate, the monitor's interval, the alert rules' `for:`), so the one with Prometheus and the
one without run side by side, each on free ports and a home of its own: the suite waits
for the longer one instead of for both in turn. Each demo's own waits stretch on a busy
machine; the deadline here only stops a hang.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from modelwatch.cli.stack import OPTIONAL, Stack
from tests.services import free_port

ROOT = Path(__file__).resolve().parents[2]
MODELWATCH = str(Path(sys.executable).parent / "modelwatch")
TOKEN = "loop-test-token"
DEADLINE_SECONDS = 3600
HAS_PROMETHEUS = all(shutil.which(b) for b in OPTIONAL.values())
# Shortened stages; the cool-down is short so that only the integrity safeguards can keep
# integrity_swap from retraining.
SHORT = {
    "MODELWATCH_MONITOR_INTERVAL": "3",
    "MODELWATCH_RETRAIN_COOLDOWN": "5",
    "MODELWATCH_DEMO_BASELINE_SECONDS": "45",
    "MODELWATCH_DEMO_RECOVERY_SECONDS": "15",
    "MODELWATCH_DEMO_INTEGRITY_SECONDS": "75",
}


@dataclass
class Demo:
    stack: Stack
    proc: subprocess.Popen
    log: Path
    started: float

    def finished(self) -> subprocess.CompletedProcess:
        """The demo's exit status and story, once it has ended."""
        try:
            self.proc.wait(timeout=max(1.0, DEADLINE_SECONDS - (time.time() - self.started)))
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        story = self.log.read_text()
        print(story)
        return subprocess.CompletedProcess(self.proc.args, self.proc.returncode, story, "")

    def stop(self) -> None:
        """The demo and the stack it leaves running (a demo stack watches and scrapes every
        few seconds: left up, it would slow every test after it)."""
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.stack.down()


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


def _start(command: list[str], env: dict, home: Path, ports: dict[str, int]) -> Demo:
    log = home / "demo.out"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            command,
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    return Demo(Stack(home, ports), proc, log, time.time())


def _ports() -> dict[str, int]:
    return {
        name: free_port()
        for name in ("mlflow", "serving", "monitor", "prometheus", "alertmanager", "pushgateway")
    }


def _env(home: Path, ports: dict[str, int], base: dict) -> dict:
    return {
        **base,
        "MODELWATCH_HOME": str(home),
        **SHORT,
        **{f"MODELWATCH_{name.upper()}_PORT": str(port) for name, port in ports.items()},
    }


@pytest.fixture(scope="session")
def demos(tmp_path_factory):
    """Both demos, started at once: {"prometheus": Demo or None, "builtin": Demo}."""
    runs = {"prometheus": None}
    try:
        if HAS_PROMETHEUS:  # `make demo` itself, as a user types it
            home, ports = tmp_path_factory.mktemp("stack"), _ports()
            env = _env(home, ports, {**os.environ, "MODELWATCH_WEBHOOK_TOKEN": TOKEN})
            runs["prometheus"] = _start(["make", "-s", "demo"], env, home, ports)
        home, ports = tmp_path_factory.mktemp("stack-builtin"), _ports()
        clean = {
            k: v for k, v in os.environ.items() if not k.startswith(("MODELWATCH_", "MLFLOW_"))
        }
        clean["PATH"] = path_without(OPTIONAL.values(), tmp_path_factory.mktemp("bin"))
        runs["builtin"] = _start([MODELWATCH, "demo"], _env(home, ports, clean), home, ports)
        yield runs
    finally:  # each test module stops its own demo when it is done; this is for a failure
        for run in filter(None, runs.values()):
            run.stop()
