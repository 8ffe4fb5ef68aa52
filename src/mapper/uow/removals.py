"""Removals: the held entities a unit of work deletes at its next flush, per mapping.

Kept as one `key: entity` dict per mapping rather than one dict keyed by (mapping, key)
pairs: `remove_all` fills it in C with no tuple made per entity, and the change scan, the
change set and the flush's settling take a mapping's keys and entities from it as they are.
A mapping with nothing removed has no entry, so an empty `Removals` is false.

Pure. Owned by `uow/unit_of_work.py`; read and changed by `uow/cascades.py` (relation
rules), `uow/changes.py` and `uow/flushing.py`.
"""

from __future__ import annotations

import collections
import itertools
from collections.abc import Iterable, Iterator, Mapping
from types import MappingProxyType
from typing import Any

from mapper.mapping import EntityMeta

__all__ = ["Removals"]

_NONE: Mapping[Any, Any] = MappingProxyType({})


class Removals:
    """Entities to delete, by mapping and key."""

    __slots__ = ("_by_meta",)

    def __init__(self) -> None:
        self._by_meta: dict[EntityMeta, dict[Any, Any]] = {}

    def __bool__(self) -> bool:
        return bool(self._by_meta)

    def __len__(self) -> int:
        return sum(map(len, self._by_meta.values()))

    def __contains__(self, item: tuple[EntityMeta, Any]) -> bool:
        meta, key = item
        found = self._by_meta.get(meta)
        return found is not None and key in found

    def of(self, meta: EntityMeta) -> Mapping[Any, Any]:
        """The removed entities of one mapping, by key (empty when none)."""
        return self._by_meta.get(meta, _NONE)

    def by_mapping(self) -> Iterator[tuple[EntityMeta, Mapping[Any, Any]]]:
        """(mapping, its removed entities by key), mappings in the order first removed from."""
        return iter(self._by_meta.items())

    def entities(self) -> Iterator[tuple[EntityMeta, Any]]:
        """(mapping, entity) of every removed entity, mapping by mapping."""
        for meta, removed in self._by_meta.items():
            for entity in removed.values():
                yield meta, entity

    def add(self, meta: EntityMeta, key: Any, entity: Any) -> None:
        self._by_meta.setdefault(meta, {})[key] = entity

    def add_all(self, meta: EntityMeta, keys: Iterable[Any], entities: Iterable[Any]) -> None:
        """Remove `entities` held under `keys` (same length); filled in C."""
        found = self._by_meta.setdefault(meta, {})
        found.update(zip(keys, entities, strict=True))
        if not found:
            del self._by_meta[meta]

    def discard(self, meta: EntityMeta, key: Any) -> None:
        """Forget one removal (the entity was added back, or deleted)."""
        found = self._by_meta.get(meta)
        if found is not None:
            found.pop(key, None)
            if not found:
                del self._by_meta[meta]

    def discard_all(self, meta: EntityMeta, keys: Iterable[Any]) -> None:
        """Forget the removals of `keys` (deleted by a flush)."""
        found = self._by_meta.get(meta)
        if found is None:
            return
        collections.deque(map(found.pop, keys, itertools.repeat(None)), maxlen=0)  # in C
        if not found:
            del self._by_meta[meta]

    def copy(self) -> Removals:
        copied = Removals()
        copied._by_meta = {meta: dict(found) for meta, found in self._by_meta.items()}
        return copied

    def replace(self, other: Removals) -> None:
        """Take `other`'s removals instead of these (a copy of them)."""
        self._by_meta = other.copy()._by_meta

    def clear(self) -> None:
        self._by_meta.clear()
