"""A version's monitoring reference in MLflow: the artifacts of the run that holds it, and
the version's tags that name that run (and the target, task, segment columns and
sensitive attributes it is judged with).

Training logs a reference for every version it registers; `modelwatch onboard` logs one
for a model someone else trained. Either way it lives under `reference/` in an MLflow run,
and the version's tag `modelwatch.reference_run` names that run: the monitor finds a
version's reference the same way whoever trained it.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import mlflow
from modelwatch.monitoring.reference import MonitoringReference

TAG_REFERENCE_RUN = "modelwatch.reference_run"
TAG_TARGET = "modelwatch.target"
TAG_TASK = "modelwatch.task"
# Comma lists of feature columns judged per segment and per group (`--segments`, `--sensitive`).
TAG_SEGMENTS = "modelwatch.segments"
TAG_SENSITIVE = "modelwatch.sensitive"
# Onboarding a version again keeps the runs it replaces (oldest first, comma-separated).
TAG_REPLACED_RUNS = "modelwatch.replaced_reference_runs"
ARTIFACT_DIR = "reference"


class NotOnboarded(LookupError):
    """The version has no monitoring reference: `modelwatch onboard` gives it one."""


def log_reference(reference: MonitoringReference, thresholds: dict | None = None) -> None:
    """The reference (and its performance thresholds) into the active MLflow run, under
    `reference/`."""
    with tempfile.TemporaryDirectory() as tmp:
        saved = reference.save(Path(tmp, ARTIFACT_DIR), thresholds)
        mlflow.log_artifacts(str(saved), ARTIFACT_DIR)


def link_reference(
    client,
    reference: MonitoringReference,
    model_name: str,
    version: str,
    run_id: str,
    segments: tuple[str, ...] = (),
    sensitive: tuple[str, ...] = (),
) -> str | None:
    """Tag the version with the run that holds its reference (and its target, task,
    segment columns and sensitive attributes). Returns the reference run this replaces,
    if any: it is kept, and listed in the version's TAG_REPLACED_RUNS."""
    current = client.get_model_version(model_name, version).tags or {}
    previous = current.get(TAG_REFERENCE_RUN)
    tags = {TAG_REFERENCE_RUN: run_id, TAG_TASK: reference.task}
    if previous and previous != run_id:
        replaced = [r for r in current.get(TAG_REPLACED_RUNS, "").split(",") if r]
        tags[TAG_REPLACED_RUNS] = ",".join([*replaced, previous])
    tags |= {
        tag: ",".join(columns)
        for tag, columns in ((TAG_SEGMENTS, segments), (TAG_SENSITIVE, sensitive))
        if columns
    }
    if reference.target:
        tags[TAG_TARGET] = reference.target
    for key, value in tags.items():
        client.set_model_version_tag(model_name, version, key, value)
    return previous if previous != run_id else None


def load_reference(client, model_name: str, version: str) -> tuple[MonitoringReference, str]:
    """The version's reference and the run that holds it; NotOnboarded when it has none."""
    mv = client.get_model_version(model_name, version)
    run_id = (mv.tags or {}).get(TAG_REFERENCE_RUN)
    if not run_id:
        raise NotOnboarded(
            f"{model_name} version {version} has no monitoring reference: run "
            f"`modelwatch onboard --model-name {model_name} --version {version} "
            f"--reference HELD_OUT.parquet --target COLUMN`"
        )
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(client.download_artifacts(run_id, ARTIFACT_DIR, tmp))
        return MonitoringReference.load(path), run_id
