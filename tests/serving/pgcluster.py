"""A throwaway PostgreSQL cluster for tests: initdb + pg_ctl, as an unprivileged user.

initdb refuses to run as root, so when the tests run as root the cluster belongs to the
`postgres` user (Debian's packages create it) or else `nobody`, in a directory of its
own under the system temp dir (pytest's own temp dirs are private to root).
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
from pathlib import Path

from tests import services


def find_bin(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(
        glob.glob(f"/usr/lib/postgresql/*/bin/{name}"),
        key=lambda p: int(p.split("/")[4]) if p.split("/")[4].isdigit() else 0,
    )
    return candidates[-1] if candidates else None


def why_unavailable() -> str | None:
    if not (find_bin("initdb") and find_bin("pg_ctl")):
        return "PostgreSQL server binaries (initdb, pg_ctl) are not installed"
    if os.geteuid() == 0 and _unprivileged_user() is None:
        return "running as root and no unprivileged user (postgres, nobody) to own a cluster"
    return None


def _unprivileged_user() -> pwd.struct_passwd | None:
    for name in ("postgres", "nobody"):
        try:
            return pwd.getpwnam(name)
        except KeyError:
            continue
    return None


class Cluster:
    def __init__(self) -> None:
        self.initdb, self.pg_ctl = find_bin("initdb"), find_bin("pg_ctl")
        self.root = Path(tempfile.mkdtemp(prefix="modelwatch-pg-"))
        self.data = self.root / "data"
        self.log = self.root / "postgres.log"
        self.port = services.free_port()
        self.user = None if os.geteuid() != 0 else _unprivileged_user()
        if self.user is not None:
            os.chown(self.root, self.user.pw_uid, self.user.pw_gid)
        self.url = f"postgresql://modelwatch@127.0.0.1:{self.port}/postgres"

    def _run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        kwargs = {}
        if self.user is not None:
            kwargs = {"user": self.user.pw_uid, "group": self.user.pw_gid, "extra_groups": []}
        env = {**os.environ, "HOME": str(self.root), "LC_ALL": "C"}
        return subprocess.run(
            list(args),
            cwd=self.root,
            env=env,
            capture_output=True,
            text=True,
            check=check,
            timeout=120,
            **kwargs,
        )

    def init(self) -> Cluster:
        try:
            self._run(
                self.initdb,
                "-D",
                str(self.data),
                "-U",
                "modelwatch",
                "--auth=trust",
                "-E",
                "UTF8",
                "--no-sync",
            )
        except subprocess.CalledProcessError as exc:
            raise RuntimeError(f"initdb failed: {exc.stdout}\n{exc.stderr}") from exc
        return self

    def start(self) -> None:
        options = (
            f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        )
        result = self._run(
            self.pg_ctl,
            "-D",
            str(self.data),
            "-l",
            str(self.log),
            "-o",
            options,
            "-w",
            "-t",
            "60",
            "start",
            check=False,
        )
        if result.returncode != 0:
            raise RuntimeError(
                f"pg_ctl start failed: {result.stdout}{result.stderr}\n"
                f"{self.log.read_text() if self.log.exists() else ''}"
            )

    def stop(self) -> None:
        self._run(self.pg_ctl, "-D", str(self.data), "-m", "fast", "-w", "stop", check=False)

    def destroy(self) -> None:
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)
