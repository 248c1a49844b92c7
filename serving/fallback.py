"""A rule-based fallback: business rules in YAML that answer when no model can be loaded.

Used only when MODELWATCH_FALLBACK is "default" (`serving/fallback_rules.yaml`) or a path
to such a file, and neither the registry nor the local cache gives a model. Answers carry
`"fallback": true` and `modelwatch_fallback_active` is 1 while it serves.
"""

from __future__ import annotations

import operator
from pathlib import Path

import numpy as np
import pandas as pd
import yaml
from modelwatch.serving.validation import ColumnSpec

DEFAULT_RULES = Path(__file__).with_name("fallback_rules.yaml")
NUMERIC_OPS = {"<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge}
OPS = {**NUMERIC_OPS, "==": operator.eq, "!=": operator.ne, "in": None, "not_in": None}


class RuleError(ValueError):
    """The rules file is not valid."""


class RuleModel:
    """Vectorised evaluation of the rules over a DataFrame."""

    def __init__(self, doc: dict, source: str = "") -> None:
        if not isinstance(doc, dict) or not isinstance(doc.get("rules"), list):
            raise RuleError(f"{source or 'rules'}: expected a mapping with a list of `rules`")
        self.source = source
        self.name = str(doc.get("name", "rules"))
        self.version = str(doc.get("version", "1"))
        self.classes = list(doc.get("classes", [0, 1]))
        if len(self.classes) != 2:
            raise RuleError(f"{source}: `classes` must be [negative, positive]")
        self.threshold = float(doc.get("threshold", 0.5))
        self.base = float(doc.get("base_probability", 0.0))
        self.rules: list[tuple[str, list[tuple[str, str, object]], float]] = []
        types: dict[str, str] = {}
        for i, rule in enumerate(doc["rules"]):
            if not isinstance(rule, dict) or not isinstance(rule.get("when"), dict):
                raise RuleError(f"{source}: rule {i} needs a `when` mapping")
            conditions = []
            for feature, tests in rule["when"].items():
                if not isinstance(tests, dict) or not tests:
                    raise RuleError(f"{source}: rule {i}: `{feature}` needs {{op: value}}")
                for op, value in tests.items():
                    if op not in OPS:
                        raise RuleError(f"{source}: rule {i}: unknown operator {op!r}")
                    values = value if isinstance(value, list) else [value]
                    numeric = op in NUMERIC_OPS or all(
                        isinstance(v, (int, float)) and not isinstance(v, bool) for v in values
                    )
                    kind = "double" if numeric else "string"
                    if types.setdefault(str(feature), kind) != kind:
                        raise RuleError(f"{source}: `{feature}` used both as number and text")
                    conditions.append((str(feature), op, value))
            prob = float(rule.get("probability", 1.0))
            if not 0.0 <= prob <= 1.0:
                raise RuleError(f"{source}: rule {i}: probability must be within [0, 1]")
            self.rules.append((str(rule.get("name", f"rule_{i}")), conditions, prob))
        self.spec = [ColumnSpec(name, kind, True) for name, kind in types.items()]

    @classmethod
    def load(cls, setting: str) -> RuleModel:
        path = DEFAULT_RULES if setting.strip().lower() == "default" else Path(setting)
        try:
            doc = yaml.safe_load(path.read_text(encoding="utf-8"))
        except OSError as exc:
            raise RuleError(f"cannot read fallback rules {path}: {exc}") from exc
        return cls(doc, str(path))

    def predict(self, X: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        n = len(X)
        prob = np.full(n, self.base, dtype="float64")
        for _, conditions, p in self.rules:
            mask = np.ones(n, dtype=bool)
            for feature, op, value in conditions:
                col = X[feature]
                if op in ("in", "not_in"):
                    hit = col.isin(value if isinstance(value, list) else [value]).to_numpy()
                    if op == "not_in":
                        hit = ~hit & col.notna().to_numpy()
                else:
                    with np.errstate(invalid="ignore"):
                        hit = OPS[op](col, value).fillna(False).to_numpy(dtype=bool)
                    hit &= col.notna().to_numpy()
                mask &= hit
            prob = np.where(mask, np.maximum(prob, p), prob)
        labels = np.where(prob >= self.threshold, self.classes[1], self.classes[0])
        return labels, prob
