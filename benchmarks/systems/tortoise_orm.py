"""Tortoise ORM, active record in its idiomatic style: bulk_create, bulk_update, filter().delete().

Tortoise has no unit of work: writes are explicit bulk calls on model classes, and its
models are its own classes (`Model` subclasses, not attrs). Loads use `select_related`
(one JOIN) for the role. It has no streaming API (`async for` over a QuerySet fetches the
whole result first), so streaming is keyset pagination in pages of 1,000, the usual
workaround. Statements are counted at the driver (`counting.py`).
Listed in `systems/__init__.py`; run by `runner.py`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar
from urllib.parse import urlsplit

from tortoise import Tortoise, fields
from tortoise.models import Model
from tortoise.transactions import in_transaction

from benchmarks.backends import Backend, PostgresBackend, SqliteBackend
from benchmarks.counting import driver_statements
from benchmarks.dataset import NEW_USER_OFFSET, new_user, renamed
from benchmarks.systems.base import System, check
from benchmarks.timing import Stopwatch

__all__ = ["RoleModel", "TortoiseOrm", "UserModel"]

PAGE = 1000


class RoleModel(Model):
    id = fields.IntField(primary_key=True)
    name = fields.CharField(max_length=50)

    class Meta:
        table = "roles"


class UserModel(Model):
    id = fields.IntField(primary_key=True)
    name = fields.CharField(max_length=100)
    email = fields.CharField(max_length=255)
    active = fields.BooleanField(default=True)
    role: fields.ForeignKeyNullableRelation[RoleModel] = fields.ForeignKeyField(
        "models.RoleModel", related_name="users", null=True, source_field="role_id"
    )

    class Meta:
        table = "users"


def connection_config(backend: Backend) -> dict[str, Any]:
    if isinstance(backend, PostgresBackend):
        url = urlsplit(backend.dsn)
        return {
            "engine": "tortoise.backends.asyncpg",
            "credentials": {
                "host": url.hostname,
                "port": url.port or 5432,
                "user": url.username,
                "password": url.password or "",
                "database": url.path.lstrip("/"),
                "schema": backend.schema,
                "minsize": 1,
                "maxsize": 2,
            },
        }
    if isinstance(backend, SqliteBackend):
        # Extra credentials become PRAGMAs: the same settings every system uses.
        return {
            "engine": "tortoise.backends.sqlite",
            "credentials": {"file_path": backend.path, "synchronous": "NORMAL"},
        }
    raise ValueError(f"no Tortoise connection for the {backend.name} backend here")


def new_users(roles: dict[int, RoleModel], count: int) -> list[UserModel]:
    users = []
    for i in range(count):
        name, email, active, role_id = new_user(NEW_USER_OFFSET + i)
        users.append(UserModel(name=name, email=email, active=active, role=roles[role_id]))
    return users


def edit(users: list[UserModel]) -> None:
    for user in users:
        user.name = renamed(user.name)
        user.active = not user.active


class TortoiseOrm(System):
    name = "tortoise"
    label = "Tortoise ORM"
    note = (
        "bulk_create (executemany INSERT), all() / select_related('role'), "
        "bulk_update(fields=[name, active]) (one UPDATE with a CASE per field), "
        "filter(id__in=...).delete(), streaming by keyset pages of 1,000"
    )
    counting: ClassVar[str] = "driver"

    def __init__(self, backend: Backend) -> None:
        super().__init__(backend)
        self._count = driver_statements(
            "asyncpg" if isinstance(backend, PostgresBackend) else "aiosqlite"
        )

    @property
    def statements(self) -> Callable[[], int]:
        return self._count

    async def open(self) -> None:
        await Tortoise.init(
            config={
                "connections": {"default": connection_config(self.backend)},
                "apps": {"models": {"models": [__name__], "default_connection": "default"}},
                "use_tz": True,
            }
        )

    async def close(self) -> None:
        await Tortoise.close_connections()

    async def insert(self, watch: Stopwatch, n: int) -> None:
        roles = {r.id: r for r in await RoleModel.all()}
        watch.start()
        # One call; Tortoise runs its executemany in a transaction of its own.
        await UserModel.bulk_create(new_users(roles, n))
        watch.stop()

    async def load(self, watch: Stopwatch, n: int) -> None:
        watch.start()
        users = await UserModel.all()
        watch.stop()
        check(len(users), n, "users")

    async def load_with_role(self, watch: Stopwatch, n: int) -> None:
        watch.start()
        users = await UserModel.all().select_related("role")
        watch.stop()
        check(len(users), n, "users")

    async def update(self, watch: Stopwatch, loaded: int, changed: int) -> None:
        users = await UserModel.all()
        watch.start()
        edited = users[:changed]
        edit(edited)
        await UserModel.bulk_update(edited, fields=["name", "active"])
        watch.stop()

    async def delete(self, watch: Stopwatch, n: int) -> None:
        users = await UserModel.all()
        watch.start()
        await UserModel.filter(id__in=[u.id for u in users]).delete()
        watch.stop()

    async def mixed(self, watch: Stopwatch, load: int, change: int, remove: int, add: int) -> None:
        roles = {r.id: r for r in await RoleModel.all()}
        watch.start()
        async with in_transaction() as connection:
            users = await UserModel.all().using_db(connection)
            edited = users[:change]
            edit(edited)
            await UserModel.bulk_update(edited, fields=["name", "active"], using_db=connection)
            gone = [u.id for u in users[change : change + remove]]
            await UserModel.filter(id__in=gone).using_db(connection).delete()
            await UserModel.bulk_create(new_users(roles, add), using_db=connection)
        watch.stop()

    async def stream(self, watch: Stopwatch, n: int) -> None:
        seen = 0
        last = 0
        watch.start()
        while True:
            page = await UserModel.filter(id__gt=last).order_by("id").limit(PAGE)
            for _user in page:
                seen += 1
            if len(page) < PAGE:
                break
            last = page[-1].id
        watch.stop()
        check(seen, n, "users")
