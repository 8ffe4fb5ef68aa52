"""The hand-written layer again, giving the writes the guarantees mapper gives them.

The floor (`handwritten_asyncpg.py`) runs a lone statement in autocommit, trusts the order
of RETURNING and never looks at a row count. A careful developer who wants what mapper
promises writes this instead: every write in a transaction, keys matched to rows by an
ordinal (GUARANTEES G9), and an UPDATE or DELETE that matched fewer rows than it was
given rolled back instead of committed (G1, G6). It is a reference beside the floor, not
the ratios' denominator: it shows how much of mapper's distance to the floor is the price
of those guarantees. Reads need none of them, so they are listed as not run (the floor's
figures stand). Listed in `systems/__init__.py`; run by `runner.py`.
"""

from __future__ import annotations

from typing import Any, ClassVar

from benchmarks.entities import User
from benchmarks.systems.handwritten_asyncpg import HandwrittenAsyncpg, new_users, users_from
from benchmarks.systems.raw_asyncpg import DELETE_USERS, SELECT_USERS, UPDATE_USERS
from benchmarks.timing import Stopwatch

__all__ = ["HandwrittenChecked", "StaleRows"]

INSERT_USERS_IN_ORDER = (
    "INSERT INTO users (name, email, active, role_id) "
    "SELECT v.name, v.email, v.active, v.role_id "
    "FROM unnest($1::text[], $2::text[], $3::bool[], $4::int[]) WITH ORDINALITY "
    "AS v(name, email, active, role_id, ord) ORDER BY v.ord RETURNING id"
)

_READS = "a read: no transaction or check to add, so the hand-written figure stands"


class StaleRows(RuntimeError):
    """An UPDATE or DELETE matched fewer rows than it was given; the transaction rolls back."""


def _matched(status: str) -> int:
    """Rows an UPDATE or DELETE matched, from asyncpg's command status ("UPDATE 1000")."""
    return int(status.rsplit(" ", 1)[-1])


class HandwrittenChecked(HandwrittenAsyncpg):
    name = "checked"
    label = "hand-written, checked (transaction + row counts)"
    note = (
        "the hand-written layer with mapper's write guarantees: each write in a transaction, "
        "inserts WITH ORDINALITY ... ORDER BY ord with the returned keys sorted (G9), an "
        "UPDATE or DELETE that matched fewer rows than given raises and rolls back (G1, G6); "
        "a reference beside the floor, not the ratios' denominator"
    )
    floor = False
    unsupported: ClassVar[dict[str, str]] = {
        "load": _READS,
        "load_with_role": _READS,
        "stream": _READS,
    }

    @staticmethod
    async def _add(connection: Any, users: list[User]) -> None:
        rows = await connection.fetch(
            INSERT_USERS_IN_ORDER,
            [u.name for u in users],
            [u.email for u in users],
            [u.active for u in users],
            [u.role.id if u.role is not None else None for u in users],
        )
        keys = sorted(row[0] for row in rows)
        if len(keys) != len(users):
            raise StaleRows(f"{len(users)} rows inserted, {len(keys)} keys returned")
        for user, key in zip(users, keys):  # noqa: B905 - same length, checked
            user.id = key

    @staticmethod
    async def _save(connection: Any, users: list[User]) -> None:
        status = await connection.execute(
            UPDATE_USERS,
            [u.id for u in users],
            [u.name for u in users],
            [u.active for u in users],
        )
        if _matched(status) != len(users):
            raise StaleRows(f"UPDATE matched {_matched(status)} of {len(users)} rows")

    @staticmethod
    async def _remove(connection: Any, users: list[User]) -> None:
        status = await connection.execute(DELETE_USERS, [u.id for u in users])
        if _matched(status) != len(users):
            raise StaleRows(f"DELETE matched {_matched(status)} of {len(users)} rows")

    async def insert(self, watch: Stopwatch, n: int) -> None:
        async with self._pool.acquire() as connection:
            roles = await self._roles(connection)
            watch.start()
            users = new_users(roles, n)
            async with connection.transaction():
                await self._add(connection, users)
            watch.stop()

    async def update(self, watch: Stopwatch, loaded: int, changed: int) -> None:
        async with self._pool.acquire() as connection:
            users = users_from(await connection.fetch(SELECT_USERS))
            watch.start()
            edited = users[:changed]
            self._edit(edited)
            async with connection.transaction():
                await self._save(connection, edited)
            watch.stop()

    async def delete(self, watch: Stopwatch, n: int) -> None:
        async with self._pool.acquire() as connection:
            users = users_from(await connection.fetch(SELECT_USERS))
            watch.start()
            async with connection.transaction():
                await self._remove(connection, users)
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
                await self._remove(connection, users[change : change + remove])
                await self._add(connection, new_users(roles, add))
            watch.stop()
