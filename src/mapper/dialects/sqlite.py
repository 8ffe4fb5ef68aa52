"""SQLite through aiosqlite: the embedded default backend.

Batches are multi-row statements within SQLite's bind-variable limit (read from the library
at connect time). Every connection is set up as GUARANTEES G13 says: foreign keys on, a busy
timeout, WAL for files; plus case-sensitive LIKE, so `like` means the same as elsewhere.
Writers take the database lock at BEGIN IMMEDIATE, so two writers queue instead of failing
on lock upgrade; the wait for that lock happens on the event loop, in short retries, not in
SQLite's busy handler, because a call blocked in aiosqlite's worker thread cannot be
cancelled (sqlite3_interrupt does not end a busy wait) and would hold up cancellation. An
in-memory database lives in one connection, so its pool has size one. Errors are mapped by
SQLite's extended result codes, never by message text.

aiosqlite is imported lazily, in `SqliteDialect.open`. Loaded by `database.connect` for
sqlite:// URLs.
"""

from __future__ import annotations

import asyncio
import json
import math
import sqlite3
import time
import typing
from collections.abc import AsyncGenerator, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from mapper.capabilities import Capabilities
from mapper.dialects.base import ParameterStyle, Placeholders, SqlCompiler
from mapper.dialects.sql import SqlConnection, SqlDialect
from mapper.errors import (
    ConfigurationError,
    ConflictError,
    ConnectionLost,
    DatabaseError,
    DataError,
    IntegrityError,
    MapperError,
    StorageFull,
)
from mapper.mapping import ColumnMeta
from mapper.pool import SimplePool
from mapper.types import Bytes, DialectName

if TYPE_CHECKING:
    import aiosqlite

__all__ = ["SqliteCompiler", "SqliteConnection", "SqliteDialect"]

# RETURNING arrived in SQLite 3.35.0; UPDATE ... FROM in 3.33.0.
_MINIMUM_VERSION = (3, 35, 0)
_SQLITE_BUSY = 5
_SQLITE_LOCKED = 6
_SQLITE_FULL = 13
_SQLITE_CONSTRAINT = 19
_SQLITE_TOOBIG = 18
_SQLITE_MISMATCH = 20
_SQLITE_RANGE = 25
# SQLite's own busy wait per statement: short, so the worker thread is never stuck for long.
_STATEMENT_BUSY_MS = 50


def _variable_limit() -> int:
    probe = sqlite3.connect(":memory:")
    try:
        return int(probe.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER))
    finally:
        probe.close()


class SqliteCompiler(SqlCompiler):
    """Multi-row VALUES batches with `?` placeholders."""

    dialect: ClassVar[DialectName] = "sqlite"
    parameter_style: ClassVar[ParameterStyle] = ParameterStyle(fixed="?")

    def generated_key_ddl(self, column: ColumnMeta, sole_key: bool) -> str:
        if not sole_key:
            raise ConfigurationError(
                f"{column.attribute}: SQLite generates keys only for a single-column primary key"
            )
        # AUTOINCREMENT: keys of deleted rows are never handed out again.
        return "INTEGER PRIMARY KEY AUTOINCREMENT"

    def inline_primary_key(self, column: ColumnMeta, sole_key: bool) -> bool:
        return True

    forward_foreign_keys: ClassVar[bool] = True  # checked when rows are written

    def foreign_key_checks_sql(self, enabled: bool) -> str | None:
        # DDL runs outside transactions, where this pragma takes effect at once.
        return f"PRAGMA foreign_keys = {'ON' if enabled else 'OFF'}"

    def no_limit_sql(self) -> str:
        return " LIMIT -1"

    def _sized(self) -> bool:
        return False  # IN lists are one JSON parameter, whatever the length

    def in_list_sql(
        self,
        quoted: str,
        column: ColumnMeta,
        negated: bool,
        count: int,
        placeholders: Placeholders,
    ) -> str:
        # One JSON array parameter: constant SQL for any length, and no bind-variable limit.
        # Blobs cannot travel in JSON, so they are compared as hex text.
        if isinstance(column.type, Bytes):
            quoted = f"hex({quoted})"
        operator = "NOT IN" if negated else "IN"
        return f"{quoted} {operator} (SELECT value FROM json_each({placeholders.take()}))"

    def _in_list_values(self, column: ColumnMeta, bound: list[Any], out: list[Any]) -> None:
        if isinstance(column.type, Bytes):
            bound = [None if v is None else bytes(v).hex().upper() for v in bound]
        out.append("[" + ",".join(_json_item(value) for value in bound) + "]")

    def like_sql(self, field: str, placeholder: str, criterion: Any) -> str:
        if criterion.case_insensitive:
            # SQLite's lower() folds ASCII only; mapper_lower is Python's str.lower.
            return f"mapper_lower({field}) LIKE mapper_lower({placeholder}) ESCAPE '\\'"
        return f"{field} LIKE {placeholder} ESCAPE '\\'"


