"""Connecting: `connect(url)`, the `Database` handle, and the protocols backends implement.

`Dialect` is the seam to a backend (one per database handle: pool, capabilities, compiler);
`Connection` is one pooled connection lent to a unit of work, taking the operations of
`operations.py`. Backends are loaded by name (`"mapper.dialects.postgres:PostgresDialect"`),
so a driver is imported only when its backend is used.

Called by users (`connect`, `Database`) and by the unit of work (`acquire`/`release`).
"""

from __future__ import annotations

import asyncio
import importlib
import math
import time
from collections.abc import AsyncGenerator, Awaitable, Callable, Sequence
from typing import Any, Protocol, TypeVar

import attrs

from mapper.capabilities import Capabilities
from mapper.errors import ConfigurationError, DatabaseError, MapperError, PoolTimeout
from mapper.events import HookHandle, Phase, StatementHook, StatementHooks
from mapper.mapping import EntityMeta
from mapper.operations import (
    Count,
    DeleteBatch,
    InsertBatch,
    LockRows,
    Select,
    SelectLinked,
    UpdateBatch,
    WriteBatch,
)
from mapper.registry import Registry
from mapper.types import DialectName
from mapper.url import DatabaseURL

__all__ = ["Connection", "ConnectionOptions", "Database", "Dialect", "connect", "refuse_alone"]

T = TypeVar("T")

_DIALECTS = {
    "postgresql": "mapper.dialects.postgres:PostgresDialect",
    "sqlite": "mapper.dialects.sqlite:SqliteDialect",
    "memory": "mapper.dialects.memory:MemoryDialect",
}
_EXTRAS = {"postgresql": "postgres", "sqlite": "sqlite"}


def _count(value: object) -> int:
    """A whole number from a URL string or a keyword (2.7 is refused, not truncated)."""
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise ValueError(f"expected a whole number, got {value!r}")
    return int(value)


def _seconds(value: object) -> float:
    """A finite, non-negative number of seconds."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise ValueError(f"expected seconds, got {value!r}")
    seconds = float(value)
    if not math.isfinite(seconds) or seconds < 0:
        raise ValueError(f"expected a finite, non-negative number of seconds, got {value!r}")
    return seconds


def _flag(value: str | bool) -> bool:
    if isinstance(value, bool):
        return value
    lowered = value.lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ConfigurationError(f"expected a boolean option, got {value!r}")


@attrs.frozen
class ConnectionOptions:
    """Options every backend understands; from the URL's query or `connect()` keywords."""

    pool_min: int = 1
    pool_max: int = 10
    pool_timeout: float = 30.0
    """Seconds to wait for a free pooled connection before `PoolTimeout`."""
    connect_timeout: float = 10.0
    log_parameters: bool = False
    """Attach bound values to statement events and DEBUG logs (off: values may be secret)."""
    extra: dict[str, str] = attrs.field(factory=dict)
    """Backend-specific options (statement_cache_size, busy_timeout, ...)."""

    @classmethod
    def from_url(cls, url: DatabaseURL, overrides: dict[str, Any]) -> ConnectionOptions:
        merged: dict[str, Any] = {**url.options, **overrides}
        known: dict[str, Any] = {}
        try:
            parsers: tuple[tuple[str, Callable[[Any], Any]], ...] = (
                ("pool_min", _count),
                ("pool_max", _count),
                ("pool_timeout", _seconds),
                ("connect_timeout", _seconds),
                ("log_parameters", _flag),
            )
            for name, parse in parsers:
                if name in merged:
                    known[name] = parse(merged.pop(name))
        except ValueError as error:
            raise ConfigurationError(f"bad connection option: {error}") from None
        if known.get("connect_timeout") == 0:
            raise ConfigurationError("connect_timeout must be more than 0 seconds")
        options = cls(**known, extra={k: str(v) for k, v in merged.items()})
        if options.pool_max < 1 or not 0 <= options.pool_min <= options.pool_max:
            raise ConfigurationError(
                f"need 0 <= pool_min <= pool_max and pool_max >= 1, got "
                f"pool_min={options.pool_min}, pool_max={options.pool_max}"
            )
        return options


