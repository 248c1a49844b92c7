"""What the monitor knows about the served version, loaded once per version.

Its monitoring reference (found through the version's `modelwatch.reference_run` tag,
whoever trained it) and the calculators fitted on it, at the monitor's window size.
"""

from __future__ import annotations

from dataclasses import dataclass

from mlflow import MlflowClient
from modelwatch.monitoring.calculators.classification import LIVE_ACCURACY
from modelwatch.monitoring.reference import MonitoringReference
from modelwatch.monitoring.registry import TAG_SEGMENTS, TAG_SENSITIVE, load_reference
from modelwatch.monitoring.suite import fit_calculators


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
            bounds = getattr(calculator, "bounds", {}).get(LIVE_ACCURACY.name)
            if bounds is not None:
                return bounds.mean
        return None

    @property
    def estimates(self) -> bool:
        return any(c.name.startswith("estimated") for c in self.calculators)

    @classmethod
    def load(
        cls, client: MlflowClient, model_name: str, version: str, chunk_rows: int, config=None
    ) -> VersionContext:
        """Raises modelwatch.monitoring.registry.NotOnboarded when the version has no reference.
        `config` (a MonitorConfig) may override the version's segment and sensitive columns."""
        reference, run_id = load_reference(client, model_name, version)
        tags = client.get_model_version(model_name, version).tags or {}
        segments = _columns(
            getattr(config, "segments", None), tags.get(TAG_SEGMENTS), reference.features
        )
        sensitive = _columns(
            getattr(config, "sensitive", None), tags.get(TAG_SENSITIVE), reference.features
        )
        fairness = config.fairness() if config is not None else {}
        return cls(
            model_name,
            version,
            run_id,
            reference,
            fit_calculators(reference, chunk_rows, segments, sensitive, fairness),
        )


def _columns(override: str | None, tag: str | None, features: list[str]) -> tuple[str, ...]:
    """The comma list that applies (the override when set), as columns of the reference."""
    text = override if override is not None else tag or ""
    names = tuple(n.strip() for n in text.split(",") if n.strip())
    unknown = [n for n in names if n not in features]
    if unknown:
        raise ValueError(
            f"segment or sensitive column {', '.join(unknown)} is not a feature of the reference"
        )
    return names
