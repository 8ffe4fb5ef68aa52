"""Connecting on every backend: the statement hook, logging, pool limits, URLs, DDL."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest

from mapper import (
    ConfigurationError,
    Database,
    IntegrityError,
    PoolTimeout,
    StatementEvent,
    UnitOfWork,
    connect,
)
from tests.integration.conftest import backend_url, fresh_schema
from tests.integration.models import Role, RoleMap, registry


class TestStatementHook:
    async def test_every_statement_passes_the_hook_before_and_after(self, store: Database) -> None:
        """Before and after events carry operation, table, SQL, counts and duration."""
        before: list[StatementEvent] = []
        after: list[StatementEvent] = []
        with store.on_statement(before.append, when="before"), store.on_statement(after.append):
            async with UnitOfWork(store, registry) as uow:
                uow.repository(Role).add_all([Role("a"), Role("b")])
        sent = ["begin", "insert", "commit"]
        if store.capabilities.single_statement_commits:
            sent = ["insert"]  # a commit of one statement is sent alone
        assert [e.operation for e in before] == sent
        assert [e.operation for e in after] == sent
        insert = after[sent.index("insert")]
        assert insert.phase == "after" and insert.table == "roles"
        assert insert.database == store.backend
        assert insert.sql is not None and "INSERT" in insert.sql
        assert insert.row_count == 2 and insert.parameter_count >= 1
        assert insert.duration is not None and insert.duration >= 0
        assert insert.error is None and insert.parameters is None
        assert before[sent.index("insert")].duration is None

    async def test_removing_a_hook_stops_its_events(self, store: Database) -> None:
        """The handle's remove() unregisters the hook."""
        seen: list[StatementEvent] = []
        handle = store.on_statement(seen.append)
        async with UnitOfWork(store, registry) as uow:
            await uow.repository(Role).count()
        handle.remove()
        async with UnitOfWork(store, registry) as uow:
            await uow.repository(Role).count()
        assert len(seen) == 1

    async def test_async_hooks_are_awaited(self, store: Database) -> None:
        """A coroutine hook is awaited before the statement goes on."""
        seen: list[str] = []

        async def hook(event: StatementEvent) -> None:
            await asyncio.sleep(0)
            seen.append(event.operation)

        with store.on_statement(hook, when="before"):
            async with UnitOfWork(store, registry) as uow:
                await uow.repository(Role).count()
        assert seen == ["count"]

    async def test_failed_statements_report_their_error(self, store: Database) -> None:
        """A statement that fails reaches the hook with its driver error."""
        seen: list[StatementEvent] = []
        with store.on_statement(seen.append), pytest.raises(Exception, match="roles"):
            async with UnitOfWork(store, registry) as uow:
                uow.repository(Role).add_all([Role("same"), Role("same")])
        failed = [e for e in seen if e.error is not None]
        assert [e.operation for e in failed] == ["insert"]
        (event,) = failed
        assert isinstance(event.error, IntegrityError)  # mapper's error, as callers get


class TestLogging:
    async def test_statements_are_logged_without_values(
        self, store: Database, caplog: pytest.LogCaptureFixture
    ) -> None:
        """The mapper logger shows each statement at DEBUG, never the bound values."""
        with caplog.at_level(logging.DEBUG, logger="mapper"):
            async with UnitOfWork(store, registry) as uow:
                uow.repository(Role).add(Role("secret-value"))
        text = caplog.text
        assert "insert ok on roles" in text
        assert "secret-value" not in text

    async def test_values_are_logged_only_when_asked(
        self, backend: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
    ) -> None:
        """log_parameters=True attaches and logs bound values."""
        async with await connect(backend_url(backend, tmp_path), log_parameters=True) as db:
            await fresh_schema(db, registry)
            seen: list[StatementEvent] = []
            with caplog.at_level(logging.DEBUG, logger="mapper"), db.on_statement(seen.append):
                async with UnitOfWork(db, registry) as uow:
                    uow.repository(Role).add(Role("visible-value"))
        assert "visible-value" in caplog.text
        insert = next(e for e in seen if e.operation == "insert")
        assert insert.parameters is not None and "visible-value" in repr(insert.parameters)


