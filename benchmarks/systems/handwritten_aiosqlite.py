"""The hand-written data layer on aiosqlite: raw SQL plus the same attrs entities, by hand.

The SQLite practical floor (the ratios' denominator there). New users go in as multi-row
`INSERT ... VALUES ... RETURNING id` within SQLite's variable limit, so keys are written
back; changes are the raw layer's `UPDATE ... FROM (VALUES ...)`; loads build
`entities.User` per row. Listed in `systems/__init__.py`; run by `runner.py`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

from benchmarks.backends import SqliteBackend
from benchmarks.counting import driver_statements
from benchmarks.dataset import NEW_USER_OFFSET, new_user, renamed
from benchmarks.entities import Role, User
from benchmarks.systems.base import System, check
from benchmarks.systems.raw_aiosqlite import (
    SELECT_USERS,
    insert_users,
    open_connection,
    update_users,
)
from benchmarks.timing import Stopwatch

__all__ = ["HandwrittenAiosqlite"]


def users_from(rows: Any) -> list[User]:
    return [User(row[1], row[2], bool(row[3]), None, row[0]) for row in rows]


class HandwrittenAiosqlite(System):
    name = "handwritten"
    label = "hand-written (aiosqlite + attrs)"
    note = (
        "aiosqlite plus building the same attrs entities by hand; multi-row INSERT ... "
        "RETURNING id (keys written back), UPDATE ... FROM (VALUES ...)"
    )
    floor = True
    counting: ClassVar[str] = "driver"

    def __init__(self, backend: SqliteBackend) -> None:
        super().__init__(backend)
        self.sqlite = backend
        self._connection: Any = None
        self._count = driver_statements("aiosqlite")

    @property
    def statements(self) -> Callable[[], int]:
        return self._count

    async def open(self) -> None:
        self._connection = await open_connection(self.sqlite)

    async def close(self) -> None:
        await self._connection.close()

    async def insert(self, watch: Stopwatch, n: int) -> None:
        connection = self._connection
        roles = {
            row[0]: Role(row[1], row[0])
            for row in await connection.execute_fetchall("SELECT id, name FROM roles")
        }
        watch.start()
        users = []
        for i in range(n):
            name, email, active, role_id = new_user(NEW_USER_OFFSET + i)
            users.append(User(name, email, active, roles[role_id]))
        await connection.execute("BEGIN")
        rows = [(u.name, u.email, u.active, u.role.id if u.role else None) for u in users]
        ids = await insert_users(connection, rows, returning=True)
        for user, key in zip(users, ids, strict=True):
            user.id = key
        await connection.execute("COMMIT")
        watch.stop()

    async def load(self, watch: Stopwatch, n: int) -> None:
        watch.start()
        users = users_from(await self._connection.execute_fetchall(SELECT_USERS))
        watch.stop()
        check(len(users), n, "users")

    async def update(self, watch: Stopwatch, loaded: int, changed: int) -> None:
        connection = self._connection
        users = users_from(await connection.execute_fetchall(SELECT_USERS))
        watch.start()
        edited = users[:changed]
        for user in edited:
            user.name = renamed(user.name)
            user.active = not user.active
        await connection.execute("BEGIN")
        await update_users(connection, [(u.id, u.name, u.active) for u in edited])
        await connection.execute("COMMIT")
        watch.stop()
