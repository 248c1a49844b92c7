"""The monitor's calculators: each fitted on a version's reference, then applied to windows.

See `modelwatch.monitoring.calculators.base` for the contract (and the metric
declarations), `modelwatch.monitoring.calculators.catalog` for the list, and
docs/DESIGN.md, "How the monitor judges a window".
"""
