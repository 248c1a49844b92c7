"""`modelwatch export-log`: the prediction log and its labels to Parquet, by model, version
and hour (the layout and the export are `modelwatch.log.lake`'s).

Exit codes: 0 exported, 1 bad input or a log or destination that failed.
"""

from __future__ import annotations

import argparse
import sys


def add_parser(commands) -> None:
    export = commands.add_parser(
        "export-log",
        help="the prediction log and its labels to Parquet, by model, version and hour",
    )
    export.add_argument(
        "--to", required=True, help="a directory or a URL (s3://, gs://, any fsspec URL)"
    )
    export.add_argument(
        "--since",
        help="ISO time, epoch seconds or an age (24h, 7d); default: the oldest prediction",
    )
    export.add_argument("--until", help="the same; default: now")
    export.add_argument("--store-url", help="the prediction log (MODELWATCH_STORE_URL)")
    export.set_defaults(run=main)


def main(args: argparse.Namespace) -> int:
    # pandas and pyarrow: `modelwatch --help` imports this module for its parser
    from modelwatch.log import StoreError, open_existing  # noqa: PLC0415 (heavy, see above)
    from modelwatch.log.lake import export_log  # noqa: PLC0415 (heavy, see above)

    try:
        summary = export_log(open_existing(args.store_url), args.to, args.since, args.until)
    except (ValueError, OSError, StoreError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(summary_line(summary, args.to))
    return 0


def summary_line(summary, to: str) -> str:
    """What `main` prints of a `modelwatch.log.lake.ExportSummary`."""
    return (
        f"exported {summary.rows} predictions ({summary.labelled} labelled) "
        f"in {summary.files} files to {to}"
    )
