"""PostgreSQL through asyncpg: array batches, the driver's pool, and its error codes.

Every batch is one statement whatever its size: rows travel as one array per column and
`unnest(...) WITH ORDINALITY` turns them back into rows, so the SQL text is constant and
asyncpg prepares it once. Generated keys come back through RETURNING and are matched to rows
by sorting (identity values ascend in insertion order, RETURNING order is not guaranteed:
GUARANTEES G9). UPDATE and DELETE are checked by the row count the server reports; a short
count is followed by one query naming the stale rows exactly (G6). A commit whose only
write is one batch sends it alone, without BEGIN and COMMIT; an UPDATE or DELETE sent so
checks its own match inside the server and fails, writing nothing, when a row was stale.
Errors are mapped by SQLSTATE, never by message text, except that such a guard knows its
own error by the marker it wrote into it.

asyncpg is imported lazily, in `PostgresDialect.open`, so `import mapper` needs no driver.
Loaded by `database.connect` for postgresql:// URLs.
"""

from __future__ import annotations

import contextlib
import operator
import re
from collections.abc import AsyncGenerator, Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from mapper.capabilities import Capabilities
from mapper.dialects.base import (
    Bound,
    ParameterStyle,
    Placeholders,
    SqlCompiler,
    column_positions,
    key_not_enforced,
)
from mapper.dialects.sql import SqlConnection, SqlDialect
from mapper.errors import (
    CommitOutcomeUnknown,
    ConfigurationError,
    ConflictError,
    ConnectionLost,
    DatabaseError,
    DataError,
    IntegrityError,
    MapperError,
    SchemaChangedError,
    StorageFull,
)
from mapper.mapping import ColumnMeta, EntityMeta
from mapper.operations import (
    DeleteBatch,
    InsertBatch,
    LockRows,
    PickedRows,
    UpdateBatch,
    WriteBatch,
    stale_entity_error,
)
from mapper.types import DialectName

if TYPE_CHECKING:
    import asyncpg

__all__ = ["PostgresCompiler", "PostgresConnection", "PostgresDialect"]

# PostgreSQL's protocol limit on bind parameters in one statement.
_PARAMETER_LIMIT = 32767
_ROWS = '"__mapper_rows"'


# What mapper learns once per table before writing to it (`PostgresConnection._check_table`):
# (1) whether its row counts tell exactly which batch rows an UPDATE or DELETE matched: an
# ordinary table that is no inheritance parent (a parent's index does not cover its
# children), or a partitioned one (views and foreign tables have no xmin to name stale rows
# by), with a unique index, valid, immediate and on plain columns, whose key columns are all
# mapped key columns (a failed CREATE UNIQUE INDEX CONCURRENTLY leaves an invalid one over
# duplicates). Without one, a batch key may match two rows while another matches none, and
# the count would hide the stale row. (2) Whether a commit's only batch may be sent alone,
# as one statement: an ordinary table, no inheritance parent, with no rules (a data-modifying
# WITH refuses most) and no triggers of its own (one may drop or redirect rows, so an INSERT
# would return fewer keys than it was given after its commit; foreign keys' internal
# triggers do neither). No row when there is no such table.
_TABLE_FACTS = """
SELECT (c.relkind = 'p' OR (c.relkind = 'r' AND NOT c.relhassubclass)) AND EXISTS (
    SELECT 1 FROM pg_index i
    WHERE i.indrelid = c.oid AND i.indisunique AND i.indimmediate
      AND i.indisvalid AND i.indislive AND i.indpred IS NULL AND i.indexprs IS NULL
      AND NOT EXISTS (
          SELECT 1 FROM unnest((i.indkey::int2[])[:i.indnkeyatts - 1]) AS k(attnum)
          JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = k.attnum
          WHERE a.attname <> ALL($2::text[]))),
    c.relkind = 'r' AND NOT c.relhassubclass AND NOT c.relhasrules AND NOT EXISTS (
        SELECT 1 FROM pg_trigger t WHERE t.tgrelid = c.oid AND NOT t.tgisinternal)
FROM pg_class c WHERE c.oid = to_regclass($1)
"""


