"""The unit of work on every backend: transactions, identity map, change tracking, plan."""

from __future__ import annotations

import asyncio

import pytest

from mapper import (
    Database,
    UnitOfWork,
    UnitOfWorkClosed,
    UnitOfWorkError,
    UnitOfWorkState,
)
from tests.integration.helpers import statements
from tests.integration.models import Address, Role, Tag, User, UserMap, registry


async def seed(db: Database, *users: User) -> None:
    async with UnitOfWork(db, registry) as uow:
        uow.repository(User).add_all(users)


class TestTransactions:
    async def test_clean_exit_commits(self, store: Database) -> None:
        """Leaving the block normally commits what was added."""
        async with UnitOfWork(store, registry) as uow:
            uow.repository(User).add(User("ann", "ann@x"))
        assert uow.state is UnitOfWorkState.CLOSED
        async with UnitOfWork(store, registry) as uow:
            assert await uow.repository(User).count() == 1

    async def test_an_exception_rolls_back(self, store: Database) -> None:
        """An exception in the block rolls back even what was flushed, and propagates."""
        ann = User("ann", "ann@x")
        with pytest.raises(RuntimeError, match="boom"):
            async with UnitOfWork(store, registry) as uow:
                uow.repository(User).add(ann)
                await uow.flush()
                assert ann.id is not None
                raise RuntimeError("boom")
        assert ann.id is None and ann.version == 0
        async with UnitOfWork(store, registry) as uow:
            assert await uow.repository(User).count() == 0

    async def test_the_transaction_begins_at_the_first_write(self, store: Database) -> None:
        """Reads before any change run without BEGIN; the first flush begins the transaction."""
        await seed(store, User("ann", "ann@x"))
        with statements(store) as log:
            async with UnitOfWork(store, registry) as uow:
                users = uow.repository(User)
                (ann,) = await users.find()
                assert "begin" not in log.operations()
                ann.name = "anna"
                await uow.flush()
        assert log.operations() == ["select", "begin", "update", "commit"]

    async def test_a_commit_of_one_statement_is_sent_alone_where_it_can_be(
        self, store: Database
    ) -> None:
        """With single_statement_commits, a commit whose only write is one batch sends it
        without BEGIN and COMMIT (an insert, an update, a delete); two batches still get a
        transaction; elsewhere every commit does."""
        alone = store.capabilities.single_statement_commits
        with statements(store) as log:
            async with UnitOfWork(store, registry) as uow:
                uow.repository(User).add_all([User("ann", "ann@x"), User("bob", "bob@x")])
            async with UnitOfWork(store, registry) as uow:
                ann, bob = await uow.repository(User).find(order_by=UserMap.name)
                ann.name, bob.name = "anna", "bobby"
            async with UnitOfWork(store, registry) as uow:
                (bob,) = await uow.repository(User).find(UserMap.name == "bobby")
                uow.repository(User).remove(bob)
            async with UnitOfWork(store, registry) as uow:
                (ann,) = await uow.repository(User).find()
                ann.name = "ann"
                uow.repository(Role).add(Role("two batches"))
        around = [] if alone else ["begin"]
        after = [] if alone else ["commit"]
        assert log.operations() == [
            *around, "insert", *after,
            "select", *around, "update", *after,
            "select", *around, "delete", *after,
            "select", "begin", "insert", "update", "commit",
        ]  # fmt: skip
        async with UnitOfWork(store, registry) as uow:
            (ann,) = await uow.repository(User).find()
            assert (ann.name, ann.version) == ("ann", 3)
            assert await uow.repository(Role).count() == 1

    async def test_a_read_only_unit_of_work_writes_nothing(self, store: Database) -> None:
        """Loading without changing sends only the queries: no BEGIN, no COMMIT."""
        await seed(store, User("ann", "ann@x"))
        with statements(store) as log:
            async with UnitOfWork(store, registry) as uow:
                await uow.repository(User).find()
                await uow.repository(User).count()
        assert log.operations() == ["select", "count"]

    async def test_an_ended_unit_of_work_is_freed_without_the_garbage_collector(
        self, store: Database
    ) -> None:
        """Once a unit of work has ended and is let go, what it held goes at once (no
        reference cycle waits for a garbage collection)."""
        import gc
        import weakref

        await seed(store, User("ann", "ann@x"))
        gc.collect()
        gc.disable()
        try:
            async with UnitOfWork(store, registry) as uow:
                (ann,) = await uow.repository(User).find()
                held = weakref.ref(ann)
                identity = weakref.ref(uow._identity)  # what must be freed
            del uow, ann
            assert held() is None and identity() is None
        finally:
            gc.enable()

    async def test_commit_keeps_the_unit_of_work_usable(self, store: Database) -> None:
        """After commit() the unit of work goes on, with its entities still tracked."""
        async with UnitOfWork(store, registry) as uow:
            users = uow.repository(User)
            ann = User("ann", "ann@x")
            users.add(ann)
            await uow.commit()
            ann.name = "anna"
            await uow.commit()
            assert await users.get(ann.id) is ann
        async with UnitOfWork(store, registry) as uow:
            assert (await uow.repository(User).get(ann.id)).name == "anna"

    async def test_rollback_forgets_changes_and_restores_keys(self, store: Database) -> None:
        """rollback() undoes flushed work, restores keys and versions, and keeps going."""
        async with UnitOfWork(store, registry) as uow:
            users = uow.repository(User)
            ann = User("ann", "ann@x")
            users.add(ann)
            await uow.flush()
            await uow.rollback()
            assert (ann.id, ann.version) == (None, 0)
            assert uow.state is UnitOfWorkState.OPEN
            assert await users.count() == 0
            users.add(ann)
        async with UnitOfWork(store, registry) as uow:
            assert await uow.repository(User).count() == 1

    async def test_a_closed_unit_of_work_refuses_use(self, store: Database) -> None:
        """Any use after the block ends raises UnitOfWorkClosed."""
        async with UnitOfWork(store, registry) as uow:
            users = uow.repository(User)
        with pytest.raises(UnitOfWorkClosed, match="closed"):
            await users.find()
        with pytest.raises(UnitOfWorkClosed):
            users.add(User("late", "late@x"))

    async def test_close_rolls_back_without_a_block(self, store: Database) -> None:
        """close() without commit() rolls back; the connection goes back to the pool."""
        uow = UnitOfWork(store, registry)
        uow.repository(User).add(User("ann", "ann@x"))
        await uow.flush()
        await uow.close()
        assert uow.state is UnitOfWorkState.CLOSED
        async with UnitOfWork(store, registry) as check:
            assert await check.repository(User).count() == 0
        size, in_use = store.dialect.pool_status()
        assert in_use == 0 and size >= 1

    async def test_two_tasks_cannot_share_a_unit_of_work(self, store: Database) -> None:
        """A second concurrent operation from another task fails at once (C6)."""
        await seed(store, *[User(f"u{i}", f"u{i}@x") for i in range(50)])
        async with UnitOfWork(store, registry) as uow:
            users = uow.repository(User)
            results = await asyncio.gather(users.find(), users.find(), return_exceptions=True)
            errors = [r for r in results if isinstance(r, BaseException)]
            assert len(errors) == 1 and isinstance(errors[0], UnitOfWorkError)
            assert "another task" in str(errors[0])
            assert len(await users.find()) == 50


