"""What the monitor knows about the served version, loaded once per version.

Its monitoring reference (found through the version's `modelwatch.reference_run` tag,
whoever trained it) and the calculators fitted on it, at the monitor's window size.
"""

from __future__ import annotations

from dataclasses import dataclass

from mlflow import MlflowClient

from monitoring.reference import MonitoringReference, for_version


@dataclass
class VersionContext:
    model_name: str
    version: str
    run_id: str  # the run that holds the reference
    reference: MonitoringReference
    calculators: list
    windows: int = 0
    drifting: bool = False

    @property
    def features(self) -> list[str]:
        return self.reference.features

    @property
    def profile(self):
        return self.reference.profile

    @property
    def reference_accuracy(self) -> float | None:
        """Accuracy on the reference (the mean of its chunks), for classifiers with labels."""
        for calculator in self.calculators:
            bounds = getattr(calculator, "bounds", {}).get("live_accuracy")
            if bounds is not None:
                return bounds.mean
        return None

    @property
    def estimates(self) -> bool:
        return any(c.name.startswith("estimated") for c in self.calculators)

    @classmethod
    def load(cls, client: MlflowClient, model_name: str, version: str, chunk_rows: int) -> "VersionContext":
        """Raises monitoring.reference.NotOnboarded when the version has no reference."""
        reference, run_id = for_version(client, model_name, version)
        return cls(model_name, version, run_id, reference, reference.calculators(chunk_rows))
