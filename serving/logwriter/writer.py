"""The prediction-log writer: a queue and one thread per process, off the request path.

Requests `submit()` a `LogBatch` (no I/O, no serialisation on the request thread). The
thread turns batches into rows and writes them to the store in one transaction per
drained group. While the store is down, rows go to a JSON-lines spill file
(`{spill_dir}/{host}-{pid}-0.jsonl`); they are replayed (idempotently) as soon as the store
answers again, and spill files left by dead processes of this host are claimed and
replayed too. `close()` drains everything (gunicorn's worker_exit calls it on SIGTERM).
With a retention set, the same thread deletes expired rows every `prune_interval`
seconds, one bounded chunk at a time between writes.
"""

from __future__ import annotations

import atexit
import json
import logging
import os
import queue
import socket
import threading
import time
import uuid
from pathlib import Path

from modelwatch.serving.logwriter.batch import LogBatch

from modelwatch.log.schema import full_row
from modelwatch.log.store import Store

log = logging.getLogger(__name__)

# Seconds between chunks while expired rows are left: other workers' writes (and our
# own queue) get the SQLite write lock in between.
PRUNE_BACKLOG_PAUSE = 0.5


# Rows per spill write (a few tens of KiB).
SPILL_CHUNK = 100


def _append_whole(fd: int, data: bytes) -> None:
    """Append all of `data` and fsync, or leave the file as it was and raise OSError."""
    start = os.lseek(fd, 0, os.SEEK_END)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    except OSError:
        try:
            os.ftruncate(fd, start)
        except OSError:
            pass  # the replay skips a torn line
        raise


class _Flush:
    __slots__ = ("event",)

    def __init__(self) -> None:
        self.event = threading.Event()


