"""Client-generated keys: `uuid7()`, time-ordered UUIDs (RFC 9562) for `Column(default=...)`.

A key made by the client is known before the flush, so inserts need not read keys back and a
retried unit of work cannot insert the same row twice under two keys. Version 7 UUIDs start
with a millisecond timestamp, so new keys sort (and index) in creation order. Python 3.11 has
no `uuid.uuid7`; this is a small implementation of the RFC's layout. Pure.
"""

from __future__ import annotations

import os
import threading
import time
import uuid

__all__ = ["uuid7"]

_lock = threading.Lock()
_last = [0, 0]  # last millisecond timestamp and counter, for monotonic keys within one ms


def uuid7() -> uuid.UUID:
    """A new version-7 UUID, increasing within this process."""
    with _lock:
        now = time.time_ns() // 1_000_000
        if now <= _last[0]:
            now = _last[0]
            _last[1] += 1
            counter = _last[1]
        else:
            counter = int.from_bytes(os.urandom(2), "big") & 0x0FFF
            _last[0], _last[1] = now, counter
        if counter > 0x0FFF:  # 4096 keys in one millisecond: borrow the next millisecond
            now += 1
            counter = 0
            _last[0], _last[1] = now, counter
    value = (now & 0xFFFF_FFFF_FFFF) << 80
    value |= 0x7 << 76
    value |= counter << 64
    value |= 0b10 << 62
    value |= int.from_bytes(os.urandom(8), "big") & 0x3FFF_FFFF_FFFF_FFFF
    return uuid.UUID(int=value)
