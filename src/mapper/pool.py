"""A small bounded connection pool, for drivers that come without one (aiosqlite).

Connections are opened on demand up to `size`; `acquire` waits at most `timeout` seconds
and then raises `TimeoutError` (the database turns it into `PoolTimeout`); a connection given
back with `discard=True` is closed instead of reused. Drivers with a pool of their own
(asyncpg) use theirs.

Called by `dialects/sqlite.py`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

__all__ = ["SimplePool"]

C = TypeVar("C")


class SimplePool(Generic[C]):
    """At most `size` connections made by `opener`, closed by `closer`."""

    def __init__(
        self,
        opener: Callable[[], Awaitable[C]],
        closer: Callable[[C], Awaitable[None]],
        size: int,
    ) -> None:
        self._opener = opener
        self._closer = closer
        self.size = size
        self._idle: list[C] = []
        self._slots = asyncio.Semaphore(size)
        self._in_use = 0
        self._closed = False

    @property
    def in_use(self) -> int:
        return self._in_use

    async def acquire(self, timeout: float) -> C:
        if self._closed:
            raise RuntimeError("the pool is closed")
        await asyncio.wait_for(self._slots.acquire(), timeout)
        try:
            connection = self._idle.pop() if self._idle else await self._opener()
        except BaseException:
            self._slots.release()
            raise
        self._in_use += 1
        return connection

    async def release(self, connection: C, *, discard: bool = False) -> None:
        self._in_use -= 1
        try:
            if discard or self._closed:
                await self._closer(connection)
            else:
                self._idle.append(connection)
        finally:
            self._slots.release()

    async def close(self) -> None:
        self._closed = True
        idle, self._idle = self._idle, []
        for connection in idle:
            await self._closer(connection)
