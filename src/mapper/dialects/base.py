"""The SQL compiler shared by the SQL dialects, and its statement cache.

`SqlCompiler` turns operations (`operations.py`) into SQL text with parameter placeholders
and the parameter values beside it; values never enter the text (DESIGN principle 4,
GUARANTEES G10). PyPika renders the statements and quotes identifiers; each statement shape
(mapping, operation, columns, criteria shape, batch size where the dialect needs one) is
built once and cached, so the hot path only binds values (principle 5).

The base class writes the portable forms (multi-row VALUES, UPDATE ... FROM (VALUES ...),
row-value IN); dialects override the forms they do better (PostgreSQL's arrays and unnest)
and the placeholder style. Criteria values are checked against their column types here,
before any SQL runs.

Pure: no driver, no I/O. Used by `dialects/sql.py` and each dialect; unit-tested per dialect.
"""

from __future__ import annotations

import collections
import functools
import typing
from collections.abc import Callable, Hashable, Sequence
from typing import Any, ClassVar

import attrs
from pypika import Field, Parameter, Query, Table
from pypika.terms import Criterion as PypikaCriterion
from pypika.terms import Not as PypikaNot
from pypika.terms import Term
from pypika.utils import format_quotes

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
)
from mapper.database import refuse_alone
from mapper.errors import ConfigurationError, DatabaseError, ValidationError, Violation
from mapper.mapping import ColumnMeta, EntityMeta, RelationMeta
from mapper.operations import (
    Count,
    DeleteBatch,
    InsertBatch,
    LockRows,
    Select,
    SelectLinked,
    UpdateBatch,
)
from mapper.types import DialectName

__all__ = [
    "Bound",
    "ParameterStyle",
    "Placeholders",
    "RawCriterion",
    "RawTerm",
    "SqlCompiler",
    "column_positions",
]


@attrs.frozen
class Bound:
    """One statement ready to run: SQL text, its parameters, and what it is for."""

    sql: str
    parameters: Sequence[Any]
    operation: str
    table: str | None
    fetch: bool = False
    """Whether the statement returns rows to read."""
    rows: int = 0
    """How many batch rows this statement carries (0 for queries)."""
    reports_count: bool = False
    """It returns one row whose first value is the rows it wrote (a guarded statement)."""


class ParameterStyle:
    """Placeholder text for the n-th (1-based) parameter of a statement."""

    def __init__(self, numbered: str | None = None, fixed: str | None = None) -> None:
        self._numbered = numbered
        self._fixed = fixed

    def __call__(self, index: int) -> str:
        if self._numbered is not None:
            return self._numbered.format(index)
        return self._fixed or "?"


class RawTerm(Term):
    """A term whose SQL was rendered by the compiler (placeholders and quoted names only)."""

    def __init__(self, sql: str) -> None:
        super().__init__()
        self._sql = sql

    def get_sql(self, **kwargs: Any) -> str:
        return self._sql


class RawCriterion(PypikaCriterion):
    def __init__(self, sql: str) -> None:
        super().__init__()
        self._sql = sql

    def get_sql(self, **kwargs: Any) -> str:
        return self._sql


class Placeholders:
    """Hands out placeholders in order while one statement is being built."""

    def __init__(self, style: ParameterStyle, start: int = 1) -> None:
        self._style = style
        self.next = start

    def take(self) -> str:
        text = self._style(self.next)
        self.next += 1
        return text


@attrs.frozen
class _SelectShape:
    sql: str
    uses_limit: bool
    uses_offset: bool


