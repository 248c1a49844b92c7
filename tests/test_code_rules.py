"""The rules the code keeps, checked by the tools that define them: ruff's lint and format
(pyproject's [tool.ruff]) and the import contract (pyproject's [tool.importlinter], run by
scripts/layers.py). A change that breaks a layer or the style fails here, in `make test`."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def run(*command: str) -> subprocess.CompletedProcess:
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=600)


def test_ruff_lint_passes():
    done = run(str(BIN / "ruff"), "check", "--no-cache", "--output-format", "concise")
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]


def test_ruff_format_is_kept():
    done = run(str(BIN / "ruff"), "format", "--no-cache", "--check")
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]


def test_import_contract_is_kept():
    done = run(sys.executable, "scripts/layers.py")
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-2000:]
    assert "0 broken" in done.stdout, done.stdout[-2000:]
