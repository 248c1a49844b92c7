"""Copy the monitoring configs, and the dev PostgreSQL's init script, where kustomize reads them.

kustomize loads files only from under a kustomization's own directory (its load
restrictor), and `kubectl apply -k` cannot lift that. So the files of monitoring/ that
the manifests carry are copied into deploy/kubernetes/*/generated/, with a
kustomization.yaml there that makes one ConfigMap of each group. Edit the originals
(or add one: a new rule file or dashboard is picked up), then run

    make k8s        # = python3 deploy/kubernetes/generate.py

and commit generated/. tests/stack_config/test_kubernetes.py fails while generated/
differs from what this script writes.
"""

from __future__ import annotations

import shutil
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
MONITORING = ROOT / "monitoring"
HEADER = "# Written by deploy/kubernetes/generate.py (`make k8s`): do not edit.\n"


def config_maps() -> dict[Path, dict[str, dict[str, Path]]]:
    """{generated directory: {ConfigMap: {file name in it: original}}}."""
    grafana = MONITORING / "grafana"
    return {
        HERE / "base" / "generated": {
            "prometheus-rules": {p.name: p for p in sorted((MONITORING / "prometheus" / "rules").glob("*.yml"))},
            # The compose file's routes, receivers and paths are the cluster's too: the
            # monitor is reached as `monitor:8001` and the token is a file in /run/secrets.
            "alertmanager-config": {"alertmanager.yml": MONITORING / "alertmanager" / "alertmanager.compose.yml"},
            "grafana-datasources": {"prometheus.yml": grafana / "provisioning" / "datasources" / "prometheus.yml"},
            "grafana-dashboard-providers": {"dashboards.yml": grafana / "provisioning" / "dashboards" / "dashboards.yml"},
            "grafana-dashboards": {p.name: p for p in sorted((grafana / "dashboards").glob("*.json"))},
        },
        HERE / "overlays" / "dev" / "generated": {
            "postgres-init": {"init-modelwatch.sql": ROOT / "docker" / "postgres" / "init-modelwatch.sql"},
        },
    }


def outputs() -> dict[Path, bytes]:
    """{path: content} of every file this script writes."""
    out = {}
    for directory, maps in config_maps().items():
        lines = [HEADER, "apiVersion: kustomize.config.k8s.io/v1beta1\n", "kind: Kustomization\n",
                 "configMapGenerator:\n"]
        for name, files in maps.items():
            lines += [f"  - name: {name}\n", "    files:\n"]
            for key, original in files.items():
                lines.append(f"      - {name}/{key}\n")
                out[directory / name / key] = original.read_bytes()
        out[directory / "kustomization.yaml"] = "".join(lines).encode()
    return out


def main() -> None:
    for directory in config_maps():
        shutil.rmtree(directory, ignore_errors=True)  # a deleted original leaves no copy behind
    for path, content in outputs().items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
        print(path.relative_to(ROOT))


if __name__ == "__main__":
    main()
