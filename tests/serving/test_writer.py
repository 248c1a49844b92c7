"""The prediction log's writer thread: it spills to disk while the store is down, replays
what it spilled, claims the spill of a dead process and drains its queue on close."""

from __future__ import annotations

import errno
import json
import os
import threading

from modelwatch.serving.logwriter.writer import PredictionLog

from modelwatch.log import open_store
from modelwatch.log.store import StoreError
from tests.serving.modelkit import log_batch


class FlakyStore:
    """A store that is down while `down` is set, recording what it stored."""

    def __init__(self) -> None:
        self.down = threading.Event()
        self.rows: dict[str, tuple] = {}

    def insert_predictions(self, rows):
        if self.down.is_set():
            raise StoreError("connection refused")
        for r in rows:
            self.rows.setdefault(r[0], r)

    def ping(self):
        return not self.down.is_set()


def test_writer_spills_while_the_store_is_down_and_replays_everything(tmp_path):
    store = FlakyStore()
    outcomes: dict[str, int] = {}
    log = PredictionLog(
        store,
        tmp_path / "spill",
        retry_interval=0.1,
        on_outcome=lambda o, n: outcomes.__setitem__(o, outcomes.get(o, 0) + n),
    )
    log.start()
    log.submit(log_batch(5, seed=1))
    assert log.flush(5)
    store.down.set()
    log.submit(log_batch(5, seed=2))
    log.submit(log_batch(5, seed=3))
    assert log.flush(5)
    assert len(store.rows) == 5 and log.store_down
    spilled = list((tmp_path / "spill").glob("*.jsonl"))
    assert sum(len(p.read_text().splitlines()) for p in spilled) == 10
    store.down.clear()
    log.submit(log_batch(5, seed=4))
    assert log.flush(5)
    log.close()
    assert len(store.rows) == 20
    assert not list((tmp_path / "spill").glob("*.jsonl"))
    assert outcomes["spilled"] >= 10 and outcomes["replayed"] == outcomes["spilled"]


def test_spill_left_by_a_dead_process_is_claimed_and_replayed(tmp_path):
    store = FlakyStore()
    writer = PredictionLog(store, tmp_path, retry_interval=0.1)
    dead = tmp_path / f"{writer.host}-999999-0.jsonl"
    rows = log_batch(3, seed=9).rows()
    dead.write_text("".join(json.dumps(r) + "\n" for r in rows) + '["torn')
    writer.start()
    assert writer.flush(5)
    writer.close()
    assert set(store.rows) == {r[0] for r in rows}
    assert not dead.exists()


def test_close_drains_the_queue(tmp_path):
    store = FlakyStore()
    writer = PredictionLog(store, tmp_path, retry_interval=0.1).start()
    for seed in range(20):
        writer.submit(log_batch(10, seed=seed))
    writer.close()
    assert len(store.rows) == 200


def test_a_spill_that_does_not_fit_keeps_what_fits_and_leaves_no_torn_line(tmp_path, monkeypatch):
    """The disk fills in the middle of a spill: whole chunks before it are kept (and
    counted), the rest is counted lost, and the file ends on a whole line."""
    outcomes: dict[str, int] = {}
    log = PredictionLog(
        open_store(f"sqlite:///{tmp_path / 'p.db'}"),
        tmp_path / "spill",
        on_outcome=lambda outcome, n: outcomes.update({outcome: n}),
    )
    room = [60_000]  # bytes left on the "disk"
    real_write = os.write

    def write(fd, data):
        if room[0] <= 0:
            raise OSError(errno.ENOSPC, "No space left on device")
        written = real_write(fd, bytes(data[: room[0]]))
        room[0] -= written
        return written

    monkeypatch.setattr(os, "write", write)
    log._spill(log_batch(500).rows())
    lines = next((tmp_path / "spill").glob("*.jsonl")).read_text().splitlines()
    assert 0 < len(lines) < 500 and len(lines) % 100 == 0
    assert outcomes == {"spilled": len(lines), "lost": 500 - len(lines)}
    assert all(json.loads(line)[0].startswith("id-") for line in lines)