class TestPool:
    async def test_an_exhausted_pool_times_out_with_its_numbers(
        self, backend: str, tmp_path: Path
    ) -> None:
        """With every connection held, the next unit of work raises PoolTimeout (G12)."""
        url = backend_url(backend, tmp_path)
        async with await connect(url, pool_max=2, pool_timeout=0.1) as db:
            await fresh_schema(db, registry)
            holders = [UnitOfWork(db, registry) for _ in range(2)]

            async def hold(uow: UnitOfWork, release: asyncio.Event) -> None:
                await uow.repository(Role).count()
                await release.wait()
                await uow.close()

            release = asyncio.Event()
            tasks = [asyncio.create_task(hold(u, release)) for u in holders]
            await asyncio.sleep(0.05)
            with pytest.raises(PoolTimeout) as raised:
                async with UnitOfWork(db, registry) as uow:
                    await uow.repository(Role).count()
            assert (raised.value.size, raised.value.in_use) == (2, 2)
            assert raised.value.waited >= 0.09
            release.set()
            await asyncio.gather(*tasks)
            assert db.dialect.pool_status()[1] == 0

    async def test_a_task_waiting_on_itself_fails_fast(self, backend: str, tmp_path: Path) -> None:
        """A task holding the only connection that opens a second unit of work fails at once."""
        async with await connect(backend_url(backend, tmp_path), pool_max=1) as db:
            await fresh_schema(db, registry)
            async with UnitOfWork(db, registry) as outer:
                await outer.repository(Role).count()
                with pytest.raises(PoolTimeout, match="in use"):
                    async with UnitOfWork(db, registry) as inner:
                        await inner.repository(Role).count()

    async def test_a_connection_given_back_by_another_task_frees_its_holder(
        self, backend: str, tmp_path: Path
    ) -> None:
        """Closing a unit of work from another task does not leave a phantom holder."""
        async with await connect(backend_url(backend, tmp_path), pool_max=1) as db:
            await fresh_schema(db, registry)
            uow = UnitOfWork(db, registry)
            await uow.repository(Role).count()  # this task holds the only connection
            await asyncio.create_task(uow.close())  # another task gives it back
            async with UnitOfWork(db, registry) as again:  # no instant "waiting on itself"
                assert await again.repository(Role).count() == 0

    async def test_many_units_of_work_share_a_small_pool(
        self, backend: str, tmp_path: Path
    ) -> None:
        """20 concurrent units of work on a pool of 2 all succeed, and all connections return."""
        async with await connect(backend_url(backend, tmp_path), pool_max=2) as db:
            await fresh_schema(db, registry)

            async def work(i: int) -> None:
                async with UnitOfWork(db, registry) as uow:
                    uow.repository(Role).add(Role(f"role{i}"))
                    await asyncio.sleep(0.01)

            await asyncio.gather(*(work(i) for i in range(20)))
            async with UnitOfWork(db, registry) as uow:
                assert await uow.repository(Role).count() == 20
            assert db.dialect.pool_status()[1] == 0


class TestSchema:
    async def test_create_all_is_idempotent(self, store: Database) -> None:
        """create_all on existing tables changes nothing and keeps the data."""
        async with UnitOfWork(store, registry) as uow:
            uow.repository(Role).add(Role("kept"))
        await store.create_all(registry)
        async with UnitOfWork(store, registry) as uow:
            assert [r.name for r in await uow.repository(Role).find()] == ["kept"]

    async def test_drop_all_removes_every_table(self, store: Database) -> None:
        """After drop_all, queries fail with the database's error, mapped to a mapper error."""
        from mapper import DatabaseError

        await store.drop_all(registry)
        with pytest.raises(DatabaseError):
            async with UnitOfWork(store, registry) as uow:
                await uow.repository(Role).find(RoleMap.name == "x")


async def test_the_password_never_shows() -> None:
    """Reprs and errors of a URL with a password never show it."""
    url = "postgresql://someone:s3cr3t-pw@127.0.0.1:1/nowhere?connect_timeout=0.5"
    with pytest.raises(Exception) as raised:
        await connect(url)
    assert "s3cr3t-pw" not in str(raised.value)
    assert "s3cr3t-pw" not in repr(raised.value)


async def test_unknown_options_are_refused(backend: str, tmp_path: Path) -> None:
    """A misspelt connection option is a ConfigurationError, not silently ignored."""
    with pytest.raises(ConfigurationError, match="pool_maxx"):
        await connect(backend_url(backend, tmp_path), pool_maxx=3)
