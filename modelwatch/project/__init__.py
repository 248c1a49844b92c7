"""The MLflow Project, shipped inside the package so that an installed modelwatch can retrain.

The checkout's `MLproject`, `python_env.yaml` and `conda.yaml` are links to these files, so
`mlflow run .` in a checkout and `mlflow run <site-packages>/modelwatch/project` after
`pip install modelwatch` run the same entry points (every command is `python -m modelwatch...`,
so it does not matter where the project folder sits).
"""

import sys
from pathlib import Path

PROJECT_DIR = Path(__file__).resolve().parent


def mlflow_command(*args: str) -> list[str]:
    """`mlflow ARGS` run by this interpreter, so it works in any environment modelwatch is
    installed in, whether or not mlflow's console script is on PATH."""
    return [sys.executable, "-m", "mlflow", *args]