class Connection(Protocol):
    """One backend connection, lent to one unit of work at a time."""

    async def begin(self) -> None: ...

    async def commit(self) -> None: ...

    async def rollback(self) -> None: ...

    async def can_send_alone(self, op: WriteBatch) -> bool:
        """Whether `op` may be sent as a commit's one statement on this backend and table
        (`Capabilities.single_statement_commits`, and what the backend learns once per
        table before its first write there)."""
        ...

    async def insert(self, op: InsertBatch, alone: bool = False) -> list[tuple[Any, ...]]:
        """Run the batch; return the `returning` values per row, in row order.

        `alone`: as for `update`; a connection lost while it runs, or fewer keys back than
        rows sent (it committed), is `CommitOutcomeUnknown`.
        """
        ...

    async def update(self, op: UpdateBatch, alone: bool = False) -> list[int]:
        """Run the batch; return the indexes of rows that matched nothing (stale).

        `alone`: no transaction is open and this batch is the commit's only write; it runs
        as one statement that is its own transaction, and writes nothing when it returns
        stale rows; a connection lost while it runs is `CommitOutcomeUnknown` (only where
        `can_send_alone` said yes).
        """
        ...

    async def delete(
        self, op: DeleteBatch, after_writes: bool = False, alone: bool = False
    ) -> list[int]:
        """Run the batch; return the indexes of rows that matched nothing (stale).

        `after_writes`: whether the transaction wrote before this batch (see `compile`);
        `alone`: as for `update`.
        """
        ...

    async def lock(self, op: LockRows) -> None:
        """Lock the rows, in the order given, until the transaction ends."""
        ...

    async def select(self, op: Select) -> Sequence[Sequence[Any]]:
        """Rows of Python values in column order: immutable sequences that compare equal
        to the tuple of their values (tuples, or a driver's own row type such as asyncpg's
        `Record`), since the unit of work keeps a loaded row as its snapshot."""
        ...

    def stream(self, op: Select, chunk_size: int) -> AsyncGenerator[Sequence[Sequence[Any]]]:
        """Rows in chunks of at most `chunk_size`, without holding the whole result."""
        ...

    async def select_linked(self, op: SelectLinked) -> list[tuple[Any, Sequence[Any]]]:
        """(owner key, target row) pairs: the many-to-many targets of some owners."""
        ...

    async def count(self, op: Count) -> int: ...

    async def create_tables(self, metas: Sequence[EntityMeta]) -> None:
        """Create the tables that do not exist yet, in the order given."""
        ...

    async def drop_tables(self, metas: Sequence[EntityMeta]) -> None:
        """Drop the tables that exist, in the order given."""
        ...

    async def close(self, *, discard: bool) -> None:
        """Give the connection back to its pool, or throw it away if `discard`.

        It completes even if the caller is cancelled meanwhile: a backend whose release can
        be interrupted at an `await` shields it (its driver's pool may do so already)."""
        ...


def refuse_alone(dialect: str, alone: bool) -> None:
    """Refuse `alone=True` on a backend without `Capabilities.single_statement_commits`."""
    if alone:
        raise MapperError(
            f"{dialect}: a batch cannot run alone here (no single_statement_commits); "
            "the unit of work asks the capabilities first"
        )


