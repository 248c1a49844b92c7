"""Copy the monitoring configs, and the dev PostgreSQL's init script, where kustomize reads them.

kustomize loads files only from under a kustomization's own directory (its load
restrictor), and `kubectl apply -k` cannot lift that. So the files of monitoring/ that
the manifests carry are copied into deploy/kubernetes/*/generated/; edit the originals,
then run

    make k8s        # = .venv/bin/python deploy/kubernetes/generate.py

and commit the copies. tests/stack_config/test_kubernetes.py fails while a copy differs
from its original or a configMapGenerator leaves one out.
"""

from __future__ import annotations

import shutil
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
GENERATED_DIRS = (HERE / "base" / "generated", HERE / "overlays" / "dev" / "generated")


def copies() -> dict[Path, Path]:
    """{copy: original} for every generated file."""
    base, dev = GENERATED_DIRS
    monitoring = ROOT / "monitoring"
    out = {
        # The compose file's routes, receivers and mounts are the cluster's too: the
        # monitor is reached as `monitor:8001` and the token is a file in /run/secrets.
        base / "alertmanager.yml": monitoring / "alertmanager" / "alertmanager.compose.yml",
        base / "datasources" / "prometheus.yml": monitoring / "grafana" / "provisioning" / "datasources" / "prometheus.yml",
        base / "dashboard-providers" / "dashboards.yml": monitoring / "grafana" / "provisioning" / "dashboards" / "dashboards.yml",
        dev / "init-modelwatch.sql": ROOT / "docker" / "postgres" / "init-modelwatch.sql",
    }
    for rule_file in sorted((monitoring / "prometheus" / "rules").glob("*.yml")):
        out[base / "rules" / rule_file.name] = rule_file
    for dashboard in sorted((monitoring / "grafana" / "dashboards").glob("*.json")):
        out[base / "dashboards" / dashboard.name] = dashboard
    return out


def main() -> None:
    for directory in GENERATED_DIRS:
        shutil.rmtree(directory, ignore_errors=True)  # a deleted original leaves no copy behind
    for copy, original in copies().items():
        copy.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(original, copy)
        print(f"{copy.relative_to(ROOT)} <- {original.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