class PostgresCompiler(SqlCompiler):
    """Array-based batch statements with `$n` placeholders."""

    dialect: ClassVar[DialectName] = "postgresql"
    parameter_style: ClassVar[ParameterStyle] = ParameterStyle(numbered="${}")

    def __init__(self, capabilities: Capabilities) -> None:
        super().__init__(capabilities)
        self.counts_rows: dict[str, bool] = {}
        """Per table, once a connection checked it: whether its UPDATE and DELETE are
        checked by row count (`_TABLE_FACTS`), or return the ordinals they matched.
        Unchecked tables (plan() before any write) are taken to count."""
        self.takes_lone_statements: dict[str, bool] = {}
        """Per table, once a connection checked it: whether a commit's only batch may be
        sent alone (`_TABLE_FACTS`). Unchecked tables (plan() before any write) are taken
        to."""

    def forget_table(self, table: str) -> None:
        """Drop what a connection learnt about `table`; the next write checks it again."""
        self.counts_rows.pop(table, None)
        self.takes_lone_statements.pop(table, None)

    def _counted(self, meta: EntityMeta) -> bool:
        return self.counts_rows.get(meta.table, True)

    def collation(self, column: ColumnMeta) -> str:
        # The database's default collation may sort "a" before "B" (en_US); "C" sorts by
        # code point, as SQLite and the memory backend do, whatever the server's locale.
        return ' COLLATE "C"'

    def _array_type(self, column: ColumnMeta) -> str:
        # The unbounded type (text, numeric): a cast to varchar(n)[] or numeric(p,s)[] would
        # silently truncate or round, where assigning to the column refuses bad values.
        return f"{column.type.parameter_ddl(self.dialect)}[]"

    def _unnest(self, columns: Sequence[ColumnMeta], aliases: Sequence[str]) -> str:
        arrays = ",".join(
            f"${index}::{self._array_type(column)}" for index, column in enumerate(columns, 1)
        )
        return f"unnest({arrays}) WITH ORDINALITY AS {_ROWS}({','.join(aliases)},ord)"

    def _arrays(
        self, meta: EntityMeta, columns: Sequence[ColumnMeta], rows: Sequence[Sequence[Any]]
    ) -> list[list[Any]]:
        """One list per column, converted for the driver."""
        binders = self.codec(meta).binders_for(columns)
        arrays = []
        for position, binder in enumerate(binders):
            if isinstance(rows, PickedRows):  # taken from the rows they were picked from
                values = rows.column(position)
            else:
                values = list(map(operator.itemgetter(position), rows))  # every row: in C
            if binder is not None:
                values = [None if v is None else binder(v) for v in values]
            arrays.append(values)
        return arrays

    def insert(self, op: InsertBatch) -> list[Bound]:
        meta = op.meta

        def build() -> str:
            aliases = [f"c{i}" for i in range(len(op.columns))]
            names = ",".join(self.quote(c.name) for c in op.columns)
            selected = ",".join(f"{_ROWS}.{alias}" for alias in aliases)
            sql = (
                f"INSERT INTO {self.quote(meta.table)} ({names}) SELECT {selected} "
                f"FROM {self._unnest(op.columns, aliases)} ORDER BY {_ROWS}.ord"
            )
            if op.returning:
                sql += " RETURNING " + ",".join(self.quote(c.name) for c in op.returning)
            return sql

        key = ("insert", meta, column_positions(op.columns), column_positions(op.returning))
        sql: str = self._cached(key, build)
        parameters = self._arrays(meta, op.columns, op.rows)
        return [Bound(sql, parameters, "insert", meta.table, bool(op.returning), len(op.rows))]

    def update(self, op: UpdateBatch, alone: bool = False) -> list[Bound]:
        """An UPDATE of the batch, checked by its row count; on a table whose count cannot
        be trusted (see `counts_rows`) it returns the ordinals it matched; `alone`, it is
        guarded (see `_guarded`)."""
        meta = op.meta
        versioned = op.versions is not None and meta.version is not None
        version = meta.version
        trusted = self._counted(meta)

        def build() -> str:
            table = self.quote(meta.table)
            array_columns, aliases, conditions = self._row_match(meta, versioned)
            assignments = []
            for index, column in enumerate(op.columns):
                array_columns.append(column)
                aliases.append(f"c{index}")
                assignments.append(f"{self.quote(column.name)}={_ROWS}.c{index}")
            if versioned and version is not None:
                quoted = self.quote(version.name)
                assignments.append(f"{quoted}={table}.{quoted}+1")
            sql = (
                f"UPDATE {table} SET {','.join(assignments)} "
                f"FROM {self._unnest(array_columns, aliases)} "
                f"WHERE {' AND '.join(conditions)}"
            )
            if alone:
                return _guarded(sql, len(array_columns) + 1, unique_keys=trusted)
            return sql if trusted else f"{sql} RETURNING {_ROWS}.ord"

        key = ("update", meta, column_positions(op.columns), versioned, trusted, alone)
        sql: str = self._cached(key, build)
        parameters: list[Any] = self._key_arrays(op, versioned)
        parameters += self._arrays(meta, op.columns, op.values)
        if alone:
            parameters += [len(op.keys), _GUARD_FORMAT]
        fetch = alone or not trusted
        return [Bound(sql, parameters, "update", meta.table, fetch, len(op.keys), alone)]

    def _row_match(
        self, meta: EntityMeta, versioned: bool
    ) -> tuple[list[ColumnMeta], list[str], list[str]]:
        """Arrays, their aliases and the WHERE conditions matching a row by key (and version)."""
        table = self.quote(meta.table)
        columns = list(meta.primary_key)
        aliases = [f"k{i}" for i in range(len(columns))]
        if versioned and meta.version is not None:
            columns.append(meta.version)
            aliases.append("ver")
        conditions = [
            f"{table}.{self.quote(c.name)}={_ROWS}.{alias}"
            for c, alias in zip(columns, aliases, strict=True)
        ]
        return columns, aliases, conditions

    def _key_arrays(self, op: UpdateBatch | DeleteBatch, versioned: bool) -> list[list[Any]]:
        meta = op.meta
        parameters = self._arrays(meta, meta.primary_key, op.keys)
        if versioned and op.versions is not None:
            parameters.append(list(op.versions))
        return parameters

    def delete(
        self, op: DeleteBatch, after_writes: bool = False, alone: bool = False
    ) -> list[Bound]:
        """A DELETE of the batch. Its row count tells whether every row was matched; after
        earlier writes of the transaction (which keep the stale rows from being told apart
        once it has run), or on a table whose count cannot be trusted, it returns the
        ordinals it matched; `alone`, it is guarded (see `_guarded`). Checked by its count,
        an unversioned batch on a one-column key matches with `= ANY`, else it joins the
        batch rows through `unnest`."""
        meta = op.meta
        versioned = op.versions is not None and meta.version is not None
        trusted = self._counted(meta)
        returning = (after_writes or not trusted) and not alone
        # Only the count matters: `= ANY` lets one index scan take the sorted keys, where a
        # join to unnest looks each one up (a 1,000-row DELETE in about two thirds the time).
        by_any = trusted and not returning and not versioned and len(meta.primary_key) == 1

        def build() -> str:
            table = self.quote(meta.table)
            if by_any:
                column = meta.primary_key[0]
                arrays = 1
                sql = (
                    f"DELETE FROM {table} WHERE {table}.{self.quote(column.name)}"
                    f"=ANY($1::{self._array_type(column)})"
                )
            else:
                array_columns, aliases, conditions = self._row_match(meta, versioned)
                arrays = len(array_columns)
                sql = (
                    f"DELETE FROM {table} USING {self._unnest(array_columns, aliases)} "
                    f"WHERE {' AND '.join(conditions)}"
                )
            if alone:
                return _guarded(sql, arrays + 1, unique_keys=trusted)
            return f"{sql} RETURNING {_ROWS}.ord" if returning else sql

        key = ("delete", meta, versioned, returning, alone, trusted)
        sql: str = self._cached(key, build)
        parameters: list[Any] = self._key_arrays(op, versioned)
        if alone:
            parameters += [len(op.keys), _GUARD_FORMAT]
        fetch = returning or alone
        return [Bound(sql, parameters, "delete", meta.table, fetch, len(op.keys), alone)]

    def unwritten(self, op: UpdateBatch | DeleteBatch) -> Bound:
        """The ordinals of the batch rows this transaction has not written, after its UPDATE.

        A row the UPDATE matched now carries the transaction's id (xmin). A row written by
        an earlier statement of the same transaction carries it too, but stays locked by it
        since, so it cannot have gone stale. PostgreSQL 13 or later.
        """
        return self._without_match(op, versioned=False, written_here=True)

    def unmatched(self, op: UpdateBatch | DeleteBatch) -> Bound:
        """The ordinals of the batch rows that no stored row matches now (key and version)."""
        versioned = op.versions is not None and op.meta.version is not None
        return self._without_match(op, versioned, written_here=False)

    def _without_match(
        self, op: UpdateBatch | DeleteBatch, versioned: bool, written_here: bool
    ) -> Bound:
        meta = op.meta

        def build() -> str:
            table = self.quote(meta.table)
            columns, aliases, conditions = self._row_match(meta, versioned)
            if written_here:
                conditions.append(f"{table}.xmin=pg_current_xact_id()::xid")
            return (
                f"SELECT {_ROWS}.ord FROM {self._unnest(columns, aliases)} WHERE NOT EXISTS "
                f"(SELECT 1 FROM {table} WHERE {' AND '.join(conditions)}) ORDER BY {_ROWS}.ord"
            )

        sql: str = self._cached(("without match", meta, versioned, written_here), build)
        parameters = self._key_arrays(op, versioned)
        return Bound(sql, parameters, "select", meta.table, True, len(op.keys))

    def lock(self, op: LockRows) -> Bound:
        meta = op.meta

        def build() -> str:
            keys = [self.quote(k.name) for k in meta.primary_key]
            aliases = [f"k{i}" for i in range(len(keys))]
            arrays = ",".join(
                f"${i}::{self._array_type(k)}" for i, k in enumerate(meta.primary_key, 1)
            )
            match = " AND ".join(
                f"t.{key}=r.{alias}" for key, alias in zip(keys, aliases, strict=True)
            )
            ordered = ",".join(f"t.{key}" for key in keys)
            return (
                f"SELECT {ordered} FROM {self.quote(meta.table)} AS t "
                f"JOIN unnest({arrays}) AS r({','.join(aliases)}) ON {match} "
                f"ORDER BY {ordered} FOR UPDATE OF t"
            )

        sql: str = self._cached(("lock", meta), build)
        parameters = self._arrays(meta, meta.primary_key, op.keys)
        return Bound(sql, parameters, "lock", meta.table, True, len(op.keys))

    def stale_rows(
        self,
        op: UpdateBatch | DeleteBatch,
        returned: Sequence[Sequence[Sequence[Any]]],
    ) -> list[int]:
        ordinals = [row[0] for rows in returned for row in rows]
        matched = set(ordinals)
        if len(ordinals) > len(matched):
            raise key_not_enforced(op, len(ordinals))
        if len(matched) == len(op.keys):
            return []
        return [index for index in range(len(op.keys)) if index + 1 not in matched]

    def in_list_sql(
        self,
        quoted: str,
        column: ColumnMeta,
        negated: bool,
        count: int,
        placeholders: Placeholders,
    ) -> str:
        return f"{quoted}{'<>ALL' if negated else '=ANY'}({placeholders.take()})"

    def _in_list_values(self, column: ColumnMeta, bound: list[Any], out: list[Any]) -> None:
        out.append(bound)

    def _sized(self) -> bool:
        return False  # one array parameter, whatever the length

    unicode_collation: str | None = None
    """An ICU collation (set at connect when the server has one): ilike then folds case
    like Python's str.lower; under "C" PostgreSQL folds ASCII letters only."""

    def like_sql(self, field: str, placeholder: str, criterion: Any) -> str:
        if not criterion.case_insensitive:
            return f"{field} LIKE {placeholder} ESCAPE '\\'"
        if self.unicode_collation is not None:
            field = f'{field} COLLATE "{self.unicode_collation}"'
        return f"{field} ILIKE {placeholder} ESCAPE '\\'"


