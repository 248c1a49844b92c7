"""The promotion gate: does a candidate take the `production` alias?

Candidate and champion are scored on the same holdout, which neither trained on. A
candidate is approved when its score meets an absolute floor and is not worse than the
champion's by more than a tolerance; a rejected one takes the `challenger` alias, so it
can still be compared in the shadow of the champion.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

PRODUCTION = "production"
CHALLENGER = "challenger"
PROMOTE_MODES = ("auto", "always", "never")


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
    if not candidate >= floor:  # NaN fails too
        return Decision(False, f"{metric} {candidate:.4f} is below the floor {floor:.4f}", **args)
    if champion is not None and candidate < champion - tolerance:
        return Decision(
            False,
            f"{metric} {candidate:.4f} is worse than champion version {champion_version}'s "
            f"{champion:.4f} by more than {tolerance}",
            **args,
        )
    versus = f"champion version {champion_version}'s {champion:.4f}" if champion is not None else "no champion"
    return Decision(True, f"{metric} {candidate:.4f} meets the floor {floor:.4f}; vs {versus}", **args)


def alias_for(decision: Decision, mode: str) -> str:
    """The alias a new version takes under `promote=mode` (auto, always, never)."""
    if mode not in PROMOTE_MODES:
        raise ValueError(f"unknown promote mode {mode!r}; choose one of {', '.join(PROMOTE_MODES)}")
    if mode == "always" or (mode == "auto" and decision.approved):
        return PRODUCTION
    return CHALLENGER
