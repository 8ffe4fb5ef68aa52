"""`mapper.testing.fresh_database` on PostgreSQL: a schema of its own per database.

The schemas are looked at with asyncpg directly, since the mapper has no query for them.
"""

from __future__ import annotations

import asyncio
import os

import asyncpg
import pytest

from mapper import ConnectionLost, UnitOfWork
from mapper.testing import fresh_database
from tests.integration.conftest import POSTGRES_SCHEMA, POSTGRES_URL
from tests.integration.test_testing_helpers import Rack, registry

ONLY_BACKENDS = ("postgres",)
PREFIX = f"mapper_test_{os.getpid()}_"


async def _schemas() -> list[str]:
    """The schemas fresh_database made in this process that still exist."""
    connection = await asyncpg.connect(POSTGRES_URL)
    try:
        rows = await connection.fetch(
            "SELECT nspname FROM pg_namespace WHERE starts_with(nspname, $1) ORDER BY 1", PREFIX
        )
    finally:
        await connection.close()
    return [row["nspname"] for row in rows]


async def test_each_fresh_database_has_a_schema_of_its_own() -> None:
    """Two fresh databases open at once on one server see only their own rows."""
    async with (
        fresh_database(POSTGRES_URL, registry) as first,
        fresh_database(POSTGRES_URL, registry) as second,
    ):
        assert len(await _schemas()) == 2
        async with UnitOfWork(first, registry) as uow:
            uow.repository(Rack).add(Rack("only in first"))
        async with UnitOfWork(second, registry) as uow:
            assert await uow.repository(Rack).count() == 0
    assert await _schemas() == []


async def test_the_schema_is_dropped_when_the_block_fails() -> None:
    """A failing block still drops the schema and everything in it."""
    with pytest.raises(RuntimeError):
        async with fresh_database(POSTGRES_URL, registry):
            assert len(await _schemas()) == 1
            raise RuntimeError("the test failed")
    assert await _schemas() == []


async def test_a_given_search_path_is_used_as_it_is() -> None:
    """With a search_path in the URL no schema is made: the tables go where it says."""
    url = f"{POSTGRES_URL}?search_path={POSTGRES_SCHEMA}"
    async with fresh_database(url, registry) as db:
        assert await _schemas() == []
        async with UnitOfWork(db, registry) as uow:
            assert await uow.repository(Rack).count() == 0


async def test_concurrent_runs_do_not_collide() -> None:
    """Ten fresh databases made at once each get their tables and lose them."""

    async def one(n: int) -> int:
        async with fresh_database(POSTGRES_URL, registry, pool_max=1) as db:
            async with UnitOfWork(db, registry) as uow:
                uow.repository(Rack).add(Rack(f"rack {n}"))
            async with UnitOfWork(db, registry) as uow:
                return await uow.repository(Rack).count()

    assert await asyncio.gather(*(one(n) for n in range(10))) == [1] * 10
    assert await _schemas() == []


async def test_an_unreachable_server_is_a_mapper_error() -> None:
    """No server at the address: ConnectionLost, with the driver's error as its cause."""
    with pytest.raises(ConnectionLost) as lost:
        async with fresh_database("postgresql://postgres@127.0.0.1:1/test", registry):
            pass  # pragma: no cover - never entered
    assert lost.value.__cause__ is not None
    assert await _schemas() == []