_STOP = object()


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class PredictionLog:
    def __init__(
        self,
        store: Store,
        spill_dir: str | os.PathLike,
        batch_size: int = 1000,
        retry_interval: float = 1.0,
        on_outcome=None,
        linger: float = 0.05,
        retention: float = 0.0,
        prune_interval: float = 300.0,
        prune_chunk: int = 5000,
        on_pruned=None,
    ) -> None:
        self.store = store
        # Seconds the writer waits for more batches before a write: one transaction per
        # request (a commit each) costs more than the inserts themselves at small requests.
        self.linger = linger
        self.spill_dir = Path(spill_dir)
        self.batch_size = max(1, batch_size)
        self.retry_interval = retry_interval
        self.on_outcome = on_outcome or (lambda outcome, n: None)
        # Seconds a prediction is kept (0: forever); rows deleted per chunk.
        self.retention = retention
        self.prune_interval = prune_interval
        self.prune_chunk = max(1, prune_chunk)
        self.on_pruned = on_pruned or (lambda table, n: None)
        self._next_prune = 0.0
        self.host = socket.gethostname().replace("-", "_")
        self._q: queue.Queue = queue.Queue()
        self._thread: threading.Thread | None = None
        self._pid: int | None = None
        self._down = False
        self._next_try = 0.0
        self._last_scan = 0.0
        self._closed = False
        self._lock = threading.Lock()
        self._pending = 0  # rows submitted and not yet stored or spilled

    # -- request side ------------------------------------------------------------------
    def start(self) -> PredictionLog:
        with self._lock:
            if self._thread is None or not self._thread.is_alive() or self._pid != os.getpid():
                self._pid = os.getpid()
                self._closed = False
                self._thread = threading.Thread(
                    target=self._run, name="prediction-log", daemon=True
                )
                self._thread.start()
                atexit.register(self.close)
        return self

    def submit(self, batch: LogBatch) -> None:
        if self._closed:
            # After close (process exiting): write through so nothing is lost.
            self._write_rows(batch.rows())
            return
        with self._lock:
            self._pending += len(batch)
        self._q.put(batch)

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until everything submitted so far is stored (or spilled)."""
        if self._thread is None or not self._thread.is_alive():
            return self._pending == 0
        marker = _Flush()
        self._q.put(marker)
        return marker.event.wait(timeout)

    @property
    def store_down(self) -> bool:
        return self._down

    def close(self, timeout: float = 30.0) -> None:
        """Drain the queue into the store (or spill) and stop the thread."""
        if self._closed:
            return
        self._closed = True
        thread = self._thread
        if thread is not None and thread.is_alive() and self._pid == os.getpid():
            self._q.put(_STOP)
            thread.join(timeout)
        # Anything left (no thread, or it did not finish): write it here.
        leftovers = []
        while True:
            try:
                item = self._q.get_nowait()
            except queue.Empty:
                break
            if isinstance(item, LogBatch):
                leftovers.extend(item.rows())
            elif isinstance(item, _Flush):
                item.event.set()
        if leftovers:
            self._write_rows(leftovers)

    # -- writer thread -----------------------------------------------------------------
    def _run(self) -> None:
        while True:
            try:
                item = self._q.get(timeout=self.retry_interval)
            except queue.Empty:
                self._idle()
                continue
            items = [item]
            if isinstance(item, LogBatch):
                # Let a linger's worth of requests queue up, then take them all: waking
                # the thread for each request cost more CPU than writing its rows.
                time.sleep(self.linger)
            size = len(item) if isinstance(item, LogBatch) else 0
            while size < self.batch_size and isinstance(items[-1], LogBatch):
                try:
                    more = self._q.get_nowait()
                except queue.Empty:
                    break
                items.append(more)
                if isinstance(more, LogBatch):
                    size += len(more)
            try:
                self._process(items)
            except Exception:  # never let the writer die: the next batch may succeed
                log.exception("prediction-log writer failed on a batch")
                for item in items:
                    if isinstance(item, _Flush):
                        item.event.set()
            if items[-1] is _STOP:
                return
            self._prune()  # under steady traffic the thread is never idle

    def _process(self, items: list) -> None:
        rows, markers, stop = [], [], False
        for item in items:
            if isinstance(item, LogBatch):
                try:
                    rows.extend(item.rows())
                except Exception:
                    # Validation keeps out what cannot be written; should anything get
                    # past it, its loss is counted (and alerted on), never silent.
                    log.exception("could not serialise a prediction-log batch")
                    self.on_outcome("lost", len(item))
                    with self._lock:
                        self._pending -= len(item)
            elif isinstance(item, _Flush):
                markers.append(item)
            elif item is _STOP:
                stop = True
        if rows:
            self._write_rows(rows)
            with self._lock:
                self._pending -= len(rows)
        if markers or stop:
            self._replay(force=True)
        for marker in markers:
            marker.event.set()

    def _idle(self) -> None:
        now = time.monotonic()
        if self._down and now < self._next_try:
            return
        if now - self._last_scan >= self.retry_interval:
            self._last_scan = now
            self._replay()
        self._prune()

    def _write_rows(self, rows: list) -> None:
        if self._down and time.monotonic() < self._next_try:
            self._spill(rows)
            return
        try:
            now = time.monotonic()
            if self._down or now - self._last_scan >= self.retry_interval:
                self._last_scan = now
                self._replay_files()  # spilled rows first, so that the order mostly holds
            self.store.insert_predictions(rows)
        except Exception as exc:
            self._mark_down(exc)
            self._spill(rows)
            return
        self._mark_up()
        self.on_outcome("stored", len(rows))

    def _mark_down(self, exc: Exception) -> None:
        if not self._down:
            log.warning("prediction store unavailable, spilling to %s: %s", self.spill_dir, exc)
        self._down = True
        self._next_try = time.monotonic() + self.retry_interval

    def _mark_up(self) -> None:
        if self._down:
            log.warning("prediction store is back")
        self._down = False

    # -- retention -----------------------------------------------------------------------
    def _prune(self) -> None:
        """Delete one chunk of expired rows when due; a full chunk makes the next one due
        soon, so a backlog drains without holding the writer (or the lock) for long."""
        if self.retention <= 0 or self._down or time.monotonic() < self._next_prune:
            return
        deleted = 0
        try:
            deleted, feedback = self.store.prune(time.time() - self.retention, self.prune_chunk)
            self.on_pruned("predictions", deleted)
            self.on_pruned("feedback", feedback)
        except Exception as exc:  # the next write finds out whether the store is down
            log.warning("could not prune the prediction log: %s", exc)
        full = deleted >= self.prune_chunk
        self._next_prune = time.monotonic() + (PRUNE_BACKLOG_PAUSE if full else self.prune_interval)

    # -- spill ---------------------------------------------------------------------------
    def _own_file(self) -> Path:
        return self.spill_dir / f"{self.host}-{os.getpid()}-0.jsonl"

    def _spill(self, rows: list) -> None:
        kept = 0
        try:
            self.spill_dir.mkdir(parents=True, exist_ok=True)
            fd = os.open(self._own_file(), os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            try:
                # In chunks: on a filling disk what fits is kept, and a chunk that does not
                # fit is cut off whole, so no torn line is left for the replay.
                for start in range(0, len(rows), SPILL_CHUNK):
                    chunk = rows[start : start + SPILL_CHUNK]
                    _append_whole(
                        fd,
                        "".join(
                            json.dumps(row, separators=(",", ":")) + "\n" for row in chunk
                        ).encode(),
                    )
                    kept += len(chunk)
            finally:
                os.close(fd)
        except OSError:
            # Store down and the disk refuses too: nothing more can be done; say so.
            log.exception(
                "could not spill %d prediction-log records to %s", len(rows) - kept, self.spill_dir
            )
            self.on_outcome("lost", len(rows) - kept)
        if kept:
            self.on_outcome("spilled", kept)

    def _spill_files(self) -> list[Path]:
        """Files this process may replay: its own, and those of dead local processes
        (claimed by renaming them to this pid first)."""
        if not self.spill_dir.is_dir():
            return []
        mine, pid = [], os.getpid()
        for path in sorted(self.spill_dir.glob(f"{self.host}-*.jsonl")):
            try:
                owner = int(path.name[len(self.host) + 1 :].split("-", 1)[0])
            except ValueError:
                continue
            if owner == pid:
                mine.append(path)
            elif not _pid_alive(owner):
                claimed = self.spill_dir / f"{self.host}-{pid}-{uuid.uuid4().hex[:8]}.jsonl"
                try:
                    os.rename(path, claimed)
                except FileNotFoundError:
                    continue  # another process claimed it
                mine.append(claimed)
        return mine

    def _replay(self, force: bool = False) -> None:
        """Replay spill files now (or, while the store is down, once retry time has come)."""
        if self._down and not force and time.monotonic() < self._next_try:
            return
        try:
            replayed = self._replay_files()
            if self._down and not replayed and not self.store.ping():
                raise RuntimeError("store does not answer")
        except Exception as exc:
            self._mark_down(exc)
            return
        self._mark_up()

    def _replay_files(self) -> int:
        """Insert every row of the files this process may replay; raise if the store fails."""
        total = 0
        for path in self._spill_files():
            rows = []
            with open(path, encoding="utf-8") as fh:
                for line in fh:
                    try:
                        rows.append(full_row(json.loads(line)))
                    except ValueError:
                        continue  # a torn last line of a killed process
            for start in range(0, len(rows), 5000):
                self.store.insert_predictions(rows[start : start + 5000])
            path.unlink()
            total += len(rows)
            self.on_outcome("replayed", len(rows))
        return total
