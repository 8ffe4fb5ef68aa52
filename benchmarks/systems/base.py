"""What a benchmarked system is: one class per library, one method per scenario operation.

A method does its untimed setup (loading what a "loaded entities" scenario starts from),
calls `watch.start()`, does the measured work the way that library is best used, and calls
`watch.stop()`. An operation a system cannot do is listed in `unsupported` with the reason,
and the report shows "n/a" with it. Stdlib only. Subclassed by every module in `systems/`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import ClassVar

from benchmarks.backends import Backend
from benchmarks.timing import Stopwatch

__all__ = ["System", "check"]


def check(actual: int, expected: int, what: str) -> None:
    """Refuse a run that did not do the work (a bug in a system would flatter it)."""
    if actual != expected:
        raise RuntimeError(f"expected {expected} {what}, got {actual}")


class System(ABC):
    """One library (or hand-written layer) talking to one backend."""

    name: ClassVar[str]
    """Short key, e.g. "mapper", used in JSON and the chart."""
    label: ClassVar[str]
    """Column heading in the report."""
    note: ClassVar[str] = ""
    """How it does the work, for the report's notes."""
    floor: ClassVar[bool] = False
    """The hand-written layer: the ratios' denominator."""
    unsupported: ClassVar[dict[str, str]] = {}
    """Operation -> why this system cannot do it."""
    counting: ClassVar[str] = "driver"
    """How its statements are counted: "hook", "event", "driver" or "" (not counted)."""

    def __init__(self, backend: Backend) -> None:
        self.backend = backend

    @abstractmethod
    async def open(self) -> None:
        """Connect (pools, engines, ORM init); untimed."""

    @abstractmethod
    async def close(self) -> None: ...

    def versions_apart(self) -> dict[str, str]:
        """Package versions of the process the system runs in, when not this one."""
        return {}

    @property
    @abstractmethod
    def statements(self) -> Callable[[], int]:
        """A running count of the data statements this system sent."""

    async def insert(self, watch: Stopwatch, n: int) -> None:
        raise NotImplementedError

    async def load(self, watch: Stopwatch, n: int) -> None:
        raise NotImplementedError

    async def load_with_role(self, watch: Stopwatch, n: int) -> None:
        raise NotImplementedError

    async def update(self, watch: Stopwatch, loaded: int, changed: int) -> None:
        raise NotImplementedError

    async def update_shown(self, watch: Stopwatch, loaded: int, changed: int) -> None:
        """9c: the loaded rows are only shown, a few then changed. A system with no read-only
        load does what it does in 4 and 9a."""
        await self.update(watch, loaded, changed)

    async def flush_shown(self, watch: Stopwatch, loaded: int, changed: int) -> None:
        """9d: as 9c with only the flush timed. A system with no read-only load does what
        it does in 9a."""
        await self.update(watch, loaded, changed)

    async def delete(self, watch: Stopwatch, n: int) -> None:
        raise NotImplementedError

    async def mixed(self, watch: Stopwatch, load: int, change: int, remove: int, add: int) -> None:
        raise NotImplementedError

    async def stream(self, watch: Stopwatch, n: int) -> None:
        raise NotImplementedError
