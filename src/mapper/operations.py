"""Backend-neutral operations: what the unit of work asks a backend to do.

A flush becomes a list of `InsertBatch`, `UpdateBatch` and `DeleteBatch`; queries become
`Select` and `Count`. Values are Python values, already checked against their column types;
each backend converts them for its driver (SQL dialects) or stores them (memory backend).
Rows are listed in the order they must be written (GUARANTEES G8).

Pure data. Built by `uow/`; consumed by `dialects/`.
"""

from __future__ import annotations

import functools
import operator
from collections.abc import Callable, Iterator, Sequence
from typing import Any, Literal, overload

import attrs

from mapper.codec import row_codec
from mapper.criteria import Criterion, Ordering
from mapper.errors import StaleEntityError, StaleRow
from mapper.mapping import ColumnMeta, EntityMeta, RelationMeta
from mapper.types import DialectName

__all__ = [
    "Count",
    "DeleteBatch",
    "InsertBatch",
    "LockRows",
    "Operation",
    "OperationName",
    "PickedRows",
    "PlannedBatch",
    "Select",
    "SelectLinked",
    "UpdateBatch",
    "WriteBatch",
    "linked_rows",
    "stale_entity_error",
]

OperationName = Literal[
    "insert", "update", "delete", "lock", "select", "count", "begin", "commit", "rollback", "ddl"
]


class PickedRows(Sequence[tuple[Any, ...]]):
    """A batch's rows as some values of other rows, taken out only when a row is read.

    `source` holds one fuller row (a tuple) per batch row, and `positions` say which of its
    values make the batch row, in order; with `positions` None, each item of `source` is
    the row's only value (a one-column key). A backend that sends rows column by column
    (PostgreSQL's arrays) takes `column(i)` straight from `source`, so no tuple is made per
    row only to be taken apart again; every other reader sees a sequence of tuples.
    `source` is not copied: the unit of work does not change it after the batch is made.
    """

    __slots__ = ("_pick", "_positions", "_source")

    def __init__(self, source: Sequence[Any], positions: Sequence[int] | None = None) -> None:
        self._source = source
        self._positions = None if positions is None else tuple(positions)
        self._pick: Callable[[Any], tuple[Any, ...]]
        if self._positions is None:
            self._pick = _one_value_row
        elif self._positions == tuple(range(len(self._positions))):
            # The leading values: a tuple's full slice is the tuple itself, so rows that
            # are all picked are not copied.
            self._pick = operator.itemgetter(slice(len(self._positions)))
        elif len(self._positions) == 1:
            self._pick = functools.partial(_one_position_row, self._positions[0])
        else:
            self._pick = operator.itemgetter(*self._positions)

    def column(self, index: int) -> list[Any]:
        """The values of the rows' column `index`, as a new list."""
        if self._positions is None:
            if index != 0:
                raise IndexError(f"rows of one value have no column {index}")
            return list(self._source)
        return list(map(operator.itemgetter(self._positions[index]), self._source))

    def __len__(self) -> int:
        return len(self._source)

    @overload
    def __getitem__(self, index: int) -> tuple[Any, ...]: ...

    @overload
    def __getitem__(self, index: slice) -> list[tuple[Any, ...]]: ...

    def __getitem__(self, index: int | slice) -> tuple[Any, ...] | list[tuple[Any, ...]]:
        if isinstance(index, slice):
            return list(map(self._pick, self._source[index]))
        return self._pick(self._source[index])

    def __iter__(self) -> Iterator[tuple[Any, ...]]:
        return map(self._pick, self._source)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Sequence) or isinstance(other, (str, bytes)):
            return NotImplemented
        return list(self) == list(other)

    __hash__ = None  # type: ignore[assignment]  # equal to lists, so unhashable as they are

    def __repr__(self) -> str:
        return f"PickedRows({list(self)!r})"


def _one_value_row(value: Any) -> tuple[Any, ...]:
    return (value,)


def _one_position_row(position: int, row: Sequence[Any]) -> tuple[Any, ...]:
    return (row[position],)


@attrs.frozen(eq=False)
class InsertBatch:
    """Insert `rows` (values in `columns` order) into the mapping's table.

    `returning` names the database-generated columns to read back; the backend returns
    their values in the order of `rows`, whatever order the database reports them in (G9).
    """

    meta: EntityMeta
    columns: tuple[ColumnMeta, ...]
    rows: Sequence[tuple[Any, ...]]
    returning: tuple[ColumnMeta, ...] = ()

    operation: Literal["insert"] = "insert"


