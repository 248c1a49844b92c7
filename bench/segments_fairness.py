"""The monitor's extra time per window for segments and fairness.

    .venv/bin/python -m bench.segments_fairness [--rows 50000] [--repeat 3]

A credit model trained on simulator rows, a 9,000-row reference, and one window of
`--rows` labelled predictions judged three ways, each the median of `--repeat` runs on
the same frame: the version's calculators alone, with segments by `channel` (4 segments)
and `age` (4 quartile bins), and with fairness by `region` and `home_ownership` as well.
Writes bench/results/segments_fairness.json.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time

import numpy as np
from modelwatch.monitoring.reference import MonitoringReference
from modelwatch.monitoring.suite import fit_calculators
from modelwatch.monitoring.window import evaluate
from modelwatch.training.pipeline import build
from modelwatch.training.simulator import (
    CATEGORICAL_FEATURES,
    FEATURES,
    NUMERIC_FEATURES,
    TARGET,
    generate,
)

from bench.common import RESULTS, environment

SEGMENTS = ("channel", "age")
SENSITIVE = ("region", "home_ownership")


def setup(rows: int):
    data = generate(60_000, "baseline", seed=42)
    train, held_out = data.iloc[:42_000], data.iloc[42_000:51_000]
    model = build("gbm", NUMERIC_FEATURES, CATEGORICAL_FEATURES, 42, "binary").fit(
        train[FEATURES], train[TARGET]
    )
    proba = model.predict_proba(held_out[FEATURES])
    reference = MonitoringReference.from_scores(
        held_out[FEATURES],
        held_out[TARGET],
        proba.argmax(axis=1),
        proba,
        classes=[0, 1],
        target=TARGET,
        profile_rows=train[FEATURES],
    )
    window = generate(rows, "baseline", seed=7)
    q = model.predict_proba(window[FEATURES])[:, 1]
    log = window[FEATURES].assign(
        ts=np.arange(rows, dtype=float),
        prediction=(q > 0.5).astype(int).astype(str),
        probability=q,
        label=window[TARGET].astype(str),
        prediction_id=[f"p{i}" for i in range(rows)],
    )
    return reference, log


def timed(reference, log, repeat: int, **columns) -> float:
    # the chunk size of the window, as the monitor fits its calculators
    calculators = fit_calculators(reference, len(log), fairness={"favourable": "0"}, **columns)
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        evaluate("1", calculators, reference, log)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=50_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    reference, log = setup(args.rows)
    plain = timed(reference, log, args.repeat)
    segments = timed(reference, log, args.repeat, segments=SEGMENTS)
    both = timed(reference, log, args.repeat, segments=SEGMENTS, sensitive=SENSITIVE)
    out = {
        "environment": environment(),
        "rows": args.rows,
        "segment_columns": SEGMENTS,
        "sensitive": SENSITIVE,
        "window_seconds": plain,
        "segments_extra_seconds": segments - plain,
        "fairness_extra_seconds": both - segments,
        "loadavg_at_end": os.getloadavg()[0],
    }
    (RESULTS / "segments_fairness.json").write_text(json.dumps(out, indent=1))
    print(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
