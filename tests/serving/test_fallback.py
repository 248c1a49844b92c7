"""The fallback model: business rules from YAML, applied to a whole frame at once."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from modelwatch.serving.fallback import RuleModel


def test_fallback_rules_are_vectorised_business_rules():
    rules = RuleModel.load("default")
    assert {c.name for c in rules.spec} >= {"debt_to_income", "credit_score"}
    X = pd.DataFrame(
        {
            "debt_to_income": [0.5, 0.2, 0.2, np.nan],
            "credit_score": [700.0, 550.0, 720.0, np.nan],
            "employment_years": [5.0, 5.0, 5.0, 5.0],
            "loan_amount": [1000.0, 1000.0, 1000.0, 1000.0],
            "home_ownership": ["own", "own", "own", None],
        }
    )
    labels, probs = rules.predict(X)
    assert labels.tolist() == [1, 1, 0, 0]
    assert probs[0] == 0.75 and probs[1] == 0.7 and probs[2] == rules.base


def test_broken_rules_are_refused(tmp_path):
    path = tmp_path / "rules.yaml"
    path.write_text("rules:\n  - when: {age: {'~': 3}}\n")
    with pytest.raises(ValueError, match="unknown operator"):
        RuleModel.load(str(path))