def _json_item(value: Any) -> str:
    # JSON has no infinity; SQLite's json_each reads the overflowing 9e999 as one.
    if isinstance(value, float) and math.isinf(value):
        return "9e999" if value > 0 else "-9e999"
    return json.dumps(value)


def _lower(value: object) -> object:
    return value.lower() if isinstance(value, str) else value


class SqliteDialect(SqlDialect):
    """A SQLite file (or in-memory database) behind a small pool of aiosqlite connections."""

    name: ClassVar[DialectName] = "sqlite"
    compiler_class: ClassVar[type[SqlCompiler]] = SqliteCompiler

    _pool: SimplePool[aiosqlite.Connection] | None = None
    busy_timeout: float = 5.0
    """Seconds a writer waits for the database lock (URL option busy_timeout, in ms)."""

    def make_capabilities(self) -> Capabilities:
        return Capabilities(
            transactions=True,
            savepoints=True,
            returning=True,
            generated_keys=True,
            array_parameters=False,
            parameter_limit=_variable_limit(),
            concurrent_writers=False,
        )

    @property
    def in_memory(self) -> bool:
        return self.url.database == ":memory:"

    async def open(self) -> None:
        import aiosqlite  # noqa: PLC0415 - the driver loads only when this backend is used

        if sqlite3.sqlite_version_info < _MINIMUM_VERSION:
            raise ConfigurationError(
                f"SQLite {sqlite3.sqlite_version} is too old; mapper needs 3.35 or newer"
            )
        extra = dict(self.options.extra)
        try:
            self.busy_timeout = int(extra.pop("busy_timeout", "5000")) / 1000
        except ValueError:
            raise ConfigurationError("busy_timeout must be an int (milliseconds)") from None
        if extra:
            raise ConfigurationError(
                f"unknown SQLite connection options: {', '.join(sorted(extra))}"
            )
        path = self.url.database or ":memory:"
        wal = not self.in_memory

        async def opener() -> aiosqlite.Connection:
            try:
                connection = await aiosqlite.connect(
                    path, isolation_level=None, timeout=_STATEMENT_BUSY_MS / 1000
                )
            except sqlite3.Error as error:
                raise ConnectionLost(f"cannot open SQLite database {path!r}: {error}") from error
            # Each PRAGMA's result is read to the end: a cursor left with a row counts as a
            # running statement, and SQLite then ignores case_sensitive_like silently.
            pragmas = [
                "PRAGMA foreign_keys = ON",
                f"PRAGMA busy_timeout = {_STATEMENT_BUSY_MS:d}",
                "PRAGMA case_sensitive_like = ON",
            ]
            if wal:
                pragmas += ["PRAGMA journal_mode = WAL", "PRAGMA synchronous = NORMAL"]
            for pragma in pragmas:
                await connection.execute_fetchall(pragma)
            await connection.create_function("mapper_lower", 1, _lower, deterministic=True)
            return connection

        async def closer(connection: aiosqlite.Connection) -> None:
            await connection.close()

        size = 1 if self.in_memory else self.options.pool_max
        self._pool = SimplePool(opener, closer, size)
        # Open one connection now, so a bad path fails at connect() and :memory: persists.
        first = await self._pool.acquire(self.options.connect_timeout)
        await self._pool.release(first)

    def _require_pool(self) -> SimplePool[aiosqlite.Connection]:
        if self._pool is None:
            raise DatabaseError("the SQLite pool is not open")
        return self._pool

    async def acquire(self, timeout: float) -> SqliteConnection:
        raw = await self._require_pool().acquire(timeout)
        return SqliteConnection(self, raw)

    def pool_status(self) -> tuple[int, int]:
        pool = self._require_pool()
        return pool.size, pool.in_use

    async def release(self, raw: aiosqlite.Connection, discard: bool) -> None:
        await self._require_pool().release(raw, discard=discard and not self.in_memory)

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.close()


