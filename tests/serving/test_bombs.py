"""Bodies that are small on the wire and huge decoded, against a real gunicorn worker:
refused by their row count (Parquet's footer, CSV's lines) or decoded size before they
are decoded, fast, and without the worker's memory growing."""

from __future__ import annotations

import io
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import requests

from tests.serving.conftest import gunicorn
from tests.serving.modelkit import as_frame, feature_rows

PARQUET = "application/vnd.apache.parquet"
MAX_ROWS = 10_000  # the default


def parquet_bytes(table: pa.Table) -> bytes:
    out = io.BytesIO()
    pq.write_table(table, out, compression="zstd")
    return out.getvalue()


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError(f"no VmRSS for {pid}")


def the_worker(master: int) -> int:
    (pid,) = Path(f"/proc/{master}/task/{master}/children").read_text().split()
    return int(pid)


@pytest.fixture(scope="module")
def server(registered, tmp_path_factory):
    env = {"MLFLOW_TRACKING_URI": registered.url, "MODELWATCH_MODEL_NAME": registered.name}
    with gunicorn(
        tmp_path_factory.mktemp("bombs"), env, workers=1, ready_version=registered.versions[0]
    ) as srv:
        # Warm up: the first Parquet and CSV bodies load pyarrow's and pandas' readers.
        frame = as_frame(feature_rows(20))
        for body, kind in ((frame.to_parquet(), PARQUET), (frame.to_csv(index=False), "text/csv")):
            r = requests.post(
                f"{srv.url}/invocations", data=body, timeout=60, headers={"Content-Type": kind}
            )
            assert r.status_code == 200, r.text
        yield srv


BOMBS = {
    # ~90 KB: 20M rows of zeros, as issue 23 found it (decoded whole: 3.5 s, +375 MB)
    "parquet rows": (
        lambda: parquet_bytes(pa.table({"age": np.zeros(20_000_000)})),
        PARQUET,
        400,
        "20000000 rows is more than the limit of 10000",
    ),
    # ~500 bytes: 10,000 rows of one 1 MB string, 10 GB decoded
    "parquet text": (
        lambda: parquet_bytes(
            pa.table(
                {
                    "region": pa.DictionaryArray.from_arrays(
                        np.zeros(MAX_ROWS, dtype="int32"), ["n" * 1_000_000]
                    )
                }
            )
        ),
        PARQUET,
        413,
        "the parquet body decodes to",
    ),
    # ~10 MB, under the body limit: 5M one-value rows
    "csv rows": (
        lambda: b"age\n" + b"0\n" * 5_000_000,
        "text/csv",
        400,
        "5000000 rows is more than the limit of 10000",
    ),
}


@pytest.mark.parametrize("name", list(BOMBS))
def test_a_body_that_decodes_huge_is_refused_before_it_is_decoded(server, name):
    make, kind, status, message = BOMBS[name]
    body = make()
    worker = the_worker(server.proc.pid)
    before = rss_kib(worker)
    t0 = time.monotonic()
    r = requests.post(
        f"{server.url}/invocations", data=body, timeout=60, headers={"Content-Type": kind}
    )
    seconds = time.monotonic() - t0
    assert r.status_code == status and message in r.json()["message"], r.text[:300]
    grown = rss_kib(worker) - before
    assert grown < 8 * 1024 + len(body) // 1024, f"the worker grew by {grown} KiB"
    assert seconds < 2.0, seconds  # decoded whole, the 20M rows took 3.5 s
    assert the_worker(server.proc.pid) == worker  # no worker was lost on it either