class PostgresDialect(SqlDialect):
    """A PostgreSQL database reached through an asyncpg pool."""

    name: ClassVar[DialectName] = "postgresql"
    compiler_class: ClassVar[type[SqlCompiler]] = PostgresCompiler

    _pool: asyncpg.Pool | None = None
    _probed: bool = False

    @property
    def pg_compiler(self) -> PostgresCompiler:
        compiler = self.compiler
        if not isinstance(compiler, PostgresCompiler):
            raise TypeError(f"a PostgreSQL dialect needs a PostgresCompiler, not {compiler!r}")
        return compiler

    def can_send_alone(self, op: WriteBatch) -> bool:
        return self.pg_compiler.takes_lone_statements.get(op.meta.table, True)

    def make_capabilities(self) -> Capabilities:
        return Capabilities(
            transactions=True,
            savepoints=True,
            returning=True,
            generated_keys=True,
            array_parameters=True,
            parameter_limit=_PARAMETER_LIMIT,
            transactional_cursors=True,
            row_locks=True,
            counted_writes=True,
            single_statement_commits=True,
        )

    async def open(self) -> None:
        import asyncpg  # noqa: PLC0415 - the driver loads only when this backend is used

        url = self.url
        extra = dict(self.options.extra)
        try:
            statement_cache_size = int(extra.pop("statement_cache_size", "100"))
        except ValueError:
            raise ConfigurationError("statement_cache_size must be an int") from None
        server_settings = {"application_name": extra.pop("application_name", "mapper")}
        if "search_path" in extra:
            server_settings["search_path"] = extra.pop("search_path")
        if extra:
            raise ConfigurationError(
                f"unknown PostgreSQL connection options: {', '.join(sorted(extra))}"
            )
        try:
            self._pool = await asyncpg.create_pool(
                host=url.host or "localhost",
                port=url.port or 5432,
                user=url.username,
                password=url.password,
                database=url.database,
                min_size=self.options.pool_min,
                max_size=self.options.pool_max,
                timeout=self.options.connect_timeout,
                statement_cache_size=statement_cache_size,
                server_settings=server_settings,
                reset=_reset,
            )
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as error:
            raise ConnectionLost(
                f"cannot connect to {url.render()}: {error}",
                code=getattr(error, "sqlstate", None),
            ) from error
        self._probed = False

    async def _probe(self, raw: Any) -> None:
        """Look for an ICU collation once, on the first connection the pool hands out.

        Not at open(): with pool_min=0 the pool must not connect before its first use.
        """
        found = await raw.fetchval("SELECT collname FROM pg_collation WHERE collname = 'und-x-icu'")
        self.pg_compiler.unicode_collation = found
        self._probed = True

    def _require_pool(self) -> asyncpg.Pool:
        if self._pool is None:
            raise DatabaseError("the PostgreSQL pool is not open")
        return self._pool

    async def acquire(self, timeout: float) -> PostgresConnection:
        import asyncpg  # noqa: PLC0415 - loaded already by open()

        try:
            raw = await self._require_pool().acquire(timeout=timeout)
            if not self._probed:
                try:
                    await self._probe(raw)
                except BaseException:
                    await self._require_pool().release(raw)
                    raise
        except TimeoutError:
            raise  # the database turns a wait past pool_timeout into PoolTimeout
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as error:
            # The pool had to open a connection and could not (server down, database gone).
            raise ConnectionLost(
                f"cannot connect to {self.url.render()}: {error}",
                code=getattr(error, "sqlstate", None),
            ) from error
        return PostgresConnection(self, raw)

    def pool_status(self) -> tuple[int, int]:
        pool = self._require_pool()
        return self.options.pool_max, pool.get_size() - pool.get_idle_size()

    async def release(self, raw: Any, discard: bool) -> None:
        import asyncpg  # noqa: PLC0415 - loaded already by open()

        pool = self._require_pool()
        if discard:
            # Closed already? Then asyncpg gave it back to the pool when it closed.
            with contextlib.suppress(asyncpg.InterfaceError):
                raw.terminate()
        await pool.release(raw)

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.close()


