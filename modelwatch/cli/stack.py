"""The embedded stack: MLflow server, serving, monitor, and Prometheus, Alertmanager and
Pushgateway where the machine has them, as background processes of one run directory.

    stack = Stack.default()          # mlruns/ and run/ under the project, docs/DESIGN.md ports
    stack.up()                       # idempotent: running components are left alone
    stack.status()
    stack.down()                     # every process group it started, and nothing else

Each component logs to `run/logs/NAME.log` and keeps its pid in `run/pids/NAME.pid`.
Prometheus and Alertmanager get configs generated into `run/` from the ones in
`monitoring/`, with this stack's ports, so tests can run a stack beside a user's.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import requests
import yaml

from modelwatch import monitoring
from modelwatch.project import mlflow_command
from modelwatch.settings import (
    EMBEDDED_ENV,
    GUNICORN,
    MONITOR,
    PORTS,
    SERVING,
    SettingError,
    check,
    default,
    port_variable,
    read,
)
from modelwatch.tokens import keep_stack_tokens, stack_tokens

# The configuration the stack starts Prometheus and Alertmanager with: shipped in the package.
MONITORING_FILES = Path(monitoring.__file__).resolve().parent
BIN = Path(sys.executable).parent
DEFAULT_PORTS = PORTS  # MODELWATCH_<NAME>_PORT's defaults
ORDER = ("mlflow", "pushgateway", "serving", "monitor", "alertmanager", "prometheus")
OPTIONAL = {
    "prometheus": "prometheus",
    "alertmanager": "prometheus-alertmanager",
    "pushgateway": "prometheus-pushgateway",
}
HEALTH = {
    "mlflow": "/health",
    "serving": "/health",
    "monitor": "/health",
    "prometheus": "/-/ready",
    "alertmanager": "/-/ready",
    "pushgateway": "/-/ready",
}


class StackError(RuntimeError):
    """A component cannot start; the message says which and why."""


@dataclass
class Stack:
    home: Path  # holds mlruns/ (MLflow store, prediction log) and run/ (logs, pids, configs)
    ports: dict[str, int] = field(default_factory=lambda: dict(DEFAULT_PORTS))
    env: dict[str, str] = field(default_factory=dict)
    components: tuple[str, ...] = ORDER

    @classmethod
    def default(cls) -> Stack:
        """The stack `modelwatch up/down/status` act on: its home is MODELWATCH_HOME (the
        current directory by default); each port is MODELWATCH_<NAME>_PORT, so a second
        stack can run beside the default one."""
        try:
            ports = {name: read(port_variable(name)) for name in DEFAULT_PORTS}
            return cls(Path(read("MODELWATCH_HOME") or Path.cwd()), ports)
        except SettingError as exc:
            raise StackError(str(exc)) from None

    @property
    def run_dir(self) -> Path:
        return self.home / "run"

    @property
    def mlruns(self) -> Path:
        return self.home / "mlruns"

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.ports[name]}"

    def service_env(self) -> dict[str, str]:
        """The environment every component and every client of this stack shares, with
        the stack's tokens (see `tokens`)."""
        env = self._base_env()
        return {**env, **self.tokens(env)}

    def tokens(self, env: dict[str, str] | None = None) -> dict[str, str]:
        """The bearer tokens of serving's and the monitor's write paths: the variables
        when set, else those `up` generated and kept in run/ (mode 0600) for the next
        `up` and for the stack's clients. run/webhook_token is also Alertmanager's
        credentials_file."""
        return stack_tokens(self.run_dir, self._base_env() if env is None else env)

    def _base_env(self) -> dict[str, str]:
        return {
            **EMBEDDED_ENV,
            "MLFLOW_TRACKING_URI": self.url("mlflow"),
            # The default paths (relative to the working directory) under this stack's home.
            "MODELWATCH_STORE_URL": f"sqlite:///{self.home / default('MODELWATCH_STORE_URL').removeprefix('sqlite:///')}",
            "MODELWATCH_MODEL_CACHE_DIR": str(self.home / default("MODELWATCH_MODEL_CACHE_DIR")),
            "MODELWATCH_SPILL_DIR": str(self.home / default("MODELWATCH_SPILL_DIR")),
            "MODELWATCH_SERVING_URL": self.url("serving"),
            "MODELWATCH_MONITOR_URL": self.url("monitor"),
            # Without Prometheus and Alertmanager the monitor applies the alert rules itself.
            "MODELWATCH_BUILTIN_ALERTS": "0"
            if all(shutil.which(OPTIONAL[n]) for n in ("prometheus", "alertmanager"))
            else "1",
            **{
                k: v
                for k, v in os.environ.items()
                if k in EMBEDDED_ENV
                or k.startswith("MODELWATCH_")
                and k not in ("MODELWATCH_SERVING_URL", "MODELWATCH_MONITOR_URL", "MODELWATCH_HOME")
            },
            "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
            **self.env,
        }

    # -- lifecycle ---------------------------------------------------------------------------
    def up(self, timeout: float = 120.0) -> dict[str, str]:
        """Start what is not running; returns each component's state ("started", "running",
        or "not installed")."""
        self._check_settings()
        for d in ("logs", "pids"):
            (self.run_dir / d).mkdir(parents=True, exist_ok=True)
        self.mlruns.mkdir(parents=True, exist_ok=True)
        keep_stack_tokens(self.run_dir, self._base_env())
        states = {}
        for name in self.components:
            if name in OPTIONAL and shutil.which(OPTIONAL[name]) is None:
                states[name] = "not installed"
                continue
            if self._alive(name):
                states[name] = "running"
                continue
            self._check_port_free(name)
            self._start(name)
            # One at a time: a component must find the ones before it answering (the
            # monitor would otherwise count an MLflow server still starting as an outage).
            self._wait_healthy(name, timeout)
            states[name] = "started"
        return states

    def down(self, timeout: float = 30.0) -> list[str]:
        """Stop every component this stack started (last started, first stopped)."""
        stopped = []
        for name in reversed(self.components):
            pid = self._pid(name)
            if pid is None:
                continue
            if _group_alive(pid):
                _stop_group(pid, timeout)
                stopped.append(name)
            self._pid_file(name).unlink(missing_ok=True)
        return stopped

    def status(self) -> dict[str, dict]:
        out = {}
        for name in self.components:
            pid = self._pid(name)
            running = pid is not None and _alive(pid)
            out[name] = {
                "running": running,
                "pid": pid if running else None,
                "url": self.url(name),
                "healthy": running and self._healthy(name),
            }
        return out

    def _check_settings(self) -> None:
        """A bad value stops the stack before anything starts, naming the variable (a
        server would otherwise die during start-up, its reason in its log)."""
        env = self.service_env()
        try:
            for reader in (SERVING, GUNICORN, MONITOR):
                check(reader, env)
        except SettingError as exc:
            raise StackError(f"cannot start the stack: {exc}") from None

    # -- one component -------------------------------------------------------------------------
    def _start(self, name: str) -> None:
        log = open(self.run_dir / "logs" / f"{name}.log", "ab")
        proc = subprocess.Popen(
            self._command(name),
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=self._component_env(name),
            cwd=self.home,
            start_new_session=True,
        )
        log.close()
        self._pid_file(name).write_text(str(proc.pid))

    def _component_env(self, name: str) -> dict[str, str]:
        env = self.service_env()
        if name == "mlflow":
            # MLflow's job runner (seven ~250 MB consumers, for GenAI jobs) serves nothing
            # of modelwatch's and slows the stack's start on a small machine.
            env.setdefault("MLFLOW_SERVER_ENABLE_JOB_EXECUTION", "false")
        return env

    def _command(self, name: str) -> list[str]:
        port = str(self.ports[name])
        if name == "mlflow":
            return mlflow_command(
                "server",
                "--backend-store-uri",
                f"sqlite:///{self.mlruns / 'mlflow.db'}",
                "--artifacts-destination",
                str(self.mlruns / "artifacts"),
                "--host",
                "127.0.0.1",
                "--port",
                port,
                "--workers",
                "1",
            )
        if name == "serving":
            return [
                str(BIN / "modelwatch"),
                "serve",
                "--port",
                port,
                "--workers",
                str(read("MODELWATCH_WORKERS", self.service_env())),
            ]
        if name == "monitor":
            return [str(BIN / "modelwatch"), "monitor", "--port", port]
        if name == "pushgateway":
            return [OPTIONAL[name], f"--web.listen-address=127.0.0.1:{port}"]
        if name == "alertmanager":
            return [
                OPTIONAL[name],
                f"--config.file={self._alertmanager_config()}",
                f"--storage.path={self.run_dir / 'alertmanager'}",
                f"--web.listen-address=127.0.0.1:{port}",
                "--cluster.listen-address=",
            ]
        if name == "prometheus":
            return [
                OPTIONAL[name],
                f"--config.file={self._prometheus_config()}",
                f"--storage.tsdb.path={self.run_dir / 'prometheus'}",
                f"--web.listen-address=127.0.0.1:{port}",
                "--web.enable-lifecycle",
            ]
        raise ValueError(name)

    def _prometheus_config(self) -> Path:
        source = MONITORING_FILES / "prometheus" / "prometheus.yml"
        config = yaml.safe_load(source.read_text())
        config["rule_files"] = [str(source.parent / f) for f in config["rule_files"]]
        text = yaml.safe_dump(config, sort_keys=False)
        for name, port in self.ports.items():
            text = text.replace(f"127.0.0.1:{DEFAULT_PORTS[name]}", f"127.0.0.1:{port}")
        path = self.run_dir / "prometheus.yml"
        path.write_text(text)
        return path

    def _alertmanager_config(self) -> Path:
        source = MONITORING_FILES / "alertmanager" / "alertmanager.yml"
        text = source.read_text().replace(
            f"127.0.0.1:{DEFAULT_PORTS['monitor']}", f"127.0.0.1:{self.ports['monitor']}"
        )
        path = self.run_dir / "alertmanager.yml"
        path.write_text(text)  # credentials_file resolves beside it, to run/webhook_token
        return path

    def _check_port_free(self, name: str) -> None:
        port = self.ports[name]
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                raise StackError(
                    f"cannot start {name}: port {port} is in use by a process this stack "
                    f"did not start (stop it, or run `modelwatch down` if it is an older stack)"
                )

    def _wait_healthy(self, name: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self._alive(name):
                log = self.run_dir / "logs" / f"{name}.log"
                tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
                raise StackError(f"{name} exited during start-up; the end of {log}:\n{tail}")
            if self._healthy(name):
                return
            time.sleep(0.3)
        raise StackError(f"{name} did not become healthy at {self.url(name)} within {timeout:.0f}s")

    def _healthy(self, name: str) -> bool:
        try:
            return requests.get(self.url(name) + HEALTH[name], timeout=2).ok
        except requests.RequestException:
            return False

    def _alive(self, name: str) -> bool:
        pid = self._pid(name)
        return pid is not None and _alive(pid)

    def _pid(self, name: str) -> int | None:
        try:
            return int(self._pid_file(name).read_text())
        except (FileNotFoundError, ValueError):
            return None

    def _pid_file(self, name: str) -> Path:
        return self.run_dir / "pids" / f"{name}.pid"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie child of ours is not alive
        waited, _ = os.waitpid(pid, os.WNOHANG)
        return waited == 0
    except ChildProcessError:
        return True


def _group_alive(pgid: int) -> bool:
    """Any process left in the group (a leader that died may leave its children)."""
    _alive(pgid)  # reaps the leader if it is our zombie
    try:
        os.killpg(pgid, 0)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:
        return True


def _stop_group(pid: int, timeout: float) -> None:
    try:
        os.killpg(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not _group_alive(pid):
            return
        time.sleep(0.2)
    try:
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