class Dialect(Protocol):
    """A backend behind one `Database`: its pool, capabilities and statement compiler."""

    name: DialectName
    capabilities: Capabilities

    async def open(self) -> None: ...

    async def acquire(self, timeout: float) -> Connection:
        """A connection from the pool; raises `TimeoutError` after `timeout` seconds."""
        ...

    def pool_status(self) -> tuple[int, int]:
        """(size, in use) of the pool."""
        ...

    async def close(self) -> None: ...

    def can_send_alone(self, op: WriteBatch) -> bool:
        """`Connection.can_send_alone` as far as known without asking the server (for
        `plan()`): a table not yet checked is taken to be an ordinary one."""
        ...

    def compile(
        self, op: WriteBatch, after_writes: bool = False, alone: bool = False
    ) -> tuple[str, ...]:
        """The statements `op` would run, without running them (for `plan()`).

        `after_writes`: whether the transaction will have written before `op` runs, which
        may change how a backend checks what a delete matched; `alone`: whether `op` runs as
        a commit's only statement (see `Connection.update`).
        """
        ...


def _load_dialect(backend: str) -> type:
    path = _DIALECTS.get(backend)
    if path is None:
        raise ConfigurationError(f"the {backend} backend is not available yet")
    module_name, class_name = path.split(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as error:
        extra = _EXTRAS.get(backend, backend)
        raise ConfigurationError(
            f"the {backend} backend needs its driver: pip install 'mapper[{extra}]' ({error})"
        ) from error
    dialect_class: type = getattr(module, class_name)
    return dialect_class


class Database:
    """A connected database: a pool, its capabilities and the statement hook.

    Open one per application with `await connect(url)`; close it with `await db.close()` or
    `async with db:`. Units of work borrow connections from it.
    """

    def __init__(
        self, dialect: Dialect, url: DatabaseURL, options: ConnectionOptions, hooks: StatementHooks
    ) -> None:
        self._dialect = dialect
        self._url = url
        self._options = options
        self._hooks = hooks
        self._holders: dict[asyncio.Task[Any], int] = {}
        self._holder_of: dict[int, asyncio.Task[Any]] = {}
        self._checked: set[int] = set()
        self._closed = False

    @property
    def url(self) -> DatabaseURL:
        """The URL this database was opened with (its repr hides the password)."""
        return self._url

    @property
    def backend(self) -> DialectName:
        """The backend's name: postgresql, sqlite, memory, ..."""
        return self._dialect.name

    @property
    def capabilities(self) -> Capabilities:
        return self._dialect.capabilities

    @property
    def dialect(self) -> Dialect:
        return self._dialect

    @property
    def options(self) -> ConnectionOptions:
        return self._options

    def on_statement(self, hook: StatementHook, *, when: Phase = "after") -> HookHandle:
        """Call `hook(event)` for every statement, before it runs or after it finished.

        Returns a handle whose `remove()` (or `with` block) unregisters the hook.
        """
        return self._hooks.add(hook, when)

    def check_registry(self, registry: Registry) -> None:
        """Refuse mappings this backend cannot store faithfully (ConfigurationError)."""
        if id(registry) in self._checked and registry.configured:
            return
        problems = []
        for meta in registry.metas():
            for column in meta.columns:
                reason = column.type.unsupported_on(self.backend)
                if reason is not None:
                    problems.append(f"{meta.map_class.__name__}.{column.attribute}: {reason}")
            if meta.generated is not None and not self.capabilities.generated_keys:
                problems.append(
                    f"{meta.map_class.__name__}.{meta.generated.attribute}: {self.backend} "
                    "cannot generate keys; use a client-generated default"
                )
        if problems:
            raise ConfigurationError(
                f"mappings the {self.backend} backend cannot store:\n  " + "\n  ".join(problems)
            )
        self._checked.add(id(registry))

    async def create_all(self, registry: Registry) -> None:
        """Create every mapped table (parents first), with keys, indexes and foreign keys."""
        self.check_registry(registry)
        connection = await self.acquire()
        try:
            await connection.create_tables(registry.table_order())
        finally:
            # A failed DDL statement (autocommit) leaves the connection usable; a dead one is
            # discarded by its own close().
            await self.release(connection)

    async def drop_all(self, registry: Registry) -> None:
        """Drop every mapped table that exists (children first)."""
        connection = await self.acquire()
        try:
            await connection.drop_tables(registry.table_order()[::-1])
        finally:
            await self.release(connection)

    async def acquire(self) -> Connection:
        """Borrow a connection (for the unit of work). Raises `PoolTimeout`."""
        if self._closed:
            raise MapperError(f"{self!r} is closed")
        task = asyncio.current_task()
        size, in_use = self._dialect.pool_status()
        if task is not None and self._holders.get(task) and in_use >= size:
            # Waiting here would wait for ourselves: this task holds the connection it needs.
            raise PoolTimeout(size, in_use, 0.0)
        started = time.monotonic()
        try:
            connection = await self._dialect.acquire(self._options.pool_timeout)
        except TimeoutError:
            size, in_use = self._dialect.pool_status()
            raise PoolTimeout(size, in_use, time.monotonic() - started) from None
        if task is not None:
            self._hold(connection, task)
        return connection

    def hand_over(self, connection: Connection, task: asyncio.Task[Any]) -> None:
        """Count `connection` as held by `task` from now on, not by the task that acquired
        it: a unit of work's commit that outlives its caller's cancellation keeps the
        connection, and the caller may open another unit of work and wait for one."""
        self._forget_holder(connection)
        self._hold(connection, task)

    def _hold(self, connection: Connection, task: asyncio.Task[Any]) -> None:
        self._holders[task] = self._holders.get(task, 0) + 1
        self._holder_of[id(connection)] = task

    async def release(self, connection: Connection, *, discard: bool = False) -> None:
        """Give a connection back; a cancelled caller still returns it (`Connection.close`)."""
        self._forget_holder(connection)
        await connection.close(discard=discard)

    def _forget_holder(self, connection: Connection) -> None:
        """Stop counting `connection` against the task holding it, which need not be the
        one giving it back (a finaliser, a settling commit)."""
        task = self._holder_of.pop(id(connection), None)
        if task is not None:
            self._holders[task] -= 1
            if not self._holders[task]:
                del self._holders[task]

    async def run(
        self, fn: Callable[[], Awaitable[T]], *, attempts: int = 3, backoff: float = 0.01
    ) -> T:
        """Run `fn` (which opens its own unit of work) until it succeeds or fails for good.

        Only errors marked retryable (conflicts, deadlocks, stale versions, lost connections
        before commit) are retried, by calling `fn` again from the start; SQL is never
        replayed. The last error is raised after `attempts` tries.
        """
        if attempts < 1:
            raise ValueError("attempts must be at least 1")
        attempt = 1
        while True:
            try:
                return await fn()
            except DatabaseError as error:
                if not error.retryable or attempt >= attempts:
                    raise
            await asyncio.sleep(backoff * attempt)
            attempt += 1

    async def close(self) -> None:
        """Close every pooled connection."""
        if not self._closed:
            self._closed = True
            await self._dialect.close()

    async def __aenter__(self) -> Database:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def __repr__(self) -> str:
        state = " closed" if self._closed else ""
        return f"<Database {self._url.render()}{state}>"


async def connect(url: str, **options: Any) -> Database:
    """Open a database from its URL.

    `sqlite:///app.db`, `sqlite:///:memory:`, `postgresql://user:pw@host:5432/db`,
    `memory://`. Options (`pool_min`, `pool_max`, `pool_timeout`, `connect_timeout`,
    `log_parameters` and backend-specific ones) come from the URL's query string or
    keywords; keywords win.
    """
    parsed = DatabaseURL.parse(url)
    connection_options = ConnectionOptions.from_url(parsed, options)
    dialect_class = _load_dialect(parsed.backend)
    hooks = StatementHooks(parsed.backend, connection_options.log_parameters)
    dialect: Dialect = dialect_class(parsed, connection_options, hooks)
    await dialect.open()
    return Database(dialect, parsed, connection_options, hooks)
