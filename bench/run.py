"""Run every benchmark in sequence, then print the table of results (``make bench``).

    .venv/bin/python -m bench.run                  # serving, replicas, drift, detection,
                                                   # loop, window_query, feedback_flood
    .venv/bin/python -m bench.run --quick          # each one's --quick (loop: no demo)
    .venv/bin/python -m bench.run --only serving   # one (or several, comma-separated)
    .venv/bin/python -m bench.run --with-soak      # also the 10-minute soak
    .venv/bin/python -m bench.run --wait-idle      # before each, wait for a 1-minute load
                                                   # average below 1.5 (20 min in all)
    .venv/bin/python -m bench.run --table          # only the table, from bench/results/

Each benchmark is its own process (``python -m bench.NAME``) and writes
``bench/results/NAME.json``; they never run in parallel. The machine is shared: the
table gives ratios measured side by side, which is what carries over to another machine.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

from bench.common import RESULTS, ROOT

# The most load-sensitive first.
BENCHMARKS = ("serving", "replicas", "drift", "detection", "loop", "window_query", "feedback_flood")
QUICK_ARGS = {
    "drift": ["--quick"],
    "serving": ["--quick"],
    "detection": ["--quick"],
    "loop": ["--skip-demo"],
    "soak": ["--minutes", "1"],
    "replicas": ["--quick"],
    "window_query": ["--sizes", "1000000", "--repeats", "1"],
    "feedback_flood": ["--quick"],
}


def wait_idle(deadline: float, threshold: float = 1.5, poll: float = 30) -> float:
    load = os.getloadavg()[0]
    while load >= threshold and time.monotonic() < deadline:
        print(f"  load average {load:.2f} >= {threshold}: waiting", flush=True)
        time.sleep(poll)
        load = os.getloadavg()[0]
    return load


def _load(name: str) -> dict | None:
    path = RESULTS / f"{name}.json"
    return json.loads(path.read_text()) if path.exists() else None


def _x(v: float | None, digits: int = 2) -> str:
    return "n/a" if v is None else f"{v:.{digits}f}x"


def table_rows() -> list[tuple[str, str, str, str, str]]:
    """(benchmark, measure, result, target, command) from the results on disk."""
    rows = []
    d = _load("serving")
    if d and all("flask_floor_vs_mlflow_models_serve" in e.get("ratios", {}) for e in d["results"]):
        cmd = ".venv/bin/python -m bench.serving"
        for e in d["results"]:
            n, r = e["rows_per_request"], e["ratios"]
            mw, bare, peer = e["modelwatch"], e["bare"], e["mlflow_models_serve"]
            rows += [
                (
                    "serving",
                    f"{n} row(s)/request: req/s, modelwatch / bare Flask",
                    _x(r["modelwatch_vs_bare"]) + f" ({mw['requests_per_second']:.0f} vs "
                    f"{bare['requests_per_second']:.0f})",
                    ">= 0.85x",
                    cmd,
                ),
                (
                    "serving",
                    f"{n} row(s)/request: req/s, modelwatch / `mlflow models serve`",
                    _x(r["modelwatch_vs_mlflow_models_serve"])
                    + f" ({mw['requests_per_second']:.0f}"
                    f" vs {peer['requests_per_second']:.0f})",
                    ">= 15x",
                    cmd,
                ),
                (
                    "serving",
                    f"{n} row(s)/request: req/s, prediction log on / off",
                    _x(r["modelwatch_vs_modelwatch_nolog"]),
                    "",
                    cmd,
                ),
                (
                    "serving",
                    f"{n} row(s)/request: server CPU per request, bare / modelwatch, "
                    "mlflow / modelwatch, log off / on",
                    ", ".join(
                        _x(e["cpu_ratios"][k])
                        for k in (
                            "modelwatch_vs_bare",
                            "modelwatch_vs_mlflow_models_serve",
                            "modelwatch_vs_modelwatch_nolog",
                        )
                    ),
                    "",
                    cmd,
                ),
                (
                    "serving",
                    f"{n} row(s)/request: compiled pipeline / sklearn in modelwatch (req/s, CPU)",
                    _x(r["modelwatch_vs_modelwatch_sklearn"])
                    + ", "
                    + _x(e["cpu_ratios"]["modelwatch_vs_modelwatch_sklearn"]),
                    "",
                    cmd,
                ),
                (
                    "serving",
                    f"{n} row(s)/request: Flask floor (constant answer) / `mlflow models "
                    "serve` (req/s, CPU): the most any Flask+gunicorn server could reach",
                    _x(r["flask_floor_vs_mlflow_models_serve"])
                    + ", "
                    + _x(e["cpu_ratios"]["flask_floor_vs_mlflow_models_serve"]),
                    "",
                    cmd,
                ),
                (
                    "serving",
                    f"{n} row(s)/request: p50/p99 ms",
                    f"modelwatch {mw['p50_ms']:.0f}/{mw['p99_ms']:.0f}; bare {bare['p50_ms']:.0f}/"
                    f"{bare['p99_ms']:.0f}; mlflow {peer['p50_ms']:.0f}/{peer['p99_ms']:.0f}",
                    "",
                    cmd,
                ),
            ]
    d = _load("drift")
    if d:
        for e in d["results"]:
            rows.append(
                (
                    "drift",
                    f"{e['reference_rows']:,}/{e['current_rows']:,} rows x "
                    f"{e['numeric_columns']} cols: Evidently time / ours (cached, cold)",
                    f"{e['ratio_cached']:.0f}x, {e['ratio_cold']:.0f}x; verdicts agree "
                    f"{e['columns_agreeing']}/{e['columns']}",
                    "",
                    ".venv/bin/python -m bench.drift",
                )
            )
    d = _load("detection")
    if d:
        cmd = ".venv/bin/python -m bench.detection"
        m = d["monitor"]
        for s in m["scenarios"]:
            delay = s["median_delay_rows"]
            rows.append(
                (
                    "detection",
                    f"monitor, `{s['scenario']}` ({s['expected_signal']}): median delay, missed",
                    (
                        "n/a"
                        if delay is None
                        else f"{delay:.0f} rows ({delay / m['rate_rows_per_second']:.0f} s at "
                        f"{m['rate_rows_per_second']:.0f}/s)"
                    )
                    + f", missed {s['missed']}/{s['runs']}"
                    + (
                        f"; named as `{s['named_kind']}` after "
                        f"{'/'.join(str(x) for x in s['named_delays_rows']) or 'never'} rows"
                        if "named_kind" in s
                        else ""
                    ),
                    "",
                    cmd,
                )
            )
        fa = m["baseline"]["false_alarms_per_10k_predictions"]
        rows.append(
            (
                "detection",
                f"monitor, `baseline` ({m['baseline']['baseline_rows']:,} rows): "
                "false alarms per 10,000 predictions",
                ", ".join(f"{k} {v:.2f}" for k, v in fa.items()),
                "",
                cmd,
            )
        )
        for s in d["error_stream_detector"]["streams"]:
            parts = []
            for method in ("adwin", "page_hinkley"):
                a = s[method]
                delay = a["median_delay_rows"]
                parts.append(
                    f"{method}: {'n/a' if delay is None else f'{delay:.0f}'} rows, "
                    f"missed {a['missed']}/{s['runs']}, "
                    f"{a['false_alarms_per_10k_predictions']:.2f} FA/10k"
                )
            rows.append(
                (
                    "detection",
                    f"ErrorStreamDetector, river {s['stream']} (error "
                    f"{s['error_rate_before']:.2f}->{s['error_rate_after_2000']:.2f}): "
                    "median delay, missed, false alarms",
                    "; ".join(parts),
                    "",
                    cmd,
                )
            )
    d = _load("loop")
    if d:
        cmd = ".venv/bin/python -m bench.loop"
        demo = d.get("demo")
        if demo:
            rows.append(
                (
                    "loop",
                    "`modelwatch demo`: drift onset to new version served",
                    f"{demo['drift_onset_to_new_version_served_seconds']} s",
                    "",
                    cmd,
                )
            )
        for w in d["window_cost"]:
            rows.append(
                (
                    "loop",
                    f"monitor `evaluate` on a {w['window_rows']:,}-row window (cold, warm)",
                    f"{w['cold_seconds']:.2f} s, {w['warm_seconds']:.2f} s",
                    "",
                    cmd,
                )
            )
    rows += (
        _replica_rows(_load("replicas"))
        + _window_rows(_load("window_query"))
        + _flood_rows(_load("feedback_flood"))
    )
    d = _load("soak")
    if d:
        g = d["growth"]
        first, last = d["samples"][0], d["samples"][-1]
        rows.append(
            (
                "soak",
                f"{d['minutes']:g} min at {d['rate_requests_per_second']:g} req/s: "
                "worker RSS (2 workers)",
                f"{first['workers_rss_mib']:.0f} -> {last['workers_rss_mib']:.0f} MiB "
                f"({g['workers_rss_mib_per_min_second_half']:+.2f} MiB/min, 2nd half)",
                "",
                ".venv/bin/python -m bench.soak",
            )
        )
        rows.append(
            (
                "soak",
                "prometheus multiprocess dir",
                f"{first['prometheus_files']} -> "
                f"{last['prometheus_files']} files, {first['prometheus_mib']:.2f} -> "
                f"{last['prometheus_mib']:.2f} MiB",
                "",
                ".venv/bin/python -m bench.soak",
            )
        )
        rows.append(
            (
                "soak",
                "prediction log (SQLite) size; errors",
                f"{first['prediction_log_mib']:.0f} -> {last['prediction_log_mib']:.0f} MiB "
                f"({d['requests']:,} requests); {d['errors']} errors",
                "",
                ".venv/bin/python -m bench.soak",
            )
        )
    return rows


def _replica_rows(d: dict | None) -> list[tuple]:
    if not d:
        return []
    cmd, out = ".venv/bin/python -m bench.replicas", []
    for rows in sorted({e["rows_per_request"] for e in d["results"]}):
        es = [e for e in d["results"] if e["rows_per_request"] == rows]
        n = "/".join(str(e["instances"]) for e in es)
        out.append(
            (
                "replicas",
                f"{rows} row(s)/request, {n} instances on one PostgreSQL: "
                "predictions/s (vs 1); serving, store CPU ms a prediction; store share",
                "; ".join(
                    f"{e['predictions_per_second']:.0f} ({_x(e.get('throughput_vs_1'))}), "
                    f"{e['serving_cpu_ms_per_prediction']:.3f}, "
                    f"{e['store_cpu_ms_per_prediction']:.3f}, "
                    f"{100 * e['store_share']:.0f}%"
                    for e in es
                ),
                "",
                cmd,
            )
        )
    out.append(
        (
            "replicas",
            "predictions answered / stored (lost)",
            f"{d['answered_predictions']:,} / {d['stored_predictions']:,} "
            f"({d['lost_predictions']})",
            "0 lost",
            cmd,
        )
    )
    return out


def _window_rows(d: dict | None) -> list[tuple]:
    if not d:
        return []
    cmd, out = ".venv/bin/python -m bench.window_query", []
    for size in d["results"]:
        old = {(r["read"], r["model"], r["limit"]): r for r in size["old"] if r["query"] == "old"}
        for r in size["new"]:
            before = old[(r["read"], r["model"], r["limit"])]
            out.append(
                (
                    "window_query",
                    f"{size['predictions'] / 1e6:.1f}M rows, {r['read']} "
                    f"({r['model']}, {r['limit']:,} rows): old / new time, buffers",
                    f"{before['seconds'] / r['seconds']:.1f}x ({1000 * before['seconds']:.0f}"
                    f" vs {1000 * r['seconds']:.0f} ms), "
                    f"{before['shared_buffers'] / r['shared_buffers']:.1f}x",
                    "",
                    cmd,
                )
            )
    return out


def _flood_rows(d: dict | None) -> list[tuple]:
    if not d:
        return []
    r, cmd = d["result"], ".venv/bin/python -m bench.feedback_flood"
    return [
        (
            "feedback_flood",
            f"/predict p50 with {d['flooders']} clients sending unknown-id "
            f"/feedback, one each every {d['seconds_between_paced_requests']:g} s / none",
            f"{r['paced_vs_quiet_p50']:.2f}x ({r['paced_p50_ms']:.1f} vs "
            f"{r['quiet_p50_ms']:.1f} ms)",
            "<= 1.5x",
            cmd,
        ),
        (
            "feedback_flood",
            f"/predict p50 with {d['flooders']} clients sending unknown-id "
            "/feedback back to back / none",
            f"{r['closed_vs_quiet_p50']:.2f}x "
            f"({r['closed_p50_ms']:.1f} vs {r['quiet_p50_ms']:.1f} ms)",
            "",
            cmd,
        ),
    ]


def markdown_table() -> str:
    lines = [
        "| benchmark | measure | result | target | reproduce |",
        "| --- | --- | --- | --- | --- |",
    ]
    for b, m, r, t, c in table_rows():
        lines.append(f"| {b} | {m} | {r} | {t} | `{c}` |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--only", default="", help="comma-separated benchmark names")
    parser.add_argument("--with-soak", action="store_true")
    parser.add_argument("--wait-idle", action="store_true")
    parser.add_argument("--table", action="store_true", help="print the table and stop")
    args = parser.parse_args(argv)
    if not args.table:
        names = [n for n in args.only.split(",") if n] or list(BENCHMARKS)
        if args.with_soak and "soak" not in names:
            names.append("soak")
        failed = []
        deadline = time.monotonic() + 1200  # the waits' budget, all benchmarks together
        for name in names:
            if args.wait_idle:
                wait_idle(deadline)
            print(f"== bench.{name} (load average {os.getloadavg()[0]:.2f})", flush=True)
            cmd = [sys.executable, "-m", f"bench.{name}"] + (
                QUICK_ARGS.get(name, []) if args.quick else []
            )
            code = subprocess.run(cmd, cwd=ROOT).returncode
            if code:
                failed.append(f"{name} (exit {code})")
        if failed:
            print("failed: " + ", ".join(failed))
    print()
    print(markdown_table())
    return 0 if args.table or not failed else 1


if __name__ == "__main__":
    sys.exit(main())
