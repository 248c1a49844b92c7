"""``modelwatch drift REFERENCE CURRENT [--json]``: drift between two files.

REFERENCE is a CSV or Parquet file, or a saved reference profile (a directory holding
``profile.json``, or that file); CURRENT is a CSV or Parquet file. Columns in the
reference but not in CURRENT are reported as skipped. Exit code: 0 no dataset drift, 1
dataset drift, 2 the files could not be read or compared.

>>> import tempfile, pathlib
>>> from modelwatch.training.simulator import generate
>>> d = pathlib.Path(tempfile.mkdtemp())
>>> generate(3000, "baseline", seed=1).to_csv(d / "ref.csv", index=False)
>>> generate(3000, "baseline", seed=2).to_parquet(d / "cur.parquet")
>>> drift_command(d / "ref.csv", d / "cur.parquet", as_json=False)  # doctest: +ELLIPSIS
column ...
No dataset drift: 0 of 12 columns drifted (0%; threshold 50%).
0
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pandas as pd

from modelwatch.monitoring.drift import ReferenceProfile, detect_drift
from modelwatch.monitoring.drift.profile import PROFILE_FILENAME


def read_frame(path: str | Path) -> pd.DataFrame:
    """A CSV or Parquet file as a DataFrame (by extension; .csv.gz and the like work)."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no such file: {path}")
    suffixes = [s.lower() for s in path.suffixes]
    if ".parquet" in suffixes or ".pq" in suffixes:
        return pd.read_parquet(path)
    if ".csv" in suffixes or ".txt" in suffixes or ".tsv" in suffixes:
        return pd.read_csv(path, sep="\t" if ".tsv" in suffixes else ",")
    raise ValueError(f"{path}: expected a .csv or .parquet file")


def read_reference(path: str | Path) -> ReferenceProfile | pd.DataFrame:
    path = Path(path)
    if (path.is_dir() and (path / PROFILE_FILENAME).exists()) or path.suffix.lower() == ".json":
        return ReferenceProfile.load(path)
    return read_frame(path)


def _fmt(x: float | None) -> str:
    if x is None:
        return "-"
    return f"{x:.4g}"


def format_table(result) -> str:
    rows = [("column", "test", "statistic", "p-value", "threshold", "drift")]
    for name, c in result.columns.items():
        d = c.to_dict()
        stat = "inf" if c.statistic == float("inf") else _fmt(d["statistic"])
        rows.append(
            (
                name,
                c.test,
                stat,
                _fmt(d["p_value"]),
                _fmt(c.threshold),
                "DRIFT" if c.drifted else "ok",
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(v.ljust(w) for v, w in zip(r, widths)).rstrip() for r in rows]
    for name, why in result.skipped.items():
        lines.append(f"{name}: skipped ({why})")
    n, k = len(result.columns), len(result.drifted_columns)
    verdict = "Dataset drift" if result.dataset_drift else "No dataset drift"
    lines.append(
        f"{verdict}: {k} of {n} columns drifted ({result.drift_share:.0%}; "
        f"threshold {result.drift_share_threshold:.0%})."
    )
    return "\n".join(lines)


def drift_command(
    reference_path: str | Path, current_path: str | Path, as_json: bool = False
) -> int:
    """Print the drift of CURRENT against REFERENCE; return the exit code (0, 1 or 2)."""
    try:
        reference = read_reference(reference_path)
        current = read_frame(current_path)
        if isinstance(reference, pd.DataFrame):
            # Profile only the columns both files share; the rest is reported skipped.
            reference = ReferenceProfile.from_frame(reference)
        result = detect_drift(reference, current)
    except Exception as exc:  # a CLI reports, it does not dump a traceback
        print(f"modelwatch drift: error: {exc}", file=sys.stderr)
        return 2
    if as_json:
        out = result.to_dict()
        print(json.dumps(out, indent=2, allow_nan=False))
    else:
        print(format_table(result))
    return 1 if result.dataset_drift else 0
