"""`ModelCache`: the local copy of downloaded versions and of each alias's last good one,
so that a cold start with the registry down still serves."""

from __future__ import annotations

import json
import os
import shutil
import time
import uuid
from pathlib import Path


class ModelCache:
    """`{dir}/{model}/versions/{version}/` (MLflow model dirs) and
    `{dir}/{model}/aliases/{alias}.json` (the last good version of each alias)."""

    def __init__(self, root: str | Path, *, name: str, keep: int = 5) -> None:
        self.root = Path(root) / name.replace("/", "_")
        self.keep = keep

    def version_dir(self, version: str) -> Path:
        return self.root / "versions" / str(version)

    def fetch(self, version: str, download) -> Path:
        """The local directory of `version`; `download(dst)` fetches it under `dst` (and
        answers the directory of its MLmodel file) if it is not cached."""
        dst = self.version_dir(version)
        if (dst / "MLmodel").is_file():
            return dst
        dst.parent.mkdir(parents=True, exist_ok=True)
        tmp = dst.parent / f".tmp-{version}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        try:
            local = download(tmp)
            try:
                os.rename(local, dst)
            except OSError:
                if not (dst / "MLmodel").is_file():  # not another worker's rename: retry
                    shutil.rmtree(dst, ignore_errors=True)
                    os.rename(local, dst)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        return dst

    def point(self, alias: str, version: str, run_id: str | None) -> None:
        path = self.root / "aliases" / f"{alias}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{alias}-{os.getpid()}-{uuid.uuid4().hex[:8]}.json")
        tmp.write_text(json.dumps({"version": str(version), "run_id": run_id,
                                   "saved_at": time.time()}))
        os.replace(tmp, path)
        self.prune()

    def pointed(self, alias: str) -> dict | None:
        path = self.root / "aliases" / f"{alias}.json"
        try:
            doc = json.loads(path.read_text())
        except (OSError, ValueError):
            return None
        return doc if (self.version_dir(doc.get("version", "")) / "MLmodel").is_file() else None

    def prune(self) -> None:
        """Keep the versions an alias points to and the `keep` newest others."""
        versions = self.root / "versions"
        try:
            pinned = {json.loads(p.read_text()).get("version")
                      for p in (self.root / "aliases").glob("*.json")}
            dirs = [d for d in versions.iterdir() if d.is_dir() and not d.name.startswith(".")]
        except (OSError, ValueError):
            return
        dirs.sort(key=lambda d: d.stat().st_mtime, reverse=True)
        for d in [d for d in dirs if d.name not in pinned][self.keep:]:
            shutil.rmtree(d, ignore_errors=True)
