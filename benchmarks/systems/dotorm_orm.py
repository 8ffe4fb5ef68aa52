"""DotORM (the `dotorm` package), active record in its idiomatic style. Runs under Python 3.12.

DotORM needs Python 3.12, so `apart_runner.py` runs this system in its own venv and
process; this module imports neither mapper nor attrs. Its models are `DotModel`
subclasses bound to an asyncpg pool of ours (for the `bench` search_path). It has no unit of
work: `create_bulk` (one INSERT ... unnest RETURNING id), `search` (a Many2one named in
`fields` is loaded by a second, batched query), `delete_bulk` (= ANY), and for changes with
a different value per row the public API is `record.update(payload, fields)`, one UPDATE per
record, in a `ContainerTransaction` (its `update_bulk` writes one payload to every id; the
unnest form `_update_store_many` is private). No streaming API: keyset pages of 1,000.
DotORM has no SQLite dialect (PostgreSQL, MySQL, ClickHouse only).
Listed in `systems/__init__.py`; run by `runner.py` inside the 3.12 process.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

import asyncpg
from dotorm import Boolean, Char, DotModel, Integer, Many2one
from dotorm.components import POSTGRES
from dotorm.databases.postgres import ContainerTransaction

from benchmarks.backends import PostgresBackend
from benchmarks.counting import driver_statements
from benchmarks.dataset import NEW_USER_OFFSET, new_user, renamed
from benchmarks.systems.base import System, check
from benchmarks.timing import Stopwatch

__all__ = ["DotOrm", "RoleRecord", "UserRecord"]

PAGE = 1000
STORED = ["id", "name", "email", "active"]
"""The fields loaded without the role: naming `role_id` in `fields` loads the Role too."""


class RoleRecord(DotModel):
    __table__ = "roles"
    _dialect = POSTGRES

    id: int = Integer(primary_key=True)
    name: str = Char(max_length=50, required=True)


class UserRecord(DotModel):
    __table__ = "users"
    _dialect = POSTGRES

    id: int = Integer(primary_key=True)
    name: str = Char(max_length=100, required=True)
    email: str = Char(max_length=255, required=True)
    active: bool = Boolean(default=True)
    role_id: RoleRecord = Many2one(lambda: RoleRecord)


def new_users(count: int) -> list[UserRecord]:
    users = []
    for i in range(count):
        name, email, active, role_id = new_user(NEW_USER_OFFSET + i)
        users.append(UserRecord(name=name, email=email, active=active, role_id=role_id))
    return users


async def save_edits(users: list[UserRecord]) -> None:
    for user in users:
        payload = UserRecord(name=renamed(user.name), active=not user.active)
        await user.update(payload, fields=["name", "active"])


class DotOrm(System):
    name = "dotorm"
    label = "DotORM"
    note = (
        "create_bulk (INSERT ... unnest RETURNING id), search(fields=...) (+1 batched query "
        "for the Many2one), per-record update() in a ContainerTransaction (no public "
        "multi-value bulk update), delete_bulk (= ANY), keyset pages of 1,000 for streaming"
    )
    counting: ClassVar[str] = "driver"

    def __init__(self, backend: PostgresBackend) -> None:
        super().__init__(backend)
        self.pg = backend
        self._pool: Any = None
        self._count = driver_statements("asyncpg")

    @property
    def statements(self) -> Callable[[], int]:
        return self._count

    async def open(self) -> None:
        self._pool = await asyncpg.create_pool(
            self.pg.dsn, min_size=1, max_size=2, server_settings=self.pg.server_settings
        )
        RoleRecord._pool = self._pool
        UserRecord._pool = self._pool

    async def close(self) -> None:
        await self._pool.close()

    async def insert(self, watch: Stopwatch, n: int) -> None:
        watch.start()
        users = new_users(n)
        await UserRecord.create_bulk(users)
        watch.stop()

    async def load(self, watch: Stopwatch, n: int) -> None:
        watch.start()
        users = await UserRecord.search(fields=STORED)
        watch.stop()
        check(len(users), n, "users")

    async def load_with_role(self, watch: Stopwatch, n: int) -> None:
        watch.start()
        users = await UserRecord.search(fields=[*STORED, "role_id"])
        watch.stop()
        check(len(users), n, "users")

    async def update(self, watch: Stopwatch, loaded: int, changed: int) -> None:
        users = await UserRecord.search(fields=STORED)
        watch.start()
        async with ContainerTransaction(self._pool):
            await save_edits(users[:changed])
        watch.stop()

    async def delete(self, watch: Stopwatch, n: int) -> None:
        users = await UserRecord.search(fields=STORED)
        watch.start()
        await UserRecord.delete_bulk([u.id for u in users])
        watch.stop()

    async def mixed(self, watch: Stopwatch, load: int, change: int, remove: int, add: int) -> None:
        watch.start()
        async with ContainerTransaction(self._pool):
            users = await UserRecord.search(fields=STORED)
            await save_edits(users[:change])
            await UserRecord.delete_bulk([u.id for u in users[change : change + remove]])
            await UserRecord.create_bulk(new_users(add))
        watch.stop()

    async def stream(self, watch: Stopwatch, n: int) -> None:
        seen = 0
        last = 0
        watch.start()
        while True:
            page = await UserRecord.search(
                fields=STORED, filter=[("id", ">", last)], sort="id", order="ASC", limit=PAGE
            )
            for _user in page:
                seen += 1
            if len(page) < PAGE:
                break
            last = page[-1].id
        watch.stop()
        check(seen, n, "users")
