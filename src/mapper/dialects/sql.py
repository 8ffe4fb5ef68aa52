"""The part of every SQL backend that is not its driver: running statements through the hook.

`SqlConnection` runs compiled statements (`Bound`) and emits a `StatementEvent` before and
after each one, times it, and translates the driver's errors into mapper's own at this one
place (`raise ... from driver_error`). It turns operations into statements with the
dialect's `SqlCompiler` and reads results back (generated keys in row order, stale rows).
`SqlDialect` holds what one database handle shares: URL, options, hooks, capabilities and
compiler. `dialects/postgres.py` and `dialects/sqlite.py` fill in the driver calls.

Called by the unit of work through the `Connection` and `Dialect` protocols of database.py.
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import time
from collections.abc import AsyncGenerator, Sequence
from typing import Any, ClassVar

from mapper.capabilities import Capabilities
from mapper.codec import row_codec
from mapper.database import ConnectionOptions, refuse_alone
from mapper.dialects.base import Bound, SqlCompiler
from mapper.errors import CommitOutcomeUnknown, ConnectionLost, MapperError
from mapper.events import StatementEvent, StatementHooks
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
    linked_rows,
)
from mapper.schema import create_statements, drop_statements
from mapper.types import DialectName
from mapper.url import DatabaseURL

__all__ = ["SqlConnection", "SqlDialect"]


class SqlDialect(abc.ABC):
    """Shared state of one SQL database handle; subclasses own the driver's pool."""

    name: ClassVar[DialectName]
    compiler_class: ClassVar[type[SqlCompiler]]

    def __init__(self, url: DatabaseURL, options: ConnectionOptions, hooks: StatementHooks) -> None:
        self.url = url
        self.options = options
        self.hooks = hooks
        self.capabilities = self.make_capabilities()
        self.compiler = self.compiler_class(self.capabilities)

    @abc.abstractmethod
    def make_capabilities(self) -> Capabilities: ...

    def can_send_alone(self, op: WriteBatch) -> bool:
        return False

    def compile(
        self, op: WriteBatch, after_writes: bool = False, alone: bool = False
    ) -> tuple[str, ...]:
        if isinstance(op, InsertBatch):
            statements = self.compiler.insert(op)
        elif isinstance(op, UpdateBatch):
            statements = self.compiler.update(op, alone=alone)
        elif isinstance(op, DeleteBatch):
            statements = self.compiler.delete(op, after_writes=after_writes, alone=alone)
        else:
            statements = [self.compiler.lock(op)]
        return tuple(dict.fromkeys(b.sql for b in statements))

    def create_statements(self, metas: Sequence[EntityMeta]) -> list[str]:
        return create_statements(metas, self.compiler)

    def drop_statements(self, metas: Sequence[EntityMeta]) -> list[str]:
        return drop_statements(metas, self.compiler)


_BEGIN = "BEGIN"


