"""What the monitor needs to know about a served version, loaded once per version.

Everything comes from the version's training run: the reference profile, the reference
sample with the model's scores, and the calibrator. The concept-drift detector lives
here too, because its state belongs to one version's error stream.
"""

from __future__ import annotations

import collections
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
from mlflow import MlflowClient

from monitoring.concept import ErrorStreamDetector
from monitoring.drift import ReferenceProfile
from monitoring.multivariate import ReconstructionDrift
from training.calibration import ConfidenceCalibrator

SEEN_IDS = 200_000  # labelled predictions remembered, so none feeds the detector twice


@dataclass
class VersionContext:
    model_name: str
    version: str
    run_id: str
    profile: ReferenceProfile
    sample: pd.DataFrame
    calibrator: ConfidenceCalibrator
    reference_accuracy: float | None
    multivariate: ReconstructionDrift | None
    detector: ErrorStreamDetector = field(default_factory=ErrorStreamDetector)
    fed_ids: collections.OrderedDict = field(default_factory=collections.OrderedDict)
    windows: int = 0
    last_detection_window: int | None = None
    drifting: bool = False

    @property
    def features(self) -> list[str]:
        return list(self.profile.columns)

    @classmethod
    def load(cls, client: MlflowClient, model_name: str, version: str) -> "VersionContext":
        run_id = client.get_model_version(model_name, version).run_id
        with tempfile.TemporaryDirectory() as tmp:
            reference = Path(client.download_artifacts(run_id, "reference", tmp))
            calibrator_file = Path(client.download_artifacts(run_id, "calibrator", tmp)) / "calibrator.json"
            profile = ReferenceProfile.load(reference)
            sample = pd.read_parquet(reference / "sample.parquet")
            calibrator = ConfidenceCalibrator.load(calibrator_file)
        accuracy = client.get_run(run_id).data.metrics.get("accuracy")
        return cls(model_name, version, run_id, profile, sample, calibrator, accuracy,
                   _fit_multivariate(profile, sample))

    def unseen_labelled(self, window: pd.DataFrame) -> pd.DataFrame:
        """The window's labelled rows the error-stream detector has not seen, oldest first."""
        labelled = window[window["label"].notna()]
        fresh = labelled[~labelled["prediction_id"].isin(self.fed_ids)]
        for prediction_id in fresh["prediction_id"]:
            self.fed_ids[prediction_id] = None
        while len(self.fed_ids) > SEEN_IDS:
            self.fed_ids.popitem(last=False)
        return fresh.sort_values("ts")


def _fit_multivariate(profile: ReferenceProfile, sample: pd.DataFrame) -> ReconstructionDrift | None:
    features = [c for c in profile.columns if c in sample.columns]
    categorical = [c for c in features if profile.columns[c].kind == "categorical"]
    if len(sample) < 200 or len(features) < 2:
        return None  # too little reference for chunked thresholds
    return ReconstructionDrift().fit(sample[features], categorical=categorical)
