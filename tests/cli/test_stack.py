"""`modelwatch up / status / simulate / down` on a real embedded stack: MLflow server,
serving under gunicorn, the monitor, and Prometheus, Alertmanager and Pushgateway where
installed, on free ports under a temporary MODELWATCH_HOME, beside any stack of the user's.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from modelwatch.cli.stack import DEFAULT_PORTS, OPTIONAL, ORDER, Stack, StackError
from modelwatch.tokens import STACK_FILES
from tests import services

pytestmark = pytest.mark.slow
MODELWATCH = str(Path(sys.executable).parent / "modelwatch")
INSTALLED = [n for n in ORDER if n not in OPTIONAL or shutil.which(OPTIONAL[n])]


def stack_env(home: Path, ports: dict[str, int]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MODELWATCH_", "MLFLOW_"))}
    env["MODELWATCH_HOME"] = str(home)
    env |= {f"MODELWATCH_{name.upper()}_PORT": str(port) for name, port in ports.items()}
    return env


def modelwatch(env: dict, *args: str, timeout: float = 240) -> subprocess.CompletedProcess:
    return subprocess.run(
        [MODELWATCH, *map(str, args)], env=env, capture_output=True, text=True, timeout=timeout
    )


def free_ports() -> dict[str, int]:
    ports: dict[str, int] = {}
    while len(ports) < len(DEFAULT_PORTS):
        port = services.free_port()
        if port not in ports.values():
            ports[list(DEFAULT_PORTS)[len(ports)]] = port
    return ports


def proc_stat(pid: int) -> tuple[int, int] | None:
    """(parent pid, process group) of a live process; None if it is gone (or a zombie)."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    fields = text.rpartition(")")[2].split()
    if fields[0] in ("Z", "X"):
        return None
    return int(fields[1]), int(fields[2])


def all_processes() -> dict[int, tuple[int, int]]:
    out = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (stat := proc_stat(int(entry.name))) is not None:
            out[int(entry.name)] = stat
    return out


def descendants(root: int) -> set[int]:
    procs = all_processes()
    found, frontier = set(), {root}
    while frontier:
        found |= frontier
        frontier = {p for p, (ppid, _) in procs.items() if ppid in frontier} - found
    return found


def in_group(pgid: int) -> set[int]:
    return {p for p, (_, group) in all_processes().items() if group == pgid}


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    home = tmp_path_factory.mktemp("stack-home")
    ports = free_ports()
    # A 600-row simulation must make a window (the embedded default waits for 1000 rows).
    env = {**stack_env(home, ports), "MODELWATCH_MONITOR_MIN_ROWS": "500"}
    s = Stack(home, ports)
    s.env_for_cli = env
    try:
        yield s
    finally:
        s.down()  # whatever a failed test left


def test_up_starts_every_installed_component(stack):
    done = modelwatch(stack.env_for_cli, "up")
    assert done.returncode == 0, done.stdout + done.stderr + _logs(stack)
    states = {line.split()[0]: line.split()[1] for line in done.stdout.splitlines()[: len(ORDER)]}
    assert states == {n: "started" if n in INSTALLED else "not" for n in ORDER}
    status = stack.status()
    for name in INSTALLED:
        assert status[name]["running"] and status[name]["healthy"], (name, status[name])
        assert status[name]["url"] == f"http://127.0.0.1:{stack.ports[name]}"
        assert services.port_open(stack.ports[name])
    # the stack's own home holds everything; nothing went to the project's mlruns/
    assert (stack.mlruns / "mlflow.db").exists()
    assert (stack.run_dir / "logs" / "serving.log").exists()
    stack.first_pids = {n: status[n]["pid"] for n in INSTALLED}


def test_a_second_up_leaves_the_running_stack_alone(stack):
    done = modelwatch(stack.env_for_cli, "up")
    assert done.returncode == 0, done.stderr
    for name in INSTALLED:
        assert f"{name:<13} running " in done.stdout
    assert {n: stack.status()[n]["pid"] for n in INSTALLED} == stack.first_pids
    # and the Python API says the same
    assert stack.up() == {n: "running" if n in INSTALLED else "not installed" for n in ORDER}


