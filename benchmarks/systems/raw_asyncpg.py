"""Raw asyncpg: the floor. Tuples and records, no entities, the fastest statement per task.

Inserts use COPY (`copy_records_to_table`); loads `fetch`; changes and removals one
array-bound statement (`UPDATE ... FROM unnest(...)`, `DELETE ... = ANY($1)`); streaming a
server-side cursor. Single statements run in autocommit; the mixed unit of work in one
transaction. Listed in `systems/__init__.py`; run by `runner.py`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

import asyncpg

from benchmarks.backends import PostgresBackend
from benchmarks.counting import driver_statements
from benchmarks.dataset import NEW_USER_OFFSET, USER_COLUMNS, new_user, renamed
from benchmarks.systems.base import System, check
from benchmarks.timing import Stopwatch

__all__ = ["RawAsyncpg"]

SELECT_USERS = "SELECT id, name, email, active, role_id FROM users"
SELECT_USERS_WITH_ROLE = (
    "SELECT u.id, u.name, u.email, u.active, u.role_id, r.name AS role_name "
    "FROM users u LEFT JOIN roles r ON r.id = u.role_id"
)
UPDATE_USERS = (
    "UPDATE users SET name = v.name, active = v.active "
    "FROM unnest($1::int[], $2::text[], $3::bool[]) AS v(id, name, active) "
    "WHERE users.id = v.id"
)
DELETE_USERS = "DELETE FROM users WHERE id = ANY($1::int[])"


def changes(rows: list[Any]) -> tuple[list[int], list[str], list[bool]]:
    """The arrays of UPDATE_USERS for rows (id, name, email, active, ...) being edited."""
    return (
        [row[0] for row in rows],
        [renamed(row[1]) for row in rows],
        [not row[3] for row in rows],
    )


class RawAsyncpg(System):
    name = "raw"
    label = "raw asyncpg"
    note = (
        "COPY for inserts, fetch for loads, one UPDATE ... FROM unnest / DELETE ... = ANY for "
        "changes and removals, a cursor (prefetch 1,000) for streaming; rows stay records"
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

    async def close(self) -> None:
        await self._pool.close()

    async def insert(self, watch: Stopwatch, n: int) -> None:
        watch.start()
        records = [new_user(NEW_USER_OFFSET + i) for i in range(n)]
        async with self._pool.acquire() as connection:
            await connection.copy_records_to_table("users", records=records, columns=USER_COLUMNS)
        watch.stop()

    async def load(self, watch: Stopwatch, n: int) -> None:
        watch.start()
        async with self._pool.acquire() as connection:
            rows = await connection.fetch(SELECT_USERS)
        watch.stop()
        check(len(rows), n, "rows")

    async def load_with_role(self, watch: Stopwatch, n: int) -> None:
        watch.start()
        async with self._pool.acquire() as connection:
            rows = await connection.fetch(SELECT_USERS_WITH_ROLE)
        watch.stop()
        check(len(rows), n, "rows")

    async def update(self, watch: Stopwatch, loaded: int, changed: int) -> None:
        async with self._pool.acquire() as connection:
            rows = await connection.fetch(SELECT_USERS)
            watch.start()
            await connection.execute(UPDATE_USERS, *changes(rows[:changed]))
            watch.stop()

    async def delete(self, watch: Stopwatch, n: int) -> None:
        async with self._pool.acquire() as connection:
            rows = await connection.fetch(SELECT_USERS)
            watch.start()
            await connection.execute(DELETE_USERS, [row[0] for row in rows])
            watch.stop()

    async def mixed(self, watch: Stopwatch, load: int, change: int, remove: int, add: int) -> None:
        watch.start()
        async with self._pool.acquire() as connection, connection.transaction():
            rows = await connection.fetch(SELECT_USERS)
            await connection.execute(UPDATE_USERS, *changes(rows[:change]))
            await connection.execute(
                DELETE_USERS, [row[0] for row in rows[change : change + remove]]
            )
            await connection.copy_records_to_table(
                "users",
                records=[new_user(NEW_USER_OFFSET + i) for i in range(add)],
                columns=USER_COLUMNS,
            )
        watch.stop()

    async def stream(self, watch: Stopwatch, n: int) -> None:
        seen = 0
        watch.start()
        async with self._pool.acquire() as connection, connection.transaction():
            async for _row in connection.cursor(SELECT_USERS, prefetch=1000):
                seen += 1
        watch.stop()
        check(seen, n, "rows")