@attrs.frozen(eq=False)
class UpdateBatch:
    """Set `columns` to `values[i]` in the row whose primary key is `keys[i]`.

    With a version column, the row must still have `versions[i]`, and the version is bumped
    by one. The backend reports which rows were not matched (stale).
    """

    meta: EntityMeta
    columns: tuple[ColumnMeta, ...]
    keys: Sequence[tuple[Any, ...]]
    values: Sequence[tuple[Any, ...]]
    versions: Sequence[Any] | None = None

    operation: Literal["update"] = "update"

    @property
    def rows(self) -> Sequence[tuple[Any, ...]]:
        return self.keys


@attrs.frozen(eq=False)
class DeleteBatch:
    """Delete the rows whose primary keys are `keys` (and, if versioned, still `versions`)."""

    meta: EntityMeta
    keys: Sequence[tuple[Any, ...]]
    versions: Sequence[Any] | None = None

    operation: Literal["delete"] = "delete"

    @property
    def rows(self) -> Sequence[tuple[Any, ...]]:
        return self.keys


def stale_entity_error(
    op: UpdateBatch | DeleteBatch, indexes: Sequence[int], unnamed: int = 0
) -> StaleEntityError:
    """The error for the batch rows at `indexes` that the statement did not match (G6)."""
    meta = op.meta
    rows = [
        StaleRow(
            meta.name,
            op.keys[index] if meta.composite_key else op.keys[index][0],
            None if op.versions is None else op.versions[index],
        )
        for index in indexes
    ]
    return StaleEntityError(f"{op.operation} of {meta.name}", rows, unnamed)


@attrs.frozen(eq=False)
class LockRows:
    """Lock the rows with these keys, in key order, before a flush changes them (G8).

    Sent only to backends with row locks, when a flush would otherwise touch one table's
    rows in more than one batch: the lock order is then the key order whatever the batches.
    """

    meta: EntityMeta
    keys: Sequence[tuple[Any, ...]]

    operation: Literal["lock"] = "lock"

    @property
    def rows(self) -> Sequence[tuple[Any, ...]]:
        return self.keys


@attrs.frozen(eq=False)
class Select:
    """Read all mapped columns of the rows matching `where`, in column order."""

    meta: EntityMeta
    where: Criterion | None = None
    order_by: tuple[Ordering, ...] = ()
    limit: int | None = None
    offset: int | None = None

    operation: Literal["select"] = "select"


@attrs.frozen(eq=False)
class SelectLinked:
    """Targets of a many-to-many relation for the owners with `owner_keys`, in one query.

    Each row is the owner's key followed by the target's columns in column order.
    """

    relation: RelationMeta
    owner_keys: Sequence[Any]

    operation: Literal["select"] = "select"

    @property
    def meta(self) -> EntityMeta:
        return self.relation.target


def linked_rows(
    op: SelectLinked, rows: Sequence[Sequence[Any]], dialect: DialectName
) -> list[tuple[Any, Sequence[Any]]]:
    """(owner key, target row) pairs in Python values, from a backend's SelectLinked rows."""
    owner = op.relation.link_owner
    owner_load = None if owner is None else owner.type.loader(dialect)
    target_load = row_codec(op.relation.target, dialect).load
    result = []
    for row in rows:
        key = row[0] if owner_load is None or row[0] is None else owner_load(row[0])
        target = tuple(row[1:])
        result.append((key, target if target_load is None else target_load(target)))
    return result


@attrs.frozen(eq=False)
class Count:
    """Count the rows matching `where` (`exists` stops at the first)."""

    meta: EntityMeta
    where: Criterion | None = None
    exists: bool = False

    operation: Literal["count"] = "count"


WriteBatch = InsertBatch | UpdateBatch | DeleteBatch | LockRows
Operation = WriteBatch | Select | SelectLinked | Count


@attrs.frozen
class PlannedBatch:
    """One batch the next flush would run: shown by `UnitOfWork.plan()`, run by nothing."""

    operation: Literal["insert", "update", "delete", "lock"]
    table: str
    rows: int
    sql: tuple[str, ...]
    """The statements the backend would send (empty for the memory backend)."""
