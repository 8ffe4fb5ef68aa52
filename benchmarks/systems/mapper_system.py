"""mapper, the library under test: mappings of the shared entities and the scenarios.

Everything goes through the public API: `connect(url)`, `UnitOfWork`, `uow.repository(...)`
with `add_all`, `find` (with `load=[UserMap.role]`), `remove_all` and `stream`; the commit is the
clean exit of `async with`. Statements are counted through `db.on_statement` (BEGIN and
COMMIT left out, as for every system). The mapping, not `db.create_all`, meets the tables
the backend made, so every system runs on the same DDL.
Listed in `systems/__init__.py`; run by `runner.py`; profiled by `profiling.py`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, ClassVar

from benchmarks.backends import Backend, PostgresBackend, SqliteBackend
from benchmarks.counting import StatementCounter
from benchmarks.dataset import NEW_USER_OFFSET, new_user, renamed
from benchmarks.entities import Role, User
from benchmarks.systems.base import System, check
from benchmarks.timing import Stopwatch
from mapper import (
    Column,
    Database,
    EntityMap,
    ManyToOne,
    Registry,
    StatementEvent,
    UnitOfWork,
    connect,
)
from mapper import types as t

__all__ = ["MapperSystem", "RoleMap", "UserMap", "registry"]

registry = Registry()


@registry.map
class RoleMap(EntityMap[Role]):
    __table__ = "roles"
    id = Column(t.Integer(), primary_key=True, generated=True)
    name = Column(t.String(50))


@registry.map
class UserMap(EntityMap[User]):
    __table__ = "users"
    id = Column(t.Integer(), primary_key=True, generated=True)
    name = Column(t.String(100))
    email = Column(t.String(255))
    active = Column(t.Boolean())
    role = ManyToOne(Role, column="role_id")


_CONTROL = frozenset({"begin", "commit", "rollback", "savepoint", "release"})


def mapper_url(backend: Backend) -> str:
    if isinstance(backend, PostgresBackend):
        return f"{backend.dsn}?search_path={backend.schema}"
    if isinstance(backend, SqliteBackend):
        return f"sqlite:///{backend.path}"
    raise ValueError(f"mapper has no URL for the {backend.name} backend here")


def new_users(roles: Mapping[Any, Role], count: int) -> list[User]:
    users = []
    for i in range(count):
        name, email, active, role_id = new_user(NEW_USER_OFFSET + i)
        users.append(User(name, email, active, roles[role_id]))
    return users


class MapperSystem(System):
    name = "mapper"
    label = "mapper"
    note = (
        "unit of work: add_all + commit (one INSERT ... unnest on PostgreSQL, multi-row "
        "VALUES on SQLite), find / "
        "find(load=[UserMap.role]) (one query per relation), find(track=False) to show rows "
        "without tracking them (9c), attribute changes and remove_all() "
        "written at commit as one statement per table and column set, stream(chunk_size=1000)"
    )
    counting: ClassVar[str] = "hook"

    def __init__(self, backend: Backend) -> None:
        super().__init__(backend)
        self.db: Database | None = None
        self._count = StatementCounter()

    @property
    def statements(self) -> Callable[[], int]:
        return self._count

    def _on_statement(self, event: StatementEvent) -> None:
        if event.operation not in _CONTROL:
            self._count.value += 1

    async def open(self) -> None:
        self.db = await connect(mapper_url(self.backend), pool_min=1, pool_max=2)
        self.db.on_statement(self._on_statement)

    async def close(self) -> None:
        if self.db is not None:
            await self.db.close()

    def _uow(self) -> UnitOfWork:
        if self.db is None:
            raise RuntimeError("the mapper system is not open")
        return UnitOfWork(self.db, registry)

    async def insert(self, watch: Stopwatch, n: int) -> None:
        async with self._uow() as uow:
            roles = {r.id: r for r in await uow.repository(Role).find()}
            watch.start()
            uow.repository(User).add_all(new_users(roles, n))
        watch.stop()

    async def load(self, watch: Stopwatch, n: int) -> None:
        watch.start()
        async with self._uow() as uow:
            users = await uow.repository(User).find()
        watch.stop()
        check(len(users), n, "users")

    async def load_with_role(self, watch: Stopwatch, n: int) -> None:
        watch.start()
        async with self._uow() as uow:
            users = await uow.repository(User).find(load=[UserMap.role])
        watch.stop()
        check(len(users), n, "users")

    async def update(self, watch: Stopwatch, loaded: int, changed: int) -> None:
        async with self._uow() as uow:
            users = await uow.repository(User).find()
            watch.start()
            for user in users[:changed]:
                user.name = renamed(user.name)
                user.active = not user.active
        watch.stop()

    async def update_shown(self, watch: Stopwatch, loaded: int, changed: int) -> None:
        await self._change_shown(watch, changed, time_the_get=True)

    async def flush_shown(self, watch: Stopwatch, loaded: int, changed: int) -> None:
        await self._change_shown(watch, changed, time_the_get=False)

    async def _change_shown(self, watch: Stopwatch, changed: int, time_the_get: bool) -> None:
        """9c and 9d: load every user untracked, to show; get the first `changed` to change
        them (timed in 9c, not in 9d); change them and commit."""
        async with self._uow() as uow:
            repository = uow.repository(User)
            shown = await repository.find(track=False)
            if time_the_get:
                watch.start()
            users = await repository.get_many([user.id for user in shown[:changed]])
            if not time_the_get:
                watch.start()
            for user in users:
                user.name = renamed(user.name)
                user.active = not user.active
        watch.stop()

    async def delete(self, watch: Stopwatch, n: int) -> None:
        async with self._uow() as uow:
            repository = uow.repository(User)
            users = await repository.find()
            watch.start()
            repository.remove_all(users)
        watch.stop()

    async def mixed(self, watch: Stopwatch, load: int, change: int, remove: int, add: int) -> None:
        async with self._uow() as uow:
            roles = {r.id: r for r in await uow.repository(Role).find()}
            watch.start()
            repository = uow.repository(User)
            users = await repository.find()
            for user in users[:change]:
                user.name = renamed(user.name)
                user.active = not user.active
            repository.remove_all(users[change : change + remove])
            repository.add_all(new_users(roles, add))
        watch.stop()

    async def stream(self, watch: Stopwatch, n: int) -> None:
        seen = 0
        watch.start()
        async with self._uow() as uow:
            async for _user in uow.repository(User).stream(chunk_size=1000):
                seen += 1
        watch.stop()
        check(seen, n, "users")
