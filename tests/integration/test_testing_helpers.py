"""`mapper.testing` on every backend: fresh databases, clearing, and the pytest fixture.

PostgreSQL's URL here names no search_path where `fresh_database` should isolate itself in a
schema of its own, and this run's schema where a database must outlive one connection.
`test_testing_postgres.py` checks the schemas themselves.
"""

from __future__ import annotations

import textwrap
import uuid
from pathlib import Path

import attrs
import pytest

from mapper import (
    Column,
    DatabaseError,
    EntityMap,
    IntegrityError,
    Registry,
    UnitOfWork,
    connect,
)
from mapper import types as t
from mapper.testing import clear, fresh_database
from tests.integration.conftest import POSTGRES_URL, backend_url

pytest_plugins = ["pytester"]


@attrs.define
class Rack:
    name: str
    id: int | None = None


@attrs.define
class Item:
    """An item on a rack, possibly inside another item: a tree in one table."""

    label: str
    rack_id: int
    parent_id: int | None = None
    version: int = 0
    id: int | None = None


registry = Registry()


@registry.map
class RackMap(EntityMap[Rack]):
    __table__ = "testing_racks"
    id = Column(t.Integer(), primary_key=True, generated=True)
    name = Column(t.String(50), unique=True)


@registry.map
class ItemMap(EntityMap[Item]):
    __table__ = "testing_items"
    id = Column(t.Integer(), primary_key=True, generated=True)
    label = Column(t.String(50))
    rack_id = Column(references=RackMap.id)
    parent_id = Column(references="testing_items.id")
    version = Column(t.Integer(), version=True)


def isolated_url(backend: str, tmp_path: Path) -> str:
    """A URL `fresh_database` keeps apart by itself (PostgreSQL: a schema of its own)."""
    return POSTGRES_URL if backend == "postgres" else backend_url(backend, tmp_path)


def lasting_url(backend: str, tmp_path: Path) -> str:
    """A URL whose database outlives one connection, to look at what is left behind."""
    if backend == "memory":
        return f"memory://testing-{uuid.uuid4().hex}"
    return backend_url(backend, tmp_path)


async def _count_racks(url: str) -> int:
    async with await connect(url) as db, UnitOfWork(db, registry) as uow:
        return await uow.repository(Rack).count()


async def _store_tree(url: str, *, create: bool = False, depth: int = 4) -> None:
    """A rack holding a chain of `depth` items, each inside the one before."""
    async with await connect(url) as db:
        if create:
            await db.create_all(registry)
        async with UnitOfWork(db, registry) as uow:
            rack = Rack("top")
            uow.repository(Rack).add(rack)
            await uow.flush()
            assert rack.id is not None
            parent: int | None = None
            for n in range(depth):
                item = Item(f"item {n}", rack.id, parent)
                uow.repository(Item).add(item)
                await uow.flush()
                parent = item.id


async def test_fresh_database_has_empty_tables_that_take_rows(backend: str, tmp_path: Path) -> None:
    """Inside the block every table exists, is empty and stores rows."""
    async with fresh_database(isolated_url(backend, tmp_path), registry) as db:
        async with UnitOfWork(db, registry) as uow:
            assert await uow.repository(Rack).count() == 0
            assert await uow.repository(Item).count() == 0
            uow.repository(Rack).add(Rack("a"))
        async with UnitOfWork(db, registry) as uow:
            assert [rack.name for rack in await uow.repository(Rack).find()] == ["a"]


async def test_fresh_database_empties_what_an_earlier_run_left(
    backend: str, tmp_path: Path
) -> None:
    """Tables and rows left by a run that died are dropped before the block starts."""
    url = lasting_url(backend, tmp_path)
    await _store_tree(url, create=True)
    async with fresh_database(url, registry) as db, UnitOfWork(db, registry) as uow:
        assert await uow.repository(Rack).count() == 0
        assert await uow.repository(Item).count() == 0


async def test_fresh_database_drops_its_tables_and_closes(backend: str, tmp_path: Path) -> None:
    """After the block the tables are gone and the database is closed."""
    url = lasting_url(backend, tmp_path)
    async with fresh_database(url, registry) as db:
        await _store_tree(url)
    assert "closed" in repr(db)
    with pytest.raises(DatabaseError):
        await _count_racks(url)


async def test_fresh_database_cleans_up_after_a_failing_block(backend: str, tmp_path: Path) -> None:
    """A block that raises still drops the tables, and its error reaches the caller."""
    url = lasting_url(backend, tmp_path)
    with pytest.raises(IntegrityError):
        async with fresh_database(url, registry):
            await _store_tree(url)
            await _store_tree(url)  # a second rack named "top"
    with pytest.raises(DatabaseError):
        await _count_racks(url)


async def test_clear_deletes_every_row_children_first(backend: str, tmp_path: Path) -> None:
    """A rack and a chain of items inside each other are all deleted; the tables stay."""
    url = lasting_url(backend, tmp_path)
    async with fresh_database(url, registry) as db:
        await _store_tree(url, depth=5)
        assert await clear(db, registry) == 6
        async with UnitOfWork(db, registry) as uow:
            assert await uow.repository(Item).count() == 0
            assert await uow.repository(Rack).count() == 0
            uow.repository(Rack).add(Rack("top"))  # the unique name is free again
        assert await _count_racks(url) == 1


async def test_clear_of_empty_tables_deletes_nothing(backend: str, tmp_path: Path) -> None:
    """Clearing empty tables returns 0 and writes nothing."""
    async with fresh_database(isolated_url(backend, tmp_path), registry) as db:
        operations: list[str] = []
        with db.on_statement(lambda event: operations.append(event.operation)):
            assert await clear(db, registry) == 0
        assert operations == ["select", "select"]


def test_the_fixture_gives_each_test_an_empty_database(
    backend: str, tmp_path: Path, pytester: pytest.Pytester
) -> None:
    """Two tests storing the same unique name both pass: each starts from empty tables."""
    url = isolated_url(backend, tmp_path)
    pytester.makeini("[pytest]\nasyncio_default_fixture_loop_scope = function\n")
    pytester.makepyfile(
        shop=textwrap.dedent(
            """
            import attrs
            from mapper import Column, EntityMap, Registry
            from mapper import types as t

            @attrs.define
            class Shop:
                name: str
                id: int | None = None

            registry = Registry()

            @registry.map
            class ShopMap(EntityMap[Shop]):
                __table__ = "testing_shops"
                id = Column(t.Integer(), primary_key=True, generated=True)
                name = Column(t.String(50), unique=True)
            """
        )
    )
    pytester.makeconftest(
        f"""
        from mapper.testing import database_fixture
        from shop import registry

        db = database_fixture(registry, urls=[{url!r}])
        """
    )
    test = """
        import pytest
        from mapper import UnitOfWork
        from shop import Shop, registry

        @pytest.mark.asyncio
        async def test_{n}(db):
            async with UnitOfWork(db, registry) as uow:
                assert await uow.repository(Shop).count() == 0
                uow.repository(Shop).add(Shop("corner"))
        """
    pytester.makepyfile(test_one=test.format(n=1), test_two=test.format(n=2))
    # Strict mode: the fixture must be a pytest-asyncio one to run at all.
    result = pytester.runpytest("-p", "no:cacheprovider", "-o", "asyncio_mode=strict")
    result.assert_outcomes(passed=2)
