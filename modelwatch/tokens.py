"""The bearer tokens of the write paths: who may start without them, and where the
embedded stack keeps the ones it generates.

Serving (`/admin/*`, `POST /feedback`) and the monitor (`POST /alerts`) refuse to listen
on anything but loopback while a write path's token is unset: anyone who can reach them
could otherwise send labels, reload or retrain.

>>> is_loopback("127.0.0.1"), is_loopback("[::1]"), is_loopback("localhost")
(True, True, True)
>>> is_loopback("0.0.0.0"), is_loopback("::"), is_loopback("10.0.0.5"), is_loopback("")
(False, False, False, False)
>>> check_exposure("serving", ["127.0.0.1:8000"], SERVING_TOKENS, {}) is None
True
>>> check_exposure("monitor", ["0.0.0.0:8001"], MONITOR_TOKENS, {})
Traceback (most recent call last):
...
modelwatch.tokens.ExposedWithoutTokens: monitor refuses to listen on 0.0.0.0:8001 with ...
"""

from __future__ import annotations

import ipaddress
import os
import secrets
from collections.abc import Iterable, Mapping, MutableMapping
from pathlib import Path

from modelwatch.settings import read

SERVING_TOKENS = ("MODELWATCH_ADMIN_TOKEN", "MODELWATCH_FEEDBACK_TOKEN")
MONITOR_TOKENS = ("MODELWATCH_WEBHOOK_TOKEN",)
# The file of each token in the embedded stack's run directory (run/webhook_token is also
# Alertmanager's credentials_file).
STACK_FILES = {
    "MODELWATCH_ADMIN_TOKEN": "admin_token",
    "MODELWATCH_FEEDBACK_TOKEN": "feedback_token",
    "MODELWATCH_WEBHOOK_TOKEN": "webhook_token",
}


class ExposedWithoutTokens(RuntimeError):
    """A service would listen beyond loopback with a write path open; the message says
    which variables are unset and the ways out."""


def is_loopback(host: str) -> bool:
    """Only this machine can connect. A name other than localhost may resolve anywhere."""
    host = host.strip().strip("[]")
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def address_host(address: str) -> str | None:
    """The host of a bind address (`host:port`, `[v6]:port`, a bare host); None for a
    unix socket, which only this machine reaches."""
    if address.startswith("unix:"):
        return None
    if address.startswith("["):
        return address[1:].partition("]")[0]
    if address.count(":") == 1:
        return address.partition(":")[0]
    return address  # a bare IPv6 address or host name


def check_exposure(
    service: str,
    addresses: Iterable[str],
    tokens: Iterable[str],
    env: Mapping[str, str] | None = None,
) -> str | None:
    """Raise ExposedWithoutTokens when `addresses` reach beyond loopback while one of
    `tokens` is unset; under MODELWATCH_ALLOW_UNAUTHENTICATED=1 return the warning to log
    instead. None when nothing is exposed."""
    exposed = [
        a for a in addresses if (host := address_host(a)) is not None and not is_loopback(host)
    ]
    unset = [name for name in tokens if not read(name, env)] if exposed else []
    if not unset:
        return None
    where, names = ", ".join(exposed), " and ".join(unset)
    if read("MODELWATCH_ALLOW_UNAUTHENTICATED", env):
        return (
            f"{service} listens on {where} with {names} unset: its write paths are open to "
            "anyone who reaches it (MODELWATCH_ALLOW_UNAUTHENTICATED=1: a gateway in front must "
            "authenticate)"
        )
    raise ExposedWithoutTokens(
        f"{service} refuses to listen on {where} with {names} unset: "
        f"set {'them' if len(unset) > 1 else 'it'}, listen on 127.0.0.1, or set "
        "MODELWATCH_ALLOW_UNAUTHENTICATED=1 if a gateway in front authenticates"
    )


def stack_tokens(run_dir: Path, env: Mapping[str, str]) -> dict[str, str]:
    """The embedded stack's tokens: a variable set in `env` wins over the one
    `keep_stack_tokens` keeps in `run_dir`."""
    tokens = {name: read(name, env) or _kept(run_dir / file) for name, file in STACK_FILES.items()}
    return {name: token for name, token in tokens.items() if token}


def keep_stack_tokens(run_dir: Path, env: Mapping[str, str]) -> None:
    """Keep each token in `run_dir` (mode 0600) for the stack's processes, its clients and
    the next `up`: the variable's, the one kept before, or a new one."""
    for name, file in STACK_FILES.items():
        path = run_dir / file
        _keep(path, read(name, env) or _kept(path) or secrets.token_urlsafe(32))


def client_token(name: str, run_dir: Path | None = None) -> str | None:
    """A client's token: the variable when set, else the embedded stack's file (a client
    on the same machine as `modelwatch up`)."""
    return read(name) or (_kept(run_dir / STACK_FILES[name]) if run_dir is not None else None)


def load_token_files(env: MutableMapping[str, str]) -> None:
    """Fill each unset token variable of `env` from MODELWATCH_SECRETS_DIR's file of that
    name, as compose mounts secrets: a token never has to be written into a manifest."""
    directory = read("MODELWATCH_SECRETS_DIR", env)
    if not directory:
        return
    for name, file in STACK_FILES.items():
        if not read(name, env) and (token := _kept(Path(directory) / file)):
            env[name] = token


def _kept(path: Path) -> str | None:
    try:
        return path.read_text().strip() or None
    except OSError:
        return None


def _keep(path: Path, token: str) -> None:
    """Written readable by this user only, from the first byte."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(token)
    path.chmod(0o600)  # an older file keeps its mode through O_CREAT
