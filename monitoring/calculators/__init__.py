"""The monitor's calculators: each fitted on a version's reference, then applied to windows.

See `modelwatch.monitoring.calculators.base` for the contract and docs/DESIGN.md, "How the monitor
judges a window", for the list.
"""

from modelwatch.monitoring.calculators.base import Bounds, Calculator, Metric, Result

from modelwatch.log.scored import Scored

__all__ = ["Bounds", "Calculator", "Metric", "Result", "Scored"]
