"""Timing a run: the stopwatch a system starts and stops around its timed region.

A system's scenario method does its setup, calls `watch.start()`, does the measured work,
then `watch.stop()`. The stopwatch also reads the system's statement counter at both ends,
and in a memory run the tracemalloc peak between them. Stdlib only (shared with the DotORM
runner). Called by `runner.py`; used by every system in `systems/`.
"""

from __future__ import annotations

import statistics
import time
import tracemalloc
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["Figures", "Stopwatch", "summarize"]


class Stopwatch:
    """Times one region of one run, with the statements issued and (optionally) peak memory."""

    def __init__(self, count: Callable[[], int], trace_memory: bool = False) -> None:
        self._count = count
        self._trace_memory = trace_memory
        self._started: float | None = None
        self._queries_at_start = 0
        self._memory_at_start = 0
        self.seconds: float | None = None
        self.queries: int | None = None
        self.peak_bytes: int | None = None

    @property
    def trace_memory(self) -> bool:
        """Whether this run measures peak memory too."""
        return self._trace_memory

    def record(self, seconds: float, queries: int | None, peak_bytes: int | None) -> None:
        """The figures of a run timed elsewhere: by a stopwatch in another process."""
        self.seconds, self.queries, self.peak_bytes = seconds, queries, peak_bytes

    def start(self) -> None:
        if self._started is not None:
            raise RuntimeError("the stopwatch is already running")
        self._queries_at_start = self._count()
        if self._trace_memory:
            tracemalloc.reset_peak()
            self._memory_at_start = tracemalloc.get_traced_memory()[0]
        self._started = time.perf_counter()

    def stop(self) -> None:
        stopped = time.perf_counter()
        if self._started is None:
            raise RuntimeError("the stopwatch was never started")
        self.seconds = stopped - self._started
        if self._trace_memory:
            self.peak_bytes = tracemalloc.get_traced_memory()[1] - self._memory_at_start
        self.queries = self._count() - self._queries_at_start


@dataclass
class Figures:
    """What one system did in one scenario over all its measured runs."""

    times: list[float]
    queries: int | None
    peak_bytes: int | None = None

    def as_dict(self) -> dict[str, object]:
        median, low, high, q1, q3 = summarize(self.times)
        return {
            "times": self.times,
            "median": median,
            "min": low,
            "max": high,
            "q1": q1,
            "q3": q3,
            "queries": self.queries,
            "peak_bytes": self.peak_bytes,
        }


def summarize(times: list[float]) -> tuple[float, float, float, float, float]:
    """(median, min, max, first quartile, third quartile) of the run times."""
    if len(times) >= 2:
        q1, _, q3 = statistics.quantiles(times, n=4, method="inclusive")
    else:
        q1 = q3 = times[0]
    return statistics.median(times), min(times), max(times), q1, q3