class TestIdentityMap:
    async def test_the_same_row_is_the_same_object(self, store: Database) -> None:
        """Loading one row twice in a unit of work gives one object."""
        await seed(store, User("ann", "ann@x"))
        async with UnitOfWork(store, registry) as uow:
            users = uow.repository(User)
            (first,) = await users.find(UserMap.name == "ann")
            (second,) = await users.find(UserMap.email == "ann@x")
            assert first is second
            assert await users.get(first.id) is first

    async def test_get_of_a_held_entity_runs_no_query(self, store: Database) -> None:
        """get() of an entity the unit of work holds answers from the identity map."""
        await seed(store, User("ann", "ann@x"))
        async with UnitOfWork(store, registry) as uow:
            users = uow.repository(User)
            (ann,) = await users.find()
            with statements(store) as log:
                assert await users.get(ann.id) is ann
            assert log.count() == 0

    async def test_a_reload_does_not_overwrite_unflushed_changes(self, store: Database) -> None:
        """A query returning a held entity keeps its unflushed values."""
        await seed(store, User("ann", "ann@x"))
        async with UnitOfWork(store, registry) as uow:
            users = uow.repository(User)
            (ann,) = await users.find()
            ann.email = "new@x"
            (again,) = await users.find(UserMap.name == "ann")
            assert again is ann and again.email == "new@x"

    async def test_units_of_work_do_not_share_objects(self, store: Database) -> None:
        """Two units of work load the same row as two objects."""
        await seed(store, User("ann", "ann@x"))
        async with UnitOfWork(store, registry) as a, UnitOfWork(store, registry) as b:
            (one,) = await a.repository(User).find()
            (two,) = await b.repository(User).find()
            assert one == two and one is not two

    async def test_adding_a_second_object_for_a_held_key_is_refused(self, store: Database) -> None:
        """add() of another object with the key of a held entity raises UnitOfWorkError."""
        await seed(store, User("ann", "ann@x"))
        async with UnitOfWork(store, registry) as uow:
            users = uow.repository(User)
            (ann,) = await users.find()
            twin = User("ann", "twin@x", id=ann.id)
            with pytest.raises(UnitOfWorkError, match="already in this unit of work"):
                users.add(twin)


