"""Data drift: the reference profile, per-column drift tests, prediction drift.

>>> from modelwatch.monitoring.drift import ReferenceProfile, detect_drift, prediction_drift
"""

from modelwatch.monitoring.drift.detect import ColumnDrift, DriftResult, column_drift, detect_drift
from modelwatch.monitoring.drift.prediction import prediction_drift, prediction_profile
from modelwatch.monitoring.drift.profile import ColumnProfile, ReferenceProfile
from modelwatch.monitoring.drift.stattests import (
    STAT_TESTS,
    StatTest,
    default_stattest,
    get_stattest,
)

__all__ = [
    "ColumnDrift",
    "ColumnProfile",
    "DriftResult",
    "ReferenceProfile",
    "STAT_TESTS",
    "StatTest",
    "column_drift",
    "default_stattest",
    "detect_drift",
    "get_stattest",
    "prediction_drift",
    "prediction_profile",
]
