"""Serving and the monitor on 0.0.0.0 refuse to start while a write path's token is unset,
start with the tokens, and start with a warning under MODELWATCH_ALLOW_UNAUTHENTICATED=1.

Real `modelwatch serve` (gunicorn) and `modelwatch monitor` processes; binding 0.0.0.0 sends
nothing anywhere, and the tests connect to 127.0.0.1 only.
"""

from __future__ import annotations

import pytest
import requests

from tests import services

pytestmark = pytest.mark.slow  # starts gunicorn and the monitor

MODELWATCH = str(services.VENV_BIN / "modelwatch")
TOKENS = (
    "MODELWATCH_ADMIN_TOKEN",
    "MODELWATCH_FEEDBACK_TOKEN",
    "MODELWATCH_WEBHOOK_TOKEN",
    "MODELWATCH_ALLOW_UNAUTHENTICATED",
)
SERVICES = {
    "serving": (
        ["serve", "--workers", "1"],
        ["MODELWATCH_ADMIN_TOKEN", "MODELWATCH_FEEDBACK_TOKEN"],
    ),
    "monitor": (["monitor"], ["MODELWATCH_WEBHOOK_TOKEN"]),
}


@pytest.fixture(autouse=True)
def no_tokens_inherited(monkeypatch):
    for name in TOKENS:
        monkeypatch.delenv(name, raising=False)


def _env(tmp_path, **extra) -> dict:
    return {
        # Nothing answers there: serving starts without a model, as it may.
        "MLFLOW_TRACKING_URI": f"http://127.0.0.1:{services.free_port()}",
        "MODELWATCH_STORE_URL": f"sqlite:///{tmp_path / 'predictions.db'}",
        "MODELWATCH_SPILL_DIR": str(tmp_path / "spill"),
        "MODELWATCH_MODEL_CACHE_DIR": str(tmp_path / "cache"),
        "MODELWATCH_WORKER_TIMEOUT": "10",
        "MODELWATCH_MONITOR_MLFLOW": "0",
        **extra,
    }


def _start(name: str, tmp_path, env: dict):
    args, _ = SERVICES[name]
    port = services.free_port()
    argv = [MODELWATCH, *args, "--host", "0.0.0.0", "--port", str(port)]
    return services.process(argv, tmp_path / f"{name}.log", env=env, cwd=tmp_path), port


@pytest.mark.parametrize("name", SERVICES)
def test_refuses_to_start_on_all_addresses_without_tokens(name, tmp_path):
    started, port = _start(name, tmp_path, _env(tmp_path))
    with started as proc:
        assert proc.wait(timeout=120) != 0
    log = (tmp_path / f"{name}.log").read_text()
    line = next(line for line in log.splitlines() if "refuses to listen on" in line)
    for variable in SERVICES[name][1]:
        assert variable in line
    assert f"0.0.0.0:{port}" in line and "MODELWATCH_ALLOW_UNAUTHENTICATED=1" in line
    assert not services.port_open(port)


@pytest.mark.parametrize("name", SERVICES)
def test_one_unset_token_is_enough_to_refuse(name, tmp_path):
    required = SERVICES[name][1]
    env = _env(tmp_path, **{v: "a-token" for v in required[:-1]})
    started, _ = _start(name, tmp_path, env)
    with started as proc:
        assert proc.wait(timeout=120) != 0
    line = next(
        line for line in (tmp_path / f"{name}.log").read_text().splitlines() if "refuses" in line
    )
    assert required[-1] in line and all(v not in line for v in required[:-1])


@pytest.mark.parametrize("name", SERVICES)
def test_starts_on_all_addresses_with_its_tokens(name, tmp_path):
    env = _env(tmp_path, **{v: f"token-of-{v}" for v in SERVICES[name][1]})
    started, port = _start(name, tmp_path, env)
    with started as proc:
        services.wait_http(f"http://127.0.0.1:{port}/health", timeout=120, proc=proc)
    log = (tmp_path / f"{name}.log").read_text()
    assert "refuses" not in log and "MODELWATCH_ALLOW_UNAUTHENTICATED" not in log
    assert all(f"token-of-{v}" not in log for v in SERVICES[name][1]), "a token in the log"


@pytest.mark.parametrize("name", SERVICES)
def test_starts_with_a_warning_when_a_gateway_authenticates(name, tmp_path):
    env = _env(tmp_path, MODELWATCH_ALLOW_UNAUTHENTICATED="1")
    started, port = _start(name, tmp_path, env)
    with started as proc:
        services.wait_http(f"http://127.0.0.1:{port}/health", timeout=120, proc=proc)
        log = services.wait_for(lambda: _warning(tmp_path / f"{name}.log"), 30, "the warning", proc)
    for variable in SERVICES[name][1]:
        assert variable in log
    assert "MODELWATCH_ALLOW_UNAUTHENTICATED=1" in log


def test_loopback_needs_no_token(tmp_path):
    port = services.free_port()
    argv = [MODELWATCH, "monitor", "--host", "127.0.0.1", "--port", str(port)]
    with services.process(argv, tmp_path / "monitor.log", env=_env(tmp_path), cwd=tmp_path) as proc:
        services.wait_http(f"http://127.0.0.1:{port}/health", timeout=120, proc=proc)
    assert "MODELWATCH_WEBHOOK_TOKEN" not in (tmp_path / "monitor.log").read_text()


def _warning(log) -> str | None:
    lines = [line for line in log.read_text().splitlines() if "write paths are open" in line]
    return lines[0] if lines else None


def test_tokens_from_mounted_secret_files(tmp_path):
    """As compose runs it: the webhook token is a file in MODELWATCH_SECRETS_DIR."""
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    (secrets / "webhook_token").write_text("mounted-webhook-token\n")
    started, port = _start("monitor", tmp_path, _env(tmp_path, MODELWATCH_SECRETS_DIR=str(secrets)))
    with started as proc:
        url = f"http://127.0.0.1:{port}"
        services.wait_http(f"{url}/health", timeout=120, proc=proc)
        assert requests.post(f"{url}/alerts", json={"alerts": []}, timeout=10).status_code == 401
        bearer = {"Authorization": "Bearer mounted-webhook-token"}
        assert (
            requests.post(
                f"{url}/alerts", json={"alerts": []}, headers=bearer, timeout=10
            ).status_code
            < 300
        )
    assert "mounted-webhook-token" not in (tmp_path / "monitor.log").read_text()
