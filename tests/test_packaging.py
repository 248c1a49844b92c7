"""The package mapping stays whole: every package folder installs under `modelwatch`, and
nothing imports the folders by their checkout names (which a wheel does not have)."""

from __future__ import annotations

import re
import subprocess
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SETUPTOOLS = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
FOLDERS = {package: ROOT / folder for package, folder in SETUPTOOLS["package-dir"].items()}


def _package_of(folder: Path) -> str:
    for package, root in sorted(FOLDERS.items(), key=lambda item: -len(str(item[1]))):
        if folder == root or root in folder.parents:
            return ".".join([package, *folder.relative_to(root).parts])
    raise AssertionError(f"{folder} is under no mapped folder")


def test_every_package_folder_is_installed():
    found = {
        _package_of(init.parent)
        for root in FOLDERS.values()
        for init in root.rglob("__init__.py")
        if "__pycache__" not in init.parts
    }
    assert found == set(SETUPTOOLS["packages"])


def test_nothing_imports_a_checkout_folder_name():
    tracked = subprocess.run(
        ["git", "ls-files", "*.py"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    bare = re.compile(r"^\s*(from|import)\s+(training|serving|monitoring)\b", re.M)
    offenders = [name for name in tracked if bare.search((ROOT / name).read_text())]
    assert offenders == [], "import modelwatch.training/.serving/.monitoring instead"


def test_the_checkout_project_files_are_the_packaged_ones():
    for name in ("MLproject", "python_env.yaml", "conda.yaml"):
        assert (ROOT / name).resolve() == ROOT / "modelwatch" / "project" / name, (
            f"{name} must link to the package"
        )
