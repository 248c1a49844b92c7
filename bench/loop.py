"""The closed loop's speed: drift onset to the new version served, and the monitor's cost.

Run: ``.venv/bin/python -m bench.loop`` (``--skip-demo``: only the window cost).

1. ``modelwatch demo`` on a fresh ``MODELWATCH_HOME`` with free ports for all six
   components; its timeline says "serving hot-reloaded the new version, no restart (Ns
   after drift onset)": that N, and the other steps' times after onset. Then
   ``modelwatch down`` with the same environment.
2. The monitor's cost per window: ``modelwatch.monitoring.window.evaluate`` on a 50,000-row
   window (and on the default 2,000) of scored, labelled covariate traffic, with a real
   trained model's calculators (fitted on its reference directly, as bench/detection.py
   does). Cold: fresh calculators, so the error-stream detector takes all the window's
   labels; warm: the same window again (labels already seen, as in the monitor's next
   run). Best of 3.

Results go to ``bench/results/loop.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.common import RESULTS, ROOT, VENV_BIN, environment, write_results
from tests.services import free_port

OUTPUT = RESULTS / "loop.json"
COMPONENTS = ("MLFLOW", "SERVING", "MONITOR", "PROMETHEUS", "ALERTMANAGER", "PUSHGATEWAY")
ONSET = re.compile(r"^(?:.*?\]\s*)?(.*?)\s*\((\d+(?:\.\d+)?)s after drift onset\)")


def parse_timeline(text: str) -> tuple[list[dict], float | None]:
    """The demo's "(Ns after drift onset)" steps, once each (it repeats its timeline at
    the end), and the N of "serving hot-reloaded the new version"."""
    steps, seen, served = [], set(), None
    for line in text.splitlines():
        m = ONSET.search(line.strip())
        if not m:
            continue
        step = re.sub(r"^\d+(?:\.\d+)?s\s+", "", m.group(1).strip(" -:"))
        if step in seen:
            continue
        seen.add(step)
        steps.append({"step": step, "seconds_after_onset": float(m.group(2))})
        if "hot-reloaded the new version" in step:
            served = float(m.group(2))
    return steps, served


def run_demo(timeout: float = 1500) -> dict:
    home = Path(tempfile.mkdtemp(prefix="modelwatch-bench-loop-"))
    env = {**os.environ, "MODELWATCH_HOME": str(home)}
    for name in COMPONENTS:
        env[f"MODELWATCH_{name}_PORT"] = str(free_port())
    log = home / "demo.out"
    started = time.monotonic()
    code = None
    try:
        with open(log, "wb") as out:
            proc = subprocess.Popen(
                [str(VENV_BIN / "modelwatch"), "demo"],
                cwd=ROOT,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
            try:
                code = proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.terminate()
                code = proc.wait(60)
    finally:
        down = subprocess.run(
            [str(VENV_BIN / "modelwatch"), "down"],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
    text = log.read_text(errors="replace")
    steps, served = parse_timeline(text)
    return {
        "exit_code": code,
        "down_exit_code": down.returncode,
        "demo_seconds": time.monotonic() - started,
        "home": str(home),
        "drift_onset_to_new_version_served_seconds": served,
        "timeline": steps,
        "ports": {name: int(env[f"MODELWATCH_{name}_PORT"]) for name in COMPONENTS},
        "log_tail": text.splitlines()[-15:],
    }


def window_cost(rows_list=(2_000, 50_000), repeats: int = 3) -> list[dict]:
    from modelwatch.monitoring.window import evaluate

    from bench.detection import scored_stream, trained_monitor

    trained = trained_monitor()
    out = []
    for rows in rows_list:
        stream = scored_stream(
            trained.model, "covariate", seed=11, pre=rows // 2, post=rows - rows // 2
        )
        cold, warm = float("inf"), float("inf")
        for _ in range(repeats):
            calculators = trained.calculators()
            t0 = time.perf_counter()
            evaluate("1", calculators, trained.reference, stream)
            cold = min(cold, time.perf_counter() - t0)
            t0 = time.perf_counter()
            evaluate("1", calculators, trained.reference, stream)
            warm = min(warm, time.perf_counter() - t0)
        out.append(
            {
                "window_rows": rows,
                "cold_seconds": cold,
                "warm_seconds": warm,
                "cold_us_per_row": 1e6 * cold / rows,
                "warm_us_per_row": 1e6 * warm / rows,
            }
        )
        print(f"  evaluate on {rows:,} rows: cold {cold:.3f}s, warm {warm:.3f}s", flush=True)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--skip-demo", action="store_true")
    parser.add_argument("--output", type=Path, default=OUTPUT)
    args = parser.parse_args(argv)
    doc = {
        "benchmark": "loop: drift onset to new version served; monitor cost per window",
        **environment(),
        "command": ".venv/bin/python -m bench.loop",
    }
    print("the monitor's cost per window", flush=True)
    doc["window_cost"] = window_cost()
    if not args.skip_demo:
        print("modelwatch demo (about 6 minutes)", flush=True)
        doc["demo"] = run_demo()
        for step in doc["demo"]["timeline"]:
            print(f"  {step['seconds_after_onset']:>6.0f}s  {step['step']}")
        print(
            f"  drift onset -> new version served: "
            f"{doc['demo']['drift_onset_to_new_version_served_seconds']} s "
            f"(demo exit {doc['demo']['exit_code']})",
            flush=True,
        )
    elif args.output.exists():  # keep the last demo's numbers
        previous = json.loads(args.output.read_text())
        if "demo" in previous:
            doc["demo"] = previous["demo"]
            doc["demo_from"] = previous.get("timestamp")
    write_results(args.output, doc)
    ok = args.skip_demo or doc["demo"]["drift_onset_to_new_version_served_seconds"] is not None
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
