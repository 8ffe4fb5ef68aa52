"""SQLAlchemy 2 async ORM with imperative mapping of attrs classes, in its idiomatic style.

`registry.map_imperatively` maps attrs classes with the shared entities' fields. They are
copies declared `@attrs.define(slots=False)`: SQLAlchemy instruments instances through
their `__dict__`, and mapping the slotted `entities.User` fails ("could not assemble any
primary key columns": the slot descriptors shadow the mapped columns), as its docs say for
slotted attrs classes. One `AsyncSession` per unit of work, `expire_on_commit=False`;
relations are `lazy="raise"` (no hidden I/O, as in mapper) and loaded with `joinedload`;
streaming uses `stream_scalars` with `yield_per`. Statements are counted by a
`before_cursor_execute` listener on the sync engine (an executemany counts its parameter
sets; an insertmanyvalues batch counts one). Listed in `systems/__init__.py`; run by `runner.py`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, ClassVar

import attrs
from sqlalchemy import (
    Boolean,
    Column,
    ForeignKey,
    Integer,
    MetaData,
    String,
    Table,
    event,
    select,
)
from sqlalchemy.engine.interfaces import ExecuteStyle
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.orm import joinedload, registry, relationship

from benchmarks.backends import Backend, PostgresBackend, SqliteBackend
from benchmarks.counting import StatementCounter, is_transaction_control
from benchmarks.dataset import NEW_USER_OFFSET, new_user, renamed
from benchmarks.systems.base import System, check
from benchmarks.timing import Stopwatch

__all__ = ["SqlAlchemyOrm"]


@attrs.define(slots=False)
class Role:
    name: str
    id: int | None = None


@attrs.define(slots=False)
class User:
    name: str
    email: str
    active: bool = True
    role: Role | None = None
    id: int | None = None


metadata = MetaData()
roles_table = Table(
    "roles",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(50), nullable=False),
)
users_table = Table(
    "users",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(100), nullable=False),
    Column("email", String(255), nullable=False),
    Column("active", Boolean, nullable=False),
    Column("role_id", Integer, ForeignKey("roles.id")),
)
mappings = registry(metadata=metadata)
mappings.map_imperatively(Role, roles_table)
mappings.map_imperatively(User, users_table, properties={"role": relationship(Role, lazy="raise")})


def engine_url(backend: Backend) -> tuple[str, dict[str, Any]]:
    """The engine URL and connect_args for `backend`."""
    if isinstance(backend, PostgresBackend):
        url = backend.dsn.replace("postgresql://", "postgresql+asyncpg://", 1)
        return url, {"server_settings": backend.server_settings}
    if isinstance(backend, SqliteBackend):
        return f"sqlite+aiosqlite:///{backend.path}", {}
    raise ValueError(f"no SQLAlchemy URL for the {backend.name} backend here")


def new_users(roles: Mapping[Any, Role], count: int) -> list[User]:
    users = []
    for i in range(count):
        name, email, active, role_id = new_user(NEW_USER_OFFSET + i)
        users.append(User(name, email, active, roles[role_id]))
    return users


class SqlAlchemyOrm(System):
    name = "sqlalchemy"
    label = "SQLAlchemy 2 ORM"
    note = (
        "AsyncSession unit of work on imperatively mapped attrs classes (slots=False copies): "
        "add_all + commit (PostgreSQL: insertmanyvalues, multi-row INSERT ... RETURNING per "
        "1,000 rows; SQLite: one INSERT ... RETURNING per row, as SQLAlchemy chose here), "
        "select / joinedload, attribute changes and session.delete() flushed as executemany, "
        "stream_scalars with yield_per=1000"
    )
    counting: ClassVar[str] = "event"

    def __init__(self, backend: Backend) -> None:
        super().__init__(backend)
        self._engine: Any = None
        self._sessions: async_sessionmaker[AsyncSession] | None = None
        self._count = StatementCounter()

    @property
    def statements(self) -> Callable[[], int]:
        return self._count

    def _before_cursor_execute(  # noqa: PLR0917 - SQLAlchemy's event signature
        self,
        connection: Any,
        cursor: Any,
        statement: str,
        parameters: Any,
        context: Any,
        executemany: bool,
    ) -> None:
        if is_transaction_control(statement):
            return
        # insertmanyvalues sends one multi-row INSERT per batch, reported as an executemany
        # whose parameters are the batch's flattened values: that is one statement.
        if executemany and context.execute_style is not ExecuteStyle.INSERTMANYVALUES:
            self._count.value += len(parameters)
        else:
            self._count.value += 1

    async def open(self) -> None:
        url, connect_args = engine_url(self.backend)
        self._engine = create_async_engine(
            url, connect_args=connect_args, pool_size=2, max_overflow=0
        )
        if isinstance(self.backend, SqliteBackend):
            event.listen(self._engine.sync_engine, "connect", _sqlite_pragmas)
        event.listen(self._engine.sync_engine, "before_cursor_execute", self._before_cursor_execute)
        self._sessions = async_sessionmaker(self._engine, expire_on_commit=False)

    async def close(self) -> None:
        await self._engine.dispose()

    def _session(self) -> AsyncSession:
        if self._sessions is None:
            raise RuntimeError("the SQLAlchemy system is not open")
        return self._sessions()

    async def insert(self, watch: Stopwatch, n: int) -> None:
        async with self._session() as session, session.begin():
            roles = {r.id: r for r in (await session.scalars(select(Role))).all()}
            watch.start()
            session.add_all(new_users(roles, n))
        watch.stop()

    async def load(self, watch: Stopwatch, n: int) -> None:
        watch.start()
        async with self._session() as session:
            users = (await session.scalars(select(User))).all()
        watch.stop()
        check(len(users), n, "users")

    async def load_with_role(self, watch: Stopwatch, n: int) -> None:
        watch.start()
        async with self._session() as session:
            # Imperative mapping instruments `User.role` at run time; mypy sees the field.
            statement = select(User).options(joinedload(User.role))  # type: ignore[arg-type]
            users = (await session.scalars(statement)).all()
        watch.stop()
        check(len(users), n, "users")

    async def update(self, watch: Stopwatch, loaded: int, changed: int) -> None:
        async with self._session() as session, session.begin():
            users = (await session.scalars(select(User))).all()
            watch.start()
            for user in users[:changed]:
                user.name = renamed(user.name)
                user.active = not user.active
        watch.stop()

    async def delete(self, watch: Stopwatch, n: int) -> None:
        async with self._session() as session, session.begin():
            users = (await session.scalars(select(User))).all()
            watch.start()
            for user in users:
                await session.delete(user)
        watch.stop()

    async def mixed(self, watch: Stopwatch, load: int, change: int, remove: int, add: int) -> None:
        async with self._session() as session, session.begin():
            roles = {r.id: r for r in (await session.scalars(select(Role))).all()}
            watch.start()
            users = (await session.scalars(select(User))).all()
            for user in users[:change]:
                user.name = renamed(user.name)
                user.active = not user.active
            for user in users[change : change + remove]:
                await session.delete(user)
            session.add_all(new_users(roles, add))
        watch.stop()

    async def stream(self, watch: Stopwatch, n: int) -> None:
        seen = 0
        watch.start()
        async with self._session() as session:
            statement = select(User).execution_options(yield_per=1000)
            async for _user in await session.stream_scalars(statement):
                seen += 1
        watch.stop()
        check(seen, n, "users")


def _sqlite_pragmas(dbapi_connection: Any, record: Any) -> None:
    cursor = dbapi_connection.cursor()
    for pragma in SqliteBackend.PRAGMAS:
        cursor.execute(pragma)
    cursor.close()
