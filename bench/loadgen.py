"""A small closed-loop HTTP load generator: keep-alive connections, one per thread.

    python -m bench.loadgen URL[,URL...] BODY_FILE --threads 8 --seconds 6 [--warmup 1]

Each thread holds one persistent HTTP/1.1 connection (``http.client``) and POSTs the
same JSON body again and again for ``--seconds`` after ``--warmup`` seconds of
unmeasured requests; with several URLs the threads take them in turn. Prints one JSON
object: requests, errors, requests per second and per-request latency percentiles in
milliseconds, as the client saw them. It runs as its
own process, so that its GIL is not the servers' and not the orchestrator's.
"""

from __future__ import annotations

import argparse
import http.client
import json
import sys
import threading
import time
from urllib.parse import urlsplit


def run(url: str, body: bytes, threads: int, seconds: float, warmup: float) -> dict:
    """`url` may be several, comma-separated: thread i sends to the (i mod n)-th."""
    targets = [urlsplit(u) for u in url.split(",")]
    headers = {"Content-Type": "application/json", "Connection": "keep-alive"}
    t_start = time.perf_counter() + warmup
    t_end = t_start + seconds
    per_thread: list[list[float]] = [[] for _ in range(threads)]
    errors = [0] * threads
    made = [0] * threads
    answered = [0] * threads  # 200s, warm-up included: what the servers had to log
    barrier = threading.Barrier(threads)

    def client(i: int) -> None:
        parts = targets[i % len(targets)]
        host, port, path = parts.hostname, parts.port or 80, parts.path or "/"
        conn = http.client.HTTPConnection(host, port, timeout=60)
        lat = per_thread[i]
        barrier.wait()
        while True:
            t0 = time.perf_counter()
            if t0 >= t_end:
                break
            try:
                conn.request("POST", path, body=body, headers=headers)
                resp = conn.getresponse()
                resp.read()
                ok = resp.status == 200
            except (OSError, http.client.HTTPException):
                ok = False
                conn.close()
                conn = http.client.HTTPConnection(host, port, timeout=60)
            t1 = time.perf_counter()
            made[i] += 1
            answered[i] += ok
            if t0 >= t_start and t1 <= t_end:
                if ok:
                    lat.append((t1 - t0) * 1000.0)
                else:
                    errors[i] += 1
        conn.close()

    workers = [threading.Thread(target=client, args=(i,)) for i in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    latencies = sorted(x for lat in per_thread for x in lat)

    def pct(p: float) -> float | None:
        if not latencies:
            return None
        return latencies[min(len(latencies) - 1, int(round(p / 100 * (len(latencies) - 1))))]

    by_target = [
        sum(answered[i] for i in range(threads) if i % len(targets) == t)
        for t in range(len(targets))
    ]
    return {
        "requests": len(latencies),
        "all_requests": sum(made),
        "all_ok": sum(answered),
        "all_ok_by_url": by_target,
        "errors": sum(errors),
        "threads": threads,
        "seconds": seconds,
        "requests_per_second": len(latencies) / seconds,
        "p50_ms": pct(50),
        "p99_ms": pct(99),
        "latencies_ms": latencies,
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("url")
    p.add_argument("body_file")
    p.add_argument("--threads", type=int, default=8)
    p.add_argument("--seconds", type=float, default=6.0)
    p.add_argument("--warmup", type=float, default=1.0)
    p.add_argument("--summary", action="store_true", help="leave the raw latencies out")
    args = p.parse_args(argv)
    with open(args.body_file, "rb") as fh:
        body = fh.read()
    out = run(args.url, body, args.threads, args.seconds, args.warmup)
    if args.summary:
        out.pop("latencies_ms")
    json.dump(out, sys.stdout)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
