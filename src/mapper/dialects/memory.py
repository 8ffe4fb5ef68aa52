"""The in-memory backend: `connect("memory://")`, for domain tests without a server.

It receives the same operations the unit of work sends to the SQL backends and applies them
to tables of Python tuples, enforcing what the SQL backends enforce with the same
exceptions: primary keys, unique columns, NOT NULL, foreign keys (RESTRICT on delete),
generated keys and version checks. Values are stored in the form the column types give them
(`types.py`, dialect "memory"): JSON as text, aware datetimes in UTC, enums by value; so
stored rows are copies no entity can change, and criteria compare what SQL compares.
Criteria are evaluated by `criteria.predicate` with SQL's three-valued logic and ordering.

Transactions work like SQLite's: a unit of work takes the database's one write lock at
BEGIN and writes to private copies of the tables it touches; COMMIT swaps them in, ROLLBACK
drops them. Other units of work read the committed tables meanwhile, so uncommitted changes
stay invisible and version conflicts surface as on the SQL backends. Every operation passes
the statement hook (`sql` is a short description, not SQL).

No driver. Loaded by `database.connect` for memory:// URLs.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import AsyncGenerator, Callable, Sequence
from typing import Any, ClassVar

from mapper.capabilities import Capabilities
from mapper.codec import RowCodec, row_codec
from mapper.criteria import (
    And,
    Between,
    ColumnReference,
    Comparison,
    Criterion,
    InList,
    IsNull,
    Like,
    Not,
    Or,
    Ordering,
    Related,
    is_column,
    predicate,
    sort_rows,
)
from mapper.database import ConnectionOptions, refuse_alone
from mapper.errors import (
    ConfigurationError,
    ConflictError,
    DatabaseError,
    IntegrityError,
    ValidationError,
    Violation,
)
from mapper.events import StatementEvent, StatementHooks
from mapper.mapping import ColumnMeta, EntityMeta
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
from mapper.pool import SimplePool
from mapper.schema import constraint_name
from mapper.types import DialectName
from mapper.url import DatabaseURL

__all__ = ["MemoryConnection", "MemoryDialect", "MemoryTable"]

Row = tuple[Any, ...]
Key = tuple[Any, ...]


class MemoryTable:
    """The rows of one table by primary key, with an index per unique column."""

    __slots__ = ("keys", "meta", "rows", "unique")

    def __init__(self, meta: EntityMeta) -> None:
        self.meta = meta
        self.keys = tuple(c.position for c in meta.primary_key)
        self.rows: dict[Key, Row] = {}
        self.unique: dict[int, dict[Any, Key]] = {c.position: {} for c in meta.columns if c.unique}

    def copy(self) -> MemoryTable:
        twin = MemoryTable.__new__(MemoryTable)
        twin.meta = self.meta
        twin.keys = self.keys
        twin.rows = dict(self.rows)
        twin.unique = {position: dict(index) for position, index in self.unique.items()}
        return twin

    def key_of(self, row: Row) -> Key:
        return tuple(row[p] for p in self.keys)

    def put(self, key: Key, row: Row) -> None:
        old = self.rows.get(key)
        for position, index in self.unique.items():
            if old is not None and old[position] is not None:
                index.pop(old[position], None)
            if row[position] is not None:
                index[row[position]] = key
        self.rows[key] = row

    def remove(self, key: Key) -> None:
        old = self.rows.pop(key)
        for position, index in self.unique.items():
            if old[position] is not None:
                index.pop(old[position], None)


class MemoryStore:
    """One memory database: committed tables, key sequences and the write lock."""

    def __init__(self) -> None:
        self.tables: dict[str, MemoryTable] = {}
        self.sequences: dict[str, itertools.count[int]] = {}
        self._writer: asyncio.Lock | None = None
        self._writer_loop: asyncio.AbstractEventLoop | None = None

    @property
    def writer(self) -> asyncio.Lock:
        """The write lock, made for the running event loop (a named database can outlive one)."""
        loop = asyncio.get_running_loop()
        if self._writer is None or (self._writer_loop is not loop and not self._writer.locked()):
            self._writer = asyncio.Lock()
            self._writer_loop = loop
        return self._writer


# memory://name: one database per name for the life of the process.
_named: dict[str, MemoryStore] = {}


def _name(table: str) -> str:
    return table.lower()


class MemoryDialect:
    """A memory database behind a pool of connections (the pool bounds concurrency alike)."""

    name: ClassVar[DialectName] = "memory"

    def __init__(self, url: DatabaseURL, options: ConnectionOptions, hooks: StatementHooks) -> None:
        self.url = url
        self.options = options
        self.hooks = hooks
        self.capabilities = Capabilities(
            transactions=True,
            savepoints=False,
            returning=True,
            generated_keys=True,
            array_parameters=True,
            parameter_limit=2**31 - 1,
            concurrent_writers=False,
        )
        extra = dict(options.extra)
        try:
            self.busy_timeout = int(extra.pop("busy_timeout", "5000")) / 1000
        except ValueError:
            raise ConfigurationError("busy_timeout must be an int (milliseconds)") from None
        if extra:
            raise ConfigurationError(
                f"unknown memory connection options: {', '.join(sorted(extra))}"
            )
        name = url.database
        if name:
            self.store = _named.setdefault(name, MemoryStore())
        else:
            self.store = MemoryStore()
        self._pool: SimplePool[MemoryConnection] | None = None
        self._sessions = itertools.count(1)

    async def open(self) -> None:
        async def opener() -> MemoryConnection:
            return MemoryConnection(self, next(self._sessions))

        async def closer(connection: MemoryConnection) -> None:
            connection.abandon()

        self._pool = SimplePool(opener, closer, self.options.pool_max)

    def _require_pool(self) -> SimplePool[MemoryConnection]:
        if self._pool is None:
            raise DatabaseError("the memory database is not open")
        return self._pool

    async def acquire(self, timeout: float) -> MemoryConnection:
        return await self._require_pool().acquire(timeout)

    def pool_status(self) -> tuple[int, int]:
        pool = self._require_pool()
        return pool.size, pool.in_use

    async def release(self, connection: MemoryConnection, discard: bool) -> None:
        await self._require_pool().release(connection, discard=discard)

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.close()

    def can_send_alone(self, op: WriteBatch) -> bool:
        return False

    def compile(
        self, op: WriteBatch, after_writes: bool = False, alone: bool = False
    ) -> tuple[str, ...]:
        refuse_alone(self.name, alone)
        return (describe(op),)


def _names(columns: Sequence[ColumnMeta]) -> str:
    return ",".join(f'"{c.name}"' for c in columns)


def describe(op: WriteBatch | Select | Count) -> str:
    """What the hook and plan() show for a memory operation: SQL-like, never run as SQL."""
    meta = op.meta
    table = f'"{meta.table}"'
    keys = _names(meta.primary_key)
    if isinstance(op, InsertBatch):
        text = f"INSERT INTO {table} ({_names(op.columns)})"
    elif isinstance(op, UpdateBatch):
        versioned = meta.version is not None and op.versions is not None
        columns = [*op.columns, meta.version] if versioned and meta.version else op.columns
        match = (
            [*meta.primary_key, meta.version] if versioned and meta.version else meta.primary_key
        )
        text = f"UPDATE {table} SET {_names(columns)} WHERE {_names(match)}"
    elif isinstance(op, DeleteBatch):
        text = f"DELETE FROM {table} WHERE {keys}"
    elif isinstance(op, LockRows):
        text = f"LOCK {table} ({keys})"
    elif isinstance(op, Count):
        text = f"SELECT COUNT(*) FROM {table}"
    else:
        text = f"SELECT * FROM {table}"
    rows = "" if isinstance(op, (Select, Count)) else f", {len(op.rows)} rows"
    return f"{text} -- memory{rows}"


class MemoryConnection:
    """One session on a memory database; its transaction writes to private table copies."""

    def __init__(self, dialect: MemoryDialect, session: int) -> None:
        self._dialect = dialect
        self._store = dialect.store
        self._hooks = dialect.hooks
        self._session = session
        self._working: dict[str, MemoryTable] | None = None

    # -- the statement hook ---------------------------------------------------------------

    async def _statement(
        self,
        operation: str,
        table: str | None,
        action: Callable[[], Any],
        *,
        sql: str,
        rows: int | None = None,
        parameters: Sequence[Any] = (),
        affected: Callable[[Any], int] | None = None,
    ) -> Any:
        """Run one operation between its before and after events, like a SQL statement."""
        hooks = self._hooks

        def event(phase: str, **after: Any) -> StatementEvent:
            return StatementEvent(
                phase=phase,  # type: ignore[arg-type]
                database="memory",
                operation=operation,
                table=table,
                sql=sql,
                parameter_count=len(parameters),
                session_id=self._session,
                parameters=tuple(parameters) if hooks.log_parameters else None,
                **after,
            )

        if hooks.wants_before:
            await hooks.emit(event("before"))
        started = time.perf_counter()
        try:
            result = action()
            if asyncio.iscoroutine(result):
                result = await result
        except BaseException as error:
            if hooks.wants_after:
                await hooks.emit(
                    event("after", duration=time.perf_counter() - started, error=error)
                )
            raise
        if hooks.wants_after:
            count = affected(result) if affected is not None else rows
            await hooks.emit(
                event("after", duration=time.perf_counter() - started, row_count=count)
            )
        return result

    # -- transactions ---------------------------------------------------------------------

    async def begin(self) -> None:
        async def take_lock() -> None:
            try:
                await asyncio.wait_for(self._store.writer.acquire(), self._dialect.busy_timeout)
            except TimeoutError:
                raise ConflictError(
                    "the memory database is locked by another unit of work's transaction"
                ) from None
            self._working = {}

        await self._statement("begin", None, take_lock, sql="BEGIN")

    async def commit(self) -> None:
        def swap() -> None:
            if self._working is not None:
                self._store.tables.update(self._working)
            self._end()

        await self._statement("commit", None, swap, sql="COMMIT")

    async def rollback(self) -> None:
        if self._working is not None:
            await self._statement("rollback", None, self._end, sql="ROLLBACK")

    def _end(self) -> None:
        if self._working is not None:
            self._working = None
            self._store.writer.release()

    def abandon(self) -> None:
        """Drop an unfinished transaction (the pool discards this connection)."""
        self._end()

    async def close(self, *, discard: bool) -> None:
        # Never suspends (the pool's release and closer do not wait), so a cancellation
        # cannot cut it short.
        self._end()  # never back to the pool mid-transaction
        await self._dialect.release(self, discard)

    # -- tables ---------------------------------------------------------------------------

    def _visible(self, meta: EntityMeta) -> MemoryTable:
        name = _name(meta.table)
        if self._working is not None and name in self._working:
            return self._working[name]
        table = self._store.tables.get(name)
        if table is None:
            raise DatabaseError(f'no table "{meta.table}" in the memory database')
        return table

    def _writable(self, meta: EntityMeta) -> MemoryTable:
        if self._working is None:
            raise DatabaseError("memory writes need a transaction (begin first)")
        name = _name(meta.table)
        table = self._working.get(name)
        if table is None:
            table = self._working[name] = self._visible(meta).copy()
        return table

    def _table_named(self, name: str) -> MemoryTable | None:
        key = _name(name)
        if self._working is not None and key in self._working:
            return self._working[key]
        return self._store.tables.get(key)

    async def create_tables(self, metas: Sequence[EntityMeta]) -> None:
        def create() -> None:
            for meta in metas:
                name = _name(meta.table)
                if name not in self._store.tables:
                    self._store.tables[name] = MemoryTable(meta)
                    self._store.sequences.setdefault(name, itertools.count(1))

        names = ",".join(f'"{meta.table}"' for meta in metas)
        await self._statement("ddl", None, create, sql=f"CREATE TABLE {names} -- memory")

    async def drop_tables(self, metas: Sequence[EntityMeta]) -> None:
        def drop() -> None:
            for meta in metas:
                self._store.tables.pop(_name(meta.table), None)
                self._store.sequences.pop(_name(meta.table), None)

        names = ",".join(f'"{meta.table}"' for meta in metas)
        await self._statement("ddl", None, drop, sql=f"DROP TABLE {names} -- memory")

    # -- writes ---------------------------------------------------------------------------

    async def can_send_alone(self, op: WriteBatch) -> bool:
        return False

    async def insert(self, op: InsertBatch, alone: bool = False) -> list[tuple[Any, ...]]:
        refuse_alone(self._dialect.name, alone)
        rows = [_bind(row_codec(op.meta, "memory"), op.columns, row) for row in op.rows]
        generated: list[tuple[Any, ...]] = await self._statement(
            "insert",
            op.meta.table,
            lambda: self._insert(op, rows),
            sql=describe(op),
            rows=len(rows),
            parameters=_flat(rows),
        )
        return generated

    def _insert(self, op: InsertBatch, given: list[Row]) -> list[tuple[Any, ...]]:
        meta = op.meta
        table = self._writable(meta)
        width = len(meta.columns)
        sequence = self._store.sequences[_name(meta.table)]
        generated = meta.generated
        rows: list[Row] = []
        for values in given:
            cells: list[Any] = [None] * width
            for column, value in zip(op.columns, values, strict=True):
                cells[column.position] = value
            if generated is not None and cells[generated.position] is None:
                cells[generated.position] = next(sequence)
            rows.append(tuple(cells))
        self._write_rows(table, rows, updating=False)
        return [tuple(row[c.position] for c in op.returning) for row in rows]

    async def update(self, op: UpdateBatch, alone: bool = False) -> list[int]:
        refuse_alone(self._dialect.name, alone)
        codec = row_codec(op.meta, "memory")
        keys = [_bind(codec, op.meta.primary_key, key) for key in op.keys]
        values = [_bind(codec, op.columns, row) for row in op.values]
        stale: list[int] = await self._statement(
            "update",
            op.meta.table,
            lambda: self._update(op, keys, values),
            sql=describe(op),
            rows=len(keys),
            parameters=_flat(keys) + _flat(values),
            affected=lambda missed: len(keys) - len(missed),
        )
        return stale

    def _update(self, op: UpdateBatch, keys: list[Key], values: list[Row]) -> list[int]:
        meta = op.meta
        table = self._writable(meta)
        version = meta.version if op.versions is not None else None
        stale: list[int] = []
        changed: dict[Key, Row] = {}
        for index, key in enumerate(keys):
            old = table.rows.get(key)
            if old is None or (
                version is not None
                and op.versions is not None
                and old[version.position] != op.versions[index]
            ):
                stale.append(index)
                continue
            cells = list(old)
            for column, value in zip(op.columns, values[index], strict=True):
                cells[column.position] = value
            if version is not None:
                cells[version.position] = old[version.position] + 1
            changed[key] = tuple(cells)
        self._check_referenced(table, {key: table.rows[key] for key in changed}, changed)
        self._write_rows(table, list(changed.values()), updating=True)
        return stale

    async def delete(
        self, op: DeleteBatch, after_writes: bool = False, alone: bool = False
    ) -> list[int]:
        refuse_alone(self._dialect.name, alone)
        codec = row_codec(op.meta, "memory")
        keys = [_bind(codec, op.meta.primary_key, key) for key in op.keys]
        stale: list[int] = await self._statement(
            "delete",
            op.meta.table,
            lambda: self._delete(op, keys),
            sql=describe(op),
            rows=len(keys),
            parameters=_flat(keys),
            affected=lambda missed: len(keys) - len(missed),
        )
        return stale

    def _delete(self, op: DeleteBatch, keys: list[Key]) -> list[int]:
        meta = op.meta
        table = self._writable(meta)
        version = meta.version if op.versions is not None else None
        stale: list[int] = []
        doomed: dict[Key, Row] = {}
        for index, key in enumerate(keys):
            old = table.rows.get(key)
            if old is None or (
                version is not None
                and op.versions is not None
                and old[version.position] != op.versions[index]
            ):
                stale.append(index)
                continue
            doomed[key] = old
        self._check_referenced(table, doomed, {})
        for key in doomed:
            table.remove(key)
        return stale

    async def lock(self, op: LockRows) -> None:
        # The write lock is the whole database's: rows need no locks of their own.
        await self._statement(
            "lock", op.meta.table, lambda: None, sql=describe(op), rows=len(op.keys)
        )

    # -- constraints ----------------------------------------------------------------------

    def _write_rows(self, table: MemoryTable, rows: list[Row], updating: bool) -> None:
        """Write rows one by one in batch order, checking as PostgreSQL and SQLite do.

        NOT NULL, primary keys and unique values are checked row by row as each is written
        (so a row may take a value an earlier row of the batch gave up, and a swap fails);
        foreign keys are checked once the whole batch is in, so a row may refer to a later
        one. A violation undoes the rows written so far: a failed statement leaves nothing.
        """
        meta = table.meta
        written: list[tuple[Key, Row | None]] = []
        try:
            for row in rows:
                key = table.key_of(row)
                for column in meta.columns:
                    if row[column.position] is None and not column.nullable:
                        raise _violation(meta, "not null", column, None)
                old = table.rows.get(key)
                if old is not None and not updating:
                    raise _violation(meta, "pk", meta.primary_key[0], key)
                for position, index in table.unique.items():
                    value = row[position]
                    owner = None if value is None else index.get(value)
                    if owner is not None and owner != key:
                        raise _violation(meta, "uq", meta.columns[position], value)
                written.append((key, old))
                table.put(key, row)
            self._check_foreign_keys(table, rows)
        except IntegrityError:
            for key, old in reversed(written):
                if old is None:
                    table.remove(key)
                else:
                    table.put(key, old)
            raise

    def _check_foreign_keys(self, table: MemoryTable, rows: list[Row]) -> None:
        meta = table.meta
        for column in meta.columns:
            fk = column.foreign_key
            if fk is None:
                continue
            target = self._table_named(fk.target_table)
            if target is None:
                raise DatabaseError(f'no table "{fk.target_table}" in the memory database')
            target_column = next(c for c in target.meta.columns if c.name == fk.target_column)
            for row in rows:
                value = row[column.position]
                if value is not None and not _has_value(target, target_column, value):
                    raise _violation(meta, "fk", column, value)

    def _check_referenced(
        self, table: MemoryTable, old: dict[Key, Row], new: dict[Key, Row]
    ) -> None:
        """RESTRICT: a referenced value may not vanish (by delete, or by update to another)."""
        meta = table.meta
        for child in self._store.tables.values():
            child_table = self._table_named(child.meta.table) or child
            for column in child_table.meta.columns:
                fk = column.foreign_key
                if fk is None or _name(fk.target_table) != _name(meta.table):
                    continue
                target = next(c for c in meta.columns if c.name == fk.target_column)
                vanishing = {
                    row[target.position]
                    for key, row in old.items()
                    if key not in new or new[key][target.position] != row[target.position]
                }
                vanishing.discard(None)
                if not vanishing:
                    continue
                leaving = set(old) if child_table is table and not new else set()
                for key, row in child_table.rows.items():
                    if key in leaving:
                        continue  # rows deleted in this same batch refer to nothing
                    if row[column.position] in vanishing:
                        raise _violation(child_table.meta, "fk", column, row[column.position])

    # -- reads ----------------------------------------------------------------------------

    def _query(self, meta: EntityMeta, test: Callable[[Row], bool | None] | None) -> list[Row]:
        rows = list(self._visible(meta).rows.values())
        if test is None:
            return rows
        return [row for row in rows if test(row) is True]

    async def select(self, op: Select) -> Sequence[Sequence[Any]]:
        # Everything that can be refused is checked before the statement "runs", as the SQL
        # backends check it while compiling.
        _check_window(op)
        test = None if op.where is None else _predicate(op.meta, op.where, self._visible)
        keys = _order_keys(op.meta, op.order_by)

        def run() -> list[Any]:
            rows = sort_rows(self._query(op.meta, test), keys)
            start = op.offset or 0
            stop = None if op.limit is None else start + op.limit
            return rows[start:stop]

        rows = await self._statement("select", op.meta.table, run, sql=describe(op), affected=len)
        load = row_codec(op.meta, "memory").load
        return rows if load is None else [load(row) for row in rows]

    async def stream(self, op: Select, chunk_size: int) -> AsyncGenerator[Sequence[Sequence[Any]]]:
        rows = await self.select(op)
        for start in range(0, len(rows), chunk_size):
            yield rows[start : start + chunk_size]

    async def select_linked(self, op: SelectLinked) -> list[tuple[Any, Sequence[Any]]]:
        relation = op.relation
        link, owner, linked = relation.link, relation.link_owner, relation.link_target
        if link is None or owner is None or linked is None:
            raise TypeError(f"{relation.label} is not a many-to-many relation")
        codec = row_codec(link, "memory")
        wanted = {codec.bind(owner, key) for key in op.owner_keys}

        def run() -> list[Row]:
            targets = self._visible(relation.target)
            pairs = []
            for row in self._visible(link).rows.values():
                if row[owner.position] in wanted:
                    target = targets.rows.get((row[linked.position],))
                    if target is not None:
                        pairs.append((row[owner.position], *target))
            return pairs

        rows = await self._statement(
            "select", link.table, run, sql=f'SELECT LINKED "{link.table}" -- memory', affected=len
        )
        return linked_rows(op, rows, "memory")

    async def count(self, op: Count) -> int:
        test = None if op.where is None else _predicate(op.meta, op.where, self._visible)

        def run() -> list[Row]:
            return self._query(op.meta, test)

        rows = await self._statement("count", op.meta.table, run, sql=describe(op), affected=len)
        return min(len(rows), 1) if op.exists else len(rows)


def _bind(codec: RowCodec, columns: Sequence[ColumnMeta], values: Sequence[Any]) -> Row:
    return tuple(codec.bind(c, v) for c, v in zip(columns, values, strict=True))


def _flat(rows: Sequence[Row]) -> list[Any]:
    return [value for row in rows for value in row]


def _has_value(table: MemoryTable, column: ColumnMeta, value: Any) -> bool:
    if column.primary_key and len(table.keys) == 1:
        return (value,) in table.rows
    index = table.unique.get(column.position)
    if index is not None:
        return value in index
    return any(row[column.position] == value for row in table.rows.values())


_CONSTRAINT_WORDS = {
    "pk": ("23505", "duplicate key value violates the primary key"),
    "uq": ("23505", "duplicate key value violates unique constraint"),
    "fk": ("23503", "violates foreign key constraint"),
    "not null": ("23502", "null value violates not-null constraint"),
}


def _violation(meta: EntityMeta, kind: str, column: ColumnMeta, value: Any) -> IntegrityError:
    code, words = _CONSTRAINT_WORDS[kind]
    if kind == "pk":
        name = constraint_name("pk", meta.table, [k.name for k in meta.primary_key])
    elif kind == "not null":
        name = None
    else:
        name = constraint_name(kind, meta.table, [column.name])
    label = f' "{name}"' if name else ""
    return IntegrityError(
        f"{words}{label} on {meta.table}.{column.name} (value {value!r})",
        code=code,
        constraint=name,
        table=meta.table,
        columns=(column.name,),
    )


def _check_window(op: Select) -> None:
    for name, value in (("limit", op.limit), ("offset", op.offset)):
        if value is not None and (
            not isinstance(value, int) or isinstance(value, bool) or value < 0
        ):
            raise ValueError(f"{name} must be a non-negative int, got {value!r}")


def _predicate(
    meta: EntityMeta, where: Criterion, table_of: Callable[[EntityMeta], MemoryTable]
) -> Callable[[Row], bool | None]:
    """The criterion checked like the SQL backends check it, then compiled for rows."""
    _check_operands(meta, where)
    codec = row_codec(meta, "memory")

    def operand(reference: ColumnReference, value: Any) -> Any:
        return codec.bind(meta.column_of(reference), value)

    def related(node: Related) -> Callable[[Row], bool | None]:
        return _related(meta, node, table_of)

    def position(reference: ColumnReference) -> int:
        return meta.column_of(reference).position

    return predicate(where, position, operand, related)


def _check_operands(meta: EntityMeta, where: Criterion) -> None:
    """ValidationError for every operand its column refuses, across relations too."""
    violations: list[Violation] = []

    def check(meta: EntityMeta, reference: ColumnReference, value: Any, pattern: bool) -> None:
        column = meta.column_of(reference)
        rule = column.operand_rule(value, pattern)
        if rule is not None:
            violations.append(Violation(meta.name, column.label, value, rule))

    def walk(meta: EntityMeta, node: Criterion) -> None:
        if isinstance(node, Comparison):
            if is_column(node.value):
                meta.column_of(node.value)
            else:
                check(meta, node.column, node.value, False)
        elif isinstance(node, InList):
            for value in node.values:
                check(meta, node.column, value, False)
        elif isinstance(node, Like):
            check(meta, node.column, node.pattern, True)
        elif isinstance(node, Between):
            check(meta, node.column, node.low, False)
            check(meta, node.column, node.high, False)
        elif isinstance(node, IsNull):
            meta.column_of(node.column)
        elif isinstance(node, (And, Or)):
            for part in node.parts:
                walk(meta, part)
        elif isinstance(node, Not):
            walk(meta, node.part)
        elif isinstance(node, Related):
            relation = meta.relation_of(node.relation)
            if node.where is not None:
                walk(relation.target, node.where)

    walk(meta, where)
    if violations:
        raise ValidationError(violations)


def _related(
    meta: EntityMeta, node: Related, table_of: Callable[[EntityMeta], MemoryTable]
) -> Callable[[Row], bool | None]:
    """`relation.has()` / `.any()` for stored rows: membership in the related keys.

    The related keys are read on first use, inside the statement, like a SQL subquery.
    """
    relation = meta.relation_of(node.relation)
    target = relation.target
    inner = None if node.where is None else _predicate(target, node.where, table_of)
    found: list[set[Any]] = []

    def matching() -> list[Row]:
        rows = table_of(target).rows.values()
        return [row for row in rows if inner is None or inner(row) is True]

    def keys() -> set[Any]:
        if not found:
            target_key = target.primary_key[0].position
            if relation.column is not None:
                found.append({row[target_key] for row in matching()})
            elif relation.remote is not None:
                remote = relation.remote.position
                found.append({row[remote] for row in matching()} - {None})
            else:
                link, owner, linked = relation.link, relation.link_owner, relation.link_target
                if link is None or owner is None or linked is None:
                    raise TypeError(f"{relation.label} is not a relation the memory backend knows")
                targets = {row[target_key] for row in matching()}
                found.append(
                    {
                        row[owner.position]
                        for row in table_of(link).rows.values()
                        if row[linked.position] in targets
                    }
                )
        return found[0]

    if relation.column is not None:
        position = relation.column.position

        def refers(row: Row) -> bool | None:
            value = row[position]
            return None if value is None else value in keys()

        return refers
    own_key = meta.primary_key[0].position
    return lambda row: row[own_key] in keys()


def _order_keys(meta: EntityMeta, order_by: Sequence[Ordering]) -> list[tuple[int, bool]]:
    keys = []
    for ordering in order_by:
        column = meta.column_of(ordering.column)
        if not column.type.comparable:
            raise ConfigurationError(
                f"{meta.map_class.__name__}.{column.attribute}: cannot order by a "
                f"{type(column.type).__name__} column"
            )
        keys.append((column.position, ordering.descending))
    return keys
