"""Drift detection speed and agreement: modelwatch vs Evidently's DataDriftPreset.

Run: ``.venv/bin/python -m bench.drift`` (``--quick`` for the smallest size only).

For each size (reference rows / current rows / numeric columns) both engines test the
same frames: Evidently 0.7.23's ``Report([DataDriftPreset()]).run(...)``, and ours both
with the reference profile cached (what the monitor does: the profile is built once at
training time) and cold (the profile built inside the call, from the raw reference).
Times are the best of a few repeats (2-3 for Evidently, 5-10 for ours); the
ratio is Evidently's time over ours. Agreement is over per-column verdicts and the
dataset verdict. Results go to ``bench/results/drift.json``.

A third of the columns drift by varying amounts and 1% of values are missing in every
fifth column, so both engines have real verdicts to agree on.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from bench.common import write_results

SIZES = [(1_000, 500, 10), (10_000, 5_000, 30), (100_000, 50_000, 30)]
RESULTS = Path(__file__).resolve().parent / "results" / "drift.json"


def make_frames(
    n_ref: int, n_cur: int, n_cols: int, seed: int = 0
) -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    ref, cur = {}, {}
    for i in range(n_cols):
        kind = i % 3
        if kind == 0:
            r, c = rng.normal(0, 1, n_ref), rng.normal(0, 1, n_cur)
        elif kind == 1:
            r, c = rng.lognormal(10, 0.5, n_ref).round(-1), rng.lognormal(10, 0.5, n_cur).round(-1)
        else:
            r, c = rng.gamma(2.0, 3.0, n_ref).round(2), rng.gamma(2.0, 3.0, n_cur).round(2)
        if i % 3 == 0:  # a third of the columns drift, from barely to clearly
            c = c + (0.02 + 0.3 * rng.random()) * np.std(r)
        if i % 5 == 0:
            r[rng.random(n_ref) < 0.01] = np.nan
            c[rng.random(n_cur) < 0.01] = np.nan
        ref[f"x{i}"], cur[f"x{i}"] = r, c
    return pd.DataFrame(ref), pd.DataFrame(cur)


def best_time(fn, repeats: int) -> tuple[float, object]:
    best, out = float("inf"), None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def run_size(n_ref: int, n_cur: int, n_cols: int) -> dict:
    from modelwatch.monitoring.drift import ReferenceProfile, detect_drift
    from modelwatch.monitoring.report import evidently_drift, run_data_drift_preset

    ref, cur = make_frames(n_ref, n_cur, n_cols)
    small = n_ref <= 10_000
    ev_repeats = 3 if n_ref <= 1_000 else 2
    ours_repeats = 10 if small else 5

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        # Evidently computes its metrics in run(); the verdicts are read afterwards.
        t_ev, _ = best_time(lambda: run_data_drift_preset(ref, cur), ev_repeats)
        theirs = evidently_drift(ref, cur)

    t_profile, profile = best_time(lambda: ReferenceProfile.from_frame(ref), ours_repeats)
    t_cached, ours = best_time(lambda: detect_drift(profile, cur), ours_repeats)
    t_cold, _ = best_time(lambda: detect_drift(ref, cur), ours_repeats)

    ours_d = ours.to_dict()
    agree = sum(
        ours_d["columns"][c]["drifted"] == v["drifted"]
        and ours_d["columns"][c]["test"] == v["test"]
        for c, v in theirs["columns"].items()
    )
    return {
        "reference_rows": n_ref,
        "current_rows": n_cur,
        "numeric_columns": n_cols,
        "evidently_seconds": t_ev,
        "ours_cached_seconds": t_cached,
        "ours_cold_seconds": t_cold,
        "profile_build_seconds": t_profile,
        "ratio_cached": t_ev / t_cached,
        "ratio_cold": t_ev / t_cold,
        "ours_cached_us_per_current_value": 1e6 * t_cached / (n_cur * n_cols),
        "ours_cold_us_per_value": 1e6 * t_cold / ((n_ref + n_cur) * n_cols),
        "columns_agreeing": agree,
        "columns": len(theirs["columns"]),
        "dataset_verdict_agrees": ours_d["dataset_drift"] == theirs["dataset_drift"],
        "drifted_columns": len(ours.drifted_columns),
        "tests": sorted({v["test"] for v in ours_d["columns"].values()}),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="only the smallest size")
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    import evidently

    rows = [run_size(*size) for size in (SIZES[:1] if args.quick else SIZES)]
    header = f"{'ref/cur/cols':>20} {'evidently':>10} {'cached':>9} {'cold':>9} {'x cached':>9} {'x cold':>8} {'agree':>7} dataset"
    print(header)
    for r in rows:
        print(
            f"{r['reference_rows']:>9,}/{r['current_rows']:,}/{r['numeric_columns']:<3} "
            f"{r['evidently_seconds']:>9.3f}s {1e3 * r['ours_cached_seconds']:>7.1f}ms "
            f"{1e3 * r['ours_cold_seconds']:>7.1f}ms {r['ratio_cached']:>8.0f}x {r['ratio_cold']:>7.0f}x "
            f"{r['columns_agreeing']:>3}/{r['columns']:<3} {'yes' if r['dataset_verdict_agrees'] else 'NO'}"
        )
    result = {
        "benchmark": "drift: modelwatch.monitoring.drift vs evidently DataDriftPreset",
        "evidently": evidently.__version__,
        "numpy": np.__version__,
        "pandas": pd.__version__,
        "python": platform.python_version(),
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "timestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "results": rows,
    }
    write_results(args.output, result)
    ok = all(r["columns_agreeing"] == r["columns"] and r["dataset_verdict_agrees"] for r in rows)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
