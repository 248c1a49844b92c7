"""The promotion gate: does a candidate take the `production` alias?

Candidate and champion are scored on the same holdout, which neither trained on. A
candidate is approved when its score meets an absolute floor and is not worse than the
champion's by more than a tolerance; a rejected one takes the `challenger` alias, so it
can still be compared in the shadow of the champion.

For an error metric (LOWER_IS_BETTER) the floor is a ceiling the candidate must stay
below, and the tolerance is a share of the champion's error: an error is in the target's
units, so no absolute tolerance fits every target.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

PRODUCTION = "production"
CHALLENGER = "challenger"
PROMOTE_MODES = ("auto", "always", "never")
LOWER_IS_BETTER = ("rmse",)


@dataclass(frozen=True)
class Decision:
    approved: bool
    reason: str
    metric: str
    candidate: float
    floor: float
    tolerance: float
    champion: float | None = None
    champion_version: str | None = None

    @property
    def status(self) -> str:
        """The `validation_status` tag: `approved` or `rejected: <reason>`."""
        return "approved" if self.approved else f"rejected: {self.reason}"

    def to_dict(self) -> dict:
        return asdict(self) | {"status": self.status}


def decide(
    metric: str,
    candidate: float,
    floor: float,
    tolerance: float,
    champion: float | None = None,
    champion_version: str | None = None,
) -> Decision:
    """Approve `candidate` if it reaches `floor` and trails `champion` by at most `tolerance`."""
    args = dict(metric=metric, candidate=candidate, floor=floor, tolerance=tolerance,
                champion=champion, champion_version=champion_version)
    lower = metric in LOWER_IS_BETTER
    bar = "ceiling" if lower else "floor"
    if not (candidate < floor if lower else candidate >= floor):  # NaN fails too
        return Decision(False, f"{metric} {candidate:.4f} is {'not below' if lower else 'below'} the {bar} {floor:.4f}",
                        **args)
    if champion is not None and _worse(candidate, champion, tolerance, lower):
        allowed = f"{tolerance:.0%} of its error" if lower else tolerance
        return Decision(
            False,
            f"{metric} {candidate:.4f} is worse than champion version {champion_version}'s "
            f"{champion:.4f} by more than {allowed}",
            **args,
        )
    versus = f"champion version {champion_version}'s {champion:.4f}" if champion is not None else "no champion"
    return Decision(True, f"{metric} {candidate:.4f} meets the {bar} {floor:.4f}; vs {versus}", **args)


def _worse(candidate: float, champion: float, tolerance: float, lower: bool) -> bool:
    if lower:
        return candidate > champion * (1 + tolerance)
    return candidate < champion - tolerance


def alias_for(decision: Decision, mode: str) -> str:
    """The alias a new version takes under `promote=mode` (auto, always, never)."""
    if mode not in PROMOTE_MODES:
        raise ValueError(f"unknown promote mode {mode!r}; choose one of {', '.join(PROMOTE_MODES)}")
    if mode == "always" or (mode == "auto" and decision.approved):
        return PRODUCTION
    return CHALLENGER