async def _reset(raw: Any) -> None:
    """Nothing more to reset when a connection goes back to the pool.

    With `reset=` given, asyncpg (0.30+, `PoolConnectionHolder.release`) still runs its own
    `Connection._reset()` first, which rolls back an open transaction; this replaces only
    `Connection.reset()`'s advisory unlock, CLOSE ALL, UNLISTEN and RESET ALL, one more round
    trip per unit of work. mapper leaves none of that session state (no SET, LISTEN,
    advisory locks, or cursors outside a transaction), and the unit of work ends its
    transaction or discards the connection itself (G4).
    """


# SQLSTATE classes and codes (PostgreSQL appendix A).
_NOT_SUPPORTED = "0A000"
_CONFLICT = {"40001", "40P01", "55P03"}
_INTEGRITY = {"23505", "23503", "23502", "23514", "23P01", "23000"}
_FULL = {"53100", "53200"}


class PostgresConnection(SqlConnection):
    """One pooled asyncpg connection.

    UPDATE and DELETE are checked by the row count the server reports (GUARANTEES G6), not
    by returning a row per match: RETURNING makes a 1,000-row DELETE a quarter slower (a
    commit's lone statement counts its RETURNING rows in the server: `_guarded`). Only a
    short count asks which rows were stale, with one more query.
    """

    # asyncpg's Pool.release shields the release itself (0.32: `asyncio.shield(ch.release())`),
    # and terminating a discarded connection does not wait: no task of our own is needed.
    release_shields_itself: ClassVar[bool] = True

    def __init__(self, dialect: PostgresDialect, raw: Any) -> None:
        super().__init__(dialect)
        self._pg = dialect
        self._pg_compiler = dialect.pg_compiler
        self._raw = raw
        self._pid: int | None = raw.get_server_pid()

    async def _check_table(self, meta: EntityMeta) -> None:
        """Learn once per table whether its row counts can be trusted (`counts_rows`) and
        whether it takes a commit's lone statement (`takes_lone_statements`).

        A catalog read of mapper's own, like the collation probe, not a statement of the
        unit of work: it does not pass through the statement hook.
        """
        compiler = self._pg_compiler
        if meta.table in compiler.counts_rows:
            return
        keys = [c.name for c in meta.primary_key]
        try:
            found = await self._raw.fetchrow(_TABLE_FACTS, compiler.quote(meta.table), keys)
        except BaseException as error:
            mapped = self._noted(error)
            if mapped is None:
                raise
            raise mapped from error
        counted, plain = (None, None) if found is None else found
        compiler.takes_lone_statements[meta.table] = bool(plain)
        # pg_current_xact_id(), which names the rows an UPDATE did not write, is 13's.
        compiler.counts_rows[meta.table] = bool(counted) and self._raw.get_server_version() >= (13,)

    async def can_send_alone(self, op: WriteBatch) -> bool:
        await self._check_table(op.meta)
        return self._pg.can_send_alone(op)

    async def insert(self, op: InsertBatch, alone: bool = False) -> list[tuple[Any, ...]]:
        if not alone:
            return await super().insert(op)
        (bound,) = self._pg_compiler.insert(op)
        returned = await self._send_alone(bound)
        if not op.returning:
            return []
        if len(returned) != len(op.rows):
            # Something the catalog check did not see then (a trigger made since) dropped
            # rows: ask again before the next write to this table. The INSERT committed, so
            # nothing may be rolled back or restored.
            self._pg_compiler.forget_table(op.meta.table)
            raise CommitOutcomeUnknown(
                f"{op.meta.name}: {len(op.rows)} rows were sent in a commit of one statement "
                f"but {len(returned)} keys came back; it committed, with keys mapper cannot "
                "match"
            )
        return self._pg_compiler.generated_values(op, [returned])

    async def _send_alone(self, bound: Bound) -> Sequence[Sequence[Any]]:
        """Run a commit's lone statement: a connection lost meanwhile leaves its outcome
        unknown (before it, and after it returned, the outcome is known)."""
        try:
            return await self.run_as_commit(bound, "a commit sent as one statement")
        except DatabaseError as error:
            if error.code == _NOT_SUPPORTED and bound.table is not None:
                # A rule made since the catalog check refuses the data-modifying WITH: the
                # next write to the table asks again, and keeps the transaction.
                self._pg_compiler.forget_table(bound.table)
            raise

    async def update(self, op: UpdateBatch, alone: bool = False) -> list[int]:
        await self._check_table(op.meta)
        (bound,) = self._pg_compiler.update(op, alone=alone)
        return await self._stale_rows(op, bound, self._unmatched if alone else self._unwritten)

    async def delete(
        self, op: DeleteBatch, after_writes: bool = False, alone: bool = False
    ) -> list[int]:
        await self._check_table(op.meta)
        (bound,) = self._pg_compiler.delete(op, after_writes=after_writes, alone=alone)
        name_stale = self._unmatched if alone else self._unmatched_after_rollback
        return await self._stale_rows(op, bound, name_stale)

    async def _stale_rows(
        self,
        op: UpdateBatch | DeleteBatch,
        bound: Bound,
        name_stale: Callable[[UpdateBatch | DeleteBatch], Awaitable[Sequence[Sequence[Any]]]],
    ) -> list[int]:
        """Run an UPDATE or DELETE; the indexes of the batch rows it found stale.

        A guarded statement (sent alone) refuses with the counts; a returning one gives the
        ordinals it matched; a counted one gives its row count. A short count asks
        `name_stale` for the ordinals of the stale rows (after a guarded statement, which
        wrote nothing, those that match no stored row).
        """
        if bound.reports_count:
            short = await self._guard_shortfall(op, bound)
        elif bound.fetch:
            return self._pg_compiler.stale_rows(op, [await self.run(bound)])
        else:
            short = _shortfall(op, await self.run_counted(bound))
        if not short:
            return []
        rows = await name_stale(op)
        return _named(op, [ordinal - 1 for (ordinal,) in rows], short)

    async def _guard_shortfall(self, op: UpdateBatch | DeleteBatch, bound: Bound) -> int:
        """Run a guarded statement (its own transaction): 0, or how many batch rows it
        did not match when it refused (and wrote nothing)."""
        try:
            await self._send_alone(bound)
            return 0
        except DataError as error:
            counts = _guard_counts(error)
            if counts is None:
                raise
        matched, written = counts
        if written > matched:
            raise key_not_enforced(op, written)
        return _shortfall(op, matched)

    async def _unwritten(self, op: UpdateBatch | DeleteBatch) -> Sequence[Sequence[Any]]:
        # Still inside the transaction: the rows the UPDATE did not write are the stale ones.
        return await self.run(self._pg_compiler.unwritten(op))

    async def _unmatched(self, op: UpdateBatch | DeleteBatch) -> Sequence[Sequence[Any]]:
        return await self.run(self._pg_compiler.unmatched(op))

    async def _unmatched_after_rollback(
        self, op: UpdateBatch | DeleteBatch
    ) -> Sequence[Sequence[Any]]:
        # The deleted rows come back into view only when the transaction is rolled back (it
        # fails anyway). Nothing else in it wrote, so what matches no stored row then is what
        # was stale; other writers, no longer held back by its locks, may have made that a
        # few rows more by the time it looks.
        await self.rollback()
        return await self._unmatched(op)

    @property
    def session_id(self) -> int | None:
        return self._pid

    def _driver_in_transaction(self) -> bool:
        try:
            return bool(self._raw.is_in_transaction())
        except Exception:
            return False

    async def _fetch(self, sql: str, parameters: Sequence[Any]) -> Sequence[Sequence[Any]]:
        rows: Sequence[Sequence[Any]] = await self._raw.fetch(sql, *parameters)
        return rows

    async def _execute(self, sql: str, parameters: Sequence[Any]) -> int | None:
        status: str = await self._raw.execute(sql, *parameters)
        last = status.rsplit(" ", 1)[-1]
        return int(last) if last.isdigit() else None

    async def _iterate(
        self, sql: str, parameters: Sequence[Any], chunk_size: int
    ) -> AsyncGenerator[Sequence[Sequence[Any]]]:
        cursor = await self._raw.cursor(sql, *parameters)
        while True:
            chunk = await cursor.fetch(chunk_size)
            if not chunk:
                return
            yield chunk

    def _translate(self, error: BaseException) -> MapperError | None:
        import asyncpg  # noqa: PLC0415 - loaded already by open()

        if isinstance(
            error,
            (asyncpg.InvalidCachedStatementError, asyncpg.exceptions.OutdatedSchemaCacheError),
        ):
            # asyncpg retries these itself only outside a transaction (GUARANTEES F11).
            return SchemaChangedError(f"the schema changed under a cached statement: {error}")
        if isinstance(error, asyncpg.PostgresError):
            return _postgres_error(error)
        if isinstance(error, asyncpg.exceptions._base.DataError):
            return DataError(f"asyncpg refused a value: {error}")
        if isinstance(
            error, (ConnectionError, OSError, asyncpg.exceptions._base.InternalClientError)
        ) or (isinstance(error, asyncpg.InterfaceError) and self._gone()):
            # "connection was closed", "released back to the pool", socket errors, and the
            # protocol confusion asyncpg reports when the server's goodbye arrived between
            # statements ("cannot switch to state ...") all mean the same: this connection
            # is gone (G5).
            return ConnectionLost(f"PostgreSQL connection lost: {error}", code="08003")
        if isinstance(error, asyncpg.InterfaceError):
            # The connection lives but refused the call (e.g. another operation in progress).
            return DatabaseError(f"asyncpg refused the call: {error}")
        return None

    def _gone(self) -> bool:
        import asyncpg  # noqa: PLC0415 - loaded already by open()

        try:
            return bool(self._raw.is_closed())
        except asyncpg.InterfaceError:  # a proxy asyncpg already took back
            return True

    async def _release(self, discard: bool) -> None:
        await self._pg.release(self._raw, discard)


