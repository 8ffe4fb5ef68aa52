"""Raw aiosqlite: the SQLite floor. Tuples in, tuples out, the fastest statement per task.

Inserts are multi-row `INSERT ... VALUES`, changes one `UPDATE ... FROM (VALUES ...)`, each
as few statements as SQLite's 32,766 bound variables allow, in an explicit transaction
(measured faster than `executemany`: 1.3 vs 2.0 ms for 1,000 inserts, 1.6 vs 1.9 ms for
1,000 updates); loads `execute_fetchall`. One connection with the pragmas every system
uses. Listed in `systems/__init__.py`; run by `runner.py`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any, ClassVar

import aiosqlite

from benchmarks.backends import SqliteBackend
from benchmarks.counting import driver_statements
from benchmarks.dataset import NEW_USER_OFFSET, USER_COLUMNS, new_user, renamed
from benchmarks.systems.base import System, check
from benchmarks.timing import Stopwatch

__all__ = ["RawAiosqlite", "insert_users", "open_connection", "update_users"]

SELECT_USERS = "SELECT id, name, email, active, role_id FROM users"
# SQLite (3.32+) allows 32,766 bound variables in one statement.
VARIABLES = 32766


def _batches(rows: Sequence[Sequence[Any]]) -> Iterator[Sequence[Sequence[Any]]]:
    """Rows in batches that fit SQLite's variable limit."""
    size = VARIABLES // len(rows[0]) if rows else 1
    for start in range(0, len(rows), size):
        yield rows[start : start + size]


def _flat(rows: Sequence[Sequence[Any]]) -> list[Any]:
    return [value for row in rows for value in row]


async def insert_users(
    connection: Any, rows: Sequence[Sequence[Any]], returning: bool = False
) -> list[Any]:
    """Insert (name, email, active, role_id) rows; the generated ids if `returning`."""
    ids: list[Any] = []
    for batch in _batches(rows):
        values = ", ".join(["(?, ?, ?, ?)"] * len(batch))
        sql = f"INSERT INTO users ({', '.join(USER_COLUMNS)}) VALUES {values}"
        if returning:
            ids += [
                row[0]
                for row in await connection.execute_fetchall(sql + " RETURNING id", _flat(batch))
            ]
        else:
            await connection.execute(sql, _flat(batch))
    return ids


async def update_users(connection: Any, rows: Sequence[Sequence[Any]]) -> None:
    """Write (id, name, active) rows."""
    for batch in _batches(rows):
        values = ", ".join(["(?, ?, ?)"] * len(batch))
        await connection.execute(
            "UPDATE users SET name = v.column2, active = v.column3 "
            f"FROM (VALUES {values}) AS v WHERE users.id = v.column1",
            _flat(batch),
        )


async def open_connection(backend: SqliteBackend) -> Any:
    """An autocommit connection (transactions are explicit) with the shared pragmas."""
    connection = await aiosqlite.connect(backend.path, isolation_level=None)
    for pragma in backend.PRAGMAS:
        await connection.execute(pragma)
    return connection


class RawAiosqlite(System):
    name = "raw"
    label = "raw aiosqlite"
    note = (
        "multi-row INSERT ... VALUES and UPDATE ... FROM (VALUES ...) in one transaction, "
        "execute_fetchall for loads; rows stay tuples"
    )
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
        watch.start()
        rows = [new_user(NEW_USER_OFFSET + i) for i in range(n)]
        await connection.execute("BEGIN")
        await insert_users(connection, rows)
        await connection.execute("COMMIT")
        watch.stop()

    async def load(self, watch: Stopwatch, n: int) -> None:
        watch.start()
        rows = await self._connection.execute_fetchall(SELECT_USERS)
        watch.stop()
        check(len(rows), n, "rows")

    async def update(self, watch: Stopwatch, loaded: int, changed: int) -> None:
        connection = self._connection
        rows = list(await connection.execute_fetchall(SELECT_USERS))
        watch.start()
        edits = [(row[0], renamed(row[1]), not row[3]) for row in rows[:changed]]
        await connection.execute("BEGIN")
        await update_users(connection, edits)
        await connection.execute("COMMIT")
        watch.stop()
