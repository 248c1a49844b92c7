import numpy as np
import pandas as pd
import pytest
from modelwatch.monitoring.drift import ReferenceProfile
from modelwatch.monitoring.integrity import check_integrity
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


def test_out_of_range_and_unseen_categories(profile):
    cur = generate(1000, "baseline", seed=35)[FEATURES]
    cur.loc[cur.index[:50], "credit_score"] = 999.0
    cur.loc[cur.index[50:60], "credit_score"] = -1.0
    cur.loc[cur.index[:30], "home_ownership"] = "castle"
    issues = check_integrity(profile, cur)
    assert kinds(issues) == {
        ("out_of_range", ("credit_score",)),
        ("unseen_category", ("home_ownership",)),
    }
    rng = next(i for i in issues if i["kind"] == "out_of_range")
    # (a stray natural value or two may also fall just outside the reference range)
    assert rng["share"] == pytest.approx(0.06, abs=0.003)
    assert rng["above"] == pytest.approx(0.05, abs=0.003) and rng["below"] == pytest.approx(
        0.01, abs=0.003
    )
    new = next(i for i in issues if i["kind"] == "unseen_category")
    assert new["categories"] == ["castle"] and new["severity"] == "warning"
    assert [i["severity"] for i in issues] == ["error", "warning"]  # errors first


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
