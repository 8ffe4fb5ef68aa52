"""Concurrent units of work on every backend: keys, unique races, lock order (G8, G9, C4, C5)."""

from __future__ import annotations

import asyncio

import pytest

from mapper import Database, IntegrityError, UnitOfWork
from tests.integration.models import User, UserMap, registry


async def test_concurrent_flushes_get_their_own_keys(store: Database) -> None:
    """8 workers inserting 1,000 users each in batches of 100: every key matches its row."""
    workers, batches, size = 8, 10, 100

    async def worker(w: int) -> list[User]:
        mine: list[User] = []
        for b in range(batches):
            batch = [
                User(f"w{w}b{b}u{i}", f"w{w}b{b}u{i}@x", score=float(w * 10_000 + b * 100 + i))
                for i in range(size)
            ]
            async with UnitOfWork(store, registry) as uow:
                uow.repository(User).add_all(batch)
            mine.extend(batch)
        return mine

    results = await asyncio.gather(*(worker(w) for w in range(workers)))
    everyone = [user for batch in results for user in batch]
    keys = [user.id for user in everyone]
    assert None not in keys and len(set(keys)) == workers * batches * size
    async with UnitOfWork(store, registry) as uow:
        stored = {u.id: u for u in await uow.repository(User).find()}
    swapped = [u for u in everyone if stored[u.id] != u]
    assert swapped == []


async def test_a_unique_race_has_one_winner(store: Database) -> None:
    """Two units of work adding the same email: one commits, the other gets IntegrityError."""
    start = asyncio.Event()

    async def add(name: str) -> str:
        async with UnitOfWork(store, registry) as uow:
            uow.repository(User).add(User(name, "same@x"))
            await start.wait()
        return name

    tasks = [asyncio.create_task(add(n)) for n in ("first", "second")]
    await asyncio.sleep(0.05)
    start.set()
    results = await asyncio.gather(*tasks, return_exceptions=True)
    errors = [r for r in results if isinstance(r, BaseException)]
    assert len(errors) == 1
    (error,) = errors
    assert isinstance(error, IntegrityError)
    assert (error.entity, error.attribute, error.retryable) == ("User", "email", False)
    async with UnitOfWork(store, registry) as uow:
        assert await uow.repository(User).count(UserMap.email == "same@x") == 1


@pytest.mark.parametrize("rounds", [20])
async def test_opposite_change_orders_do_not_deadlock(store: Database, rounds: int) -> None:
    """Two units of work changing rows A and B in opposite order never deadlock (G8)."""
    async with UnitOfWork(store, registry) as uow:
        uow.repository(User).add_all([User("a", "a@x"), User("b", "b@x")])
    for _ in range(rounds):
        loaded = asyncio.Barrier(2)

        async def change(first: str, second: str, loaded: asyncio.Barrier = loaded) -> None:
            async with UnitOfWork(store, registry) as uow:
                users = uow.repository(User)
                one = await users.first(UserMap.name == first)
                two = await users.first(UserMap.name == second)
                assert one is not None and two is not None
                await loaded.wait()
                two.score += 1  # changed in opposite order; written in key order
                one.score += 1

        results = await asyncio.gather(change("a", "b"), change("b", "a"), return_exceptions=True)
        # one side may lose the version race; nobody may deadlock
        for result in results:
            if isinstance(result, BaseException):
                assert "deadlock" not in str(result).lower()
                assert type(result).__name__ == "StaleEntityError", result
    async with UnitOfWork(store, registry) as uow:
        users = await uow.repository(User).find()
    assert all(u.score == u.version - 1 for u in users)


async def test_flushes_with_interleaved_column_groups_do_not_deadlock(
    store: Database, backend: str
) -> None:
    """Updates split into column groups still lock rows in key order across the flush (G8)."""
    async with UnitOfWork(store, registry) as uow:
        uow.repository(User).add_all(User(f"u{i}", f"u{i}@x") for i in range(1, 5))
    held = UnitOfWork(store, registry)
    users = {u.name: u for u in await held.repository(User).find()}
    users["u3"].active = False
    await held.flush()  # holds u3 (a row lock on PostgreSQL, the write lock on SQLite)

    async def first() -> None:
        async with UnitOfWork(store, registry) as uow:
            rows = {u.name: u for u in await uow.repository(User).find()}
            rows["u1"].score = 10.0  # score group: keys 1 and 3
            rows["u3"].score = 10.0
            rows["u2"].born = None  # a second group holding key 2
            rows["u2"].name = "u2b"

    async def second() -> None:
        async with UnitOfWork(store, registry) as uow:
            rows = {u.name: u for u in await uow.repository(User).find()}
            rows["u2"].score = 20.0  # score group: key 2
            rows["u3"].name = "u3b"  # a second group: keys 3 and 4
            rows["u4"].name = "u4b"

    one = asyncio.create_task(first())
    await asyncio.sleep(0.2)
    two = asyncio.create_task(second())
    await asyncio.sleep(0.2)
    await held.rollback()
    await held.close()
    results = await asyncio.gather(one, two, return_exceptions=True)
    for result in results:
        if isinstance(result, BaseException):
            assert "deadlock" not in str(result).lower(), result
            assert type(result).__name__ == "StaleEntityError", repr(result)
