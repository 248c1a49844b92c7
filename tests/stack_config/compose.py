"""docker-compose.yml, read with PyYAML (anchors and `<<` merges resolved), and its mounts."""

from __future__ import annotations

import re
from pathlib import Path, PurePosixPath
from typing import NamedTuple

from tests.stack_config.contract import COMPOSE_FILE, load_yaml


def load_compose() -> dict:
    return load_yaml(COMPOSE_FILE)


class Mount(NamedTuple):
    kind: str  # "bind" or "volume"
    source: str  # repository-relative path (bind) or volume name
    target: str
    read_only: bool


def mounts(service: dict) -> list[Mount]:
    out = []
    for spec in service.get("volumes", []):
        if isinstance(spec, dict):
            kind = spec.get("type", "volume")
            out.append(Mount(kind, spec["source"], spec["target"], bool(spec.get("read_only"))))
            continue
        parts = spec.split(":")
        source, target = parts[0], parts[1]
        read_only = len(parts) > 2 and "ro" in parts[2].split(",")
        kind = "bind" if source.startswith((".", "/", "~")) else "volume"
        out.append(Mount(kind, source, target, read_only))
    return out


def repo_path(source: str) -> Path:
    """A bind mount's source, relative to the compose file."""
    return (COMPOSE_FILE.parent / source).resolve()


def container_path_to_repo(service: dict, path: str) -> Path | None:
    """The repository path a bind mount of `service` puts at container `path` (globs kept)."""
    best = None
    for m in mounts(service):
        if m.kind != "bind":
            continue
        target = PurePosixPath(m.target)
        p = PurePosixPath(path)
        if p == target or target in p.parents:
            if best is None or len(m.target) > len(best.target):
                best = m
    if best is None:
        return None
    rest = PurePosixPath(path).relative_to(best.target)
    return repo_path(best.source) / rest


def interpolated(value: str, fill: str = "secret") -> str:
    """`value` with compose's ${VAR...} interpolations replaced by `fill` (URLs parse)."""
    return re.sub(r"\$\{\w+[^}]*\}", fill, str(value))


def command_flag(service: dict, flag: str) -> str | None:
    """The value of `--flag value` or `--flag=value` in a service's command."""
    command = service.get("command") or []
    if isinstance(command, str):
        command = command.split()
    for i, arg in enumerate(command):
        if arg == flag and i + 1 < len(command):
            return str(command[i + 1])
        if arg.startswith(flag + "="):
            return arg.split("=", 1)[1]
    return None


def image_tag(image: str) -> tuple[str, str | None]:
    """("repo/name", "tag") of an image reference; a digest counts as a tag."""
    if "@" in image:
        return image.split("@", 1)[0], image.split("@", 1)[1]
    name, _, tag = image.rpartition(":")
    if not name or "/" in tag:  # "registry:5000/name" has no tag
        return image, None
    return name, tag


def published_ports(service: dict) -> list[tuple[str | None, str, str]]:
    """(host ip or None, host port, container port) of every published port."""
    out = []
    for spec in service.get("ports", []):
        if isinstance(spec, dict):
            out.append((spec.get("host_ip"), str(spec.get("published", "")), str(spec["target"])))
            continue
        spec = str(spec).split("/")[0]
        m = re.fullmatch(r"(?:(\[[^\]]+\]|\d+\.\d+\.\d+\.\d+):)?(?:([\d-]+):)?([\d-]+)", spec)
        assert m, f"cannot parse port {spec!r}"
        out.append((m.group(1), m.group(2) or "", m.group(3)))
    return out
