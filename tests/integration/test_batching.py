"""Batching on every backend: a flush is a handful of statements whatever the row count."""

from __future__ import annotations

import gc
import math

import pytest

from mapper import Database, UnitOfWork, ValidationError
from tests.integration.helpers import around_commit, statements
from tests.integration.models import Role, Tag, User, UserMap, registry


def statements_for(db: Database, rows: int, parameters_per_row: int) -> int:
    """Statements one batch needs: one with array parameters, else one per parameter-limit chunk."""
    capabilities = db.capabilities
    if capabilities.array_parameters:
        return 1
    per_statement = capabilities.parameter_limit // parameters_per_row
    return math.ceil(rows / per_statement)


async def test_a_thousand_new_entities_insert_in_a_fixed_number_of_statements(
    store: Database,
) -> None:
    """1,000 new users insert in one statement per parameter-limit chunk, keys all set."""
    users = [User(f"u{i:04d}", f"u{i:04d}@x", score=float(i)) for i in range(1000)]
    with statements(store) as log:
        async with UnitOfWork(store, registry) as uow:
            uow.repository(User).add_all(users)
    columns = len(registry.meta(User).columns) - 1  # the generated key is not sent
    assert log.count("insert") == statements_for(store, 1000, columns)
    assert log.count() == log.count("insert") + around_commit(store, log.count("insert"))
    ids = [u.id for u in users]
    assert None not in ids and len(set(ids)) == 1000
    async with UnitOfWork(store, registry) as uow:
        stored = {u.id: u for u in await uow.repository(User).find()}
    assert all(stored[u.id] == u for u in users)  # every key landed on its own row (G9)


async def test_a_thousand_changed_entities_update_in_a_fixed_number_of_statements(
    store: Database,
) -> None:
    """1,000 changed users update in one statement per chunk, versions checked and bumped."""
    async with UnitOfWork(store, registry) as uow:
        uow.repository(User).add_all(User(f"u{i:04d}", f"u{i:04d}@x") for i in range(1000))
    with statements(store) as log:
        async with UnitOfWork(store, registry) as uow:
            users = await uow.repository(User).find()
            for user in users:
                user.score = 2.5
    # key, expected version and the one changed column travel per row
    assert log.count("update") == statements_for(store, 1000, 3)
    assert log.operations()[0] == "select"
    assert all(u.version == 2 for u in users)
    async with UnitOfWork(store, registry) as uow:
        assert await uow.repository(User).count(UserMap.score == 2.5) == 1000


async def test_a_mixed_flush_is_one_batch_per_table_operation_and_column_set(
    store: Database,
) -> None:
    """Adds, two kinds of change and removes over three tables are a handful of statements."""
    async with UnitOfWork(store, registry) as uow:
        uow.repository(User).add_all(User(f"u{i:03d}", f"u{i:03d}@x") for i in range(300))
    with statements(store) as log:
        async with UnitOfWork(store, registry) as uow:
            users = await uow.repository(User).find(order_by=UserMap.name)
            for user in users[:100]:
                user.score = 1.0
            for user in users[100:200]:
                user.name = user.name.upper()
            for user in users[200:]:
                uow.repository(User).remove(user)
            uow.repository(Role).add_all(Role(f"r{i}") for i in range(100))
            uow.repository(Tag).add_all(Tag(f"t{i}") for i in range(100))
    expected = {"select": 1, "begin": 1, "insert": 2, "update": 2, "delete": 1, "commit": 1}
    if store.capabilities.row_locks:
        expected["lock"] = 1  # users are touched by three batches: locked first, in key order
    assert log.by_operation() == expected
    writes = [op for op in log.operations() if op in ("lock", "update", "delete")]
    assert writes[0] == ("lock" if store.capabilities.row_locks else "update")


async def test_deletes_batch_whatever_the_count(store: Database) -> None:
    """Removing 1,000 entities is one delete statement per chunk."""
    async with UnitOfWork(store, registry) as uow:
        uow.repository(Tag).add_all(Tag(f"t{i:04d}") for i in range(1000))
    with statements(store) as log:
        async with UnitOfWork(store, registry) as uow:
            tags = uow.repository(Tag)
            for tag in await tags.find():
                tags.remove(tag)
    assert log.count("delete") == statements_for(store, 1000, 1)
    async with UnitOfWork(store, registry) as uow:
        assert await uow.repository(Tag).count() == 0


async def test_get_many_loads_in_one_query(store: Database) -> None:
    """get_many() of 500 keys is one query."""
    async with UnitOfWork(store, registry) as uow:
        tags = [Tag(f"t{i:03d}") for i in range(500)]
        uow.repository(Tag).add_all(tags)
    with statements(store) as log:
        async with UnitOfWork(store, registry) as uow:
            found = await uow.repository(Tag).get_many([t.id for t in tags])
    assert [t.id for t in found] == [t.id for t in tags]
    assert log.operations() == ["select"]


async def test_bulk_passes_leave_the_cycle_collector_on_for_statements_and_after(
    store: Database,
) -> None:
    """Adding, flushing, loading and removing 1,500 rows, and a flush refused for a bad value,
    never leave Python's cycle collector off while a statement runs, nor afterwards."""
    seen: list[bool] = []
    handle = store.on_statement(lambda _: seen.append(gc.isenabled()), when="before")
    try:
        users = [User(f"u{i:04d}", f"u{i:04d}@x") for i in range(1500)]
        async with UnitOfWork(store, registry) as uow:
            uow.repository(User).add_all(users)
        assert gc.isenabled()
        async with UnitOfWork(store, registry) as uow:
            loaded = await uow.repository(User).find()
            assert len(loaded) == 1500 and gc.isenabled()
            for user in loaded[:1000]:
                user.score = 1.5
            uow.repository(User).remove_all(loaded[1000:])
        assert gc.isenabled()
        bad = [User(f"v{i:04d}", f"v{i:04d}@x") for i in range(1500)]
        bad[-1].name = "x" * 101
        with pytest.raises(ValidationError, match=r"User\.name"):
            async with UnitOfWork(store, registry) as uow:
                uow.repository(User).add_all(bad)
        assert gc.isenabled()
    finally:
        handle.remove()
    assert seen and all(seen), seen
    async with UnitOfWork(store, registry) as uow:
        assert await uow.repository(User).count(UserMap.score == 1.5) == 1000
        assert await uow.repository(User).count() == 1000
