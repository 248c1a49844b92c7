"""`ModelCache`: the local copy of downloaded versions and of each alias's last good one,
so that a cold start with the registry down still serves.

    {dir}/{registry}/{model}/versions/{version}-{identity}/   MLflow model directories
    {dir}/{registry}/{model}/aliases/{alias}.json            each alias's last good version

`{registry}` names the registry (its host and port, and a hash of its whole URI) and
`{identity}` hashes the version's run id and source: a model re-created in another
registry, or in a new one at the same address, is never answered from an old one's files.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit

from modelwatch.serving.model.registry import VersionRef


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def registry_dir(uri: str) -> str:
    """A directory name for the registry at `uri`: readable, and never its credentials."""
    parts = urlsplit(uri)
    where = f"{parts.hostname}_{parts.port}" if parts.hostname else parts.scheme or "local"
    return f"{re.sub(r'[^A-Za-z0-9.-]+', '_', where)[:60]}-{_digest(uri)}"


def version_key(ref: VersionRef) -> str:
    return f"{ref.version}-{_digest(f'{ref.run_id}|{ref.source}')}"


BAD_POINTER = (OSError, ValueError, KeyError, TypeError)


def _read_pointer(path: Path) -> VersionRef:
    doc = json.loads(path.read_text())
    return VersionRef(str(doc["version"]), doc.get("run_id"), doc.get("source"))


class ModelCache:
    def __init__(self, root: str | Path, *, registry_uri: str, name: str, keep: int = 5) -> None:
        self.root = Path(root) / registry_dir(registry_uri) / name.replace("/", "_")
        self.keep = keep

    def version_dir(self, ref: VersionRef) -> Path:
        return self.root / "versions" / version_key(ref)

    def fetch(self, ref: VersionRef, download) -> Path:
        """The local directory of `ref`; `download(dst)` fetches it under `dst` (and
        answers the directory of its MLmodel file) if it is not cached."""
        dst = self.version_dir(ref)
        if (dst / "MLmodel").is_file():
            return dst
        dst.parent.mkdir(parents=True, exist_ok=True)
        tmp = dst.parent / f".tmp-{dst.name}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
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

    def point(self, alias: str, ref: VersionRef) -> None:
        path = self.root / "aliases" / f"{alias}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{alias}-{os.getpid()}-{uuid.uuid4().hex[:8]}.json")
        tmp.write_text(
            json.dumps(
                {
                    "version": ref.version,
                    "run_id": ref.run_id,
                    "source": ref.source,
                    "saved_at": time.time(),
                }
            )
        )
        os.replace(tmp, path)
        self.prune()

    def pointed(self, alias: str) -> VersionRef | None:
        """The last good version of `alias`, if its files are still here."""
        try:
            ref = _read_pointer(self.root / "aliases" / f"{alias}.json")
        except BAD_POINTER:
            return None
        return ref if (self.version_dir(ref) / "MLmodel").is_file() else None

    def prune(self) -> None:
        """Keep the versions an alias points to and the `keep` newest others."""
        versions = self.root / "versions"
        try:
            pointers = (self.root / "aliases").glob("*.json")
            pinned = {version_key(_read_pointer(p)) for p in pointers}
            dirs = [d for d in versions.iterdir() if d.is_dir() and not d.name.startswith(".")]
        except BAD_POINTER:
            return
        dirs.sort(key=lambda d: d.stat().st_mtime, reverse=True)
        for d in [d for d in dirs if d.name not in pinned][self.keep :]:
            shutil.rmtree(d, ignore_errors=True)
