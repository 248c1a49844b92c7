import numpy as np
import pandas as pd
import pytest
from modelwatch.monitoring.drift import ReferenceProfile
from modelwatch.monitoring.integrity import check_integrity, declared_domain
from modelwatch.training.simulator import FEATURES, generate


@pytest.fixture(scope="module")
def reference():
    df = generate(5000, "baseline", seed=31)[FEATURES]
    df.loc[df.index[::20], "employment_years"] = np.nan  # 5% missing in the reference too
    return df


@pytest.fixture(scope="module")
def profile(reference):
    return ReferenceProfile.from_frame(reference)


@pytest.mark.parametrize("n", [20, 200, 2000])
def test_clean_samples_of_the_reference_raise_nothing(reference, profile, n):
    for seed in range(10):
        sample = reference.sample(n, random_state=seed)
        assert check_integrity(profile, sample) == [], (n, seed)
    assert check_integrity(profile, reference) == []
    assert (
        check_integrity(reference, reference.sample(300, random_state=1)) == []
    )  # a frame works too


def kinds(issues):
    return {(i["kind"], tuple(i["columns"])) for i in issues}


def test_missing_share_and_missing_column(profile):
    cur = generate(1000, "baseline", seed=32)[FEATURES]
    cur.loc[cur.index[:150], "credit_score"] = np.nan
    cur = cur.drop(columns=["channel"])
    issues = check_integrity(profile, cur)
    assert kinds(issues) == {("missing", ("credit_score",)), ("missing_column", ("channel",))}
    missing = next(i for i in issues if i["kind"] == "missing")
    assert missing["share"] == pytest.approx(0.15) and missing["count"] == 150
    # a rise inside the reference's own 5% is not an issue
    cur2 = generate(1000, "baseline", seed=33)[FEATURES]
    cur2.loc[cur2.index[::18], "employment_years"] = np.nan
    assert check_integrity(profile, cur2) == []


def test_type_violations(profile):
    cur = generate(500, "baseline", seed=34)[FEATURES]
    cur["income"] = cur["income"].astype(object)
    cur.loc[cur.index[:40], "income"] = "n/a"
    cur["age"] = cur["age"] + 0.5  # the reference's ages are whole numbers, stored as float
    cur["loan_purpose"] = cur["loan_purpose"].astype(object)
    cur.loc[cur.index[:25], "loan_purpose"] = 7
    issues = {
        i["columns"][0]: i for i in check_integrity(profile, cur) if i["kind"] == "type_violation"
    }
    assert set(issues) == {"income", "loan_purpose"}
    assert issues["income"]["share"] == pytest.approx(40 / 500) and issues["income"][
        "examples"
    ] == ["n/a"]
    assert issues["loan_purpose"]["expected"] == "str"
    # integer columns: fractions are a type violation
    ref = ReferenceProfile.from_frame(pd.DataFrame({"n": np.arange(1000) % 9}))
    (issue,) = check_integrity(ref, pd.DataFrame({"n": np.r_[np.arange(90) % 9, [2.5] * 10]}))
    assert issue["kind"] == "type_violation" and issue["expected"] == "an integer"


def test_past_the_range_is_drift_and_out_of_the_domain_is_broken(profile):
    """A covariate shift taking 1-2% of a column past the reference's range is drift
    evidence, not an integrity error; a negative value in a non-negative column is."""
    cur = generate(1000, "baseline", seed=35)[FEATURES]
    cur.loc[cur.index[:50], "credit_score"] = 999.0  # past the observed max: possible
    cur.loc[cur.index[:20], "income"] = 100.0  # incomes far lower than any seen: possible
    cur.loc[cur.index[:30], "home_ownership"] = "castle"
    assert kinds(check_integrity(profile, cur)) == {("unseen_category", ("home_ownership",))}

    cur.loc[cur.index[50:60], "loan_amount"] = -500.0  # a sign the column never has
    issues = check_integrity(profile, cur)
    assert kinds(issues) == {
        ("out_of_domain", ("loan_amount",)),
        ("unseen_category", ("home_ownership",)),
    }
    broken = issues[0]
    assert broken["share"] == pytest.approx(0.01) and broken["count"] == 10
    assert broken["domain"]["min"] == 0.0 and broken["examples"] == ["-500.0"]
    new = next(i for i in issues if i["kind"] == "unseen_category")
    assert new["categories"] == ["castle"] and new["severity"] == "warning"
    assert [i["severity"] for i in issues] == ["error", "warning"]  # errors first


