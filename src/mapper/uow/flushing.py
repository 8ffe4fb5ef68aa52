"""Running one flush: the ordered batches on a connection, and what they change in memory.

`Flush.run` hands each batch to the connection, writes generated keys, defaults and
versions into the entities (remembering every old value in the unit of work's undo log, so a
failure can put them back: GUARANTEES G2), raises `StaleEntityError` for rows an update or
delete did not find (G6), and names the entity and attribute behind a violated constraint.
Foreign keys to entities inserted in the same flush are filled in just before their batch
runs; one whose target comes later (a cycle) goes in as NULL and is set by an update once
the target is in. `Flush.settle` then records new snapshots from what was written, not from
the entities as they are afterwards, so a change made while the flush awaited the database
is not lost.

Called by `uow/unit_of_work.py`.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Sequence
from typing import Any

import attrs

from mapper.codec import PendingKey, entity_codec, write_attribute
from mapper.database import Connection
from mapper.errors import IntegrityError, StaleEntityError, StaleRow, UnitOfWorkError
from mapper.mapping import ColumnMeta, EntityMeta
from mapper.operations import DeleteBatch, InsertBatch, LockRows, UpdateBatch
from mapper.registry import Registry
from mapper.schema import constraint_owner
from mapper.uow.changes import Delete, Insert, Update, key_tuple
from mapper.uow.commit_order import Step
from mapper.uow.identity_map import IdentityMap

__all__ = ["Flush", "UndoLog"]

UndoLog = list[tuple[Any, str, Any]]
"""(entity, attribute, old value) for everything the mapper wrote since the transaction began."""


@attrs.frozen
class _Deferred:
    """A foreign key inserted as NULL because its target was not in yet."""

    meta: EntityMeta
    record: Any
    column: ColumnMeta
    target: Any


class Flush:
    """One flush's batches, run in order; `written` collects the values each row got."""

    def __init__(self, registry: Registry, steps: Sequence[Step], undo: UndoLog) -> None:
        self._registry = registry
        self.steps = steps
        self._undo = undo
        self._written: dict[int, tuple[Any, ...]] = {}

    async def run(self, connection: Connection) -> None:
        deferred: list[_Deferred] = []
        inserting = True
        for step in self.steps:
            op = step.op
            if inserting and not isinstance(op, InsertBatch):
                inserting = False
                await self._fill_deferred(connection, deferred)
            try:
                if isinstance(op, InsertBatch):
                    await self._insert(connection, op, step.records, deferred)
                elif isinstance(op, UpdateBatch):
                    op = self._resolved_update(op, step.records)
                    stale = await connection.update(op)
                    _check_stale("update", op.meta, step.records, stale)
                    self._bump_versions(op.meta, step.records)
                elif isinstance(op, DeleteBatch):
                    stale = await connection.delete(op)
                    _check_stale("delete", op.meta, step.records, stale)
                elif isinstance(op, LockRows):
                    await connection.lock(op)
            except IntegrityError as error:
                deleting = isinstance(op, DeleteBatch)
                raise self._explain(error, op.meta, deleting) from error.__cause__
        if inserting:
            await self._fill_deferred(connection, deferred)

    def _resolve(
        self, meta: EntityMeta, record: Any, deferred: list[_Deferred] | None
    ) -> tuple[Any, ...]:
        """The record's values with keys of related new entities filled in."""
        values: tuple[Any, ...] = self._written.get(id(record), record.values)
        if not any(type(value) is PendingKey for value in values):
            return values
        resolved = list(values)
        for position, value in enumerate(values):
            if type(value) is not PendingKey:
                continue
            target = value.target
            key = entity_codec(self._registry.meta(type(target))).key(target)
            if key is not None:
                resolved[position] = key
                continue
            column = meta.columns[position]
            if deferred is None or not column.nullable or record.entity is None:
                raise UnitOfWorkError(
                    f"{meta.name}.{column.label} refers to a new {type(target).__name__} that "
                    "cannot be inserted before it: their foreign keys form a cycle with no "
                    "nullable key to break it"
                )
            resolved[position] = None  # set by an update once the target is in
            deferred.append(_Deferred(meta, record, column, target))
        return tuple(resolved)

    async def _insert(
        self,
        connection: Connection,
        op: InsertBatch,
        records: Sequence[Any],
        deferred: list[_Deferred],
    ) -> None:
        for record in records:
            for attribute, value in record.writes:
                self._write(record.entity, attribute, value)
        rows = []
        pick = _picker([c.position for c in op.columns])
        written = self._written
        for record in records:
            full = self._resolve(op.meta, record, deferred)
            written[id(record)] = full
            rows.append(pick(full))
        generated = await connection.insert(attrs.evolve(op, rows=rows))
        if not op.returning:
            return
        positions = [c.position for c in op.returning]
        for record, values in zip(records, generated, strict=True):
            row = list(self._written[id(record)])
            for column, position, value in zip(op.returning, positions, values, strict=True):
                self._write(record.entity, column.attribute, value)
                row[position] = value
            self._written[id(record)] = tuple(row)

    def _resolved_update(self, op: UpdateBatch, records: Sequence[Any]) -> UpdateBatch:
        resolved = [self._resolve(op.meta, record, None) for record in records]
        if all(full is record.values for full, record in zip(resolved, records, strict=True)):
            return op
        values = [tuple(full[c.position] for c in op.columns) for full in resolved]
        for record, full in zip(records, resolved, strict=True):
            self._written[id(record)] = full
        return attrs.evolve(op, values=values)

    async def _fill_deferred(self, connection: Connection, deferred: list[_Deferred]) -> None:
        """Set the foreign keys that went in as NULL, now that their targets are in."""
        groups: dict[tuple[int, int], list[_Deferred]] = {}
        for item in deferred:
            groups.setdefault((id(item.meta), item.column.position), []).append(item)
        for items in groups.values():
            meta, column = items[0].meta, items[0].column
            codec = entity_codec(meta)
            keys, values = [], []
            for item in items:
                target = item.target
                target_key = entity_codec(self._registry.meta(type(target))).key(target)
                keys.append(key_tuple(meta, codec.key(item.record.entity)))
                values.append((target_key,))
                row = list(self._written[id(item.record)])
                row[column.position] = target_key
                self._written[id(item.record)] = tuple(row)
            # A fix-up of rows this flush inserted: no version check, no version bump.
            stale = await connection.update(UpdateBatch(meta, (column,), keys, values))
            _check_stale("update", meta, [item.record for item in items], stale)
        deferred.clear()

    def _bump_versions(self, meta: EntityMeta, records: Sequence[Any]) -> None:
        version = meta.version
        if version is None:
            return
        for record in records:
            bumped = record.version + 1
            self._write(record.entity, version.attribute, bumped)
            row = list(self._written.get(id(record), record.values))
            row[version.position] = bumped
            self._written[id(record)] = tuple(row)

    def _write(self, entity: Any, attribute: str, value: Any) -> None:
        """Set an attribute the flush owns, remembering the old value (G2)."""
        self._undo.append((entity, attribute, getattr(entity, attribute)))
        write_attribute(entity, attribute, value)

    def _explain(self, error: IntegrityError, meta: EntityMeta, deleting: bool) -> IntegrityError:
        """The same error, naming the entity and attribute behind the constraint.

        A delete refused by another table's foreign key names the entity being deleted,
        and says which relation still refers to it.
        """
        metas = self._registry.metas()
        owner = constraint_owner(metas, error.constraint, error.table, error.columns)
        attribute = None
        message = str(error)
        if owner is not None and deleting and owner[0] is not meta:
            referring, column = owner
            message = f"still referred to by {referring.name}.{column.label} ({error})"
        elif owner is not None:
            meta, column = owner
            attribute = column.label
        where = f"{meta.name}.{attribute}" if attribute else meta.name
        return IntegrityError(
            f"{where}: {message}",
            code=error.code,
            constraint=error.constraint,
            table=meta.table if deleting else (error.table or meta.table),
            columns=error.columns,
            entity=meta.name,
            attribute=attribute,
        )

    def settle(
        self,
        identity: IdentityMap,
        new: dict[int, tuple[EntityMeta, Any]],
        removed: dict[tuple[EntityMeta, Any], Any],
    ) -> None:
        """After success: snapshots of what was written; new rows held, deleted ones gone."""
        for step in self.steps:
            op = step.op
            meta = op.meta
            codec = entity_codec(meta)
            for record in step.records:
                if record.entity is None:
                    continue  # a link row: not an entity the unit of work holds
                if isinstance(record, Delete):
                    identity.discard(meta, record.key)
                    removed.pop((meta, record.key), None)
                    continue
                values = self._written.get(id(record), record.values)
                if isinstance(record, Update):
                    key = record.key
                else:
                    new.pop(id(record.entity), None)
                    key = _key_of(meta, values)
                identity.put(meta, key, record.entity, codec.snapshot(values))


def _key_of(meta: EntityMeta, values: Sequence[Any]) -> Any:
    if meta.composite_key:
        return tuple(values[c.position] for c in meta.primary_key)
    return values[meta.primary_key[0].position]


def _check_stale(
    operation: str, meta: EntityMeta, records: Sequence[Update | Delete | Insert], stale: list[int]
) -> None:
    if stale:
        rows = []
        for index in stale:
            record = records[index]
            if isinstance(record, (Update, Delete)):
                rows.append(StaleRow(meta.name, record.key, record.version))
        raise StaleEntityError(f"{operation} of {meta.name}", rows)


def _picker(positions: list[int]) -> Callable[[tuple[Any, ...]], tuple[Any, ...]]:
    """A function taking the values at `positions` out of a row, as a tuple."""
    width = len(positions)
    if positions == list(range(width)):  # the usual case: every column, in order
        return lambda row: row[:width]  # a tuple's full slice is the tuple itself
    if width == 1:
        (only,) = positions
        return lambda row: (row[only],)
    return operator.itemgetter(*positions)
