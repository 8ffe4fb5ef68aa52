"""SQLite-only behaviour: connection set-up (G13), the in-memory database, busy writers."""

from __future__ import annotations

import sqlite3
import uuid
from pathlib import Path

import pytest

from mapper import ConflictError, Database, PoolTimeout, UnitOfWork, connect
from tests.integration.conftest import fresh_schema
from tests.integration.helpers import twin_key_writes_fail
from tests.integration.models import Role, RoleMap, User, registry

ONLY_BACKENDS = ("sqlite",)


async def test_connections_are_set_up_as_promised(store: Database, tmp_path: Path) -> None:
    """Foreign keys are enforced, the file is in WAL mode and LIKE is case-sensitive."""
    from mapper import IntegrityError

    with pytest.raises(IntegrityError, match="FOREIGN KEY"):
        async with UnitOfWork(store, registry) as uow:
            uow.repository(User).add(User("ann", "ann@x", role_id=12345))
    plain = sqlite3.connect(tmp_path / "test.db")
    try:
        assert plain.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    finally:
        plain.close()
    async with UnitOfWork(store, registry) as uow:
        uow.repository(Role).add(Role("Admin"))
    async with UnitOfWork(store, registry) as uow:
        assert await uow.repository(Role).count(RoleMap.name.like("admin")) == 0
        assert await uow.repository(Role).count(RoleMap.name.ilike("admin")) == 1


async def test_an_in_memory_database_lives_in_its_one_connection() -> None:
    """sqlite:///:memory: keeps its tables across units of work, one at a time."""
    async with await connect("sqlite:///:memory:", pool_timeout=0.2) as db:
        await fresh_schema(db, registry)
        async with UnitOfWork(db, registry) as uow:
            uow.repository(Role).add(Role("kept"))
        async with UnitOfWork(db, registry) as uow:
            assert await uow.repository(Role).count() == 1
            with pytest.raises(PoolTimeout):
                async with UnitOfWork(db, registry) as second:
                    await second.repository(Role).count()


async def test_a_busy_database_raises_a_retryable_conflict(tmp_path: Path) -> None:
    """A writer that cannot get the lock within busy_timeout gets ConflictError(retryable)."""
    url = f"sqlite:///{tmp_path / 'busy.db'}?busy_timeout=200"
    async with await connect(url) as db:
        await fresh_schema(db, registry)
        holder = UnitOfWork(db, registry)
        holder.repository(Role).add(Role("holder"))
        await holder.flush()
        with pytest.raises(ConflictError) as raised:
            async with UnitOfWork(db, registry) as uow:
                uow.repository(Role).add(Role("waiter"))
        assert raised.value.retryable
        await holder.commit()
        await holder.close()
        async with UnitOfWork(db, registry) as uow:
            assert [r.name for r in await uow.repository(Role).find()] == ["holder"]


async def test_writers_queue_for_the_lock(tmp_path: Path) -> None:
    """A second writer waits for the first to commit, then goes through."""
    import asyncio

    async with await connect(f"sqlite:///{tmp_path / 'queue.db'}") as db:
        await fresh_schema(db, registry)
        first = UnitOfWork(db, registry)
        first.repository(Role).add(Role("first"))
        await first.flush()

        async def second() -> None:
            async with UnitOfWork(db, registry) as uow:
                uow.repository(Role).add(Role("second"))

        waiting = asyncio.create_task(second())
        await asyncio.sleep(0.1)
        assert not waiting.done()
        await first.commit()
        await first.close()
        await waiting
        async with UnitOfWork(db, registry) as uow:
            assert await uow.repository(Role).count() == 2


async def test_a_table_not_enforcing_the_mapped_key_fails_the_flush(
    store: Database, tmp_path: Path
) -> None:
    """Two stored rows with one mapped key: update and delete fail, naming it; nothing changes."""
    plain = sqlite3.connect(tmp_path / "test.db")

    async def stored_labels() -> list[str]:
        return [label for (label,) in plain.execute("SELECT label FROM tags")]

    try:
        plain.executescript(
            "PRAGMA foreign_keys=OFF; DROP TABLE memberships; DROP TABLE tags; "
            "CREATE TABLE tags (id TEXT NOT NULL, label TEXT NOT NULL);"
        )
        twin = str(uuid.UUID(int=7))
        plain.executemany("INSERT INTO tags VALUES (?, ?)", [(twin, "twin"), (twin, "twin")])
        plain.commit()
        await twin_key_writes_fail(store, stored_labels)
    finally:
        plain.close()
