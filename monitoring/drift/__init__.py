"""Data drift: the reference profile and per-column drift tests."""

from monitoring.drift.profile import ColumnProfile, ReferenceProfile

__all__ = ["ColumnProfile", "ReferenceProfile"]
