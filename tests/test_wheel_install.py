"""The wheel, installed into a fresh virtual environment outside the source tree, trains,
serves and retrains: nothing it runs may reach back into a checkout.

The wheel is built from the tracked files only (as a clean clone has them). The fresh
environment gets the wheel and nothing else from pip; its dependencies are the test
environment's, the exact pins of requirements.lock, reached through a `.pth` line, because
downloading the ~100 pinned packages again would cost CI minutes and prove nothing about
modelwatch. A `.pth` line adds a plain path: the checkout's editable-install hook in that
folder is not run, so `modelwatch` can only come from the wheel (the test checks where it
was imported from).
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest
import requests

from tests import services

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parent.parent
MODEL = "wheel-model"


def _tracked_copy(dest: Path) -> Path:
    files = subprocess.run(
        ["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split("\0")
    for name in filter(None, files):
        source, target = ROOT / name, dest / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if source.is_symlink():
            target.symlink_to(os.readlink(source))
        elif source.is_file():
            shutil.copy2(source, target)
    return dest


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("wheel")
    source = _tracked_copy(tmp / "src")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "-w",
            str(tmp / "dist"),
            str(source),
        ],
        check=True,
        capture_output=True,
        text=True,
    )
    (built,) = (tmp / "dist").glob("modelwatch-*.whl")
    return built


@pytest.fixture(scope="module")
def venv(wheel, tmp_path_factory) -> Path:
    home = tmp_path_factory.mktemp("venv")
    subprocess.run([sys.executable, "-m", "venv", str(home)], check=True)
    subprocess.run(
        [
            str(home / "bin" / "pip"),
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "--no-deps",
            str(wheel),
        ],
        check=True,
        capture_output=True,
        text=True,
    )
    site = subprocess.run(
        [
            str(home / "bin" / "python"),
            "-c",
            "import sysconfig; print(sysconfig.get_path('purelib'))",
        ],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    (Path(site) / "test-dependencies.pth").write_text(sysconfig.get_path("purelib") + "\n")
    return home


@pytest.fixture(scope="module")
def outside(tmp_path_factory) -> dict:
    """The environment and folder the commands run in: no checkout on any path."""
    work = tmp_path_factory.mktemp("outside")
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("MODELWATCH_", "MLFLOW_", "PYTHON"))
    }
    env["MODELWATCH_HOME"] = str(work)
    return {"cwd": work, "env": env}


def test_the_wheel_installs_one_top_level_package(wheel):
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
    top = {n.split("/")[0] for n in names if not n.split("/")[0].endswith((".dist-info", ".data"))}
    assert top == {"modelwatch"}
    for shipped in (
        "modelwatch/project/MLproject",
        "modelwatch/project/python_env.yaml",
        "modelwatch/monitoring/prometheus/rules/alerts.yml",
        "modelwatch/monitoring/prometheus/prometheus.yml",
        "modelwatch/monitoring/alertmanager/alertmanager.yml",
        "modelwatch/serving/gunicorn.conf.py",
        "modelwatch/serving/fallback_rules.yaml",
        "modelwatch/monitoring/grafana/dashboards/drift.json",
    ):
        assert shipped in names, f"{shipped} is not in the wheel"


def test_the_installed_package_reads_only_its_own_files(venv, outside):
    probe = (
        "import json, modelwatch, modelwatch.project as p, modelwatch.cli.stack as s, "
        "modelwatch.monitoring.service.alerting as a, importlib.util as u; "
        "print(json.dumps([modelwatch.__file__, str(p.PROJECT_DIR), str(s.MONITORING_FILES), "
        "str(a.ALERTS_FILE), u.find_spec('training') is None, u.find_spec('serving') is None]))"
    )
    done = subprocess.run(
        [str(venv / "bin" / "python"), "-c", probe], capture_output=True, text=True, **outside
    )
    assert done.returncode == 0, done.stderr
    module, project, monitoring, alerts, no_training, no_serving = json.loads(done.stdout)
    for path in (module, project, monitoring, alerts):
        assert Path(path).is_relative_to(venv), f"{path} is outside the installed package"
        assert not Path(path).is_relative_to(ROOT)
    assert Path(alerts).is_file() and (Path(project) / "MLproject").is_file()
    assert no_training and no_serving, "a generic top-level module is importable from the wheel"


def _modelwatch(
    venv: Path, outside: dict, *args: str, env: dict | None = None, timeout: float = 600
) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(venv / "bin" / "modelwatch"), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=outside["cwd"],
        env={**outside["env"], **(env or {})},
    )


def _production_version(url: str) -> str:
    answer = requests.get(
        f"{url}/api/2.0/mlflow/registered-models/alias",
        params={"name": MODEL, "alias": "production"},
        timeout=10,
    )
    return answer.json()["model_version"]["version"] if answer.ok else ""


def _labelled_rows(store: Path) -> int:
    if not store.exists():
        return 0
    with sqlite3.connect(store) as db:
        try:
            return db.execute("SELECT COUNT(*) FROM feedback").fetchone()[0]
        except sqlite3.OperationalError:  # the writer has not created the table yet
            return 0


def test_train_serve_and_retrain_from_the_wheel(venv, outside, mlflow_url):
    tracking = {"MLFLOW_TRACKING_URI": mlflow_url, "MODELWATCH_MODEL_NAME": MODEL}
    trained = _modelwatch(
        venv, outside, "train", "--n-rows", "3000", "--model-name", MODEL, env=tracking
    )
    assert trained.returncode == 0, trained.stdout[-2000:] + trained.stderr[-4000:]
    first = _production_version(mlflow_url)
    assert first, "training from the wheel registered no production version"

    store = outside["cwd"] / "predictions.db"
    port = services.free_port()
    serving_env = {**outside["env"], **tracking, "MODELWATCH_STORE_URL": f"sqlite:///{store}"}
    with services.process(
        [str(venv / "bin" / "modelwatch"), "serve", "--port", str(port), "--workers", "1"],
        outside["cwd"] / "serving.log",
        env=serving_env,
        cwd=outside["cwd"],
    ) as proc:
        url = f"http://127.0.0.1:{port}"
        services.wait_http(f"{url}/ready", timeout=180, proc=proc)
        assert requests.get(f"{url}/model", timeout=10).json()["version"] == first
        simulated = _modelwatch(
            venv,
            outside,
            "simulate",
            "--scenario",
            "baseline",
            "--rate",
            "400",
            "--duration",
            "2",
            "--batch",
            "50",
            "--label-delay",
            "0",
            "--url",
            url,
            env=tracking,
            timeout=120,
        )
        assert simulated.returncode == 0, simulated.stderr[-2000:]
        services.wait_for(
            lambda: _labelled_rows(store) >= 300, timeout=60, what="labelled rows in the log"
        )

    retrained = _modelwatch(
        venv,
        outside,
        "retrain",
        "--model-name",
        MODEL,
        "--window",
        "1h",
        "--store-url",
        f"sqlite:///{store}",
        "--promote",
        "always",
        env=tracking,
    )
    assert retrained.returncode == 0, retrained.stdout[-2000:] + retrained.stderr[-4000:]
    assert int(_production_version(mlflow_url)) > int(first), (
        "the retrained version was not promoted"
    )
