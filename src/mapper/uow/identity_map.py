"""The identity map: one object per (mapping, primary key) in a unit of work, with snapshots.

For every persistent entity it keeps the column values as last loaded or flushed (the
snapshot) so change detection can compare without touching the entity (no instrumentation,
no injected attributes: DESIGN principle 1). Keyed by primary key per mapping, never by the
entity itself, so unhashable and slotted entities work.

Pure. Owned by `uow/unit_of_work.py`.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from mapper.mapping import EntityMeta

__all__ = ["IdentityMap", "TableEntries"]


class TableEntries:
    """The persistent entities of one mapping and their snapshots, by key."""

    __slots__ = ("entities", "snapshots")

    def __init__(self) -> None:
        self.entities: dict[Any, Any] = {}
        self.snapshots: dict[Any, Sequence[Any]] = {}
        """Column values by key: a loaded row itself (immutable, compares as a tuple), or
        the tuple a flush wrote."""


class IdentityMap:
    """Persistent entities per mapping; `get` before loading, `put` after."""

    def __init__(self) -> None:
        self._tables: dict[EntityMeta, TableEntries] = {}

    def table(self, meta: EntityMeta) -> TableEntries:
        entries = self._tables.get(meta)
        if entries is None:
            entries = self._tables[meta] = TableEntries()
        return entries

    def get(self, meta: EntityMeta, key: Any) -> Any | None:
        entries = self._tables.get(meta)
        return None if entries is None else entries.entities.get(key)

    def put(self, meta: EntityMeta, key: Any, entity: Any, snapshot: Sequence[Any]) -> None:
        entries = self.table(meta)
        entries.entities[key] = entity
        entries.snapshots[key] = snapshot

    def discard(self, meta: EntityMeta, key: Any) -> None:
        entries = self._tables.get(meta)
        if entries is not None:
            entries.entities.pop(key, None)
            entries.snapshots.pop(key, None)

    def holds(self, meta: EntityMeta, key: Any, entity: Any) -> bool:
        """Whether `entity` is the persistent object for `key`."""
        return self.get(meta, key) is entity

    def tables(self) -> Iterator[tuple[EntityMeta, TableEntries]]:
        return iter(self._tables.items())

    def __len__(self) -> int:
        return sum(len(entries.entities) for entries in self._tables.values())

    def clear(self) -> None:
        self._tables.clear()