class TestChangeTracking:
    async def test_only_changed_columns_are_written(self, store: Database) -> None:
        """An update sets only the columns that changed (and the version)."""
        await seed(store, User("ann", "ann@x"))
        async with UnitOfWork(store, registry) as uow:
            (ann,) = await uow.repository(User).find()
            ann.email = "anna@x"
            (batch,) = uow.plan()
        assert batch.operation == "update" and batch.rows == 1
        (sql,) = batch.sql
        assert '"email"' in sql and '"name"' not in sql and '"version"' in sql

    async def test_an_unchanged_entity_writes_nothing(self, store: Database) -> None:
        """Loading and leaving entities alone sends no write."""
        await seed(store, *[User(f"u{i}", f"u{i}@x") for i in range(10)])
        with statements(store) as log:
            async with UnitOfWork(store, registry) as uow:
                for user in await uow.repository(User).find():
                    user.name = user.name  # same value: not a change
        assert log.writes() == 0

    async def test_in_place_changes_to_json_values_are_noticed(self, store: Database) -> None:
        """Replacing a JSON value object is a change; it is written and read back."""
        await seed(store, User("ann", "ann@x", address=Address("Main", "Town")))
        async with UnitOfWork(store, registry) as uow:
            (ann,) = await uow.repository(User).find()
            ann.address = Address("High", "City")
        async with UnitOfWork(store, registry) as uow:
            (ann,) = await uow.repository(User).find()
        assert ann.address == Address("High", "City")

    async def test_queries_see_what_was_added_and_changed(self, store: Database) -> None:
        """A query flushes pending changes first (autoflush)."""
        await seed(store, User("ann", "ann@x"))
        async with UnitOfWork(store, registry) as uow:
            users = uow.repository(User)
            (ann,) = await users.find()
            ann.name = "anna"
            users.add(User("bob", "bob@x"))
            assert {u.name for u in await users.find()} == {"anna", "bob"}
            assert await users.count(UserMap.name == "anna") == 1

    async def test_versions_start_at_one_and_increase_by_one(self, store: Database) -> None:
        """The version column is 1 after insert and grows by 1 with each update."""
        ann = User("ann", "ann@x")
        async with UnitOfWork(store, registry) as uow:
            uow.repository(User).add(ann)
            await uow.commit()
            assert ann.version == 1
            ann.name = "anna"
            await uow.commit()
            assert ann.version == 2
        async with UnitOfWork(store, registry) as uow:
            assert (await uow.repository(User).get(ann.id)).version == 2

    async def test_changing_a_loaded_key_is_refused(self, store: Database) -> None:
        """Changing the primary key of a loaded entity raises UnitOfWorkError at flush."""
        await seed(store, User("ann", "ann@x"))
        with pytest.raises(UnitOfWorkError, match="keys cannot change"):
            async with UnitOfWork(store, registry) as uow:
                (ann,) = await uow.repository(User).find()
                ann.id = 1000


