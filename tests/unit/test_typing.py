"""The public generics keep their types: checked by mypy --strict (nox -s typing) and run."""

from __future__ import annotations

from typing import assert_type

import attrs

from mapper import Column, EntityMap, Registry, Repository, UnitOfWork
from mapper import types as t


@attrs.define
class Pet:
    name: str
    id: int | None = None


registry = Registry()


@registry.map
class PetMap(EntityMap[Pet]):
    __table__ = "pets"
    id = Column(t.Integer(), primary_key=True, generated=True)
    name = Column(t.String(20))


class PetRepository(Repository[Pet]):
    """A custom repository."""

    async def named(self, name: str) -> Pet | None:
        return await self.first(PetMap.name == name)


def repositories(uow: UnitOfWork) -> None:
    assert_type(uow.repository(Pet), Repository[Pet])
    assert_type(uow.repository(PetRepository), PetRepository)


async def queries(pets: Repository[Pet]) -> None:
    assert_type(await pets.get(1), Pet)
    assert_type(await pets.get_many([1, 2]), list[Pet])
    assert_type(await pets.find(PetMap.name.like("a%"), order_by=PetMap.name), list[Pet])
    assert_type(await pets.first(), Pet | None)
    assert_type(await pets.count(), int)
    assert_type(await pets.exists(), bool)
    async for pet in pets.stream():
        assert_type(pet, Pet)


def test_the_typed_api_module_imports() -> None:
    """This module's typed uses of the API import and define without error."""
    assert registry.meta(Pet).table == "pets"
    assert callable(repositories) and callable(queries)