# The error text a guarded statement raises on a wrong match (see `_guarded`), sent as a
# parameter with the counts filled in by the server, and how the connection knows it again.
_GUARD_FORMAT = "mapper guard: batch rows matched %s, rows written %s"
_GUARD_COUNTS = re.compile(r'"mapper guard: batch rows matched (\d+), rows written (\d+)"')


def _guarded(sql: str, first_parameter: int, unique_keys: bool) -> str:
    """`sql` (an UPDATE or DELETE joined to the batch rows) as one statement that is its own
    transaction and fails, writing nothing, unless it wrote exactly one row per batch row.

    A statement sent without BEGIN commits unless it fails, and a row count arrives only
    after that; so the check runs inside it. The written rows are counted in the same
    statement, and a mismatch casts `_GUARD_FORMAT` filled with the counts to integer:
    the error that rolls it back says how many batch rows matched and how many rows were
    written (more: a key that is not unique) without another round trip. Where a unique
    index keeps the keys unique (`unique_keys`, see `counts_rows`) the written rows are the
    matched ones, so ordinals are neither returned nor counted distinct (a sort). Parameters
    `first_parameter` and the next: the batch's row count and `_GUARD_FORMAT`.
    """
    rows, text = f"${first_parameter}", f"${first_parameter + 1}"
    matched = "count(*)" if unique_keys else "count(DISTINCT ord)"
    exact = f"count(*)={rows}" if unique_keys else f"count(*)={rows} AND {matched}={rows}"
    returned = "1" if unique_keys else f"{_ROWS}.ord"
    return (
        f'WITH "__mapper_written" AS ({sql} RETURNING {returned}) '
        f"SELECT CASE WHEN {exact} THEN count(*) "
        f"ELSE format({text}::text,{matched},count(*))::integer END "
        'FROM "__mapper_written"'
    )


