"""The hand-written data layer on asyncpg: raw SQL plus the same attrs entities, by hand.

What a careful developer writes without an ORM, and so the practical floor for anything
that returns objects (the ratios' denominator). It builds `entities.User` and `entities.Role`
objects from records, writes generated keys back into new entities, and is told which
entities changed or go (no snapshots, no identity map beyond roles within one load).
Listed in `systems/__init__.py`; run by `runner.py`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar

import asyncpg

from benchmarks.backends import PostgresBackend
from benchmarks.counting import driver_statements
from benchmarks.dataset import NEW_USER_OFFSET, new_user, renamed
from benchmarks.entities import Role, User
from benchmarks.systems.base import System, check
from benchmarks.systems.raw_asyncpg import (
    DELETE_USERS,
    SELECT_USERS,
    SELECT_USERS_WITH_ROLE,
    UPDATE_USERS,
)
from benchmarks.timing import Stopwatch

__all__ = ["HandwrittenAsyncpg"]

INSERT_USERS = (
    "INSERT INTO users (name, email, active, role_id) "
    "SELECT name, email, active, role_id "
    "FROM unnest($1::text[], $2::text[], $3::bool[], $4::int[]) "
    "AS v(name, email, active, role_id) RETURNING id"
)


def users_from(rows: Sequence[Any]) -> list[User]:
    # role stays None: this layer keeps no placeholder for an unloaded relation.
    return [User(row[1], row[2], row[3], None, row[0]) for row in rows]


def users_with_roles_from(rows: Sequence[Any]) -> list[User]:
    roles: dict[int, Role] = {}
    users = []
    for row in rows:
        role_id = row[4]
        role = None
        if role_id is not None:
            role = roles.get(role_id)
            if role is None:
                role = roles[role_id] = Role(row[5], role_id)
        users.append(User(row[1], row[2], row[3], role, row[0]))
    return users


def new_users(roles: Mapping[Any, Role], count: int) -> list[User]:
    users = []
    for i in range(count):
        name, email, active, role_id = new_user(NEW_USER_OFFSET + i)
        users.append(User(name, email, active, roles[role_id]))
    return users


class HandwrittenAsyncpg(System):
    name = "handwritten"
    label = "hand-written (asyncpg + attrs)"
    note = (
        "raw asyncpg plus building the same attrs entities by hand; inserts by "
        "INSERT ... SELECT FROM unnest RETURNING id (keys written back), changes and removals "
        "as raw, streaming through a cursor building one entity per row"
    )
    floor = True
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

    async def close(self) -> None:
        await self._pool.close()

    async def _roles(self, connection: Any) -> dict[int, Role]:
        return {
            row[0]: Role(row[1], row[0])
            for row in await connection.fetch("SELECT id, name FROM roles")
        }

    @staticmethod
    async def _add(connection: Any, users: list[User]) -> None:
        rows = await connection.fetch(
            INSERT_USERS,
            [u.name for u in users],
            [u.email for u in users],
            [u.active for u in users],
            [u.role.id if u.role is not None else None for u in users],
        )
        for user, row in zip(users, rows, strict=True):
            user.id = row[0]

    @staticmethod
    async def _save(connection: Any, users: list[User]) -> None:
        await connection.execute(
            UPDATE_USERS,
            [u.id for u in users],
            [u.name for u in users],
            [u.active for u in users],
        )

    @staticmethod
    def _edit(users: list[User]) -> None:
        for user in users:
            user.name = renamed(user.name)
            user.active = not user.active

    async def insert(self, watch: Stopwatch, n: int) -> None:
        async with self._pool.acquire() as connection:
            roles = await self._roles(connection)
            watch.start()
            users = new_users(roles, n)
            await self._add(connection, users)
            watch.stop()

    async def load(self, watch: Stopwatch, n: int) -> None:
        watch.start()
        async with self._pool.acquire() as connection:
            users = users_from(await connection.fetch(SELECT_USERS))
        watch.stop()
        check(len(users), n, "users")

    async def load_with_role(self, watch: Stopwatch, n: int) -> None:
        watch.start()
        async with self._pool.acquire() as connection:
            users = users_with_roles_from(await connection.fetch(SELECT_USERS_WITH_ROLE))
        watch.stop()
        check(len(users), n, "users")

    async def update(self, watch: Stopwatch, loaded: int, changed: int) -> None:
        async with self._pool.acquire() as connection:
            users = users_from(await connection.fetch(SELECT_USERS))
            watch.start()
            edited = users[:changed]
            self._edit(edited)
            await self._save(connection, edited)
            watch.stop()

    async def delete(self, watch: Stopwatch, n: int) -> None:
        async with self._pool.acquire() as connection:
            users = users_from(await connection.fetch(SELECT_USERS))
            watch.start()
            await connection.execute(DELETE_USERS, [u.id for u in users])
            watch.stop()

    async def mixed(self, watch: Stopwatch, load: int, change: int, remove: int, add: int) -> None:
        async with self._pool.acquire() as connection:
            roles = await self._roles(connection)
            watch.start()
            async with connection.transaction():
                users = users_from(await connection.fetch(SELECT_USERS))
                edited = users[:change]
                self._edit(edited)
                await self._save(connection, edited)
                await connection.execute(
                    DELETE_USERS, [u.id for u in users[change : change + remove]]
                )
                await self._add(connection, new_users(roles, add))
            watch.stop()

    async def stream(self, watch: Stopwatch, n: int) -> None:
        seen = 0
        watch.start()
        async with self._pool.acquire() as connection, connection.transaction():
            async for row in connection.cursor(SELECT_USERS, prefetch=1000):
                _user = User(row[1], row[2], row[3], None, row[0])
                seen += 1
        watch.stop()
        check(seen, n, "users")