class TestPlan:
    async def test_plan_shows_the_batches_without_running_them(self, store: Database) -> None:
        """plan() lists operation, table, rows and SQL of the next flush and runs nothing."""
        await seed(store, User("ann", "ann@x"), User("bob", "bob@x"))
        async with UnitOfWork(store, registry) as uow:
            users = uow.repository(User)
            ann, bob = await users.find(order_by=UserMap.name)
            ann.name = "anna"
            users.remove(bob)
            uow.repository(Role).add(Role("admin"))
            uow.repository(Tag).add(Tag("t1"))
            with statements(store) as log:
                planned = uow.plan()
            assert log.count() == 0
            locks = [("lock", "users", 2)] if store.capabilities.row_locks else []
            assert [(p.operation, p.table, p.rows) for p in planned] == [
                ("insert", "roles", 1),
                ("insert", "tags", 1),
                *locks,  # two batches touch users: their rows are locked first, in key order
                ("update", "users", 1),
                ("delete", "users", 1),
            ]
            assert all(p.sql and all(isinstance(s, str) for s in p.sql) for p in planned)
            assert ann.version == 1  # nothing was written into entities


class TestMisuseAndRaces:
    async def test_ending_while_another_task_flushes_commits_nothing(self, store: Database) -> None:
        """Leaving the block while another task flushes raises; its work is rolled back."""
        from mapper import StatementEvent

        entered = asyncio.Event()
        leave = asyncio.Event()

        async def slow(event: StatementEvent) -> None:
            if event.operation == "insert":
                entered.set()
                await leave.wait()

        uow = UnitOfWork(store, registry)
        uow.repository(Role).add(Role("half"))
        with store.on_statement(slow, when="before"):
            flushing = asyncio.create_task(uow.flush())
            await entered.wait()
            with pytest.raises(UnitOfWorkError, match="busy with flush"):
                await uow.__aexit__(None, None, None)
            leave.set()
            await flushing
        assert uow.state is UnitOfWorkState.CLOSED
        assert store.dialect.pool_status()[1] == 0
        async with UnitOfWork(store, registry) as check:
            assert await check.repository(Role).count() == 0
            check.repository(Role).add(Role("next"))  # the pooled connection is clean
        async with UnitOfWork(store, registry) as check:
            assert [r.name for r in await check.repository(Role).find()] == ["next"]

    async def test_a_change_made_during_a_flush_is_not_lost(self, store: Database) -> None:
        """A value changed while the flush awaits the database is written by the next flush."""
        from mapper import StatementEvent

        await seed(store, User("ann", "ann@x"))
        async with UnitOfWork(store, registry) as uow:
            (ann,) = await uow.repository(User).find()
            ann.name = "anna"

            async def meddle(event: StatementEvent) -> None:
                if event.operation == "update":
                    ann.email = "changed@x"  # another coroutine, mid-flush

            with store.on_statement(meddle, when="before"):
                await uow.flush()
            assert [b.operation for b in uow.plan()] == ["update"]
        async with UnitOfWork(store, registry) as uow:
            (stored,) = await uow.repository(User).find()
        assert (stored.name, stored.email, stored.version) == ("anna", "changed@x", 3)

    async def test_commit_waits_for_an_open_stream(self, store: Database) -> None:
        """commit() inside a stream's loop is refused; after leaving the loop it works."""
        await seed(store, *[User(f"u{i}", f"u{i}@x") for i in range(5)])
        async with UnitOfWork(store, registry) as uow:
            users = uow.repository(User)
            async for user in users.stream(chunk_size=2):
                user.name = user.name  # no change
                with pytest.raises(UnitOfWorkError, match="stream"):
                    await uow.commit()
                break
            await uow.commit()
            users.add(User("late", "late@x"))
        async with UnitOfWork(store, registry) as uow:
            assert await uow.repository(User).count() == 6

    async def test_another_task_cannot_query_while_a_chunk_is_read(self, store: Database) -> None:
        """A second task's query during a stream's chunk read is refused as misuse (C6)."""
        from mapper import StatementEvent

        await seed(store, *[User(f"u{i}", f"u{i}@x") for i in range(5)])
        reading = asyncio.Event()
        proceed = asyncio.Event()

        async def pause(event: StatementEvent) -> None:
            if event.operation == "select":
                reading.set()
                await proceed.wait()

        async with UnitOfWork(store, registry) as uow:
            users = uow.repository(User)

            async def drain() -> int:
                return len([u async for u in users.stream()])

            with store.on_statement(pause, when="before"):
                streaming = asyncio.create_task(drain())
                await reading.wait()
                with pytest.raises(UnitOfWorkError, match="busy with stream"):
                    await users.count()
                proceed.set()
                assert await streaming == 5
            assert uow.state is UnitOfWorkState.OPEN

    async def test_a_query_mistake_after_a_flush_keeps_the_flushed_work(
        self, store: Database
    ) -> None:
        """A criterion on the wrong mapping fails before SQL and the transaction goes on."""
        from mapper import ConfigurationError
        from tests.integration.models import OrderMap

        async with UnitOfWork(store, registry) as uow:
            uow.repository(Role).add(Role("kept"))
            await uow.flush()
            with pytest.raises(ConfigurationError):
                await uow.repository(Role).find(OrderMap.user == "x")
            assert uow.state is UnitOfWorkState.OPEN
        async with UnitOfWork(store, registry) as uow:
            assert [r.name for r in await uow.repository(Role).find()] == ["kept"]

    async def test_an_after_hook_error_does_not_undo_a_commit(
        self, store: Database, caplog: pytest.LogCaptureFixture
    ) -> None:
        """A failing after-hook is logged; the commit it watched stays committed."""
        from mapper import StatementEvent

        def broken_metrics(event: StatementEvent) -> None:
            # Every statement: a commit of one statement is sent alone where it can be.
            raise RuntimeError("metrics backend down")

        role = Role("committed")
        with store.on_statement(broken_metrics):
            async with UnitOfWork(store, registry) as uow:
                uow.repository(Role).add(role)
        assert role.id is not None and uow.state is UnitOfWorkState.CLOSED
        assert "metrics backend down" in caplog.text
        async with UnitOfWork(store, registry) as check:
            assert await check.repository(Role).count() == 1

    async def test_a_cancelled_rollback_reaches_the_caller(self, store: Database) -> None:
        """A timeout during a slow rollback raises at once; the connection is not pooled."""
        import time

        from mapper import StatementEvent

        async def slow_rollback(event: StatementEvent) -> None:
            if event.operation == "rollback":
                await asyncio.sleep(1.0)

        uow = UnitOfWork(store, registry)
        uow.repository(Role).add(Role("gone"))
        await uow.flush()
        started = time.monotonic()
        with store.on_statement(slow_rollback, when="before"), pytest.raises(TimeoutError):
            async with asyncio.timeout(0.1):
                await uow.rollback()
        assert time.monotonic() - started < 0.5
        await uow.close()
        async with asyncio.timeout(5):
            while store.dialect.pool_status()[1]:
                await asyncio.sleep(0.01)
        async with UnitOfWork(store, registry) as check:
            assert await check.repository(Role).count() == 0

    async def test_stream_closed_early_reports_a_normal_end(self, store: Database) -> None:
        """Leaving a stream's loop early is not reported to the hook as a failed statement."""
        from mapper import StatementEvent

        await seed(store, *[User(f"u{i}", f"u{i}@x") for i in range(5)])
        seen: list[StatementEvent] = []
        with store.on_statement(seen.append):
            async with UnitOfWork(store, registry) as uow:
                stream = uow.repository(User).stream(chunk_size=2)
                async for _ in stream:
                    break
                await stream.aclose()
        selects = [e for e in seen if e.operation == "select"]
        assert len(selects) == 1 and selects[0].error is None
