"""Each scenario changes exactly what docs/DESIGN.md says it changes."""

import numpy as np
import pandas as pd
import pytest
from modelwatch.training import simulator
from modelwatch.training.simulator import generate, true_probability
from scipy import stats

N = 20_000


@pytest.fixture(scope="module")
def baseline():
    return generate(N, "baseline", seed=7)


def test_same_seed_same_rows_other_seed_other_rows():
    pd.testing.assert_frame_equal(generate(500, "covariate", 3), generate(500, "covariate", 3))
    assert not generate(500, "baseline", 3).equals(generate(500, "baseline", 4))


def test_unknown_scenario_is_named():
    with pytest.raises(ValueError, match="unknown scenario 'nope'"):
        generate(10, "nope")


def test_labels_follow_the_known_ground_truth(baseline):
    p = true_probability(baseline)
    # Calibration of the ground truth itself: by decile of p, the default rate matches p.
    deciles = pd.qcut(p, 10, labels=False)
    observed = baseline.groupby(deciles)["defaulted"].mean().to_numpy()
    expected = pd.Series(p).groupby(deciles).mean().to_numpy()
    assert np.abs(observed - expected).max() < 0.04
    assert 0.1 < baseline["defaulted"].mean() < 0.4


def test_covariate_lowers_income_adds_a_region_and_keeps_p_y_given_x(baseline):
    shifted = generate(N, "covariate", seed=8)
    assert shifted["income"].median() < 0.7 * baseline["income"].median()
    assert simulator.NEW_REGION not in set(baseline["region"])
    assert (shifted["region"] == simulator.NEW_REGION).mean() > 0.25
    # P(y|x) holds: labels are still calibrated against the unchanged ground truth.
    p = true_probability(shifted)
    assert abs(shifted["defaulted"].mean() - p.mean()) < 0.01
    for column in ("age", "debt_to_income", "credit_score"):
        assert stats.ks_2samp(baseline[column], shifted[column]).pvalue > 0.001


def test_concept_changes_p_y_given_x_but_not_the_inputs(baseline):
    concept = generate(N, "concept", seed=7)
    features = simulator.FEATURES
    pd.testing.assert_frame_equal(concept[features], baseline[features])  # same draws of x
    old, new = true_probability(concept), true_probability(concept, concept=True)
    # Labels agree with the new truth, and not with the old one.
    assert abs(concept["defaulted"].mean() - new.mean()) < 0.01
    high_dti = concept["debt_to_income"] > 0.5
    assert concept.loc[high_dti, "defaulted"].mean() > old[high_dti].mean() + 0.1


def test_integrity_swap_swaps_age_and_debt_to_income(baseline):
    swapped = generate(N, "integrity_swap", seed=7)
    np.testing.assert_array_equal(swapped["age"], baseline["debt_to_income"])
    np.testing.assert_array_equal(swapped["debt_to_income"], baseline["age"])
    np.testing.assert_array_equal(
        swapped["defaulted"], baseline["defaulted"]
    )  # labels from true values


def test_integrity_missing_blanks_income_for_the_web_channel_only(baseline):
    missing = generate(N, "integrity_missing", seed=7)
    web = missing["channel"] == "web"
    assert missing.loc[web, "income"].isna().all()
    assert missing.loc[~web, "income"].notna().all()
    assert missing.drop(columns="income").notna().all().all()


def test_gradual_drift_grows_over_time():
    gradual = generate(N, "gradual", seed=9)
    quarters = [gradual.iloc[i : i + N // 4] for i in range(0, N, N // 4)]
    medians = [q["income"].median() for q in quarters]
    new_share = [(q["region"] == simulator.NEW_REGION).mean() for q in quarters]
    assert medians == sorted(medians, reverse=True) and medians[-1] < 0.8 * medians[0]
    assert new_share == sorted(new_share) and new_share[0] < 0.06 < 0.2 < new_share[-1]
    # A stream continues where the last batch stopped.
    late = generate(2000, "gradual", seed=1, progress=(1.0, 1.0))
    assert (late["region"] == simulator.NEW_REGION).mean() > 0.25
