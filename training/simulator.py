"""A synthetic credit-default stream with known ground truth and drift scenarios.

Every row is drawn from fixed feature distributions, and its label from a known logistic
model, so that each scenario's effect on P(x) and P(y|x) is exact and testable.

>>> from modelwatch.training.simulator import generate
>>> df = generate(1000, scenario="covariate", seed=1)
>>> sorted(df.columns)[:3]
['age', 'channel', 'credit_score']
>>> bool((df["region"] == "new_market").any())
True
"""

from __future__ import annotations

import numpy as np
import pandas as pd

TARGET = "defaulted"
NUMERIC_FEATURES = [
    "age",
    "income",
    "debt_to_income",
    "credit_score",
    "loan_amount",
    "employment_years",
    "num_credit_lines",
]
CATEGORIES = {
    "home_ownership": (["rent", "own", "mortgage"], [0.40, 0.20, 0.40]),
    "loan_purpose": (
        ["debt_consolidation", "home_improvement", "car", "education", "business", "medical"],
        [0.35, 0.15, 0.20, 0.10, 0.10, 0.10],
    ),
    "region": (["north", "south", "east", "west"], [0.25, 0.25, 0.25, 0.25]),
    "channel": (["branch", "web", "mobile", "broker"], [0.30, 0.35, 0.25, 0.10]),
}
CATEGORICAL_FEATURES = list(CATEGORIES)
FEATURES = NUMERIC_FEATURES + CATEGORICAL_FEATURES
SCENARIOS = (
    "baseline",
    "covariate",
    "concept",
    "integrity_swap",
    "integrity_missing",
    "gradual",
    "channel_break",
    "group_bias",
)
NEW_REGION = "new_market"
# `channel_break`: the broker channel's feed sends its form's defaults instead of what the
# applicant entered. The defaults are common values that weigh little in the truth, so the
# population hardly moves (a tenth of its rows on common values) and neither do its
# errors, while the broker segment drifts far.
BROKEN_CHANNEL = "broker"
FORM_DEFAULTS = {
    "home_ownership": "mortgage",
    "loan_purpose": "debt_consolidation",
    "region": "east",
    "num_credit_lines": 5.0,
}
# `group_bias`: in one region the truth is this many times sharper (its log-odds scaled):
# the model, trained on everyone, misses far fewer of that region's defaulters than of
# the others', so its error rates part by group while the population's only improve.
BIASED_GROUP = ("region", "south")
BIASED_SHARPNESS = 2.5

# The ground truth: log-odds of default. `concept` moves weight from credit score to
# debt-to-income; everything else is shared by all scenarios.
BASE_COEFFICIENTS = {"intercept": -1.6, "debt_to_income": 4.0, "credit_score": -0.012}
CONCEPT_COEFFICIENTS = {"intercept": -1.6, "debt_to_income": 9.0, "credit_score": -0.002}
PURPOSE_EFFECT = {
    "debt_consolidation": 0.2,
    "home_improvement": -0.2,
    "car": -0.1,
    "education": 0.1,
    "business": 0.4,
    "medical": 0.3,
}
HOME_EFFECT = {"rent": 0.2, "own": -0.3, "mortgage": 0.0}
REGION_EFFECT = {"north": -0.1, "south": 0.1, "east": 0.0, "west": 0.0, NEW_REGION: 0.2}


