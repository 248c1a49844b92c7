"""The MLflow registry as serving uses it: resolve an alias, download a version.

`configure_mlflow_client` sets MLflow's process-wide client settings from the serving
config; `create_app` calls it, so a process's first app decides them (gunicorn builds
one app per worker process, at its start).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from mlflow import MlflowClient
from mlflow.artifacts import download_artifacts
from mlflow.exceptions import MlflowException


class RegistryUnavailable(RuntimeError):
    """The registry did not answer."""


class AliasNotFound(LookupError):
    """The registry answered: no such model or alias."""


@dataclass(frozen=True)
class VersionRef:
    """A registered version as the registry answers it: its number, and what identifies
    its files (the run it came from and its source URI)."""

    version: str
    run_id: str | None
    source: str | None


NOT_FOUND_CODES = ("RESOURCE_DOES_NOT_EXIST", "NOT_FOUND", "INVALID_PARAMETER_VALUE")


def configure_mlflow_client(config) -> None:
    """MLflow reads these from the environment at each call; variables the operator set
    win. Registry calls fail fast when it is down, since serving goes on regardless."""
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR", "1")
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", str(config.registry_timeout))
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    # MLflow refuses to unpickle (or un-skops) a model when this is false: the configured
    # registry is this service's trust boundary, so serving follows trust_registry.
    os.environ.setdefault(
        "MLFLOW_ALLOW_PICKLE_DESERIALIZATION", "true" if config.trust_registry else "false"
    )


class Registry:
    def __init__(self, *, tracking_uri: str, registry_uri: str) -> None:
        self.tracking_uri = tracking_uri
        self.registry_uri = registry_uri
        self._client = None

    def client(self):
        if self._client is None:
            self._client = MlflowClient(
                tracking_uri=self.tracking_uri, registry_uri=self.registry_uri
            )
        return self._client

    def resolve(self, name: str, alias: str) -> VersionRef:
        """The model version `name@alias` points to now."""
        try:
            mv = self.client().get_model_version_by_alias(name, alias)
        except MlflowException as exc:
            if exc.error_code in NOT_FOUND_CODES:
                raise AliasNotFound(f"models:/{name}@{alias}: {exc.message}") from None
            raise RegistryUnavailable(f"registry at {self.registry_uri}: {exc}") from None
        except Exception as exc:
            raise RegistryUnavailable(f"registry at {self.registry_uri}: {exc}") from None
        return VersionRef(str(mv.version), mv.run_id or None, mv.source or None)

    def download(self, name: str, version: str, dst: Path) -> Path:
        """Download the model directory of `name` version `version` under `dst`; answers
        the directory holding its MLmodel file."""
        # Resolve the artifact location with our own client: `models:/` URIs would be
        # resolved against the process-wide tracking URI, not this app's registry.
        client = self.client()
        uri = client.get_model_version_download_uri(name, version)
        if uri.startswith("models:/m-"):  # an MLflow 3 LoggedModel
            uri = client.get_logged_model(uri[len("models:/") :].split("/")[0]).artifact_location
        local = Path(
            download_artifacts(artifact_uri=uri, dst_path=str(dst), tracking_uri=self.tracking_uri)
        )
        if (local / "MLmodel").is_file():
            return local
        found = next(dst.rglob("MLmodel"), None)
        if found is None:
            raise RuntimeError(f"models:/{name}/{version} has no MLmodel file")
        return found.parent