class SqliteConnection(SqlConnection):
    """One aiosqlite connection; each call is one hop to its worker thread."""

    # Take the write lock at once: a deferred transaction that reads first can fail to
    # upgrade (SQLITE_BUSY_SNAPSHOT in WAL) no matter how long it waits.
    begin_sql: ClassVar[str] = "BEGIN IMMEDIATE"

    async def begin(self) -> None:
        """BEGIN IMMEDIATE, retried on the event loop until the busy_timeout option runs out."""
        deadline = time.monotonic() + self._sqlite.busy_timeout
        pause = 0.001
        while True:
            try:
                await super().begin()
                return
            except ConflictError:
                if time.monotonic() + pause > deadline:
                    raise
            await asyncio.sleep(pause)
            pause = min(pause * 2, 0.05)

    def __init__(self, dialect: SqliteDialect, raw: aiosqlite.Connection) -> None:
        super().__init__(dialect)
        self._sqlite = dialect
        self._raw = raw

    def _driver_in_transaction(self) -> bool:
        try:
            return bool(self._raw.in_transaction)
        except ValueError:  # closed
            return False

    def _needs_rollback(self) -> bool:
        # A cancelled call keeps running in aiosqlite's worker thread (GUARANTEES finding 4):
        # a BEGIN may still be queued, so the state seen from here can be stale. The driver's
        # rollback runs in that thread after it, and does nothing when no transaction is open.
        return True

    async def _rollback_now(self) -> None:
        await self._raw.rollback()

    async def _fetch(self, sql: str, parameters: Sequence[Any]) -> Sequence[Sequence[Any]]:
        rows = await self._raw.execute_fetchall(sql, parameters)
        return typing.cast(Sequence[Sequence[Any]], rows)

    async def _execute(self, sql: str, parameters: Sequence[Any]) -> int | None:
        cursor = await self._raw.execute(sql, parameters)
        count = cursor.rowcount
        await cursor.close()
        return count if count >= 0 else None

    async def _iterate(
        self, sql: str, parameters: Sequence[Any], chunk_size: int
    ) -> AsyncGenerator[Sequence[Sequence[Any]]]:
        cursor = await self._raw.execute(sql, parameters)
        try:
            while True:
                chunk = await cursor.fetchmany(chunk_size)
                if not chunk:
                    return
                yield typing.cast(Sequence[Sequence[Any]], chunk)
        finally:
            await cursor.close()

    def _translate(self, error: BaseException) -> MapperError | None:
        if isinstance(error, sqlite3.Error):
            return _sqlite_error(error)
        if isinstance(error, OverflowError):
            return DataError(f"SQLite cannot store the value: {error}")
        if isinstance(error, ValueError) and "closed" in str(error).lower():
            return ConnectionLost(f"SQLite connection closed: {error}")
        return None

    async def _release(self, discard: bool) -> None:
        # Never pool a connection mid-transaction: after a cancelled call (its BEGIN may still
        # be queued) or when the driver says one is open, roll back in the worker thread first.
        if (self.interrupted or self._driver_in_transaction()) and not discard:
            try:
                await self._raw.rollback()  # after whatever the cancelled call left queued
            except (sqlite3.Error, ValueError):
                discard = True
        await self._sqlite.release(self._raw, discard)


def _failed_columns(message: str) -> tuple[str | None, tuple[str, ...]]:
    """(table, columns) from SQLite's "... constraint failed: t.a, t.b" message."""
    if ":" not in message:
        return None, ()
    named = [part.strip() for part in message.split(":", 1)[1].split(",")]
    pairs = [part.split(".", 1) for part in named if "." in part]
    if not pairs:
        return None, ()
    return pairs[0][0], tuple(column for _, column in pairs)


def _sqlite_error(error: sqlite3.Error) -> MapperError:
    code = getattr(error, "sqlite_errorcode", None)
    name = getattr(error, "sqlite_errorname", None)
    primary = code & 0xFF if isinstance(code, int) else None
    message = str(error)
    if primary == _SQLITE_CONSTRAINT:
        # "UNIQUE constraint failed: users.email, users.tag": SQLite names the columns, not
        # the constraint; the code says which kind (foreign key failures name nothing).
        table, columns = _failed_columns(message)
        return IntegrityError(message, code=name, table=table, columns=columns)
    if primary in (_SQLITE_BUSY, _SQLITE_LOCKED):
        return ConflictError(f"SQLite database is locked: {message}", code=name)
    if primary == _SQLITE_FULL:
        return StorageFull(message, code=name)
    if primary in (_SQLITE_TOOBIG, _SQLITE_MISMATCH, _SQLITE_RANGE) or isinstance(
        error, (sqlite3.DataError, sqlite3.InterfaceError)
    ):
        return DataError(message, code=name)
    if isinstance(error, sqlite3.ProgrammingError) and "closed" in message.lower():
        return ConnectionLost(f"SQLite connection closed: {message}", code=name)
    return DatabaseError(message, code=name)