def test_the_stack_generates_its_tokens_and_guards_its_write_paths(stack):
    files = {name: stack.run_dir / file for name, file in STACK_FILES.items()}
    tokens = {name: path.read_text() for name, path in files.items()}
    for name, path in files.items():
        assert len(tokens[name]) >= 32, name
        assert path.stat().st_mode & 0o777 == 0o600, name
    assert len(set(tokens.values())) == len(tokens), "one token a write path"
    serving, monitor = stack.url("serving"), stack.url("monitor")
    labels = {"feedback": [{"prediction_id": "no-such-id", "label": 1}]}
    assert requests.post(f"{serving}/feedback", json=labels, timeout=10).status_code == 401
    assert requests.post(f"{serving}/admin/reload", timeout=10).status_code == 401
    assert requests.post(f"{monitor}/alerts", json={"alerts": []}, timeout=10).status_code == 401
    bearer = {"Authorization": f"Bearer {tokens['MODELWATCH_FEEDBACK_TOKEN']}"}
    # past the token (no model is served yet: what follows is not the token's business)
    assert requests.post(
        f"{serving}/feedback", json=labels, headers=bearer, timeout=10
    ).status_code not in (401, 403)
    bearer = {"Authorization": f"Bearer {tokens['MODELWATCH_WEBHOOK_TOKEN']}"}
    assert (
        requests.post(
            f"{monitor}/alerts", json={"alerts": []}, headers=bearer, timeout=10
        ).status_code
        < 300
    )

    # the next `up` keeps them, and no answer or log shows one
    assert modelwatch(stack.env_for_cli, "up").returncode == 0
    assert {name: path.read_text() for name, path in files.items()} == tokens
    shown = modelwatch(stack.env_for_cli, "status", "--json").stdout + _logs(stack, tail=None)
    assert not [name for name, token in tokens.items() if token in shown]


def test_status_json_reports_the_running_stack(stack):
    done = modelwatch(stack.env_for_cli, "status", "--json")
    assert done.returncode == 0, done.stdout + done.stderr
    info = json.loads(done.stdout)
    for name in INSTALLED:
        c = info["components"][name]
        assert c == {
            "running": True,
            "pid": stack.first_pids[name],
            "healthy": True,
            "url": f"http://127.0.0.1:{stack.ports[name]}",
        }
    assert info["healthy"] is True
    watched = info["monitor"]["models"]["credit-default"]
    assert watched["model"] == "credit-default" and watched["version"] is None
    assert watched["retraining"] is None
    if "alertmanager" in INSTALLED:
        assert isinstance(info["alerts"], list)
    # nothing is served yet: /model's JSON error, not a crash
    assert info["served"]["error"]["code"] == "no_model"
    text = modelwatch(stack.env_for_cli, "status").stdout
    assert f"serving       healthy               http://127.0.0.1:{stack.ports['serving']}" in text


