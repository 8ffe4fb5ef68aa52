"""Commit order: turns a change set into ordered batches. Pure.

Tables follow the registry's foreign-key order (graphlib): inserts parents first, then
updates, then deletes children first. Within a table rows go in primary-key order
(GUARANTEES G8), so two units of work touching the same rows lock them in the same order;
rows of a self-referencing table go parents first (children first for deletes), and rows
whose key the database generates keep the order they were added. Updates are grouped by
the set of columns they change: one batch per group.

Called by `uow/unit_of_work.py` at flush and plan.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import attrs

from mapper.mapping import EntityMeta
from mapper.operations import (
    DeleteBatch,
    InsertBatch,
    LockRows,
    PickedRows,
    UpdateBatch,
    WriteBatch,
)
from mapper.uow.changes import ChangeSet, Deletes, Insert, Updates, key_tuple

__all__ = ["Step", "after_writes", "order_changes"]

R = TypeVar("R")


@attrs.frozen(eq=False)
class Step:
    """One batch to run, with the change records of its rows (same order as the rows)."""

    op: WriteBatch
    records: tuple[Insert, ...] | Updates | Deletes


def _sorted(records: list[R], key: Callable[[R], Any]) -> list[R]:
    try:
        return sorted(records, key=key)
    except TypeError:  # keys of mixed types: keep the order they came in
        return records


def _key_order(keys: list[Any]) -> list[int] | None:
    """The order of `keys` (a bare key sorts as its 1-tuple would), as the index of the
    row going first, second, ...; None where they are in order already, or do not compare
    (keys of mixed types: they keep the order they came in)."""
    try:
        # Rows loaded in key order are the usual case, and sorting a sorted list costs one
        # pass; rows out of order mostly show it in their first keys, which spares that
        # pass before the sort that counts.
        head = keys[:8]
        if head == sorted(head) and sorted(keys) == keys:
            return None
        return sorted(range(len(keys)), key=keys.__getitem__)
    except TypeError:
        return None


def _self_references(meta: EntityMeta) -> list[tuple[int, int]]:
    """(column position, referenced column position) of foreign keys to the same table."""
    pairs = []
    for column in meta.columns:
        fk = column.foreign_key
        if fk is not None and fk.target_table.lower() == meta.table.lower():
            target = next(c for c in meta.columns if c.name == fk.target_column)
            pairs.append((column.position, target.position))
    return pairs


def _parents_first(
    meta: EntityMeta, records: list[R], values: Callable[[R], Sequence[Any]]
) -> list[R]:
    """Records (given in key order) reordered so a row follows the rows it refers to.

    Among the rows free to go, the one earliest in key order goes next, so the order departs
    from key order no more than the references demand. Rows that refer to each other in a
    cycle keep key order: one statement holds them all, and PostgreSQL and SQLite check
    foreign keys at the end of the statement.
    """
    pairs = _self_references(meta)
    if not pairs or len(records) < 2:
        return records
    parents: list[set[int]] = [set() for _ in records]
    for target_position in {t for _, t in pairs}:
        index = {values(r)[target_position]: i for i, r in enumerate(records)}
        for i, record in enumerate(records):
            for position, target in pairs:
                if target == target_position:
                    j = index.get(values(record)[position])
                    if j is not None and j != i:
                        parents[i].add(j)
    children: list[list[int]] = [[] for _ in records]
    for i, mine in enumerate(parents):
        for j in mine:
            children[j].append(i)
    waiting = [len(mine) for mine in parents]
    free = [i for i, count in enumerate(waiting) if count == 0]
    heapq.heapify(free)
    order: list[int] = []
    while free:
        i = heapq.heappop(free)
        order.append(i)
        for child in children[i]:
            waiting[child] -= 1
            if waiting[child] == 0:
                heapq.heappush(free, child)
    if len(order) < len(records):
        return records
    return [records[i] for i in order]


def _children_first(
    meta: EntityMeta, records: list[R], values: Callable[[R], Sequence[Any]]
) -> list[R]:
    """Records (given in key order) reordered so a row goes before the rows it refers to."""
    reversed_keys = _parents_first(meta, records[::-1], values)
    return reversed_keys[::-1]


def _insert_steps(meta: EntityMeta, inserts: list[Insert]) -> Step:
    generated = meta.generated
    if generated is not None:
        # The database makes every key (the checks refuse values for a generated key), so
        # rows go in the order they were added and their keys come back through RETURNING.
        columns = tuple(c for c in meta.columns if c is not generated)
        rows = PickedRows([r.values for r in inserts], [c.position for c in columns])
        return Step(InsertBatch(meta, columns, rows, returning=(generated,)), tuple(inserts))
    key_positions = [c.position for c in meta.primary_key]
    records = _sorted(inserts, lambda r: tuple(r.values[p] for p in key_positions))
    records = _parents_first(meta, records, lambda r: r.values)
    return Step(InsertBatch(meta, meta.columns, [r.values for r in records]), tuple(records))


def _update_steps(meta: EntityMeta, groups: list[Updates]) -> list[Step]:
    ordered = []
    for group in groups:
        order = _key_order(group.keys)
        ordered.append(group if order is None else group.reordered(order))
    # Groups in the order of their first key, so the plan does not depend on load order.
    ordered = _sorted(ordered, lambda g: (key_tuple(meta, g.keys[0]), g.positions))
    steps = []
    for group in ordered:
        columns = tuple(meta.columns[p] for p in group.positions)
        batch = UpdateBatch(
            meta,
            columns,
            keys=_key_tuples(meta, group.keys),
            values=PickedRows(group.rows, group.positions),
            versions=None if meta.version is None else group.versions,
        )
        steps.append(Step(batch, group))
    return steps


def _delete_steps(
    meta: EntityMeta, deletes: Deletes, snapshot_of: Callable[[Any], Sequence[Any]] | None
) -> list[Step]:
    order = _key_order(deletes.keys)
    records = deletes if order is None else deletes.reordered(order)
    if snapshot_of is not None:
        keys = records.keys
        rows = list(range(len(keys)))
        first = _children_first(meta, rows, lambda row: snapshot_of(keys[row]))
        if first != rows:
            records = records.reordered(first)
    batch = DeleteBatch(
        meta,
        keys=_key_tuples(meta, records.keys),
        versions=None if meta.version is None else records.versions,
    )
    return [Step(batch, records)]


def order_changes(
    changes: ChangeSet,
    table_order: Sequence[EntityMeta],
    snapshot_of: Callable[[EntityMeta, Any], Sequence[Any]],
    row_locks: bool = False,
) -> list[Step]:
    """The flush's batches in the order they must run.

    With `row_locks`, a flush that would update or delete rows in more than one batch first
    locks all of them, table by table in foreign-key order and key order within a table, so
    two flushes never take the same row locks in opposite orders (G8). The batches' own
    statements are not trusted with that order even when their keys ascend: PostgreSQL may
    join a key array to the table by hash and so reach rows in heap order.
    """
    inserts: list[Step] = []
    for meta in table_order:
        if meta in changes.inserts:
            inserts.append(_insert_steps(meta, changes.inserts[meta]))
    writes: list[Step] = []
    for meta in table_order:
        if meta in changes.updates:
            writes.extend(_update_steps(meta, changes.updates[meta]))
    for meta in reversed(table_order):
        if meta in changes.deletes:
            reader = None
            if _self_references(meta):
                reader = lambda key, meta=meta: snapshot_of(meta, key)  # noqa: E731
            writes.extend(_delete_steps(meta, changes.deletes[meta], reader))
    locks = _lock_steps(changes, table_order) if row_locks and len(writes) > 1 else []
    return [*inserts, *locks, *writes]


def _lock_steps(changes: ChangeSet, table_order: Sequence[EntityMeta]) -> list[Step]:
    steps = []
    for meta in table_order:
        groups: list[Updates | Deletes] = [*changes.updates.get(meta, ())]
        if meta in changes.deletes:
            groups.append(changes.deletes[meta])
        if groups:
            # Bare keys sort as their 1-tuples would.
            keys = _sorted([key for group in groups for key in group.keys], lambda key: key)
            steps.append(Step(LockRows(meta, _key_tuples(meta, keys)), ()))
    return steps


def _key_tuples(meta: EntityMeta, keys: list[Any]) -> Sequence[tuple[Any, ...]]:
    """Identity-map keys as the tuples batches take (a one-column key is bare there, and
    its 1-tuples are made only if a backend reads the rows one by one)."""
    return keys if meta.composite_key else PickedRows(keys)


def after_writes(steps: Sequence[Step], wrote: bool) -> list[bool]:
    """Per step, whether its transaction has written before the step runs.

    `wrote`: whether it had written before the flush. Every step but a lock writes. The
    flush and `plan()` both ask here, so a backend that compiles a delete differently after
    earlier writes shows in the plan what it runs.
    """
    found = []
    for step in steps:
        found.append(wrote)
        wrote = wrote or not isinstance(step.op, LockRows)
    return found
