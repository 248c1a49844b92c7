"""Prediction ids: time-ordered UUIDs (version 7, RFC 9562).

The prediction log's primary key is the id. Random (version 4) ids land anywhere in that
B-tree, so every insert touches a cold page: in bench/ that made SQLite's insert cost
about 4x the CPU (and 10x the wall time) of ids that grow with time, where inserts
append at the right edge. A version 7 UUID is a 48-bit Unix-millisecond timestamp, then
74 random bits: still unguessable, still a UUID to every client.

>>> a, b = new_ids(2)
>>> len(a), a[14], a[19] in "89ab"
(36, '7', True)
"""

from __future__ import annotations

import os
import time


def new_ids(n: int) -> list[str]:
    """`n` UUIDv7 strings (one urandom call for all of them)."""
    if n <= 0:
        return []
    ms = (time.time_ns() // 1_000_000) & 0xFFFF_FFFF_FFFF
    raw = os.urandom(10 * n)
    head = ms << 80 | 0x7 << 76
    out = []
    for i in range(0, 10 * n, 10):
        r = int.from_bytes(raw[i : i + 10], "big")  # 80 random bits, 74 of them used
        value = head | (r >> 68) << 64 | 0b10 << 62 | (r & 0x3FFF_FFFF_FFFF_FFFF)
        h = f"{value:032x}"
        out.append(f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}")
    return out
