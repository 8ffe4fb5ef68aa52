"""Repositories: the one door domain code uses to reach stored entities.

`Repository[T]` offers `add`, `add_all`, `remove`, `get`, `get_many`, `find`, `first`,
`count`, `exists` and `stream`, with criteria built from mapping columns, and the same code
runs on every backend. Custom repositories subclass it, use only that neutral API, and are
registered with `registry.repository(Entity, CustomRepository)` or asked for directly with
`uow.repository(CustomRepository)`.

Called by domain code; delegates to `uow/unit_of_work.py`.
"""

from __future__ import annotations

import contextlib
import typing
from collections.abc import AsyncIterator, Iterable, Sequence
from typing import TYPE_CHECKING, Any, ClassVar, Generic, TypeVar

from mapper.criteria import And, Comparison, Criterion, InList, Or, as_ordering
from mapper.errors import EntityNotFoundError
from mapper.mapping import EntityMeta
from mapper.operations import Count, Select
from mapper.relations import expand_related_is

if TYPE_CHECKING:
    from mapper.uow.unit_of_work import UnitOfWork

__all__ = ["Repository", "entity_of_repository", "keys_criterion"]

T = TypeVar("T")


def _where(meta: EntityMeta, criteria: Sequence[Criterion]) -> Criterion | None:
    for criterion in criteria:
        if not isinstance(criterion, Criterion):
            raise TypeError(
                f"criteria are built from mapping columns (UserMap.name == 'Ann'), "
                f"got {criterion!r}"
            )
    if not criteria:
        return None
    where = criteria[0] if len(criteria) == 1 else And.of(*criteria)
    return expand_related_is(meta, where)


Load = Sequence[Any]
"""`load=`: relations to fill, each a relation (UserMap.role) or a path tuple
(UserMap.role, RoleMap.permissions)."""


class Repository(Generic[T]):
    """The stored entities of one type, seen through one unit of work."""

    __mapper_repository__: ClassVar[bool] = True

    def __init__(self, uow: UnitOfWork, meta: EntityMeta) -> None:
        self._uow = uow
        self._meta = meta

    @property
    def entity(self) -> type[T]:
        """The entity class this repository stores."""
        entity: type[T] = self._meta.entity
        return entity

    @property
    def unit_of_work(self) -> UnitOfWork:
        return self._uow

    # -- writing --------------------------------------------------------------------------

    def add(self, entity: T) -> None:
        """Store a new entity at the next flush."""
        self._uow.add_entity(self._meta, entity)

    def add_all(self, entities: Iterable[T]) -> None:
        """Store new entities at the next flush."""
        self._uow.add_entities(self._meta, entities)

    def remove(self, entity: T) -> None:
        """Delete a loaded entity at the next flush (or forget a new one)."""
        self._uow.remove_entity(self._meta, entity)

    def remove_all(self, entities: Iterable[T]) -> None:
        """Delete loaded entities at the next flush (or forget new ones).

        Refuses the whole call, marking none, if one of them is not in the unit of work.
        """
        self._uow.remove_entities(self._meta, entities)

    # -- reading --------------------------------------------------------------------------

    async def get(self, key: Any, *, load: Load = ()) -> T:
        """The entity with primary key `key` (a tuple for composite keys).

        Raises `EntityNotFoundError` if there is none. No query runs when the unit of work
        already holds it.
        """
        found: list[T] = await self._uow.load_by_keys(self._meta, [key], load)
        if not found:
            raise EntityNotFoundError(self._meta.name, key)
        return found[0]

    async def get_many(self, keys: Iterable[Any], *, load: Load = ()) -> list[T]:
        """The entities with these keys, in the order given; missing keys are left out."""
        found: list[T] = await self._uow.load_by_keys(self._meta, list(keys), load)
        return found

    async def find(
        self,
        *criteria: Criterion,
        order_by: Any = None,
        limit: int | None = None,
        offset: int | None = None,
        load: Load = (),
        track: bool = True,
    ) -> list[T]:
        """Entities matching all `criteria`, ordered by `order_by` (columns or `.desc()`).

        `load=` fills relations in one query per relation per level:
        `load=[UserMap.role, (UserMap.role, RoleMap.permissions)]`.

        `track=False` reads for display only: entities the unit of work does not already
        hold are built without a snapshot and not held, so flushes never compare them and
        changes to them are not saved (get the ones to change with `get`/`get_many`).
        """
        where = _where(self._meta, criteria)
        select = Select(self._meta, where, as_ordering(order_by), limit, offset)
        found: list[T] = await self._uow.query(select, load, track=track)
        return found

    async def first(self, *criteria: Criterion, order_by: Any = None, load: Load = ()) -> T | None:
        """The first entity matching `criteria` in `order_by` order, or None."""
        found = await self.find(*criteria, order_by=order_by, limit=1, load=load)
        return found[0] if found else None

    async def count(self, *criteria: Criterion) -> int:
        """How many stored entities match `criteria`."""
        return await self._uow.count(Count(self._meta, _where(self._meta, criteria)))

    async def exists(self, *criteria: Criterion) -> bool:
        """Whether any stored entity matches `criteria`."""
        count = Count(self._meta, _where(self._meta, criteria), exists=True)
        return bool(await self._uow.count(count))

    async def stream(
        self,
        *criteria: Criterion,
        order_by: Any = None,
        chunk_size: int = 1000,
        load: Load = (),
    ) -> AsyncIterator[T]:
        """Entities matching `criteria`, read `chunk_size` rows at a time.

        For results too big to hold: entities the unit of work does not already hold are
        not tracked, so memory stays flat and changes to them are not saved.
        """
        if chunk_size < 1:
            raise ValueError("chunk_size must be at least 1")
        select = Select(self._meta, _where(self._meta, criteria), as_ordering(order_by))
        # Closing this generator (a `break`, or aclose()) closes the cursor right away.
        async with contextlib.aclosing(self._uow.stream(select, chunk_size, load)) as chunks:
            async for chunk in chunks:
                for entity in chunk:
                    yield entity

    def __repr__(self) -> str:
        return f"<{type(self).__name__} of {self._meta.name}>"


def entity_of_repository(repository_class: type[Repository[Any]]) -> type | None:
    """The entity a `class X(Repository[Entity])` declares, if it names one."""
    for klass in repository_class.__mro__:
        for base in getattr(klass, "__orig_bases__", ()):
            if typing.get_origin(base) is Repository:
                (argument,) = typing.get_args(base)
                if isinstance(argument, type):
                    return argument
    return None


def keys_criterion(meta: EntityMeta, keys: Sequence[Any]) -> Criterion:
    """`pk IN (keys)` for a single-column key; an OR of ANDs for a composite one."""
    if not meta.composite_key:
        return InList(_column(meta, 0), tuple(keys))
    parts: list[Criterion] = []
    for key in keys:
        parts.append(
            And.of(*[Comparison(_column(meta, i), "=", value) for i, value in enumerate(key)])
        )
    return Or.of(*parts)


def _column(meta: EntityMeta, index: int) -> Any:
    return meta.map_class.__columns__[meta.primary_key[index].attribute]
