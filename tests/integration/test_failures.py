"""What a failed flush leaves behind, on every backend (GUARANTEES G1, G2, G4, G6).

Nothing of a failed flush remains in the database; entities keep the values the user set
while keys, defaults and versions the flush wrote are put back; the unit of work refuses
further use naming the failure; the next unit of work works.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from mapper import (
    Database,
    IntegrityError,
    StaleEntityError,
    StatementEvent,
    UnitOfWork,
    UnitOfWorkClosed,
    UnitOfWorkState,
    ValidationError,
)
from tests.integration.helpers import WAYS_TO_COMMIT, statements, write_changes
from tests.integration.models import Role, Tag, User, UserMap, registry


class InjectedFault(Exception):
    """Raised by a statement hook to fail a flush at a chosen statement."""


async def snapshot(db: Database) -> dict[str, list[tuple[Any, ...]]]:
    """Everything stored in the tables a flush may touch, for before/after comparison."""
    async with UnitOfWork(db, registry) as uow:
        users = [
            (u.id, u.name, u.email, u.score, u.version)
            for u in await uow.repository(User).find(order_by=UserMap.id)
        ]
        roles = sorted((r.id, r.name) for r in await uow.repository(Role).find())
        tags = sorted((str(t.id), t.label) for t in await uow.repository(Tag).find())
    return {"users": users, "roles": roles, "tags": tags}


async def seed(db: Database) -> None:
    async with UnitOfWork(db, registry) as uow:
        uow.repository(User).add_all(User(f"u{i}", f"u{i}@x") for i in range(6))
        uow.repository(Tag).add_all(Tag(f"t{i}") for i in range(3))


def fail_before(db: Database, statement: int) -> Callable[[StatementEvent], None]:
    """A hook failing the `statement`-th statement (1-based) it sees."""
    seen = 0

    def hook(event: StatementEvent) -> None:
        nonlocal seen
        seen += 1
        if seen == statement:
            raise InjectedFault(f"fault before statement {statement}: {event.operation}")

    return hook


async def busy_flush(db: Database) -> tuple[UnitOfWork, list[Any]]:
    """A unit of work with inserts into three tables, updates and deletes, ready to flush."""
    uow = UnitOfWork(db, registry)
    users = await uow.repository(User).find(order_by=UserMap.id)
    (tag,) = await uow.repository(Tag).find(limit=1)
    users[0].score = 9.0
    users[1].name = "renamed"
    uow.repository(User).remove(users[2])
    uow.repository(Tag).remove(tag)
    new = [Role("admin"), Tag("fresh"), User("new", "new@x")]
    uow.repository(Role).add(new[0])
    uow.repository(Tag).add(new[1])
    uow.repository(User).add(new[2])
    return uow, [*users, *new]


async def test_a_fault_at_any_statement_leaves_no_trace(store: Database) -> None:
    """Failing the flush before each of its statements in turn leaves the database as it was."""
    await seed(store)
    before = await snapshot(store)
    uow, _ = await busy_flush(store)
    with statements(store) as log:
        plan = uow.plan()
    await uow.close()
    assert log.count() == 0
    total = 1 + sum(len(p.sql) for p in plan) + 1  # BEGIN, the batches, COMMIT
    for k in range(1, total + 1):
        uow, entities = await busy_flush(store)
        state = [(e.id, getattr(e, "version", None)) for e in entities]
        with store.on_statement(fail_before(store, k), when="before"):
            with pytest.raises(InjectedFault):
                await uow.commit()
        assert uow.state is UnitOfWorkState.FAILED
        assert [(e.id, getattr(e, "version", None)) for e in entities] == state, k
        assert await snapshot(store) == before, f"statement {k} left a trace"
        with pytest.raises(UnitOfWorkClosed, match="InjectedFault"):
            await uow.repository(User).find()
        await uow.close()
    _size, in_use = store.dialect.pool_status()
    assert in_use == 0


async def test_a_constraint_violation_rolls_back_the_whole_flush(store: Database) -> None:
    """A unique violation in the last batch undoes the earlier batches and names the column."""
    await seed(store)
    before = await snapshot(store)
    role, dup = Role("admin"), User("dup", "u1@x")
    with pytest.raises(IntegrityError) as raised:
        async with UnitOfWork(store, registry) as uow:
            uow.repository(Role).add(role)
            uow.repository(User).add(dup)
    error = raised.value
    assert (error.entity, error.attribute) == ("User", "email")
    assert error.retryable is False
    assert "User.email" in str(error)
    assert role.id is None and dup.id is None and dup.version == 0
    assert await snapshot(store) == before


async def test_keys_of_earlier_flushes_are_restored_too(store: Database) -> None:
    """A failure rolls back the whole transaction, so keys from earlier flushes go back too."""
    first, second = Role("first"), Role("first")
    uow = UnitOfWork(store, registry)
    uow.repository(Role).add(first)
    await uow.flush()
    assert first.id is not None
    uow.repository(Role).add(second)
    with pytest.raises(IntegrityError):
        await uow.flush()
    assert first.id is None and second.id is None
    await uow.close()
    async with UnitOfWork(store, registry) as again:  # a retry inserts again
        again.repository(Role).add(first)
    assert first.id is not None


async def test_user_set_values_survive_a_failed_flush(store: Database) -> None:
    """Values the user set stay on the entities after a failure, ready for a retry."""
    await seed(store)
    async with UnitOfWork(store, registry) as uow:
        (ann,) = await uow.repository(User).find(UserMap.name == "u0")
    with pytest.raises(InjectedFault):
        async with UnitOfWork(store, registry) as uow:
            (ann,) = await uow.repository(User).find(UserMap.name == "u0")
            ann.name = "anna"
            with store.on_statement(fail_before(store, 2), when="before"):
                await uow.flush()
    assert (ann.name, ann.version) == ("anna", 1)


async def test_a_swallowed_failure_is_reported_at_exit(store: Database) -> None:
    """Catching a flush error inside the block does not let the block commit."""
    with pytest.raises(UnitOfWorkClosed, match="IntegrityError"):
        async with UnitOfWork(store, registry) as uow:
            uow.repository(Role).add_all([Role("x"), Role("x")])
            with contextlib.suppress(IntegrityError):
                await uow.flush()


async def test_bad_values_do_not_close_the_unit_of_work(store: Database) -> None:
    """A ValidationError comes before any SQL; fixing the value lets the commit go through."""
    ann = User("x" * 101, "ann@x")
    async with UnitOfWork(store, registry) as uow:
        uow.repository(User).add(ann)
        with statements(store) as log, pytest.raises(ValidationError, match=r"User\.name"):
            await uow.flush()
        assert log.count() == 0
        assert uow.state is UnitOfWorkState.OPEN
        ann.name = "ann"
    assert ann.id is not None


async def test_bad_values_at_the_block_end_roll_back_earlier_flushes(store: Database) -> None:
    """A commit refused at the end of the block for a bad value rolls back what earlier
    flushes wrote, in the database and in the entities (G1, G2)."""
    await seed(store)
    before = await snapshot(store)
    role = Role("new")
    with pytest.raises(ValidationError, match=r"User\.name"):
        async with UnitOfWork(store, registry) as uow:
            (ann,) = await uow.repository(User).find(UserMap.name == "u0")
            ann.score = 5.0
            uow.repository(Role).add(role)
            await uow.flush()
            assert (ann.version, role.id is not None) == (2, True)
            ann.name = "x" * 101  # refused by the exit's commit, before any SQL
    assert (ann.version, role.id) == (1, None)
    assert ann.name == "x" * 101 and ann.score == 5.0  # what the user set stays
    assert uow.state is UnitOfWorkState.CLOSED
    assert await snapshot(store) == before


class TestVersionConflicts:
    async def test_the_second_writer_gets_stale_entity_error(self, store: Database) -> None:
        """Two units of work change one row: the second to commit fails and changes nothing."""
        await seed(store)
        winner, loser = UnitOfWork(store, registry), UnitOfWork(store, registry)
        (mine,) = await winner.repository(User).find(UserMap.name == "u0")
        (theirs,) = await loser.repository(User).find(UserMap.name == "u0")
        mine.score = 1.0
        await winner.commit()
        theirs.score = 2.0
        loser.repository(Role).add(Role("side effect"))
        with pytest.raises(StaleEntityError) as raised:
            await loser.commit()
        (row,) = raised.value.rows
        assert (row.entity, row.key, row.expected_version) == ("User", theirs.id, 1)
        assert raised.value.retryable
        assert theirs.version == 1
        await winner.close()
        await loser.close()
        async with UnitOfWork(store, registry) as check:
            stored = await check.repository(User).get(mine.id)
            assert (stored.score, stored.version) == (1.0, 2)
            assert await check.repository(Role).count() == 0

    async def test_deleting_a_changed_row_is_stale(self, store: Database) -> None:
        """Removing an entity someone else changed meanwhile raises StaleEntityError."""
        await seed(store)
        first, second = UnitOfWork(store, registry), UnitOfWork(store, registry)
        (a,) = await first.repository(User).find(UserMap.name == "u0")
        (b,) = await second.repository(User).find(UserMap.name == "u0")
        a.name = "changed"
        await first.commit()
        second.repository(User).remove(b)
        with pytest.raises(StaleEntityError, match="delete of User"):
            await second.commit()
        await first.close()
        await second.close()

    async def test_updating_a_deleted_row_is_stale(self, store: Database) -> None:
        """Changing an entity whose row another unit of work deleted raises StaleEntityError."""
        await seed(store)
        first, second = UnitOfWork(store, registry), UnitOfWork(store, registry)
        (a,) = await first.repository(Tag).find(limit=1)
        (b,) = await second.repository(Tag).get_many([a.id])
        first.repository(Tag).remove(a)
        await first.commit()
        b.label = "renamed"
        with pytest.raises(StaleEntityError, match="no longer exists"):
            await second.commit()
        await first.close()
        await second.close()

    async def _change_and_delete_elsewhere(self, store: Database, changed: str, gone: str) -> None:
        async with UnitOfWork(store, registry) as other:
            users = other.repository(User)
            (row,) = await users.find(UserMap.name == changed)
            row.score = 9.0
            (doomed,) = await users.find(UserMap.name == gone)
            users.remove(doomed)

    @staticmethod
    async def _fresh_and_u2_written(
        store: Database, score: float
    ) -> tuple[UnitOfWork, dict[str, User], User]:
        """A unit of work whose transaction has inserted a fresh user and updated u2 (both
        held by it now): the unit of work, the seeded users by name, the fresh one."""
        uow = UnitOfWork(store, registry)
        repository = uow.repository(User)
        users = {u.name: u for u in await repository.find()}
        fresh = User("fresh", "fresh@x")
        repository.add(fresh)
        users["u2"].score = score
        await uow.flush()
        return uow, users, fresh

    @staticmethod
    def _stale(error: StaleEntityError) -> set[tuple[str, Any, Any]]:
        return {(r.entity, r.key, r.expected_version) for r in error.rows}

    @pytest.mark.parametrize("how", WAYS_TO_COMMIT)
    @pytest.mark.parametrize("operation", ["update", "delete"])
    async def test_a_batch_names_exactly_its_stale_rows(
        self, store: Database, operation: str, how: str
    ) -> None:
        """Of six changed (or removed) users, the one changed and the one deleted elsewhere
        are named, and nothing of the batch is written."""
        await seed(store)
        uow = UnitOfWork(store, registry)
        users = {u.name: u for u in await uow.repository(User).find()}
        await self._change_and_delete_elsewhere(store, "u1", "u3")
        if operation == "update":
            for user in users.values():
                user.name = user.name.upper()
        else:
            uow.repository(User).remove_all(users.values())
        with pytest.raises(StaleEntityError, match=f"{operation} of User") as raised:
            await write_changes(uow, how)
        assert self._stale(raised.value) == {
            ("User", users["u1"].id, 1),
            ("User", users["u3"].id, 1),
        }
        assert raised.value.unnamed == 0
        await uow.close()
        async with UnitOfWork(store, registry) as check:
            assert await check.repository(User).count() == 5  # nothing was deleted
            names = {u.name for u in await check.repository(User).find()}
            assert names == {"u0", "u1", "u2", "u4", "u5"}  # no name was changed

    async def test_stale_rows_are_named_after_earlier_writes_of_the_transaction(
        self, store: Database
    ) -> None:
        """Rows this transaction wrote in an earlier flush are never named stale with the rest."""
        if not store.capabilities.concurrent_writers:
            pytest.skip(
                "capabilities.concurrent_writers is False: one writer at a time, so no other "
                "unit of work can change rows under a transaction that has written"
            )
        await seed(store)
        uow, users, fresh = await self._fresh_and_u2_written(store, score=1.0)
        await self._change_and_delete_elsewhere(store, "u4", "u3")
        users["u2"].score = 2.0
        users["u3"].score = 2.0
        with pytest.raises(StaleEntityError, match="update of User") as raised:
            await uow.flush()
        assert self._stale(raised.value) == {("User", users["u3"].id, 1)}
        await uow.close()

        uow, users, fresh = await self._fresh_and_u2_written(store, score=3.0)
        await self._change_and_delete_elsewhere(store, "u5", "u1")
        uow.repository(User).remove_all([fresh, users["u2"], users["u1"], users["u0"]])
        with pytest.raises(StaleEntityError, match="delete of User") as raised:
            await uow.commit()
        assert self._stale(raised.value) == {("User", users["u1"].id, 1)}
        await uow.close()
        async with UnitOfWork(store, registry) as check:
            names = {u.name for u in await check.repository(User).find()}
            assert names == {"u0", "u2", "u4", "u5"}

    async def test_db_run_retries_the_whole_function(self, store: Database) -> None:
        """db.run() re-runs a function that lost a version race, in a fresh unit of work."""
        await seed(store)
        attempts = 0

        async def increment() -> None:
            nonlocal attempts
            attempts += 1
            async with UnitOfWork(store, registry) as uow:
                (user,) = await uow.repository(User).find(UserMap.name == "u0")
                if attempts == 1:  # someone else commits in between, once
                    async with UnitOfWork(store, registry) as other:
                        (same,) = await other.repository(User).find(UserMap.name == "u0")
                        same.score += 1
                user.score += 1

        await store.run(increment, attempts=3)
        assert attempts == 2
        async with UnitOfWork(store, registry) as uow:
            (user,) = await uow.repository(User).find(UserMap.name == "u0")
        assert (user.score, user.version) == (2.0, 3)


async def hold_write_lock(db: Database) -> UnitOfWork:
    """A unit of work that changed the row of u0 and keeps its transaction open."""
    holder = UnitOfWork(db, registry)
    (user,) = await holder.repository(User).find(UserMap.name == "u0")
    user.score = 100.0
    await holder.flush()
    return holder


async def test_cancellation_mid_flush_rolls_back_and_frees_the_connection(
    store: Database,
) -> None:
    """A flush cancelled while it waits for a lock leaves no rows and no open transaction."""
    await seed(store)
    holder = await hold_write_lock(store)
    uow = UnitOfWork(store, registry)
    (user,) = await uow.repository(User).find(UserMap.name == "u0")
    user.name = "never"
    uow.repository(Role).add(Role("never"))
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.3):
            await uow.commit()
    assert uow.state is UnitOfWorkState.FAILED
    await holder.rollback()
    await holder.close()
    await uow.close()
    await _settle_pool(store)
    async with UnitOfWork(store, registry) as check:
        assert await check.repository(Role).count() == 0
        assert await check.repository(User).count(UserMap.name == "never") == 0


async def _settle_pool(db: Database, timeout: float = 5.0) -> None:
    """Wait until every connection is back in the pool (a cancelled one may take a moment)."""
    async with asyncio.timeout(timeout):
        while db.dialect.pool_status()[1]:
            await asyncio.sleep(0.01)


@pytest.mark.parametrize("discard", [False, True], ids=["pooled", "discarded"])
async def test_a_release_cancelled_midway_still_returns_the_connection(
    store: Database, discard: bool
) -> None:
    """A caller cancelled while it gives a connection back gets CancelledError; the
    connection still goes back (or away), and the pool serves the next unit of work."""
    for _ in range(20):
        connection = await store.acquire()
        releasing = asyncio.ensure_future(store.release(connection, discard=discard))
        await asyncio.sleep(0)  # inside the release, at its first wait (if it has one)
        releasing.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await releasing
        await _settle_pool(store)
    async with UnitOfWork(store, registry) as uow:
        assert await uow.repository(User).count() == 0


async def test_fifty_cancellations_leak_no_connection(store: Database) -> None:
    """Cancelling units of work at random points 50 times leaves the pool whole."""
    await seed(store)

    async def work(delay: float) -> None:
        async with asyncio.timeout(delay):
            async with UnitOfWork(store, registry) as uow:
                users = await uow.repository(User).find()
                for user in users:
                    user.score += 1
                uow.repository(Tag).add(Tag(f"tag-{delay}"))

    outcomes: list[Awaitable[None]] = [work(0.0005 * i) for i in range(50)]
    for outcome in outcomes:
        with contextlib.suppress(TimeoutError):
            await outcome
    await _settle_pool(store)
    async with UnitOfWork(store, registry) as uow:
        users = await uow.repository(User).find()
        tags = await uow.repository(Tag).count()
    # every unit of work either committed whole (a tag and a score bump) or not at all
    assert {u.score for u in users} == {float(tags - 3)}
