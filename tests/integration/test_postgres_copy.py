"""PostgreSQL's bulk inserts by COPY: keys reserved first, every column type, and the ways
back to INSERT (keys the table will not take, rules and triggers, the URL option)."""

from __future__ import annotations

import datetime as dt
import decimal

import asyncpg
import pytest

from mapper import (
    CommitOutcomeUnknown,
    ConfigurationError,
    ConnectionLost,
    Database,
    IntegrityError,
    SchemaChangedError,
    StatementEvent,
    UnitOfWork,
    UnitOfWorkState,
    connect,
)
from tests.integration.conftest import POSTGRES_SCHEMA, POSTGRES_URL
from tests.integration.helpers import statements
from tests.integration.models import Address, Role, Status, User, UserMap, registry
from tests.integration.test_postgres import schema_connection, terminate

ONLY_BACKENDS = ("postgres",)


def many_users(count: int, role: Role | None = None, start: int = 0) -> list[User]:
    """Users filling every column type with values that differ row by row."""
    users = []
    for i in range(start, start + count):
        users.append(
            User(
                f"user {i}",
                f"user{i}@x",
                status=Status.BLOCKED if i % 2 else Status.ACTIVE,
                active=i % 3 == 0,
                score=i / 7,
                balance=decimal.Decimal(i) / 4,
                born=dt.date(1990, 1, 1) + dt.timedelta(days=i),
                wakes=dt.time(i % 24, i % 60, 0, i),
                created=dt.datetime(2026, 1, 1, tzinfo=dt.UTC) + dt.timedelta(seconds=i),
                address=Address(f"street {i}", "town") if i % 5 else None,
                avatar=bytes([i % 256, 0, 255]) if i % 4 else None,
                role_id=None if role is None else role.id,
            )
        )
    return users


async def test_a_big_insert_goes_by_copy_with_its_keys_reserved_first(store: Database) -> None:
    """A commit of 600 new users is a key reservation and a COPY, no BEGIN or COMMIT; every
    key lands on its own row, ascending in the order the users were added (G8, G9)."""
    least = store.capabilities.copy_rows
    assert least is not None and least <= 600
    users = many_users(600)
    with statements(store) as log:
        async with UnitOfWork(store, registry) as uow:
            uow.repository(User).add_all(users)
    assert log.operations() == ["keys", "insert"]
    assert log.events[1].sql is not None and log.events[1].sql.startswith('COPY "users" (')
    assert log.events[1].row_count == 600
    ids = [u.id for u in users]
    assert all(isinstance(key, int) for key in ids) and ids == sorted(set(ids))  # type: ignore[type-var]
    async with UnitOfWork(store, registry) as uow:
        stored = {u.id: u for u in await uow.repository(User).find()}
    assert [stored[u.id] for u in users] == users  # every value read back as sent


async def test_below_the_threshold_an_insert_stays_an_insert(store: Database) -> None:
    """One row fewer than `copy_rows` is one INSERT ... RETURNING, as before."""
    least = store.capabilities.copy_rows
    assert least is not None
    with statements(store) as log:
        async with UnitOfWork(store, registry) as uow:
            uow.repository(User).add_all(many_users(least - 1))
    assert log.operations() == ["insert"]
    assert log.events[0].sql is not None and log.events[0].sql.startswith("INSERT")


async def test_a_copy_in_a_transaction_refers_to_rows_inserted_before_it(store: Database) -> None:
    """Users referring to a role added in the same flush are copied after its INSERT, with
    its key, inside the flush's transaction."""
    role = Role("staff")
    users = many_users(600)
    for user in users:
        user.role_id = None
    async with UnitOfWork(store, registry) as uow:
        uow.repository(Role).add(role)
        await uow.flush()
        for user in users:
            user.role_id = role.id
        with statements(store) as log:
            uow.repository(User).add_all(users)
            await uow.flush()
        assert log.operations() == ["keys", "insert"]
    async with UnitOfWork(store, registry) as uow:
        assert await uow.repository(User).count(UserMap.role_id == role.id) == 600


async def test_a_copy_that_breaks_a_unique_key_writes_nothing(store: Database) -> None:
    """A duplicate email among 600 copied users fails the commit with the constraint, entity
    and attribute named; nothing is stored and no user keeps a key (G1, G2)."""
    async with UnitOfWork(store, registry) as uow:
        uow.repository(User).add(User("first", "user599@x"))
    users = many_users(600)
    uow = UnitOfWork(store, registry)
    uow.repository(User).add_all(users)
    with pytest.raises(IntegrityError) as raised:
        await uow.commit()
    assert raised.value.entity == "User" and raised.value.attribute == "email"
    assert uow.state is UnitOfWorkState.FAILED
    assert all(u.id is None for u in users)
    await uow.close()
    async with UnitOfWork(store, registry) as check:
        assert await check.repository(User).count() == 1


async def test_a_retry_after_a_failed_copy_inserts_again(store: Database) -> None:
    """The users of a failed COPY, fixed, insert in a new unit of work with new keys."""
    async with UnitOfWork(store, registry) as uow:
        uow.repository(User).add(User("first", "user3@x"))
    users = many_users(600)
    uow = UnitOfWork(store, registry)
    uow.repository(User).add_all(users)
    with pytest.raises(IntegrityError):
        await uow.commit()
    await uow.close()
    users[3].email = "fixed@x"
    async with UnitOfWork(store, registry) as uow:
        uow.repository(User).add_all(users)
    async with UnitOfWork(store, registry) as uow:
        assert await uow.repository(User).count() == 601


