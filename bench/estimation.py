"""Label-free estimates against realized performance, on labelled data sets modelwatch did
not make (river ships them): per window, the estimate, the truth, the reference bounds
and which windows alert, beside the fixed rule the monitor used before (5 points below
the reference accuracy).

    .venv/bin/python -m bench.estimation [--window 300]

Bananas (binary, 5,300 rows) and ImageSegments (7 classes, 2,310 rows): a model is
trained on one part, the reference is a held-out part, and production windows come from
the rest, first at random (healthy) and then shifted (covariate shift:
P(y | x) holds, so the estimate should follow accuracy down, and alert when the fall
leaves the reference's own spread). The shift selects rows near the model's decision
boundary, a function of the inputs alone. Writes bench/results/estimation.json.
"""

from __future__ import annotations

import argparse
import json

import numpy as np
import pandas as pd
from modelwatch.monitoring.reference import MonitoringReference
from modelwatch.monitoring.suite import fit_calculators
from modelwatch.monitoring.window import evaluate
from river import datasets
from sklearn.ensemble import HistGradientBoostingClassifier

from bench.common import RESULTS
from modelwatch.log.schema import label_text

OLD_MARGIN = 0.05  # the rule before issue 11: accuracy < reference accuracy - 0.05


def load(name: str) -> tuple[pd.DataFrame, pd.Series]:
    data = {"bananas": datasets.Bananas, "segments": datasets.ImageSegments}[name]()
    rows = list(data)
    X = pd.DataFrame([x for x, _ in rows]).rename(columns=str)
    y = pd.Series([y for _, y in rows]).astype(str)
    return X, y


def log_frame(X: pd.DataFrame, y: pd.Series, model, offset: int) -> pd.DataFrame:
    """Rows as the prediction log holds them."""
    proba = model.predict_proba(X)
    frame = X.reset_index(drop=True).copy()
    frame["prediction_id"] = [f"p{offset + i}" for i in range(len(X))]
    frame["ts"] = np.arange(len(X), dtype=float) + offset
    frame["prediction"] = [label_text(c) for c in model.classes_[proba.argmax(axis=1)]]
    frame["probability"] = proba[:, 1] if proba.shape[1] == 2 else proba.max(axis=1)
    frame["probabilities"] = [json.dumps(row) for row in proba.tolist()]
    frame["label"] = y.to_numpy()
    frame["latency_ms"] = 1.0
    return frame


def run(name: str, window: int, seed: int = 0) -> list[dict]:
    X, y = load(name)
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(X))
    n_train, n_ref = int(len(X) * 0.4), int(len(X) * 0.3)
    train, ref, pool = order[:n_train], order[n_train : n_train + n_ref], order[n_train + n_ref :]
    model = HistGradientBoostingClassifier(max_iter=100, random_state=seed).fit(
        X.iloc[train], y.iloc[train]
    )
    proba = model.predict_proba(X.iloc[ref])
    reference = MonitoringReference.from_scores(
        X.iloc[ref],
        y.iloc[ref],
        model.classes_[proba.argmax(axis=1)],
        proba,
        model.classes_,
        target="y",
    )
    calculators = fit_calculators(reference, chunk_rows=window)
    reference_accuracy = (
        next(c for c in calculators if c.name == "realized_classification")
        .bounds["live_accuracy"]
        .mean
    )
    rows = []
    # Selection rises with how near the inputs lie to the model's decision boundary (a
    # function of x alone, so P(y | x) holds): the later windows hold ever more hard cases.
    hardness = 1.0 - model.predict_proba(X.iloc[pool]).max(axis=1)
    hardness = pd.Series(hardness).rank(pct=True).to_numpy()
    for i, strength in enumerate([0.0] * 5 + [1.0, 2.0, 3.0, 4.0, 6.0]):
        weights = np.exp(strength * hardness)
        picked = pool[rng.choice(len(pool), window, replace=True, p=weights / weights.sum())]
        frame = log_frame(X.iloc[picked], y.iloc[picked], model, offset=i * window)
        result = evaluate("1", calculators, reference, frame)
        live, est = result.metric("live_accuracy"), result.metric("estimated_accuracy")
        rows.append(
            {
                "dataset": name,
                "window": i + 1,
                "shift": strength,
                "realized": live.value,
                "estimated": est.value,
                "lower": est.lower,
                "estimated_alert": est.alert,
                "realized_alert": live.alert,
                "old_rule_alert": bool(
                    est.value < reference_accuracy - OLD_MARGIN
                    or live.value < reference_accuracy - OLD_MARGIN
                ),
                "reference_accuracy": reference_accuracy,
                "drifted": [n for n, c in result.drift["columns"].items() if c["drifted"]],
            }
        )
    return rows


def table(rows: list[dict]) -> str:
    lines = [
        "| data set | window | shift | realized | estimated | lower bound | alerts (est / real) | old rule |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['dataset']} | {r['window']} | {r['shift']:g} | {r['realized']:.3f} | {r['estimated']:.3f} | "
            f"{r['lower']:.3f} | {'yes' if r['estimated_alert'] else 'no'} / {'yes' if r['realized_alert'] else 'no'} | "
            f"{'yes' if r['old_rule_alert'] else 'no'} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--window", type=int, default=300)
    args = parser.parse_args()
    rows = run("bananas", args.window) + run("segments", args.window)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "estimation.json").write_text(json.dumps(rows, indent=1))
    print(table(rows))


if __name__ == "__main__":
    main()