def _guard_counts(error: DataError) -> tuple[int, int] | None:
    """(batch rows matched, rows written) from a guarded statement's own error, else None."""
    found = _GUARD_COUNTS.search(str(error)) if error.code == "22P02" else None
    if found is None:
        return None
    return int(found.group(1)), int(found.group(2))


def _shortfall(op: UpdateBatch | DeleteBatch, matched: int) -> int:
    """How many batch rows the statement did not match."""
    if matched > len(op.keys):
        raise key_not_enforced(op, matched)
    return len(op.keys) - matched


def _named(op: UpdateBatch | DeleteBatch, stale: list[int], short: int) -> list[int]:
    """The stale rows found after a short count; all of them, or the error naming those it
    could (the others matched again when looked up: changed back meanwhile)."""
    if len(stale) >= short:
        return stale
    raise stale_entity_error(op, stale, unnamed=short - len(stale))


def _postgres_error(error: Any) -> MapperError:
    code: str = getattr(error, "sqlstate", "") or ""
    message = getattr(error, "message", None) or str(error)
    if code.startswith("08") or code in ("57P01", "57P02", "57P03"):
        return ConnectionLost(f"PostgreSQL connection lost: {message}", code=code)
    if code in _INTEGRITY:
        return IntegrityError(
            message,
            code=code,
            constraint=getattr(error, "constraint_name", None),
            table=getattr(error, "table_name", None),
        )
    if code in _CONFLICT:
        return ConflictError(message, code=code)
    if code in _FULL:
        return StorageFull(message, code=code)
    if code.startswith("22"):
        return DataError(message, code=code)
    if code == "57014":
        return DatabaseError(f"statement cancelled: {message}", code=code)
    return DatabaseError(message, code=code)