class SqlConnection(abc.ABC):
    """One driver connection running compiled statements; subclasses make the driver calls."""

    begin_sql: ClassVar[str] = _BEGIN
    release_shields_itself: ClassVar[bool] = False
    """Whether `_release` completes even when its caller is cancelled (the driver's pool
    shields it); otherwise `close` shields it, at the price of a task per release."""

    def __init__(self, dialect: SqlDialect) -> None:
        self._dialect = dialect
        self._compiler = dialect.compiler
        self._hooks = dialect.hooks
        self.broken = False
        """Set once the connection is known dead; it is then discarded, never reused."""
        self.interrupted = False
        """Set when a statement was cancelled: the driver may still be running it."""

    # -- driver primitives ----------------------------------------------------------------

    @property
    def session_id(self) -> int | None:
        return None

    @abc.abstractmethod
    async def _fetch(self, sql: str, parameters: Sequence[Any]) -> Sequence[Sequence[Any]]: ...

    @abc.abstractmethod
    async def _execute(self, sql: str, parameters: Sequence[Any]) -> int | None: ...

    @abc.abstractmethod
    def _iterate(
        self, sql: str, parameters: Sequence[Any], chunk_size: int
    ) -> AsyncGenerator[Sequence[Sequence[Any]]]: ...

    @abc.abstractmethod
    def _translate(self, error: BaseException) -> MapperError | None:
        """mapper's error for a driver error, or None to let it through unchanged."""

    @abc.abstractmethod
    async def _release(self, discard: bool) -> None: ...

    @abc.abstractmethod
    def _driver_in_transaction(self) -> bool:
        """Whether the driver says a transaction is open on this connection."""

    def _needs_rollback(self) -> bool:
        """Whether ROLLBACK must be sent; the server may have ended the transaction itself."""
        return self._driver_in_transaction()

    async def _rollback_now(self) -> None:
        await self._execute("ROLLBACK", ())

    # -- running statements ---------------------------------------------------------------

    def _event(self, phase: str, bound: Bound, **after: Any) -> StatementEvent:
        return StatementEvent(
            phase=phase,  # type: ignore[arg-type]
            database=self._dialect.name,
            operation=bound.operation,
            table=bound.table,
            sql=bound.sql,
            parameter_count=len(bound.parameters),
            session_id=self.session_id,
            parameters=tuple(bound.parameters) if self._hooks.log_parameters else None,
            **after,
        )

    async def run(self, bound: Bound) -> Sequence[Sequence[Any]]:
        """Run one statement through the hook; rows if it fetches, else an empty tuple."""
        rows, _ = await self._run(bound)
        return rows

    async def run_counted(self, bound: Bound) -> int:
        """Run one statement that fetches nothing; the rows it wrote, as the server counts."""
        _, count = await self._run(bound)
        if count is None:
            raise MapperError(f"the server reported no row count for: {bound.sql}")
        return count

    async def _run(self, bound: Bound) -> tuple[Sequence[Sequence[Any]], int | None]:
        hooks = self._hooks
        if hooks.wants_before:
            await hooks.emit(self._event("before", bound))
        started = time.perf_counter()
        rows: Sequence[Sequence[Any]] = ()
        count: int | None
        try:
            if bound.fetch:
                rows = await self._fetch(bound.sql, bound.parameters)
                count = int(rows[0][0]) if bound.reports_count else len(rows)
            elif bound.operation == "rollback":
                await self._rollback_now()
                count = None
            else:
                count = await self._execute(bound.sql, bound.parameters)
        except BaseException as error:
            mapped = await self._failed(bound, started, error)
            if mapped is None:
                raise
            raise mapped from error
        if hooks.wants_after:
            await self._finished(bound, started, count)
        return rows, count

    async def _failed(
        self, bound: Bound, started: float, error: BaseException
    ) -> MapperError | None:
        """Note what a failed statement means for this connection; report it to the hook."""
        mapped = self._noted(error)
        if self._hooks.wants_after:
            # Hooks see mapper's error, as callers do, with the driver's as its cause.
            reported = error
            if mapped is not None:
                mapped.__cause__ = error
                reported = mapped
            duration = time.perf_counter() - started
            await self._hooks.emit(self._event("after", bound, duration=duration, error=reported))
        return mapped

    def _noted(self, error: BaseException) -> MapperError | None:
        """mapper's error for a driver error, noting a cancelled call or a dead connection."""
        if isinstance(error, asyncio.CancelledError):
            self.interrupted = True
        mapped = self._translate(error)
        if isinstance(mapped, ConnectionLost):
            self.broken = True
        return mapped

    async def _finished(self, bound: Bound, started: float, count: int | None) -> None:
        duration = time.perf_counter() - started
        await self._hooks.emit(self._event("after", bound, duration=duration, row_count=count))

    # -- transactions ---------------------------------------------------------------------

    async def begin(self) -> None:
        await self.run(Bound(self.begin_sql, (), "begin", None))

    async def commit(self) -> None:
        await self.run_as_commit(Bound("COMMIT", (), "commit", None), "COMMIT")

    async def run_as_commit(self, bound: Bound, what: str) -> Sequence[Sequence[Any]]:
        """Run a statement whose success is the commit (`what` names it): a connection lost
        while it runs leaves the outcome unknown, not rolled back (GUARANTEES G3)."""
        try:
            return await self.run(bound)
        except ConnectionLost as error:
            raise CommitOutcomeUnknown(
                f"the connection was lost during {what}: it may or may not have been committed",
                code=error.code,
            ) from error.__cause__

    async def rollback(self) -> None:
        if not self.broken and self._needs_rollback():
            await self.run(Bound("ROLLBACK", (), "rollback", None))

    # -- operations -----------------------------------------------------------------------

    async def can_send_alone(self, op: WriteBatch) -> bool:
        return False

    async def insert(self, op: InsertBatch, alone: bool = False) -> list[tuple[Any, ...]]:
        refuse_alone(self._dialect.name, alone)
        returned = [await self.run(bound) for bound in self._compiler.insert(op)]
        if not op.returning:
            return []
        return self._compiler.generated_values(op, returned)

    async def update(self, op: UpdateBatch, alone: bool = False) -> list[int]:
        statements = self._compiler.update(op, alone=alone)
        returned = [await self.run(bound) for bound in statements]
        return self._compiler.stale_rows(op, returned)

    async def delete(
        self, op: DeleteBatch, after_writes: bool = False, alone: bool = False
    ) -> list[int]:
        statements = self._compiler.delete(op, after_writes=after_writes, alone=alone)
        returned = [await self.run(bound) for bound in statements]
        return self._compiler.stale_rows(op, returned)

    async def lock(self, op: LockRows) -> None:
        await self.run(self._compiler.lock(op))

    async def select(self, op: Select) -> Sequence[Sequence[Any]]:
        rows = await self.run(self._compiler.select(op))
        load = row_codec(op.meta, self._dialect.name).load
        return rows if load is None else [load(row) for row in rows]

    async def stream(self, op: Select, chunk_size: int) -> AsyncGenerator[Sequence[Sequence[Any]]]:
        bound = self._compiler.select(op)
        load = row_codec(op.meta, self._dialect.name).load
        hooks = self._hooks
        if hooks.wants_before:
            await hooks.emit(self._event("before", bound))
        started = time.perf_counter()
        total = 0
        try:
            chunks = self._iterate(bound.sql, bound.parameters, chunk_size)
            async with contextlib.aclosing(chunks):
                async for chunk in chunks:
                    total += len(chunk)
                    yield chunk if load is None else [load(row) for row in chunk]
        except GeneratorExit:
            # Closed early by its reader: a normal end, not a failed statement.
            if hooks.wants_after:
                await self._finished(bound, started, total)
            raise
        except BaseException as error:
            mapped = await self._failed(bound, started, error)
            if mapped is None:
                raise
            raise mapped from error
        if hooks.wants_after:
            await self._finished(bound, started, total)

    async def select_linked(self, op: SelectLinked) -> list[tuple[Any, Sequence[Any]]]:
        rows = await self.run(self._compiler.select_linked(op))
        return linked_rows(op, rows, self._dialect.name)

    async def count(self, op: Count) -> int:
        rows = await self.run(self._compiler.count(op))
        if op.exists:
            return len(rows)
        return int(rows[0][0])

    async def create_tables(self, metas: Sequence[EntityMeta]) -> None:
        for sql in self._dialect.create_statements(metas):
            await self.run(Bound(sql, (), "ddl", None))

    async def drop_tables(self, metas: Sequence[EntityMeta]) -> None:
        try:
            for sql in self._dialect.drop_statements(metas):
                await self.run(Bound(sql, (), "ddl", None))
        except BaseException:
            # The drops may have turned connection settings off (SQLite's foreign key
            # checks): this connection is not handed out again.
            self.broken = True
            raise

    async def close(self, *, discard: bool) -> None:
        releasing = self._release(discard or self.broken)
        if self.release_shields_itself:
            await releasing
        else:
            await asyncio.shield(releasing)