def test_the_domain_is_inferred_conservatively_and_declared_by_the_user():
    rng = np.random.default_rng(3)
    reference = pd.DataFrame(
        {
            "utilization_ratio": rng.uniform(0.1, 0.9, 6000),  # named like a ratio
            "probability": rng.uniform(0, 1, 6000),  # spans [0, 1]
            "flag": rng.integers(0, 2, 6000).astype(float),  # 0/1: a flag, not a ratio
            "temperature": rng.normal(10, 8, 6000),  # both signs: no domain
            "grade": rng.choice(["a", "b", "c"], 6000),
        }
    )
    profile = ReferenceProfile.from_frame(reference)
    window = reference.sample(1000, random_state=4).reset_index(drop=True)
    assert check_integrity(profile, window) == []

    broken = window.copy()
    broken.loc[:19, "utilization_ratio"] = 1.7
    broken.loc[:19, "probability"] = 1.2
    broken.loc[:19, "flag"] = 3.0  # past the range, not past a domain: drift
    broken.loc[:19, "temperature"] = -60.0
    found = check_integrity(profile, broken)
    assert kinds(found) == {
        ("out_of_domain", ("utilization_ratio",)),
        ("out_of_domain", ("probability",)),
    }
    assert all(
        i["domain"] == {"min": 0.0, "max": 1.0, "integer": False, "declared": False} for i in found
    )

    # the user closes a category set and bounds a column; the rest stays inferred
    declared = {"grade": {"categories": ["a", "b", "c"]}, "temperature": {"min": -50, "max": 60}}
    profile.metadata["domain"] = declared
    profile = ReferenceProfile.from_dict(profile.to_dict())  # saved with the profile
    broken.loc[20:29, "grade"] = "z"
    found = {i["columns"][0]: i for i in check_integrity(profile, broken)}
    assert set(found) == {"utilization_ratio", "probability", "grade", "temperature"}
    assert found["grade"]["kind"] == "out_of_domain" and found["grade"]["count"] == 10
    assert found["temperature"]["domain"]["declared"]


def test_a_declared_domain_is_checked():
    with pytest.raises(ValueError, match="'nope' is not a column"):
        declared_domain({"nope": {"min": 0}}, ["x"])
    with pytest.raises(ValueError, match="min, max, integer, categories"):
        declared_domain({"x": {"minimum": 0}}, ["x"])
    with pytest.raises(ValueError, match="min must be a number"):
        declared_domain({"x": {"min": "0"}}, ["x"])
    assert declared_domain({"x": {"max": 1}}, ["x"]) == {"x": {"max": 1}}


def test_swaps_of_any_kind_are_named_as_the_pair(profile):
    cur = generate(1000, "baseline", seed=36)[FEATURES]
    cur["credit_score"], cur["loan_amount"] = cur["loan_amount"].copy(), cur["credit_score"].copy()
    cur["home_ownership"], cur["region"] = cur["region"].copy(), cur["home_ownership"].copy()
    issues = check_integrity(profile, cur)
    assert kinds(issues) == {
        ("swapped_columns", ("credit_score", "loan_amount")),
        ("swapped_columns", ("home_ownership", "region")),
    }
    # a drifted column is not a swap
    assert (
        check_integrity(profile, generate(1000, "covariate", seed=37)[FEATURES])[0]["kind"]
        == "unseen_category"
    )


def test_a_numeric_and_a_categorical_column_swapped(profile):
    cur = generate(800, "baseline", seed=38)[FEATURES]
    cur["income"], cur["channel"] = cur["channel"].copy(), cur["income"].copy()
    assert kinds(check_integrity(profile, cur)) == {("swapped_columns", ("income", "channel"))}
