"""The promotion gate: does a candidate take the `production` alias?

Candidate and champion are scored on the same holdout, which neither trained on. A
candidate is approved when its score meets an absolute floor and is not worse than the
champion's by more than a tolerance; a rejected one takes the `challenger` alias, so it
can still be compared in the shadow of the champion.

A retraining's holdout is recent traffic, whose labels come from the feedback path: a
feed that lies can make a bad candidate look good there. So a retraining is also judged
on a trusted holdout the feedback path never writes (`review`): a candidate that passes
on recent traffic but is worse than the champion on trusted rows by more than
TRUSTED_TOLERANCE (or the gate's tolerance, if larger) is not promoted automatically but
`needs_review` (alias `challenger`): the labels and the trusted data disagree, and only a
person can tell which is wrong. The trusted rows are the old traffic: a candidate that
adapts to a moved market gives a little of it up by design (on the simulator's covariate
drift, 0.007 to 0.016 ROC AUC behind the champion there, past the gate's 0.01), while
labels that lie cost far more (inverted labels: 0.39 behind). 0.05 lies between, with
room on both sides; for an error metric it is a share of the champion's error.

For an error metric (LOWER_IS_BETTER) the floor is a ceiling the candidate must stay
below, and the tolerance is a share of the champion's error: an error is in the target's
units, so no absolute tolerance fits every target.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace

PRODUCTION = "production"
CHALLENGER = "challenger"
PROMOTE_MODES = ("auto", "always", "never")
LOWER_IS_BETTER = ("rmse",)
TRUSTED_TOLERANCE = 0.05


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
    trusted_candidate: float | None = None  # scores on the trusted holdout, where there was one
    trusted_champion: float | None = None
    needs_review: bool = False

    @property
    def status(self) -> str:
        """The `validation_status` tag: `approved`, `rejected: <reason>` or
        `needs_review: <reason>`."""
        if self.approved:
            return "approved"
        return f"{'needs_review' if self.needs_review else 'rejected'}: {self.reason}"

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
    args = dict(
        metric=metric,
        candidate=candidate,
        floor=floor,
        tolerance=tolerance,
        champion=champion,
        champion_version=champion_version,
    )
    lower = metric in LOWER_IS_BETTER
    bar = "ceiling" if lower else "floor"
    if not (candidate < floor if lower else candidate >= floor):  # NaN fails too
        return Decision(
            False,
            f"{metric} {candidate:.4f} is {'not below' if lower else 'below'} "
            f"the {bar} {floor:.4f}",
            **args,
        )
    if champion is not None and _worse(candidate, champion, tolerance, lower):
        allowed = f"{tolerance:.0%} of its error" if lower else tolerance
        return Decision(
            False,
            f"{metric} {candidate:.4f} is worse than champion version {champion_version}'s "
            f"{champion:.4f} by more than {allowed}",
            **args,
        )
    versus = (
        f"champion version {champion_version}'s {champion:.4f}"
        if champion is not None
        else "no champion"
    )
    return Decision(
        True, f"{metric} {candidate:.4f} meets the {bar} {floor:.4f}; vs {versus}", **args
    )


def review(
    decision: Decision, trusted_candidate: float, trusted_champion: float | None
) -> Decision:
    """`decision` (on recent traffic) held against the trusted holdout: an approved
    candidate worse than the champion there, by more than TRUSTED_TOLERANCE (or the
    decision's tolerance if larger), needs review.

    >>> recent = decide("roc_auc", 0.745, 0.6, 0.01, champion=0.60, champion_version="1")
    >>> print(review(recent, trusted_candidate=0.27, trusted_champion=0.73).status)
    ... # doctest: +NORMALIZE_WHITESPACE
    needs_review: on the trusted holdout roc_auc 0.2700 is worse than champion version 1's
    0.7300 by more than 0.05
    >>> review(recent, trusted_candidate=0.71, trusted_champion=0.73).approved  # a market moved
    True
    """
    scores = {"trusted_candidate": trusted_candidate, "trusted_champion": trusted_champion}
    lower = decision.metric in LOWER_IS_BETTER
    tolerance = max(decision.tolerance, TRUSTED_TOLERANCE)
    worse = trusted_candidate != trusted_candidate or _worse(
        trusted_candidate, trusted_champion or 0.0, tolerance, lower
    )  # NaN is worse
    if not decision.approved or trusted_champion is None or not worse:
        return replace(decision, **scores)
    allowed = f"{tolerance:.0%} of its error" if lower else tolerance
    reason = (
        f"on the trusted holdout {decision.metric} {trusted_candidate:.4f} "
        "is worse than champion version "
        f"{decision.champion_version}'s {trusted_champion:.4f} by more than {allowed}"
    )
    return replace(decision, approved=False, reason=reason, needs_review=True, **scores)


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