async def test_keys_the_table_will_not_take_keep_inserts(store: Database) -> None:
    """An identity key GENERATED ALWAYS (COPY cannot give it values) and a table with a
    trigger of its own (COPY would bypass nothing, but rows may be dropped) insert as
    before; the inserts succeed and their keys come back."""
    raw = await schema_connection()
    try:
        await raw.execute(
            "ALTER TABLE users ALTER COLUMN id SET GENERATED ALWAYS; "
            "CREATE FUNCTION keep_row() RETURNS trigger LANGUAGE plpgsql "
            "AS $$ BEGIN RETURN NEW; END $$; "
            "CREATE TRIGGER kept BEFORE INSERT ON roles FOR EACH ROW EXECUTE FUNCTION keep_row()"
        )
        users = many_users(600)
        roles = [Role(f"role {i}") for i in range(600)]
        with statements(store) as log:
            async with UnitOfWork(store, registry) as uow:
                uow.repository(User).add_all(users)
                uow.repository(Role).add_all(roles)
        assert "keys" not in log.operations()
        assert all(e.sql is not None and e.sql.startswith("INSERT") for e in log.events[1:-1])
        assert None not in [u.id for u in users] + [r.id for r in roles]
        assert await raw.fetchval("SELECT count(*) FROM users") == 600
    finally:
        await raw.execute(
            "DROP TRIGGER IF EXISTS kept ON roles; DROP FUNCTION IF EXISTS keep_row()"
        )
        await raw.close()


@pytest.mark.parametrize(("option", "expected"), [("0", None), ("10", 10)])
async def test_copy_rows_comes_from_the_url(store: Database, option: str, expected: int) -> None:
    """copy_rows=N in the URL sets the threshold; copy_rows=0 turns COPY off."""
    db = await connect(
        f"{POSTGRES_URL}?search_path={POSTGRES_SCHEMA}&copy_rows={option}", pool_max=2
    )
    try:
        assert db.capabilities.copy_rows == expected
        with statements(db) as log:
            async with UnitOfWork(db, registry) as uow:
                uow.repository(User).add_all(many_users(600))
        assert log.operations() == (["insert"] if expected is None else ["keys", "insert"])
    finally:
        await db.close()


@pytest.mark.parametrize("option", ["-1", "many"])
async def test_a_bad_copy_rows_is_refused_when_connecting(option: str) -> None:
    """copy_rows must be a whole number from 0."""
    with pytest.raises(ConfigurationError, match="copy_rows"):
        await connect(f"{POSTGRES_URL}?copy_rows={option}")


async def test_plan_shows_the_reservation_and_the_copy(store: Database) -> None:
    """plan() shows both statements of a big insert, as the hook then sees them."""
    async with UnitOfWork(store, registry) as uow:
        uow.repository(User).add_all(many_users(600))
        (planned,) = uow.plan()
        with statements(store) as log:
            await uow.commit()
    assert planned.operation == "insert" and planned.rows == 600
    assert list(planned.sql) == [e.sql for e in log.events]
    assert "nextval" in planned.sql[0] and planned.sql[1].startswith("COPY")


async def test_a_column_type_changed_under_a_cached_copy_is_retryable(store: Database) -> None:
    """After a COPY, a column's type changes: the next COPY on that connection raises
    SchemaChangedError (retryable) with nothing written, and `db.run` copies on its retry."""
    db = await connect(f"{POSTGRES_URL}?search_path={POSTGRES_SCHEMA}", pool_max=1)
    try:
        async with UnitOfWork(db, registry) as uow:
            uow.repository(User).add_all(many_users(600))
        raw = await schema_connection()
        try:
            await raw.execute("ALTER TABLE users ALTER COLUMN score TYPE real")
        finally:
            await raw.close()
        errors: list[BaseException] = []

        async def insert() -> None:
            try:
                async with UnitOfWork(db, registry) as uow:
                    uow.repository(User).add_all(many_users(600, start=600))
            except BaseException as error:
                errors.append(error)
                raise

        await db.run(insert)
        assert [type(error) for error in errors] == [SchemaChangedError]
        async with UnitOfWork(db, registry) as uow:
            assert await uow.repository(User).count() == 1200
    finally:
        await db.close()


@pytest.mark.parametrize("killed_at", ["keys", "insert"])
async def test_a_connection_lost_around_a_lone_copy(store: Database, killed_at: str) -> None:
    """Killed as the keys are reserved: ConnectionLost, nothing written, no key kept. Killed
    as the COPY (the commit) is sent: CommitOutcomeUnknown."""

    async def kill(event: StatementEvent) -> None:
        if event.operation == killed_at and event.session_id is not None:
            await terminate(event.session_id)

    users = many_users(600)
    uow = UnitOfWork(store, registry)
    uow.repository(User).add_all(users)
    expected = ConnectionLost if killed_at == "keys" else CommitOutcomeUnknown
    with store.on_statement(kill, when="before"):
        with pytest.raises(expected):
            await uow.commit()
    assert isinstance(uow.state, UnitOfWorkState) and uow.state is UnitOfWorkState.FAILED
    assert all(u.id is None for u in users)
    await uow.close()
    async with UnitOfWork(store, registry) as check:
        assert await check.repository(User).count() == 0  # the kill came first


async def test_the_reserved_keys_come_from_the_keys_sequence(store: Database) -> None:
    """Keys drawn for a COPY are the sequence's: an INSERT after it gets the next key."""
    users = many_users(600)
    async with UnitOfWork(store, registry) as uow:
        uow.repository(User).add_all(users)
    after = User("after", "after@x")
    async with UnitOfWork(store, registry) as uow:
        uow.repository(User).add(after)
    assert after.id is not None and after.id > max(u.id or 0 for u in users)
    raw: asyncpg.Connection = await schema_connection()
    try:
        assert await raw.fetchval("SELECT count(DISTINCT id) FROM users") == 601
    finally:
        await raw.close()
