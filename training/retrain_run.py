"""Running one retraining: `mlflow run` of the packaged project's `retrain` entry point,
then reading the gate's verdict. The monitor's retraining runner: `modelwatch monitor`
gives `project_runner(...)` to the monitor app, which never imports training.

First, in this process, whether the production version can be retrained at all: a model
without a target or labelled reference is refused before any run starts.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

from mlflow import MlflowClient
from modelwatch.monitoring.service.config import child_environment
from modelwatch.monitoring.service.trigger import Refused, Runner
from modelwatch.training import retrain

from modelwatch.project import PROJECT_DIR, mlflow_command

log = logging.getLogger(__name__)


def project_runner(
    tracking_uri: str, model_name: str, window: str, timeout_seconds: float = 1800
) -> Runner:
    """A runner for RetrainTrigger that runs the `retrain` entry point of this project."""

    def run(reason: str) -> str:
        check_supported(MlflowClient(tracking_uri), model_name)
        bin_dir = Path(sys.executable).parent
        command = [
            *mlflow_command("run", str(PROJECT_DIR), "-e", "retrain", "--env-manager", "local"),
            "--experiment-name",
            f"{model_name}-retraining",
            "-P",
            f"model_name={model_name}",
            "-P",
            f"window={window}",
            "-P",
            f"trigger={reason}",
        ]
        env = {
            **child_environment(),
            "MLFLOW_TRACKING_URI": tracking_uri,
            "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
        }
        try:
            done = subprocess.run(
                command, env=env, capture_output=True, text=True, timeout=timeout_seconds
            )
        except subprocess.TimeoutExpired:
            log.error("retraining for %s timed out after %ss", reason, timeout_seconds)
            return "failed"
        if done.returncode != 0:
            log.error("retraining for %s failed:\n%s", reason, done.stderr[-4000:])
            return "failed"
        return verdict(MlflowClient(tracking_uri), model_name, reason)

    return run


def check_supported(client: MlflowClient, model_name: str) -> None:
    """Raise Refused when the production version cannot be retrained, naming why."""
    try:
        retrain.champion(client, model_name)
    except retrain.Unsupported as exc:
        raise Refused(str(exc)) from None


def verdict(client: MlflowClient, model_name: str, reason: str) -> str:
    """What became of the newest version whose `trigger` tag is `reason`, from its
    `validation_status`: "promoted" (approved), "needs_review" (it won on recent traffic
    but lost on the trusted holdout: labels and trusted data disagree, a person decides)
    or "rejected"; "failed" when no version was registered."""
    versions = client.search_model_versions(
        f"name='{model_name}' and tag.trigger='{_quote(reason)}'"
    )
    if not versions:
        return "failed"
    status = max(versions, key=lambda v: int(v.version)).tags.get("validation_status", "")
    if status == "approved":
        return "promoted"
    return "needs_review" if status.startswith("needs_review") else "rejected"


def _quote(value: str) -> str:
    return value.replace("'", "\\'")
