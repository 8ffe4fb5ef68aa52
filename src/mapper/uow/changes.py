"""Change sets: what a flush must write, computed from snapshots. Pure.

`changed_keys` finds the persistent entities whose column values differ from their
snapshots (one compiled scan per mapping); `compute_changes` works out which columns of
those changed (only changed columns are written; an unchanged entity writes nothing), collects
the entities added and removed, fills in column defaults and initial versions, and checks
every value that will be written (`validation.py`), raising one `ValidationError` before any
SQL. It never writes into entities: `plan()` runs it too.

Called by `uow/unit_of_work.py` at flush and plan.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import attrs

from mapper.codec import entity_codec
from mapper.errors import UnitOfWorkError, ValidationError, Violation
from mapper.mapping import EntityMeta
from mapper.uow.identity_map import IdentityMap, TableEntries
from mapper.uow.validation import validator_for

__all__ = [
    "ChangeSet",
    "Delete",
    "Dirty",
    "Insert",
    "Update",
    "changed_keys",
    "compute_changes",
    "key_tuple",
]

INITIAL_VERSION = 1


def key_tuple(meta: EntityMeta, key: Any) -> tuple[Any, ...]:
    """A key as a tuple of its column values (identity-map keys are bare for one column)."""
    return key if meta.composite_key else (key,)


@attrs.define(eq=False)  # not frozen: one is made per written row, and frozen init is slow
class Insert:
    """A new entity: the values to insert and the attributes the flush sets on it first."""

    entity: Any
    values: tuple[Any, ...]
    writes: tuple[tuple[str, Any], ...]
    """(attribute, value) pairs from column defaults and the initial version."""


@attrs.define(eq=False)  # not frozen: one is made per written row, and frozen init is slow
class Update:
    """A persistent entity whose columns at `positions` differ from its snapshot."""

    entity: Any
    key: Any
    positions: tuple[int, ...]
    values: tuple[Any, ...]
    version: Any | None
    """The version the row must still have (from the snapshot), if versioned."""


@attrs.define(eq=False)  # not frozen: one is made per written row, and frozen init is slow
class Delete:
    """A persistent entity to delete."""

    entity: Any
    key: Any
    version: Any | None


@attrs.define
class ChangeSet:
    """Everything one flush writes, per mapping."""

    inserts: dict[EntityMeta, list[Insert]] = attrs.Factory(dict)
    updates: dict[EntityMeta, list[Update]] = attrs.Factory(dict)
    deletes: dict[EntityMeta, list[Delete]] = attrs.Factory(dict)

    def __bool__(self) -> bool:
        return bool(self.inserts or self.updates or self.deletes)


class _Inserter:
    """Builds the `Insert`s of one mapping; what does not change per row is looked up once."""

    def __init__(self, meta: EntityMeta) -> None:
        self.read = entity_codec(meta).values
        self.check = validator_for(meta).row
        # Columns the flush fills in: versions always, defaults where the entity says None.
        self.filled = [c for c in meta.columns if c.version or c.default is not None]

    def insert(self, entity: Any, out: list[Violation]) -> Insert:
        values = self.read(entity)
        writes: tuple[tuple[str, Any], ...] = ()
        if self.filled:
            row = list(values)
            filled = []
            for column in self.filled:
                if column.version:
                    value: Any = INITIAL_VERSION
                elif row[column.position] is None:
                    value = column.default_value()
                else:
                    continue
                row[column.position] = value
                filled.append((column.attribute, value))
            values, writes = tuple(row), tuple(filled)
        self.check(values, out)
        return Insert(entity, values, writes)


Dirty = dict[EntityMeta, list[Any]]
"""Keys of held entities that may have changed, per mapping."""


def changed_keys(identity: IdentityMap) -> Dirty:
    """The keys of held entities whose column values differ from their snapshots."""
    dirty: Dirty = {}
    for meta, entries in identity.tables():
        if entries.entities:
            found = entity_codec(meta).changed(entries.entities, entries.snapshots)
            if found:
                dirty[meta] = found
    return dirty


def _updates(
    meta: EntityMeta,
    entries: TableEntries,
    keys: Iterable[Any],
    removed: Mapping[tuple[EntityMeta, Any], Any],
    out: list[Violation],
) -> list[Update]:
    codec = entity_codec(meta)
    read = codec.values
    frozen = codec.snapshot if codec.mutable_positions else None
    version = meta.version
    key_positions = {c.position for c in meta.primary_key}
    validator = validator_for(meta)
    entities, snapshots = entries.entities, entries.snapshots
    updates = []
    for key in keys:
        entity = entities.get(key)
        if entity is None:
            continue
        values = read(entity)
        current = values if frozen is None else frozen(values)
        snapshot = snapshots[key]
        try:
            unchanged = current == snapshot
        except ArithmeticError:  # Decimal("sNaN") refuses comparison; the checks report it
            unchanged = False
        if unchanged or (meta, key) in removed:
            continue
        positions = _changed_positions(current, snapshot)
        if key_positions.intersection(positions):
            raise UnitOfWorkError(
                f"the primary key of a loaded {meta.name} changed from {key!r} to "
                f"{codec.key(entity)!r}; keys cannot change: remove the entity and add a new one"
            )
        expected = None
        if version is not None:
            expected = snapshot[version.position]
            positions = tuple(p for p in positions if p != version.position)
            if not positions:
                continue
        validator.columns(values, positions, out)
        updates.append(Update(entity, key, positions, values, expected))
    return updates


def _changed_positions(current: tuple[Any, ...], snapshot: tuple[Any, ...]) -> tuple[int, ...]:
    try:
        return tuple([i for i, (now, then) in enumerate(zip(current, snapshot)) if now != then])  # noqa: B905 - same width
    except ArithmeticError:  # compare value by value, so one sNaN marks only its column
        return tuple(
            i
            for i, (now, then) in enumerate(zip(current, snapshot, strict=True))
            if _differs(now, then)
        )


def _differs(now: Any, then: Any) -> bool:
    try:
        return bool(now != then)
    except ArithmeticError:
        return True


def compute_changes(
    identity: IdentityMap,
    added: Iterable[tuple[EntityMeta, Any]],
    removed: Mapping[tuple[EntityMeta, Any], Any],
    dirty: Mapping[EntityMeta, Iterable[Any]] | None = None,
) -> ChangeSet:
    """The change set of a unit of work; raises `ValidationError` listing every bad value.

    `dirty` names the held entities that may have changed (a superset is fine); by default
    every held entity is compared with its snapshot.
    """
    changes = ChangeSet()
    violations: list[Violation] = []
    inserters: dict[EntityMeta, _Inserter] = {}
    for meta, entity in added:
        inserter = inserters.get(meta)
        if inserter is None:
            inserter = inserters[meta] = _Inserter(meta)
        changes.inserts.setdefault(meta, []).append(inserter.insert(entity, violations))
    for meta, keys in (changed_keys(identity) if dirty is None else dirty).items():
        updates = _updates(meta, identity.table(meta), keys, removed, violations)
        if updates:
            changes.updates[meta] = updates
    for (meta, key), entity in removed.items():
        expected = None
        if meta.version is not None:
            snapshot = identity.table(meta).snapshots.get(key)
            expected = None if snapshot is None else snapshot[meta.version.position]
        changes.deletes.setdefault(meta, []).append(Delete(entity, key, expected))
    if violations:
        raise ValidationError(violations)
    return changes