class SqlCompiler:
    """Compiles operations to SQL for one dialect; subclasses set the dialect's forms."""

    dialect: ClassVar[DialectName]
    query_class: ClassVar[type[Query]] = Query
    quote_char: ClassVar[str] = '"'
    parameter_style: ClassVar[ParameterStyle] = ParameterStyle(fixed="?")
    cache_size: ClassVar[int] = 1024

    def __init__(self, capabilities: Capabilities) -> None:
        self.capabilities = capabilities
        self._cache: collections.OrderedDict[Hashable, Any] = collections.OrderedDict()

    # -- helpers ---------------------------------------------------------------------------

    def quote(self, identifier: str) -> str:
        """A quoted identifier (identifiers were checked when the mapping was declared)."""
        return str(format_quotes(identifier, self.quote_char))

    def _cached(self, key: Hashable, build: Callable[[], Any]) -> Any:
        """The statement built for `key`, building it on first use (least recently used go)."""
        cache = self._cache
        found = cache.get(key)
        if found is None:
            if len(cache) >= self.cache_size:
                cache.popitem(last=False)
            found = cache[key] = build()
        else:
            cache.move_to_end(key)
        return found

    def codec(self, meta: EntityMeta) -> RowCodec:
        return row_codec(meta, self.dialect)

    def rows_per_statement(self, parameters_per_row: int) -> int:
        return max(1, self.capabilities.parameter_limit // max(1, parameters_per_row))

    @staticmethod
    def _chunks(count: int, size: int) -> list[tuple[int, int]]:
        return [(start, min(start + size, count)) for start in range(0, count, size)]

    @staticmethod
    def bind_rows(
        rows: Sequence[Sequence[Any]], binders: Sequence[Callable[[Any], Any] | None]
    ) -> Sequence[Sequence[Any]]:
        """Rows converted for the driver, column by column (None stays None); the rows
        themselves when no column converts (they are only read)."""
        if not any(binders):
            return rows
        out: list[list[Any]] = []
        for row in rows:
            out.append(
                [
                    value if binder is None or value is None else binder(value)
                    for value, binder in zip(row, binders, strict=True)
                ]
            )
        return out

    # -- DDL (see schema.py) ----------------------------------------------------------------

    def generated_key_ddl(self, column: ColumnMeta, sole_key: bool) -> str:
        return f"{column.type.ddl(self.dialect)} GENERATED BY DEFAULT AS IDENTITY"

    def inline_primary_key(self, column: ColumnMeta, sole_key: bool) -> bool:
        return False

    def table_options(self) -> str:
        return ""

    forward_foreign_keys: ClassVar[bool] = False

    def foreign_key_checks_sql(self, enabled: bool) -> str | None:
        return None

    def collation(self, column: ColumnMeta) -> str:
        return ""  # SQLite's default, BINARY, already compares UTF-8 by code point

    # -- criteria ----------------------------------------------------------------------------

    def _column(self, meta: EntityMeta, ref: ColumnReference) -> ColumnMeta:
        return meta.column_of(ref)

    def _field(self, meta: EntityMeta, ref: ColumnReference) -> Field:
        return Field(self._column(meta, ref).name)

    def criterion_sql(
        self, meta: EntityMeta, criterion: Criterion, placeholders: Placeholders
    ) -> PypikaCriterion:
        """PyPika criterion for `criterion`, taking placeholders in `criteria_values` order."""
        if isinstance(criterion, Comparison):
            left = self._field(meta, criterion.column)
            right: Term = (
                self._field(meta, criterion.value)
                if is_column(criterion.value)
                else Parameter(placeholders.take())
            )
            operators: dict[str, Callable[[Term, Term], PypikaCriterion]] = {
                "=": lambda a, b: a == b,
                "<>": lambda a, b: a != b,
                "<": lambda a, b: a < b,
                "<=": lambda a, b: a <= b,
                ">": lambda a, b: a > b,
                ">=": lambda a, b: a >= b,
            }
            return operators[criterion.operator](left, right)
        if isinstance(criterion, InList):
            column = self._column(meta, criterion.column)
            return RawCriterion(
                self.in_list_sql(
                    self.quote(column.name),
                    column,
                    criterion.negated,
                    len(criterion.values),
                    placeholders,
                )
            )
        if isinstance(criterion, Like):
            quoted = self._field(meta, criterion.column).get_sql(quote_char=self.quote_char)
            return RawCriterion(self.like_sql(quoted, placeholders.take(), criterion))
        if isinstance(criterion, IsNull):
            field = self._field(meta, criterion.column)
            result: PypikaCriterion = field.notnull() if criterion.negated else field.isnull()
            return result
        if isinstance(criterion, Between):
            field = self._field(meta, criterion.column)
            between: PypikaCriterion = field.between(
                Parameter(placeholders.take()), Parameter(placeholders.take())
            )
            return between
        if isinstance(criterion, (And, Or)):
            parts = [self.criterion_sql(meta, p, placeholders) for p in criterion.parts]
            combine = PypikaCriterion.all if isinstance(criterion, And) else PypikaCriterion.any
            return typing.cast(PypikaCriterion, combine(parts))
        if isinstance(criterion, Not):
            return PypikaNot(self.criterion_sql(meta, criterion.part, placeholders))
        if isinstance(criterion, Related):
            relation = meta.relation_of(criterion.relation)
            return RawCriterion(self.related_sql(relation, criterion.where, placeholders))
        raise TypeError(f"not a criterion: {criterion!r}")

    def related_sql(
        self, relation: RelationMeta, where: Criterion | None, placeholders: Placeholders
    ) -> str:
        """`relation.has(...)` / `.any(...)` as IN (subquery) on the owner's row."""
        q = self.quote
        target = relation.target
        target_key = q(target.primary_key[0].name)
        owner_key = q(relation.owner.primary_key[0].name)
        conditions = []
        if where is not None:
            inner: Term = self.criterion_sql(target, where, placeholders)
            text = str(inner.get_sql(quote_char=self.quote_char))
            # An OR must not bind looser than the AND a one-to-many adds below.
            conditions.append(f"({text})" if isinstance(where, Or) else text)
        if relation.column is not None:  # many-to-one: our foreign key is one of theirs
            condition = f" WHERE {' AND '.join(conditions)}" if conditions else ""
            subquery = f"SELECT {target_key} FROM {q(target.table)}{condition}"
            return f"{q(relation.column.name)} IN ({subquery})"
        if relation.remote is not None:  # one-to-many: some row of theirs refers to us
            # IS NOT NULL keeps NULLs out of the IN list, so NOT (...) stays true, not unknown.
            conditions.append(f"{q(relation.remote.name)} IS NOT NULL")
            return (
                f"{owner_key} IN (SELECT {q(relation.remote.name)} FROM {q(target.table)} "
                f"WHERE {' AND '.join(conditions)})"
            )
        link, link_owner, link_target = relation.link, relation.link_owner, relation.link_target
        if link is None or link_owner is None or link_target is None:
            raise TypeError(f"{relation.label} is not a relation the dialect knows")
        condition = f" WHERE {' AND '.join(conditions)}" if conditions else ""
        return (
            f"{owner_key} IN (SELECT {q(link_owner.name)} FROM {q(link.table)} WHERE "
            f"{q(link_target.name)} IN (SELECT {target_key} FROM {q(target.table)}{condition}))"
        )

    def in_list_sql(
        self,
        quoted: str,
        column: ColumnMeta,
        negated: bool,
        count: int,
        placeholders: Placeholders,
    ) -> str:
        """`quoted IN (...)` for `count` values, bound by `_in_list_values`."""
        if not count:
            return "1=1" if negated else "1=0"
        listed = ",".join(placeholders.take() for _ in range(count))
        return f"{quoted} {'NOT IN' if negated else 'IN'} ({listed})"

    def like_sql(self, field: str, placeholder: str, criterion: Like) -> str:
        if criterion.case_insensitive:
            return f"lower({field}) LIKE lower({placeholder}) ESCAPE '\\'"
        return f"{field} LIKE {placeholder} ESCAPE '\\'"

    def criteria_values(self, meta: EntityMeta, criterion: Criterion | None) -> list[Any]:
        """The parameters of `criterion`, checked and converted, in placeholder order."""
        values: list[Any] = []
        if criterion is None:
            return values
        violations: list[Violation] = []

        def bind(meta: EntityMeta, ref: ColumnReference, value: Any, pattern: bool = False) -> Any:
            column = self._column(meta, ref)
            rule = column.operand_rule(value, pattern)
            if rule is not None:
                violations.append(Violation(meta.name, column.label, value, rule))
                return None
            return value if pattern else self.codec(meta).bind(column, value)

        def walk(meta: EntityMeta, node: Criterion) -> None:
            if isinstance(node, Comparison):
                if not is_column(node.value):
                    values.append(bind(meta, node.column, node.value))
            elif isinstance(node, InList):
                # None is refused like `== None`: NULL in an IN list matches nothing, and in a
                # NOT IN list it makes every row unknown.
                bound = [bind(meta, node.column, v) for v in node.values]
                self._in_list_values(self._column(meta, node.column), bound, values)
            elif isinstance(node, Like):
                values.append(bind(meta, node.column, node.pattern, pattern=True))
            elif isinstance(node, Between):
                values.append(bind(meta, node.column, node.low))
                values.append(bind(meta, node.column, node.high))
            elif isinstance(node, (And, Or)):
                for part in node.parts:
                    walk(meta, part)
            elif isinstance(node, Not):
                walk(meta, node.part)
            elif isinstance(node, Related) and node.where is not None:
                walk(meta.relation_of(node.relation).target, node.where)

        walk(meta, criterion)
        if violations:
            raise ValidationError(violations)
        return values

    def _in_list_values(self, column: ColumnMeta, bound: list[Any], out: list[Any]) -> None:
        out.extend(bound)

    def order_sql(self, meta: EntityMeta, order_by: Sequence[Ordering]) -> str:
        if not order_by:
            return ""
        terms = []
        for ordering in order_by:
            column = self._column(meta, ordering.column)
            if not column.type.comparable:
                raise ConfigurationError(
                    f"{meta.map_class.__name__}.{column.attribute}: cannot order by a "
                    f"{type(column.type).__name__} column"
                )
            name = self.quote(column.name)
            terms.append(self.ordering_sql(name, ordering.descending))
        return " ORDER BY " + ",".join(terms)

    def ordering_sql(self, quoted: str, descending: bool) -> str:
        # One rule everywhere: NULLs are the smallest value (first ascending, last descending).
        return f"{quoted} DESC NULLS LAST" if descending else f"{quoted} ASC NULLS FIRST"

    # -- queries -------------------------------------------------------------------------------

    def _sized(self) -> bool:
        """Whether IN lists take one placeholder per value (so their length shapes the SQL)."""
        return True

    def select(self, op: Select) -> Bound:
        meta = op.meta
        shape_key = (
            "select",
            meta,
            op.where.shape(self._sized()) if op.where is not None else None,
            tuple(o.shape() for o in op.order_by),
            op.limit is not None,
            op.offset is not None,
        )

        def build() -> _SelectShape:
            table = Table(meta.table)
            placeholders = Placeholders(self.parameter_style)
            query = self.query_class.from_(table).select(*[Field(c.name) for c in meta.columns])
            if op.where is not None:
                query = query.where(self.criterion_sql(meta, op.where, placeholders))
            sql = query.get_sql(quote_char=self.quote_char) + self.order_sql(meta, op.order_by)
            if op.limit is not None:
                sql += f" LIMIT {placeholders.take()}"
            elif op.offset is not None:
                sql += self.no_limit_sql()
            if op.offset is not None:
                sql += f" OFFSET {placeholders.take()}"
            return _SelectShape(sql, op.limit is not None, op.offset is not None)

        shape: _SelectShape = self._cached(shape_key, build)
        parameters = self.criteria_values(meta, op.where)
        if shape.uses_limit:
            parameters.append(_non_negative(op.limit, "limit"))
        if shape.uses_offset:
            parameters.append(_non_negative(op.offset, "offset"))
        return Bound(shape.sql, parameters, "select", meta.table, fetch=True)

    def no_limit_sql(self) -> str:
        """What an OFFSET without LIMIT needs in front of it (SQLite needs LIMIT -1)."""
        return ""

    def select_linked(self, op: SelectLinked) -> Bound:
        """The targets of a many-to-many relation for some owners: one join of link and target."""
        relation = op.relation
        target, link = relation.target, relation.link
        owner, linked = relation.link_owner, relation.link_target
        if link is None or owner is None or linked is None:
            raise TypeError(f"{relation.label} is not a many-to-many relation")
        q = self.quote

        def build() -> str:
            placeholders = Placeholders(self.parameter_style)
            columns = ",".join(f"t.{q(c.name)}" for c in target.columns)
            condition = self.in_list_sql(
                f"l.{q(owner.name)}", owner, False, len(op.owner_keys), placeholders
            )
            join = f"l.{q(linked.name)}=t.{q(target.primary_key[0].name)}"
            return (
                f"SELECT l.{q(owner.name)},{columns} FROM {q(target.table)} AS t "
                f"JOIN {q(link.table)} AS l ON {join} WHERE {condition}"
            )

        sized = len(op.owner_keys) if self._sized() else None
        sql: str = self._cached(("linked", relation, sized), build)
        codec = self.codec(link)
        parameters: list[Any] = []
        self._in_list_values(owner, [codec.bind(owner, key) for key in op.owner_keys], parameters)
        return Bound(sql, parameters, "select", link.table, fetch=True)

    def count(self, op: Count) -> Bound:
        meta = op.meta
        shape_key = (
            "count",
            meta,
            op.where.shape(self._sized()) if op.where is not None else None,
            op.exists,
        )

        def build() -> str:
            table = Table(meta.table)
            placeholders = Placeholders(self.parameter_style)
            if op.exists:
                query = self.query_class.from_(table).select(RawTerm("1"))
            else:
                query = self.query_class.from_(table).select(RawTerm("COUNT(*)"))
            if op.where is not None:
                query = query.where(self.criterion_sql(meta, op.where, placeholders))
            sql = str(query.get_sql(quote_char=self.quote_char))
            return sql + " LIMIT 1" if op.exists else sql

        sql: str = self._cached(shape_key, build)
        return Bound(sql, self.criteria_values(meta, op.where), "count", meta.table, fetch=True)

    # -- writes: the portable multi-row VALUES forms -----------------------------------------

    def insert(self, op: InsertBatch) -> list[Bound]:
        meta = op.meta
        width = len(op.columns)
        per_statement = self.rows_per_statement(width)
        bound = self.bind_rows(op.rows, self.codec(meta).binders_for(op.columns))
        statements = []
        for start, stop in self._chunks(len(bound), per_statement):
            count = stop - start
            sql = self._cached(
                (
                    "insert",
                    meta,
                    column_positions(op.columns),
                    column_positions(op.returning),
                    count,
                ),
                functools.partial(self._insert_values_sql, op, count),
            )
            parameters = [value for row in bound[start:stop] for value in row]
            statements.append(
                Bound(sql, parameters, "insert", meta.table, bool(op.returning), count)
            )
        return statements

    def _values_rows(self, count: int, width: int) -> str:
        """`(?,?),(?,?)...`: the repeated part of a batch; PyPika renders the rest."""
        placeholders = Placeholders(self.parameter_style)
        return ",".join(
            "(" + ",".join(placeholders.take() for _ in range(width)) + ")" for _ in range(count)
        )

    def _insert_values_sql(self, op: InsertBatch, count: int) -> str:
        table = Table(op.meta.table)
        head = self.query_class.into(table).columns(*[c.name for c in op.columns])
        # PyPika renders "INSERT INTO t (a,b) VALUES (?,?)"; the rows repeat that last group.
        one_row = head.insert(*[Parameter(self.parameter_style(1)) for _ in op.columns])
        prefix = str(one_row.get_sql(quote_char=self.quote_char)).rsplit(" VALUES ", 1)[0]
        sql = f"{prefix} VALUES {self._values_rows(count, len(op.columns))}"
        if op.returning:
            sql += " RETURNING " + ",".join(self.quote(c.name) for c in op.returning)
        return sql

    def update(self, op: UpdateBatch, alone: bool = False) -> list[Bound]:
        """UPDATE statements for a batch, returning the keys they matched.

        `alone` (one statement that is its own transaction) is for dialects with
        `Capabilities.single_statement_commits`; these forms refuse it.
        """
        refuse_alone(self.dialect, alone)
        meta = op.meta
        codec = self.codec(meta)
        versioned = op.versions is not None and meta.version is not None
        key_binders = codec.binders_for(meta.primary_key)
        keys = self.bind_rows(op.keys, key_binders)
        values = self.bind_rows(op.values, codec.binders_for(op.columns))
        width = len(meta.primary_key) + int(versioned) + len(op.columns)
        statements = []
        for start, stop in self._chunks(len(keys), self.rows_per_statement(width)):
            count = stop - start
            sql = self._cached(
                ("update", meta, column_positions(op.columns), versioned, count),
                functools.partial(self._update_values_sql, meta, op.columns, versioned, count),
            )
            parameters: list[Any] = []
            for index in range(start, stop):
                parameters.extend(keys[index])
                if versioned and op.versions is not None:
                    parameters.append(op.versions[index])
                parameters.extend(values[index])
            statements.append(Bound(sql, parameters, "update", meta.table, True, count))
        return statements

    def _update_values_sql(
        self, meta: EntityMeta, columns: Sequence[ColumnMeta], versioned: bool, count: int
    ) -> str:
        width = len(meta.primary_key) + int(versioned) + len(columns)
        rows = self._values_rows(count, width)
        table = self.quote(meta.table)
        position = 1
        conditions = []
        for key in meta.primary_key:
            conditions.append(f"{table}.{self.quote(key.name)}=v.column{position}")
            position += 1
        assignments = []
        if versioned and meta.version is not None:
            version = self.quote(meta.version.name)
            conditions.append(f"{table}.{version}=v.column{position}")
            position += 1
        for column in columns:
            assignments.append(f"{self.quote(column.name)}=v.column{position}")
            position += 1
        if versioned and meta.version is not None:
            version = self.quote(meta.version.name)
            assignments.append(f"{version}={version}+1")
        returning = ",".join(self.quote(k.name) for k in meta.primary_key)
        return (
            f"UPDATE {table} SET {','.join(assignments)} FROM (VALUES {rows}) AS v "
            f"WHERE {' AND '.join(conditions)} RETURNING {returning}"
        )

    def delete(
        self, op: DeleteBatch, after_writes: bool = False, alone: bool = False
    ) -> list[Bound]:
        """DELETE statements for a batch, returning the keys they matched.

        `after_writes` (whether the transaction wrote before) does not change these forms;
        `alone` is refused, as for `update`.
        """
        refuse_alone(self.dialect, alone)
        meta = op.meta
        versioned = op.versions is not None and meta.version is not None
        keys = self.bind_rows(op.keys, self.codec(meta).binders_for(meta.primary_key))
        width = len(meta.primary_key) + int(versioned)
        statements = []
        for start, stop in self._chunks(len(keys), self.rows_per_statement(width)):
            count = stop - start
            sql = self._cached(
                ("delete", meta, versioned, count),
                functools.partial(self._delete_values_sql, meta, versioned, count),
            )
            parameters: list[Any] = []
            for index in range(start, stop):
                parameters.extend(keys[index])
                if versioned and op.versions is not None:
                    parameters.append(op.versions[index])
            statements.append(Bound(sql, parameters, "delete", meta.table, True, count))
        return statements

    def _delete_values_sql(self, meta: EntityMeta, versioned: bool, count: int) -> str:
        names = [self.quote(k.name) for k in meta.primary_key]
        if versioned and meta.version is not None:
            names.append(self.quote(meta.version.name))
        rows = self._values_rows(count, len(names))
        target = names[0] if len(names) == 1 else "(" + ",".join(names) + ")"
        returning = ",".join(self.quote(k.name) for k in meta.primary_key)
        return (
            f"DELETE FROM {self.quote(meta.table)} WHERE {target} IN (VALUES {rows}) "
            f"RETURNING {returning}"
        )

    def lock(self, op: LockRows) -> Bound:
        """SELECT ... FOR UPDATE of the rows, in key order (for backends with row locks)."""
        meta = op.meta
        keys = self.bind_rows(op.keys, self.codec(meta).binders_for(meta.primary_key))
        names = [self.quote(k.name) for k in meta.primary_key]
        target = names[0] if len(names) == 1 else "(" + ",".join(names) + ")"
        sql = self._cached(
            ("lock", meta, len(keys)),
            lambda: (
                f"SELECT {','.join(names)} FROM {self.quote(meta.table)} WHERE {target} IN "
                f"(VALUES {self._values_rows(len(keys), len(names))}) "
                f"ORDER BY {','.join(names)} FOR UPDATE"
            ),
        )
        parameters = [value for key in keys for value in key]
        return Bound(sql, parameters, "lock", meta.table, True, len(keys))

    def stale_rows(
        self,
        op: UpdateBatch | DeleteBatch,
        returned: Sequence[Sequence[Sequence[Any]]],
    ) -> list[int]:
        """Indexes of batch rows that no statement reported as written.

        The portable forms return the written rows' keys.
        """
        reported = [tuple(row) for rows in returned for row in rows]
        distinct = len(set(reported))
        if len(reported) > distinct:
            raise key_not_enforced(op, len(reported))
        if distinct == len(op.keys):
            # Every reported key is one of the batch's, and the batch's keys are distinct: as
            # many distinct keys as the batch has means each was written.
            return []
        # Compared as Python values: SQLite may hand back 1.5 for the '1.50' that was bound.
        loaders = [c.type.loader(self.dialect) for c in op.meta.primary_key]
        written = {
            tuple(
                value if loader is None or value is None else loader(value)
                for value, loader in zip(row, loaders, strict=True)
            )
            for rows in returned
            for row in rows
        }
        return [index for index, key in enumerate(op.keys) if tuple(key) not in written]

    def generated_values(
        self, op: InsertBatch, returned: Sequence[Sequence[Sequence[Any]]]
    ) -> list[tuple[Any, ...]]:
        """The `returning` values per batch row, in row order (GUARANTEES G9).

        Generated keys ascend in the order rows were inserted, while the order in which
        RETURNING reports them is not guaranteed: each statement's values are sorted.
        """
        result: list[tuple[Any, ...]] = []
        for rows in returned:
            if len(op.returning) == 1:  # the usual case: one key, sorted as plain values
                result.extend(zip(sorted([row[0] for row in rows])))
            else:
                result.extend(sorted(tuple(row) for row in rows))
        return result


def key_not_enforced(op: UpdateBatch | DeleteBatch, matched: int) -> DatabaseError:
    """More rows matched than the batch has keys: the table does not keep the key unique.

    A table mapper did not create may lack the mapped primary key's constraint; writing
    through it would change rows the unit of work never held, so the flush fails instead.
    """
    meta = op.meta
    keys = ", ".join(c.name for c in meta.primary_key)
    return DatabaseError(
        f"{op.operation} of {meta.name}: a key matched more than one row of table "
        f"{meta.table} ({matched} rows for {len(op.keys)} keys): the table does not enforce "
        f"the primary key mapped for {meta.name} ({keys}); the transaction was rolled back"
    )


def column_positions(columns: Sequence[ColumnMeta]) -> tuple[int, ...]:
    return tuple(c.position for c in columns)


def _non_negative(value: int | None, name: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ValueError(f"{name} must be a non-negative int, got {value!r}")
    return value
