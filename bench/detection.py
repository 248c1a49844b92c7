"""Detection quality: delay, false alarms and misses, on streams with known change points.

Run: ``.venv/bin/python -m bench.detection`` (``--quick``: fewer seeds, shorter streams).

Part 1, the monitor on the simulator's scenarios. A real model (the training pipeline,
gbm, on 20,000 simulator rows: 70% train, 15% calibration, 15% holdout, as
``modelwatch.training.train`` splits) and its monitoring reference built as training builds it
(``MonitoringReference.from_scores`` on the scored calibration split, the profile of the
training rows), its calculators fitted at the monitor's window size - no MLflow. A stream
of 2,000 baseline rows, then the scenario from the onset; the monitor's ``evaluate``
runs on the last 2,000 rows every 200 rows (``modelwatch up``: window 2,000 rows, a
window every 5 s; at the demo's 40 rows/s that is every 200 rows). Every prediction is
labelled at once (coverage 1). A window alarms for a signal when the matching alert
rule's condition holds on it (monitoring/prometheus/rules/alerts.yml, without its
``for:``):

* data drift: the ``dataset_drift_share`` metric alerts (DataDriftDetected)
* concept: the concept-drift flag (ConceptDriftDetected), or any realized or estimated
  performance metric out of its reference bounds (ModelAccuracyDegraded)
* integrity: an integrity issue other than the warnings' kinds (DataIntegrityViolation)

Delay is rows from the onset to the end of the first window that raises the scenario's
expected signal; a miss is none within the horizon. False alarms: on a long baseline
stream, the alarm episodes (a window alarming after one that did not) of each signal per
10,000 predictions.

Part 2, ``modelwatch.monitoring.concept.ErrorStreamDetector`` (ADWIN and Page-Hinkley, our defaults)
on river's synthetic concept-drift streams (``river.datasets.synth.ConceptDriftStream``
over SEA and Agrawal generators, a known drift position; "abrupt" is river's sigmoid
of width 50 rows, the narrowest its float arithmetic allows at position 5,000), fed with
the prequential errors of a river Hoeffding tree (predict, then learn, each row). The change starts where the
new concept's share of rows passes 12% (position - width / 2); delay is rows from there
to the first detection (within the horizon, else a miss); a detection before it, after a
1,000-row burn-in, is a false alarm.

Results go to ``bench/results/detection.json``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pandas as pd

from bench.common import RESULTS, environment, write_results

OUTPUT = RESULTS / "detection.json"
RATE = 40.0  # rows a second: the demo's traffic
WINDOW = 2_000  # MODELWATCH_MONITOR_WINDOW_ROWS
STEP = 200  # rows between windows: 5 s at 40 rows/s
# For the integrity scenarios, also the delay until a finding of the right kind names it.
NAMED_KIND = {"integrity_swap": "swapped_columns", "integrity_missing": "missing"}
EXPECTED = {
    "covariate": "data_drift",
    "gradual": "data_drift",
    "concept": "concept",
    "integrity_swap": "integrity",
    "integrity_missing": "integrity",
}
SIGNALS = ("data_drift", "concept", "integrity")
PAGE_KINDS_EXCLUDED = {"unseen_category", "unexpected_column"}


# -- part 1: the monitor on the simulator ------------------------------------------------


class Trained(NamedTuple):
    model: object
    reference: object  # MonitoringReference
    calculators: Callable[[], list]


def trained_monitor(seed: int = 42) -> Trained:
    """A trained pipeline, its monitoring reference, and a function making the version's
    calculators with an empty error stream (the concept-drift calculator keeps state
    across windows; the others are fitted once and shared)."""
    from modelwatch.monitoring.calculators.classification import EstimatedClassification
    from modelwatch.monitoring.calculators.concept import ConceptDrift
    from modelwatch.monitoring.reference import MonitoringReference
    from modelwatch.monitoring.suite import fit_calculators
    from modelwatch.training import pipeline
    from modelwatch.training.simulator import (
        CATEGORICAL_FEATURES,
        FEATURES,
        NUMERIC_FEATURES,
        TARGET,
        generate,
    )
    from sklearn.model_selection import train_test_split

    data = generate(20_000, seed=seed)
    train, rest = train_test_split(data, test_size=0.3, random_state=seed, stratify=data[TARGET])
    # the holdout half is the gate's; the reference is the calibration half, as in training
    calibration, _ = train_test_split(rest, test_size=0.5, random_state=seed, stratify=rest[TARGET])
    model = pipeline.build("gbm", NUMERIC_FEATURES, CATEGORICAL_FEATURES, seed, "binary")
    model.fit(train[FEATURES], train[TARGET])
    proba = model.predict_proba(calibration[FEATURES])
    reference = MonitoringReference.from_scores(
        calibration[FEATURES],
        calibration[TARGET],
        model.classes_[proba.argmax(axis=1)],
        proba,
        model.classes_,
        TARGET,
        "binary",
        profile_rows=train[FEATURES],
    )
    fitted = fit_calculators(reference, chunk_rows=WINDOW)
    estimator = next(c for c in fitted if isinstance(c, EstimatedClassification))
    shared = [c for c in fitted if not isinstance(c, ConceptDrift)]

    def make() -> list:
        return shared + [ConceptDrift(estimator)]

    return Trained(model, reference, make)


def scored_stream(model, scenario: str, seed: int, pre: int, post: int) -> pd.DataFrame:
    """`pre` baseline rows then `post` scenario rows, scored, labelled, as the log has them."""
    from modelwatch.training.simulator import FEATURES, TARGET, generate

    parts = [generate(pre, "baseline", seed=seed)]
    if post:
        parts.append(
            generate(post, scenario, seed=seed + 1000)
            if scenario != "gradual"
            else generate(post, scenario, seed=seed + 1000, progress=(0.0, 1.0))
        )
    df = pd.concat(parts, ignore_index=True)
    proba = model.predict_proba(df[FEATURES])[:, 1]
    out = df[FEATURES].copy()
    out["prediction_id"] = [f"{seed}-{i}" for i in range(len(df))]
    out["ts"] = np.arange(len(df)) / RATE
    out["prediction"] = (proba >= 0.5).astype(int)
    out["probability"] = proba
    out["label"] = df[TARGET].to_numpy()
    out["latency_ms"] = 5.0
    return out


def signals(result) -> dict[str, bool]:
    drift = result.metric("dataset_drift_share")
    degraded = any(m["alert"] for m in result.performance.values())
    integrity = any(
        m.alert and dict(m.labels)["kind"] not in PAGE_KINDS_EXCLUDED
        for m in result.metrics
        if m.name == "integrity_issue"
    )
    return {
        "data_drift": bool(drift is not None and drift.alert),
        "concept": bool(result.concept_drift or degraded),
        "integrity": integrity,
    }


def walk(trained: Trained, stream: pd.DataFrame, start: int):
    """Evaluate the window ending at every STEP rows from `start`; yields (end, signals)."""
    from modelwatch.monitoring.window import evaluate

    calculators = trained.calculators()
    for end in range(start, len(stream) + 1, STEP):
        result = evaluate(
            "1", calculators, trained.reference, stream.iloc[max(0, end - WINDOW) : end]
        )
        yield end, signals(result), result


def scenario_runs(trained: Trained, seeds: list[int], horizon: int) -> list[dict]:
    pre = WINDOW
    rows = []
    for scenario, expected in EXPECTED.items():
        delays, misses, kinds, named = [], 0, set(), []
        for seed in seeds:
            stream = scored_stream(trained.model, scenario, seed, pre, horizon)
            found = None
            for end, sig, result in walk(trained, stream, pre + STEP):
                if sig[expected] and found is None:
                    found = end - pre
                    kinds.update(i["kind"] for i in result.integrity)
                if scenario in NAMED_KIND and any(
                    i["kind"] == NAMED_KIND[scenario] for i in result.integrity
                ):
                    named.append(end - pre)
                    break
                if found is not None and scenario not in NAMED_KIND:
                    break
            if found is None:
                misses += 1
            else:
                delays.append(found)
        row = {
            "scenario": scenario,
            "expected_signal": expected,
            "runs": len(seeds),
            "missed": misses,
            "delays_rows": delays,
            "median_delay_rows": statistics.median(delays) if delays else None,
            "median_delay_seconds_at_40_rows_s": (
                statistics.median(delays) / RATE if delays else None
            ),
        }
        if expected == "integrity":
            row["first_window_kinds"] = sorted(kinds)
            row["named_kind"] = NAMED_KIND[scenario]
            row["named_delays_rows"] = named
            row["named_missed"] = len(seeds) - len(named)
        rows.append(row)
        print(
            f"  {scenario:<18} {expected:<11} delay rows {row['median_delay_rows']} "
            f"{delays} missed {misses}/{len(seeds)}",
            flush=True,
        )
    return rows


def baseline_false_alarms(trained: Trained, rows: int, seed: int = 7) -> dict:
    stream = scored_stream(trained.model, "baseline", seed, rows, 0)
    episodes = {s: 0 for s in SIGNALS}
    alarming = {s: 0 for s in SIGNALS}
    previous = {s: False for s in SIGNALS}
    windows = 0
    for _, sig, _ in walk(trained, stream, WINDOW):
        windows += 1
        for s in SIGNALS:
            alarming[s] += sig[s]
            episodes[s] += sig[s] and not previous[s]
            previous[s] = sig[s]
    scored = rows - WINDOW + STEP  # predictions the windows advanced over
    return {
        "baseline_rows": rows,
        "windows": windows,
        "false_alarm_episodes": episodes,
        "false_alarms_per_10k_predictions": {s: 1e4 * episodes[s] / scored for s in SIGNALS},
        "share_of_windows_alarming": {s: alarming[s] / windows for s in SIGNALS},
    }


# -- part 2: ErrorStreamDetector on river's synthetic streams -----------------------------


def river_streams(position: int):
    """name -> (width, seed -> stream): the error rate rises by 0.05 (SEA) to 0.5."""
    from river.datasets import synth

    def agrawal(f0, f1, width):
        return width, lambda seed: synth.ConceptDriftStream(
            synth.Agrawal(classification_function=f0, seed=seed),
            synth.Agrawal(classification_function=f1, seed=seed + 1),
            position=position,
            width=width,
            seed=seed,
        )

    return {
        "SEA 1->2, abrupt": (
            50,
            lambda seed: synth.ConceptDriftStream(
                synth.SEA(variant=1, seed=seed),
                synth.SEA(variant=2, seed=seed + 1),
                position=position,
                width=50,
                seed=seed,
            ),
        ),
        "Agrawal 0->2, abrupt": agrawal(0, 2, 50),
        "Agrawal 1->2, abrupt": agrawal(1, 2, 50),
        "Agrawal 3->4, abrupt": agrawal(3, 4, 50),
        "Agrawal 0->2, gradual (width 1000)": agrawal(0, 2, 1000),
    }


def prequential_errors(stream, n: int) -> np.ndarray:
    from river import tree

    model = tree.HoeffdingTreeClassifier()
    errors = np.empty(n)
    for i, (x, y) in enumerate(stream.take(n)):
        errors[i] = model.predict_one(x) != y
        model.learn_one(x, y)
    return errors


def river_runs(seeds: list[int], position: int, horizon: int, burn_in: int = 1_000) -> list[dict]:
    from modelwatch.monitoring.concept import ErrorStreamDetector

    rows = []
    for name, (width, make) in river_streams(position).items():
        # The change starts where the new concept's share passes 12% (position - width/2).
        start = position - width // 2
        per = {m: {"delays": [], "missed": 0, "false_alarms": 0} for m in ("adwin", "page_hinkley")}
        before, after = [], []
        for seed in seeds:
            errors = prequential_errors(make(seed), position + horizon)
            before.append(errors[start - 2000 : start].mean())
            after.append(errors[start : start + 2000].mean())
            for method, acc in per.items():
                fired = ErrorStreamDetector(method).update_many(errors)
                acc["false_alarms"] += sum(burn_in <= f < start for f in fired)
                late = [f for f in fired if f >= start]
                if late:
                    acc["delays"].append(late[0] - start)
                else:
                    acc["missed"] += 1
        row = {
            "stream": name,
            "runs": len(seeds),
            "drift_position": position,
            "drift_width": width,
            "change_start": start,
            "horizon_rows": horizon,
            "error_rate_before": float(np.mean(before)),
            "error_rate_after_2000": float(np.mean(after)),
        }
        for method, acc in per.items():
            row[method] = {
                "median_delay_rows": statistics.median(acc["delays"]) if acc["delays"] else None,
                "delays_rows": acc["delays"],
                "missed": acc["missed"],
                "false_alarms": acc["false_alarms"],
                "false_alarms_per_10k_predictions": 1e4
                * acc["false_alarms"]
                / (len(seeds) * (start - burn_in)),
            }
        rows.append(row)
        print(
            f"  {name:<36} err {row['error_rate_before']:.3f}->{row['error_rate_after_2000']:.3f}  "
            + "  ".join(
                f"{m}: delay {row[m]['median_delay_rows']} missed {row[m]['missed']} "
                f"fa/10k {row[m]['false_alarms_per_10k_predictions']:.2f}"
                for m in per
            ),
            flush=True,
        )
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--output", type=Path, default=OUTPUT)
    args = parser.parse_args(argv)
    seeds = [1, 2] if args.quick else [1, 2, 3]
    horizon = 4_000 if args.quick else 8_000
    baseline_rows = 10_000 if args.quick else 40_000
    river_seeds = list(range(1, 4 if args.quick else 11))
    info = environment()
    t0 = time.perf_counter()

    print("the monitor's windows on the simulator's scenarios", flush=True)
    trained = trained_monitor()
    scenarios = scenario_runs(trained, seeds, horizon)
    baseline = baseline_false_alarms(trained, baseline_rows)
    print(
        f"  baseline {baseline_rows} rows: false alarms per 10k predictions "
        f"{baseline['false_alarms_per_10k_predictions']}",
        flush=True,
    )
    print("ErrorStreamDetector on river's concept-drift streams", flush=True)
    river = river_runs(river_seeds, position=5_000, horizon=5_000)

    doc = {
        "benchmark": "detection: delay, false alarms, misses",
        **info,
        "command": ".venv/bin/python -m bench.detection",
        "seconds": time.perf_counter() - t0,
        "monitor": {
            "rate_rows_per_second": RATE,
            "window_rows": WINDOW,
            "step_rows": STEP,
            "horizon_rows": horizon,
            "label_coverage": 1.0,
            "scenarios": scenarios,
            "baseline": baseline,
        },
        "error_stream_detector": {
            "classifier": "river.tree.HoeffdingTreeClassifier, prequential",
            "streams": river,
        },
    }
    write_results(args.output, doc)
    return 0


if __name__ == "__main__":
    sys.exit(main())
