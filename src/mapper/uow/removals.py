"""Removals: the held entities a unit of work deletes at its next flush, per mapping.

Kept as one `key: entity` dict per mapping rather than one dict keyed by (mapping, key)
pairs: `remove_all` fills it in C with no tuple made per entity, and the change scan, the
change set and the flush's settling take a mapping's keys and entities from it as they are.
A mapping with nothing removed has no entry, so an empty `Removals` is false. The order of
the removals across mappings is kept as one run of keys per call (`entities()` gives them
back in that order), for the relation rules that follow them.

Pure. Owned by `uow/unit_of_work.py`; read and changed by `uow/cascades.py` (relation
rules), `uow/changes.py` and `uow/flushing.py`.
"""

from __future__ import annotations

import collections
import itertools
from collections.abc import Iterable, Iterator, Mapping, Sequence
from types import MappingProxyType
from typing import Any

from mapper.mapping import EntityMeta

__all__ = ["Removals"]

_NONE: Mapping[Any, Any] = MappingProxyType({})


class Removals:
    """Entities to delete, by mapping and key, and the order they were removed in."""

    __slots__ = ("_by_meta", "_runs")

    def __init__(self) -> None:
        self._by_meta: dict[EntityMeta, dict[Any, Any]] = {}
        self._runs: list[tuple[EntityMeta, Sequence[Any]]] = []
        """The keys of each call that removed something, in call order. A key counts in
        the last run that holds it while it is removed: an entity removed, added back and
        removed again comes where it was removed again."""

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

    def entities(self) -> list[tuple[EntityMeta, Any]]:
        """(mapping, entity) of every removed entity, in the order they were removed."""
        seen: dict[EntityMeta, set[Any]] = {}
        found = []
        for meta, keys in reversed(self._runs):
            removed = self._by_meta.get(meta)
            if not removed:
                continue
            done = seen.setdefault(meta, set())
            for key in reversed(keys):
                if key in removed and key not in done:
                    done.add(key)
                    found.append((meta, removed[key]))
        found.reverse()
        return found

    def add(self, meta: EntityMeta, key: Any, entity: Any) -> None:
        self._by_meta.setdefault(meta, {})[key] = entity
        self._runs.append((meta, (key,)))

    def add_all(self, meta: EntityMeta, keys: Sequence[Any], entities: Sequence[Any]) -> None:
        """Remove `entities` held under `keys` (same length); filled in C."""
        if len(keys) != len(entities):
            raise ValueError(f"{len(keys)} keys for {len(entities)} entities")
        if not keys:
            return
        self._by_meta.setdefault(meta, {}).update(zip(keys, entities, strict=True))
        self._runs.append((meta, tuple(keys)))

    def discard(self, meta: EntityMeta, key: Any) -> None:
        """Forget one removal (the entity was added back)."""
        found = self._by_meta.get(meta)
        if found is None:
            return
        found.pop(key, None)
        if not found:
            del self._by_meta[meta]
            self._prune()

    def discard_all(self, meta: EntityMeta, keys: Iterable[Any]) -> None:
        """Forget the removals of `keys` (deleted by a flush)."""
        found = self._by_meta.get(meta)
        if found is None:
            return
        collections.deque(map(found.pop, keys, itertools.repeat(None)), maxlen=0)  # in C
        if not found:
            del self._by_meta[meta]
        self._prune()

    def _prune(self) -> None:
        """Drop the runs that hold no removal any more (all of them once nothing is left)."""
        by_meta = self._by_meta
        self._runs = [
            (meta, keys)
            for meta, keys in self._runs
            if meta in by_meta and any(map(by_meta[meta].__contains__, keys))
        ]

    def copy(self) -> Removals:
        copied = Removals()
        copied._by_meta = {meta: dict(found) for meta, found in self._by_meta.items()}
        copied._runs = list(self._runs)
        return copied

    def replace(self, other: Removals) -> None:
        """Take `other`'s removals instead of these (a copy of them)."""
        copied = other.copy()
        self._by_meta, self._runs = copied._by_meta, copied._runs

    def clear(self) -> None:
        self._by_meta.clear()
        self._runs.clear()