def true_log_odds(df: pd.DataFrame, concept: bool = False, group_bias: bool = False) -> np.ndarray:
    """Log-odds of default under the ground truth, from the true (uncorrupted) features."""
    c = CONCEPT_COEFFICIENTS if concept else BASE_COEFFICIENTS
    column, group = BIASED_GROUP
    sharpness = np.where(group_bias & (df[column].to_numpy() == group), BIASED_SHARPNESS, 1.0)
    return sharpness * (
        c["intercept"]
        + c["debt_to_income"] * (df["debt_to_income"].to_numpy() - 0.3)
        + c["credit_score"] * (df["credit_score"].to_numpy() - 680.0)
        - 0.5 * np.log(df["income"].to_numpy() / 55_000.0)
        + 0.3 * np.log(df["loan_amount"].to_numpy() / 13_000.0)
        - 0.04 * (df["employment_years"].to_numpy() - 6.0)
        - 0.01 * (df["age"].to_numpy() - 42.0)
        + df["loan_purpose"].map(PURPOSE_EFFECT).to_numpy(dtype=float)
        + df["home_ownership"].map(HOME_EFFECT).to_numpy(dtype=float)
        + df["region"].map(REGION_EFFECT).to_numpy(dtype=float)
    )


def true_probability(
    df: pd.DataFrame, concept: bool = False, group_bias: bool = False
) -> np.ndarray:
    """P(defaulted = 1 | x) under the ground truth."""
    return 1.0 / (1.0 + np.exp(-true_log_odds(df, concept, group_bias)))


def generate(
    n_rows: int,
    scenario: str = "baseline",
    seed: int = 42,
    progress: tuple[float, float] | None = None,
) -> pd.DataFrame:
    """Draw `n_rows` labelled rows of `scenario`, deterministically from `seed`.

    `progress` is the share of the scenario's full effect at the first and the last row,
    ramped linearly in between (default: from none to all of it); only `gradual` uses it,
    the other scenarios are at full strength from the first row. A stream draws
    successive batches with growing progress.
    """
    if scenario not in SCENARIOS:
        raise ValueError(f"unknown scenario {scenario!r}; choose one of {', '.join(SCENARIOS)}")
    rng = np.random.default_rng(seed)
    df = _draw_features(rng, n_rows)
    if scenario == "covariate":
        _shift_market(df, rng, np.ones(n_rows))
    elif scenario == "gradual":
        start, end = progress or (0.0, 1.0)
        _shift_market(df, rng, np.linspace(start, end, n_rows))
    p = true_probability(df, concept=scenario == "concept", group_bias=scenario == "group_bias")
    df[TARGET] = (rng.random(n_rows) < p).astype(int)
    if scenario == "integrity_swap":
        df["age"], df["debt_to_income"] = df["debt_to_income"].copy(), df["age"].copy()
    elif scenario == "integrity_missing":
        df.loc[df["channel"] == "web", "income"] = np.nan
    elif scenario == "channel_break":
        df.loc[df["channel"] == BROKEN_CHANNEL, list(FORM_DEFAULTS)] = list(FORM_DEFAULTS.values())
    return df


def _draw_features(rng: np.random.Generator, n: int) -> pd.DataFrame:
    age = np.clip(rng.normal(42, 12, n), 18, 85).round()
    data = {
        "age": age,
        "income": np.exp(rng.normal(10.9, 0.45, n)).round(-2),
        "debt_to_income": rng.beta(2.0, 5.0, n).round(4),
        "credit_score": np.clip(rng.normal(680, 70, n), 300, 850).round(),
        "loan_amount": np.exp(rng.normal(9.5, 0.7, n)).round(-2),
        # Nobody has worked longer than they have been adults.
        "employment_years": np.minimum(rng.exponential(6.0, n), age - 18).round(1),
        "num_credit_lines": rng.poisson(5, n).astype(float),
    }
    for name, (levels, weights) in CATEGORIES.items():
        data[name] = rng.choice(levels, size=n, p=weights)
    return pd.DataFrame(data)


def _shift_market(df: pd.DataFrame, rng: np.random.Generator, strength: np.ndarray) -> None:
    """A launch in a new market: incomes fall by up to 40% and a new region appears."""
    df["income"] = (df["income"] * (1.0 - 0.4 * strength)).round(-2)
    new_region = rng.random(len(df)) < 0.3 * strength
    df.loc[new_region, "region"] = NEW_REGION