def test_simulate_against_the_stack_serving(stack):
    url = stack.url("serving")
    env = {**stack.env_for_cli, "MLFLOW_TRACKING_URI": stack.url("mlflow")}
    trained = subprocess.run(
        [sys.executable, "-m", "modelwatch.training.train", "--n-rows", "3000"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert trained.returncode == 0, trained.stdout + trained.stderr
    # serving polls the alias and picks the new version up without a restart
    services.wait_for(lambda: services.answers(f"{url}/ready"), 180, "serving to load version 1")

    done = modelwatch(
        stack.env_for_cli,
        "simulate",
        "--scenario",
        "baseline",
        "--rate",
        "200",
        "--duration",
        "3",
        "--batch",
        "50",
        "--label-delay",
        "0.5",
        "--url",
        url,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    line = done.stdout.strip().splitlines()[-1]
    assert line.startswith("baseline: 600/600 predicted"), line
    assert "0 failed requests" in line and "600/600 labels" in line and "versions v1:600" in line

    # the monitor of the stack judges the window and `status` says so. The last labels
    # follow the last predictions by the label delay, so a window may come between them:
    # wait for one with every label (none lost means one comes).
    def monitor_saw_it():
        info = json.loads(modelwatch(stack.env_for_cli, "status", "--json").stdout)
        watched = ((info["monitor"] or {}).get("models") or {}).get("credit-default") or {}
        window = watched.get("last_window")
        complete = window and window["rows"] == 600 and window["label_coverage"] == 1.0
        return info if complete else None

    info = services.wait_for(monitor_saw_it, 180, "the monitor's first window")
    watched = info["monitor"]["models"]["credit-default"]
    assert info["served"]["version"] == "1" and watched["version"] == "1"
    assert watched["last_window"]["label_coverage"] == 1.0
    assert watched["last_window"]["integrity"] == []


def test_down_stops_every_process_of_the_stack(stack):
    pids = {n: stack.status()[n]["pid"] for n in INSTALLED}
    assert all(pids.values())
    family = {n: descendants(pid) for n, pid in pids.items()}
    assert len(family["serving"]) >= 3  # the gunicorn master and its two workers

    done = modelwatch(stack.env_for_cli, "down", timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "stopped: " + ", ".join(reversed(INSTALLED))
    for name, pid in pids.items():
        assert in_group(pid) == set(), f"{name}'s process group {pid} is still alive"
        left = {p for p in family[name] if proc_stat(p) is not None}
        assert left == set(), f"processes of {name} survived: {left}"
        assert not services.port_open(stack.ports[name]), f"{name}'s port is still open"
        assert not (stack.run_dir / "pids" / f"{name}.pid").exists()

    assert modelwatch(stack.env_for_cli, "down").stdout.strip() == "stopped: nothing was running"
    done = modelwatch(stack.env_for_cli, "status", "--json")
    assert done.returncode == 1
    info = json.loads(done.stdout)
    assert not any(c["running"] for c in info["components"].values()) and info["healthy"] is False


def test_a_busy_port_is_a_clear_error_naming_component_and_port(tmp_path):
    ports = free_ports()
    env = stack_env(tmp_path, ports)
    with socket.socket() as foreign:
        foreign.bind(("127.0.0.1", ports["mlflow"]))
        foreign.listen()
        done = modelwatch(env, "up")
        assert done.returncode == 1
        assert f"error: cannot start mlflow: port {ports['mlflow']} is in use" in done.stderr
        assert "Traceback" not in done.stderr
        assert not list((tmp_path / "run" / "pids").glob("*.pid"))  # nothing was started

    # a later component's port: the message names it; `down` stops what did start
    stack = Stack(
        tmp_path,
        ports,
        components=("pushgateway", "monitor") if "pushgateway" in INSTALLED else ("monitor",),
    )
    with socket.socket() as foreign:
        foreign.bind(("127.0.0.1", ports["monitor"]))
        foreign.listen()
        try:
            with pytest.raises(
                StackError, match=rf"cannot start monitor: port {ports['monitor']} is in use"
            ):
                stack.up()
            started = [n for n in stack.components if stack.status()[n]["running"]]
            assert "monitor" not in started
        finally:
            stopped = stack.down()
    assert stopped == started[::-1]
    assert not any(stack.status()[n]["running"] for n in stack.components)


def test_port_overrides_must_be_numbers(tmp_path):
    env = {**stack_env(tmp_path, free_ports()), "MODELWATCH_SERVING_PORT": "eighty"}
    done = modelwatch(env, "up")
    assert done.returncode != 0 and "MODELWATCH_SERVING_PORT" in done.stderr


def _logs(stack: Stack, tail: int | None = 1500) -> str:
    out = []
    for log in sorted((stack.run_dir / "logs").glob("*.log")):
        text = log.read_text(errors="replace")
        out.append(f"--- {log.name}\n{text[-tail:] if tail else text}")
    return "\n".join(out)
