"""Pausing Python's cycle collector around the unit of work's bulk passes.

A flush or load of many rows allocates several container objects per row (entities, records,
snapshot tuples) in one synchronous pass. CPython (3.11) starts a young collection every 700
such allocations and, once enough objects have survived, a full one that walks every tracked
object in the process: during a 100,000-row flush that was about 40% of mapper's own time,
and what made its cost grow faster than the row count. `collector_paused` turns the collector
off for such a pass and back on after it, then runs one young collection, so what the pass
allocated is looked at once, by the pass, instead of many times during it or by the caller's
next step. Reference counting still frees everything as usual; only cyclic garbage waits,
and only for the length of the pass.

It never spans an `await` (other tasks would run without the collector) and only pauses
passes over at least `BULK_ROWS` rows. It leaves a collector that was already off alone. It
switches the collector back on unconditionally: a thread that turned the collector off
during the pass finds it on again. Called by `uow/unit_of_work.py` and `uow/loading.py`.
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator

__all__ = ["BULK_ROWS", "collector_paused"]

BULK_ROWS = 1000
"""Passes over fewer rows allocate too little for a collection to matter."""


@contextlib.contextmanager
def collector_paused(rows: int) -> Iterator[None]:
    """`with collector_paused(rows):` runs the block with the cycle collector off if `rows`
    reaches `BULK_ROWS` and the collector was on; nested uses leave it to the outermost."""
    if rows < BULK_ROWS or not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()
        # The young objects of the pass, looked at once now: left for the next allocation,
        # they would fall to whatever the caller does next.
        gc.collect(0)
