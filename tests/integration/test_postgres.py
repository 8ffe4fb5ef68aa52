"""PostgreSQL-only behaviour: server-side faults, commit outcome, sessions left behind."""

from __future__ import annotations

import asyncio
import gc
import uuid
from collections.abc import Awaitable, Callable

import asyncpg
import pytest

from mapper import (
    CommitOutcomeUnknown,
    ConnectionLost,
    Database,
    DatabaseError,
    StaleEntityError,
    StatementEvent,
    UnitOfWork,
    UnitOfWorkError,
    UnitOfWorkState,
)
from mapper.uow.collector import BULK_ROWS
from tests.integration.conftest import POSTGRES_SCHEMA, POSTGRES_URL
from tests.integration.helpers import (
    WAYS_TO_COMMIT,
    statements,
    twin_key_writes_fail,
    write_changes,
)
from tests.integration.models import Role, User, UserMap, registry

ONLY_BACKENDS = ("postgres",)


async def schema_connection() -> asyncpg.Connection:
    """A raw connection past mapper, to this test's schema (its tables unqualified)."""
    return await asyncpg.connect(POSTGRES_URL, server_settings={"search_path": POSTGRES_SCHEMA})


async def terminate(pid: int) -> None:
    """Kill one server backend from another connection and wait until it is gone."""
    admin = await asyncpg.connect(POSTGRES_URL)
    try:
        await admin.execute("SELECT pg_terminate_backend($1)", pid)
        for _ in range(200):
            if not await admin.fetchval("SELECT count(*) FROM pg_stat_activity WHERE pid=$1", pid):
                return
            await asyncio.sleep(0.01)
    finally:
        await admin.close()


async def session_state(pid: int) -> str | None:
    admin = await asyncpg.connect(POSTGRES_URL)
    try:
        state: str | None = await admin.fetchval(
            "SELECT state FROM pg_stat_activity WHERE pid=$1", pid
        )
        return state
    finally:
        await admin.close()


async def test_a_connection_lost_during_commit_is_an_unknown_outcome(store: Database) -> None:
    """Killing the backend as COMMIT is sent raises CommitOutcomeUnknown, never 'rolled back'."""

    async def kill_at_commit(event: StatementEvent) -> None:
        if event.operation == "commit" and event.session_id is not None:
            await terminate(event.session_id)

    uow = UnitOfWork(store, registry)
    uow.repository(Role).add(Role("maybe"))
    await uow.flush()  # written in a transaction: commit() sends COMMIT
    with store.on_statement(kill_at_commit, when="before"):
        with pytest.raises(CommitOutcomeUnknown) as raised:
            await uow.commit()
    assert raised.value.retryable is False
    assert isinstance(raised.value.__cause__, Exception)
    assert uow.state is UnitOfWorkState.FAILED
    await uow.close()
    async with UnitOfWork(store, registry) as check:  # the pool recovered
        assert await check.repository(Role).count() == 0  # here the kill came first


async def test_a_backend_killed_between_statements_is_connection_lost(store: Database) -> None:
    """Killing the backend after the first batch raises ConnectionLost and writes nothing."""
    async with UnitOfWork(store, registry) as uow:
        uow.repository(User).add(User("ann", "ann@x"))

    async def kill_after_insert(event: StatementEvent) -> None:
        if event.operation == "insert" and event.session_id is not None:
            await terminate(event.session_id)

    uow = UnitOfWork(store, registry)
    (ann,) = await uow.repository(User).find()
    ann.name = "anna"
    role = Role("lost")
    uow.repository(Role).add(role)
    with store.on_statement(kill_after_insert), pytest.raises(ConnectionLost) as raised:
        await uow.commit()
    assert raised.value.retryable
    assert role.id is None and ann.version == 1
    await uow.close()
    async with UnitOfWork(store, registry) as check:  # the next unit of work just works
        assert await check.repository(Role).count() == 0
        assert (await check.repository(User).get(ann.id)).name == "ann"


async def test_idle_pooled_connections_killed_are_replaced(store: Database) -> None:
    """Units of work after the pool's idle connections were killed succeed (G5)."""
    pids = []
    async with UnitOfWork(store, registry) as uow:
        await uow.repository(Role).count()
    admin = await asyncpg.connect(POSTGRES_URL)
    try:
        pids = await admin.fetch(
            "SELECT pid FROM pg_stat_activity"
            " WHERE application_name='mapper' AND pid<>pg_backend_pid()"
        )
    finally:
        await admin.close()
    for row in pids:
        await terminate(row["pid"])
    await asyncio.sleep(0.05)
    for i in range(10):
        async with UnitOfWork(store, registry) as uow:
            uow.repository(Role).add(Role(f"r{i}"))
    async with UnitOfWork(store, registry) as uow:
        assert await uow.repository(Role).count() == 10


async def test_a_cancelled_flush_leaves_no_open_transaction(store: Database) -> None:
    """After a cancel while blocked on a row lock, the server shows no idle transaction."""
    async with UnitOfWork(store, registry) as uow:
        uow.repository(User).add(User("ann", "ann@x"))
    holder = UnitOfWork(store, registry)
    (held,) = await holder.repository(User).find()
    held.score = 1.0
    await holder.flush()
    pids: list[int] = []
    uow = UnitOfWork(store, registry)
    (ann,) = await uow.repository(User).find(UserMap.name == "ann")
    ann.score = 2.0
    uow.repository(Role).add(Role("second batch"))  # two batches: BEGIN, INSERT, UPDATE
    with store.on_statement(lambda e: pids.append(e.session_id or 0)):
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.3):
                await uow.commit()
    await holder.rollback()
    await holder.close()
    await uow.close()
    state = await session_state(pids[-1])
    assert state in (None, "idle")


async def slow_commits(schema: str, seconds: float) -> None:
    """A deferred constraint trigger on roles that holds COMMIT open for `seconds`."""
    admin = await asyncpg.connect(POSTGRES_URL)
    try:
        await admin.execute(
            f"""
            CREATE OR REPLACE FUNCTION "{schema}".slow_commit() RETURNS trigger
                LANGUAGE plpgsql AS $$ BEGIN PERFORM pg_sleep({seconds}); RETURN NULL; END $$;
            CREATE CONSTRAINT TRIGGER slow_commit AFTER INSERT ON "{schema}".roles
                DEFERRABLE INITIALLY DEFERRED FOR EACH ROW
                EXECUTE FUNCTION "{schema}".slow_commit();
            """
        )
    finally:
        await admin.close()


async def count_roles(schema: str) -> int:
    admin = await asyncpg.connect(POSTGRES_URL)
    try:
        return int(await admin.fetchval(f'SELECT count(*) FROM "{schema}".roles'))
    finally:
        await admin.close()


async def test_a_commit_cancelled_midway_is_awaited_for_its_outcome(store: Database) -> None:
    """Cancelled during a slow COMMIT, the unit of work learns it committed and keeps keys.
    (The slow trigger keeps a lone INSERT from being sent alone: roles has a trigger.)"""
    from tests.integration.conftest import POSTGRES_SCHEMA

    await slow_commits(POSTGRES_SCHEMA, 0.3)
    role = Role("landed")
    uow = UnitOfWork(store, registry)
    uow.repository(Role).add(role)
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.1):
            await uow.commit()
    assert role.id is not None  # committed: nothing was restored
    assert await count_roles(POSTGRES_SCHEMA) == 1
    await uow.close()


async def test_a_commit_outliving_its_wait_is_an_unknown_outcome(
    store: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """When a cancelled COMMIT does not finish in time, the outcome is unknown, keys are kept."""
    from mapper.uow import unit_of_work
    from tests.integration.conftest import POSTGRES_SCHEMA

    monkeypatch.setattr(unit_of_work, "_COMMIT_SETTLE_SECONDS", 0.1)
    await slow_commits(POSTGRES_SCHEMA, 1.0)
    role = Role("maybe")
    uow = UnitOfWork(store, registry)
    uow.repository(Role).add(role)
    uow.repository(User).add(User("ann", "ann@x"))  # two batches: a COMMIT ends them
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.1):
            await uow.commit()
    assert uow.state is UnitOfWorkState.FAILED
    assert isinstance(uow.failure, CommitOutcomeUnknown)
    assert role.id is not None  # the row may exist: its key stays
    with pytest.raises(Exception, match="outcome is unknown"):
        uow.repository(Role)
    async with asyncio.timeout(5):  # the connection goes once its COMMIT ends, and is dropped
        while store.dialect.pool_status()[1]:
            await asyncio.sleep(0.02)
    assert await count_roles(POSTGRES_SCHEMA) == 1


async def test_a_connection_lost_during_a_commit_sent_alone_is_an_unknown_outcome(
    store: Database,
) -> None:
    """Killing the backend as the one statement of a commit is sent: CommitOutcomeUnknown,
    nothing restored into the entity (no key came back), the pool recovers."""

    async def kill_at_insert(event: StatementEvent) -> None:
        if event.operation == "insert" and event.session_id is not None:
            await terminate(event.session_id)

    role = Role("maybe")
    uow = UnitOfWork(store, registry)
    uow.repository(Role).add(role)
    with store.on_statement(kill_at_insert, when="before"):
        with pytest.raises(CommitOutcomeUnknown, match="sent as one statement") as raised:
            await uow.commit()
    assert type(raised.value.__cause__).__module__.startswith("asyncpg")  # the driver's
    assert uow.state is UnitOfWorkState.FAILED and role.id is None
    await uow.close()
    async with UnitOfWork(store, registry) as check:
        assert await check.repository(Role).count() == 0  # here the kill came first


async def test_a_commit_sent_alone_and_blocked_is_interrupted_when_cancelled(
    store: Database,
) -> None:
    """A commit's one statement waiting on a row lock, cancelled: after a short grace it is
    interrupted (CommitOutcomeUnknown, promptly), the server cancels it, and once the lock
    is free the row still holds what it held; no session is left in a transaction."""
    async with UnitOfWork(store, registry) as uow:
        uow.repository(User).add(User("ann", "ann@x"))
    holder = UnitOfWork(store, registry)
    (held,) = await holder.repository(User).find()
    held.score = 1.0
    await holder.flush()  # holds the row lock
    pids: list[int] = []
    uow = UnitOfWork(store, registry)
    (ann,) = await uow.repository(User).find()
    ann.score = 2.0
    loop = asyncio.get_running_loop()
    started = loop.time()
    with store.on_statement(lambda e: pids.append(e.session_id or 0), when="before"):
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.2):
                await uow.commit()
    assert loop.time() - started < 3  # the grace, not the lock, bounds the wait
    assert isinstance(uow.failure, CommitOutcomeUnknown)
    assert "interrupted" in str(uow.failure)
    async with asyncio.timeout(5):  # the connection goes back once the server cancelled
        while store.dialect.pool_status()[1] > 1:
            await asyncio.sleep(0.02)
    await holder.rollback()
    await holder.close()
    await uow.close()
    assert await session_state(pids[-1]) in (None, "idle")
    async with UnitOfWork(store, registry) as check:
        stored = await check.repository(User).get(ann.id)
        assert (stored.score, stored.version) == (0.0, 1)  # the interrupted UPDATE never landed


async def _held_row_lock(store: Database) -> tuple[asyncpg.Connection, User]:
    """ann stored, and a raw connection holding her row's lock in an open transaction."""
    ann = User("ann", "ann@x")
    async with UnitOfWork(store, registry) as uow:
        uow.repository(User).add(ann)
    holder = await schema_connection()
    await holder.execute("BEGIN")
    await holder.execute("UPDATE users SET score = 5 WHERE id = $1", ann.id)
    return holder, ann


@pytest.mark.parametrize("holder_ends", ["rollback", "version bump"])
async def test_a_lone_commit_cancelled_while_blocked_learns_its_outcome(
    store: Database, holder_ends: str
) -> None:
    """A commit's lone UPDATE waiting on a row lock, cancelled; the lock goes within the
    grace: if the holder rolled back, the UPDATE committed and the unit of work settled it
    (version bumped); if the holder bumped the version, the UPDATE refused as stale and
    the unit of work failed with StaleEntityError. Either way a known outcome."""
    holder, _ = await _held_row_lock(store)
    uow = UnitOfWork(store, registry)
    (ann,) = await uow.repository(User).find()
    ann.score = 2.0

    async def end_the_hold() -> None:
        await asyncio.sleep(0.2)
        if holder_ends == "rollback":
            await holder.execute("ROLLBACK")
        else:
            await holder.execute("UPDATE users SET version = version + 1 WHERE id = $1", ann.id)
            await holder.execute("COMMIT")

    ending = asyncio.ensure_future(end_the_hold())
    try:
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.1):
                await uow.commit()
    finally:
        await ending
        await holder.close()
    async with UnitOfWork(store, registry) as check:
        stored = await check.repository(User).get(ann.id)
        if holder_ends == "rollback":
            assert uow.state is UnitOfWorkState.OPEN and ann.version == 2
            assert (stored.score, stored.version) == (2.0, 2)
        else:
            assert isinstance(uow.failure, StaleEntityError) and ann.version == 1
            assert (stored.score, stored.version) == (5.0, 2)
    await uow.close()


async def test_a_lone_commit_cancelled_twice_keeps_its_connection_until_it_ends(
    store: Database,
) -> None:
    """Nested timeouts cancel a blocked lone commit twice: the connection is not pooled
    again while its statement still runs; once the statement is interrupted it returns,
    and the same task's next unit of work, which waited for it, uses it."""
    from mapper import connect

    holder, _ = await _held_row_lock(store)
    async with await connect(
        POSTGRES_URL, search_path=POSTGRES_SCHEMA, pool_min=1, pool_max=1
    ) as single:

        async def change() -> None:
            async with UnitOfWork(single, registry) as uow:
                (ann,) = await uow.repository(User).find()
                ann.score = 2.0

        try:
            with pytest.raises(TimeoutError):
                async with asyncio.timeout(0.3), asyncio.timeout(0.1):
                    await change()
            assert single.dialect.pool_status()[1] == 1  # still lent to the statement
            async with asyncio.timeout(5), UnitOfWork(single, registry) as uow:
                (ann,) = await uow.repository(User).find()  # waits for the connection
                assert (ann.score, ann.version) == (0.0, 1)  # interrupted: never landed
        finally:
            await holder.execute("ROLLBACK")
            await holder.close()


async def test_a_commit_cancelled_twice_is_not_sent_again_while_it_settles(
    store: Database,
) -> None:
    """Cancelled twice while its lone UPDATE waits on a row lock, the unit of work stays
    busy until the statement's outcome is known: a second commit() meanwhile is refused
    (not sent again); once the lock goes the UPDATE lands once, and commit() has nothing
    left to write."""
    holder, _ = await _held_row_lock(store)
    uow = UnitOfWork(store, registry)
    (ann,) = await uow.repository(User).find()
    ann.score = 2.0
    try:
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.3), asyncio.timeout(0.1):
                await uow.commit()
        with pytest.raises(UnitOfWorkError, match="learning its outcome"):
            await uow.commit()
    finally:
        await holder.execute("ROLLBACK")  # within the grace: the waiting UPDATE goes on
        await holder.close()
    async with asyncio.timeout(5):
        while True:
            try:
                await uow.commit()
                break
            except UnitOfWorkError:
                await asyncio.sleep(0.02)
    assert uow.state is UnitOfWorkState.OPEN and ann.version == 2
    await uow.close()
    async with UnitOfWork(store, registry) as check:
        stored = await check.repository(User).get(ann.id)
        assert (stored.score, stored.version) == (2.0, 2)


async def test_an_invalid_unique_index_is_not_trusted_to_keep_keys_unique(
    store: Database,
) -> None:
    """A unique index a failed CREATE INDEX CONCURRENTLY left invalid keeps nothing unique:
    the table's writes are checked as for a table without one (a twin is refused)."""
    tags = await _tags_without_their_key()
    try:
        with pytest.raises(asyncpg.UniqueViolationError):
            await tags.execute("CREATE UNIQUE INDEX CONCURRENTLY tags_id ON tags (id)")
        assert not await tags.fetchval(
            "SELECT indisvalid FROM pg_index WHERE indexrelid = 'tags_id'::regclass"
        )
        await twin_key_writes_fail(store, _labels_of(tags))
    finally:
        await tags.close()


def _labels_of(tags: asyncpg.Connection) -> Callable[[], Awaitable[list[str]]]:
    async def stored_labels() -> list[str]:
        return [row[0] for row in await tags.fetch("SELECT label FROM tags ORDER BY label")]

    return stored_labels


async def _renamed_in_a_transaction(store: Database, raw: asyncpg.Connection, name: str) -> None:
    """Renames the one user: the commit writes in a transaction (users has the `audited`
    rule, whose audit table then holds one row)."""
    with statements(store) as log:
        async with UnitOfWork(store, registry) as uow:
            (ann,) = await uow.repository(User).find()
            ann.name = name
    assert log.operations() == ["select", "begin", "update", "commit"]
    assert await raw.fetchval("SELECT count(*) FROM audit") == 1


async def test_tables_with_rules_or_triggers_take_no_lone_statement(store: Database) -> None:
    """A rule (a data-modifying WITH refuses most) or a trigger of the table's own (it may
    drop a row, so fewer keys come back after the commit) keeps the commit in a
    transaction: a rule's table commits normally, and a trigger that drops every new row
    fails the commit with nothing stored."""
    raw = await schema_connection()
    try:
        await raw.execute(
            "CREATE TABLE audit (note text); "
            "CREATE RULE audited AS ON UPDATE TO users DO ALSO INSERT INTO audit VALUES ('u'); "
            "CREATE FUNCTION drop_row() RETURNS trigger LANGUAGE plpgsql "
            "AS $$ BEGIN RETURN NULL; END $$; "
            "CREATE TRIGGER dropped BEFORE INSERT ON roles FOR EACH ROW EXECUTE FUNCTION drop_row()"
        )
        async with UnitOfWork(store, registry) as uow:
            uow.repository(User).add(User("ann", "ann@x"))
        await _renamed_in_a_transaction(store, raw, "anna")
        uow = UnitOfWork(store, registry)
        uow.repository(Role).add_all([Role("a"), Role("b")])
        with pytest.raises(UnitOfWorkError, match="2 rows were inserted but 0 keys came back"):
            await uow.commit()
        await uow.close()
        assert await raw.fetchval("SELECT count(*) FROM roles") == 0
    finally:
        await raw.execute(
            "DROP RULE IF EXISTS audited ON users; DROP TABLE IF EXISTS audit; "
            "DROP TRIGGER IF EXISTS dropped ON roles; DROP FUNCTION IF EXISTS drop_row()"
        )
        await raw.close()


@pytest.mark.parametrize("how", WAYS_TO_COMMIT)
async def test_an_inheritance_parents_key_is_not_trusted_to_be_unique(
    store: Database, how: str
) -> None:
    """A parent table's unique index does not cover its children: a twin of one key in a
    child beside a stale row adds up to the batch size, and is still refused."""
    from tests.integration.models import Tag, TagMap

    raw = await schema_connection()
    try:
        await raw.execute("CREATE TABLE tags_old () INHERITS (tags)")
        async with UnitOfWork(store, registry) as uow:
            uow.repository(Tag).add_all([Tag("a"), Tag("b")])
        uow = UnitOfWork(store, registry)
        a, b = await uow.repository(Tag).find(order_by=TagMap.label)
        await raw.execute("INSERT INTO tags_old VALUES ($1, 'a')", a.id)
        await raw.execute("DELETE FROM ONLY tags WHERE id = $1", b.id)
        a.label, b.label = "A", "B"
        with pytest.raises(DatabaseError, match="a key matched more than one row"):
            await write_changes(uow, how)
        await uow.close()
        rows = await raw.fetch("SELECT label FROM tags ORDER BY label")
        assert [row[0] for row in rows] == ["a", "a"]  # nothing written
    finally:
        await raw.execute("DROP TABLE IF EXISTS tags_old")
        await raw.close()


async def test_a_rule_made_after_the_catalog_check_costs_one_failed_commit(
    store: Database,
) -> None:
    """A rule created once mapper has checked the table refuses the next lone UPDATE (a
    DatabaseError, nothing written); the commit after it checks the table again and
    writes in a transaction."""
    async with UnitOfWork(store, registry) as uow:
        uow.repository(User).add(User("ann", "ann@x"))
    async with UnitOfWork(store, registry) as uow:
        (ann,) = await uow.repository(User).find()
        ann.name = "anna"  # a lone UPDATE: the table is checked and takes it
    raw = await schema_connection()
    try:
        await raw.execute(
            "CREATE TABLE audit (note text); "
            "CREATE RULE audited AS ON UPDATE TO users DO ALSO INSERT INTO audit VALUES ('u')"
        )
        uow = UnitOfWork(store, registry)
        (ann,) = await uow.repository(User).find()
        ann.name = "ann again"
        with pytest.raises(DatabaseError, match="rules are not supported"):
            await uow.commit()
        await uow.close()
        await _renamed_in_a_transaction(store, raw, "ann again")
    finally:
        await raw.execute("DROP RULE IF EXISTS audited ON users; DROP TABLE IF EXISTS audit")
        await raw.close()


async def test_a_row_dropping_trigger_made_after_the_check_is_an_unknown_outcome_once(
    store: Database,
) -> None:
    """A trigger made once mapper has checked the table drops the rows of the next lone
    INSERT: it committed with fewer keys than rows, so CommitOutcomeUnknown (nothing
    restored); the commit after it checks the table again and keeps the transaction,
    where the same shortfall rolls back."""
    async with UnitOfWork(store, registry) as uow:
        uow.repository(Role).add(Role("checked"))  # a lone INSERT: roles is checked
    raw = await schema_connection()
    try:
        await raw.execute(
            "CREATE FUNCTION drop_row() RETURNS trigger LANGUAGE plpgsql "
            "AS $$ BEGIN RETURN NULL; END $$; "
            "CREATE TRIGGER dropped BEFORE INSERT ON roles FOR EACH ROW EXECUTE FUNCTION drop_row()"
        )
        uow = UnitOfWork(store, registry)
        uow.repository(Role).add_all([Role("a"), Role("b")])
        with pytest.raises(CommitOutcomeUnknown, match=r"2 rows were sent .* but 0 keys came back"):
            await uow.commit()
        await uow.close()
        with statements(store) as log:
            uow = UnitOfWork(store, registry)
            uow.repository(Role).add_all([Role("a"), Role("b")])
            with pytest.raises(UnitOfWorkError, match="2 rows were inserted but 0 keys came back"):
                await uow.commit()
            await uow.close()
        assert log.operations() == ["begin", "insert", "rollback"]
        assert await raw.fetchval("SELECT count(*) FROM roles") == 1
    finally:
        await raw.execute(
            "DROP TRIGGER IF EXISTS dropped ON roles; DROP FUNCTION IF EXISTS drop_row()"
        )
        await raw.close()


async def test_a_lone_statement_reports_the_rows_it_wrote_to_the_hook(store: Database) -> None:
    """The hook's row count of a guarded UPDATE is the rows it wrote, not its one result row."""
    async with UnitOfWork(store, registry) as uow:
        uow.repository(User).add_all([User(f"u{i}", f"u{i}@x") for i in range(3)])
    with statements(store) as log:
        async with UnitOfWork(store, registry) as uow:
            for user in await uow.repository(User).find():
                user.score = 1.0
    (update,) = [e for e in log.events if e.operation == "update"]
    assert update.row_count == 3 and update.error is None


async def test_a_connection_lost_naming_stale_rows_after_a_refused_lone_statement(
    store: Database,
) -> None:
    """The lone UPDATE refused (a row was stale), then the connection dies while naming the
    stale rows: a known rollback (ConnectionLost), not an unknown outcome."""
    async with UnitOfWork(store, registry) as uow:
        uow.repository(User).add_all([User("ann", "ann@x"), User("bob", "bob@x")])
    uow = UnitOfWork(store, registry)
    ann, bob = await uow.repository(User).find(order_by=UserMap.name)
    async with UnitOfWork(store, registry) as other:
        (theirs,) = await other.repository(User).find(UserMap.name == "bob")
        theirs.score = 9.0
    ann.score = bob.score = 1.0

    async def kill_while_naming(event: StatementEvent) -> None:
        if event.operation == "select" and event.session_id is not None:
            await terminate(event.session_id)

    with store.on_statement(kill_while_naming, when="before"):
        with pytest.raises(ConnectionLost):
            await uow.commit()
    assert not isinstance(uow.failure, CommitOutcomeUnknown)
    await uow.close()
    async with UnitOfWork(store, registry) as check:
        scores = {u.name: u.score for u in await check.repository(User).find()}
        assert scores == {"ann": 0.0, "bob": 9.0}  # nothing of the refused UPDATE


async def test_plan_shows_the_guarded_statement_a_commit_sends_alone(store: Database) -> None:
    """plan() shows a lone UPDATE as commit() sends it, and the hook sees that very SQL."""
    async with UnitOfWork(store, registry) as uow:
        uow.repository(User).add(User("ann", "ann@x"))
    async with UnitOfWork(store, registry) as uow:
        (ann,) = await uow.repository(User).find()
        ann.name = "anna"
        (planned,) = uow.plan()
        with statements(store) as log:
            await uow.commit()
    assert log.operations() == ["update"]
    assert [e.sql for e in log.events] == list(planned.sql)
    assert planned.sql[0].startswith("WITH ")


async def test_a_read_on_a_dead_connection_leaves_the_next_read_working(
    store: Database,
) -> None:
    """Outside a transaction, one ConnectionLost; the next read takes a fresh connection."""
    pids: list[int] = []
    async with UnitOfWork(store, registry) as uow:
        roles = uow.repository(Role)
        with store.on_statement(lambda e: pids.append(e.session_id or 0)):
            await roles.count()
        await terminate(pids[0])
        with pytest.raises(ConnectionLost):
            await roles.count()
        assert await roles.count() == 0
        roles.add(Role("after"))
    async with UnitOfWork(store, registry) as uow:
        assert await uow.repository(Role).count() == 1


async def test_a_database_that_cannot_be_reached_is_connection_lost() -> None:
    """Connecting to a missing database raises ConnectionLost, not a driver error."""
    from mapper import connect

    url = POSTGRES_URL.rsplit("/", 1)[0] + "/no_such_database_here"
    with pytest.raises(ConnectionLost) as raised:
        await connect(url)
    assert "no_such_database_here" in str(raised.value)
    async with await connect(url, pool_min=0) as lazy:  # no connection until the first use
        with pytest.raises(ConnectionLost):
            async with UnitOfWork(lazy, registry) as uow:
                await uow.repository(Role).count()
        assert lazy.dialect.pool_status()[1] == 0


async def test_a_released_connection_costs_no_reset_round_trip(store: Database) -> None:
    """After a unit of work the session's last statement is its own (the INSERT it sent
    alone as its commit), not a RESET ALL."""
    pids: list[int] = []
    sent: list[str | None] = []

    def note(event: StatementEvent) -> None:
        if event.session_id is not None:
            pids.append(event.session_id)
            sent.append(event.sql)

    with store.on_statement(note):
        async with UnitOfWork(store, registry) as uow:
            uow.repository(Role).add(Role("kept"))
    admin = await asyncpg.connect(POSTGRES_URL)
    try:
        row = await admin.fetchrow(
            "SELECT state, query FROM pg_stat_activity WHERE pid=$1", pids[-1]
        )
    finally:
        await admin.close()
    assert row is not None
    assert (row["state"], row["query"]) == ("idle", sent[-1])


async def test_a_connection_released_in_a_transaction_is_rolled_back(store: Database) -> None:
    """The pool's reset still ends a transaction left open, so the next borrower gets none."""
    connection = await store.acquire()
    await connection.begin()
    session = connection.session_id
    await store.release(connection)
    assert session is not None
    assert await session_state(session) == "idle"
    again = await store.acquire()
    try:
        assert not again._driver_in_transaction()  # type: ignore[attr-defined]
    finally:
        await store.release(again)


async def test_a_table_not_enforcing_the_mapped_key_fails_the_flush(store: Database) -> None:
    """Two stored rows with one mapped key: update and delete fail, naming it; nothing changes."""
    tags = await _tags_without_their_key()
    try:
        await twin_key_writes_fail(store, _labels_of(tags))
    finally:
        await tags.close()


@pytest.mark.parametrize("how", WAYS_TO_COMMIT)
async def test_a_stale_row_beside_a_twin_key_is_not_hidden_by_the_row_count(
    store: Database, how: str
) -> None:
    """One key matching two rows and one matching none add up to the batch size: still refused."""
    from tests.integration.models import Tag, TagMap

    tags = await _tags_without_their_key()
    try:
        await tags.execute("DELETE FROM tags")
        await tags.execute(
            "INSERT INTO tags VALUES ($1, 'a'), ($2, 'b')", uuid.UUID(int=1), uuid.UUID(int=2)
        )
        for change in ("update", "delete"):
            uow = UnitOfWork(store, registry)
            a, b = await uow.repository(Tag).find(order_by=TagMap.label)
            # Meanwhile a second row with a's key appears and b's row goes away.
            await tags.execute("INSERT INTO tags VALUES ($1, 'a')", uuid.UUID(int=1))
            await tags.execute("DELETE FROM tags WHERE label = 'b'")
            if change == "update":
                a.label, b.label = "A", "B"
            else:
                uow.repository(Tag).remove_all([a, b])
            with pytest.raises(DatabaseError, match="a key matched more than one row"):
                await write_changes(uow, how)
            await uow.close()
            rows = await tags.fetch("SELECT label FROM tags ORDER BY label")
            assert [row[0] for row in rows] == ["a", "a"]  # nothing written
            await tags.execute("DELETE FROM tags WHERE label = 'a'")
            await tags.execute(
                "INSERT INTO tags VALUES ($1, 'a'), ($2, 'b')", uuid.UUID(int=1), uuid.UUID(int=2)
            )
    finally:
        await tags.close()


@pytest.mark.parametrize("how", WAYS_TO_COMMIT)
async def test_a_stale_row_of_a_view_is_named(store: Database, how: str) -> None:
    """A mapping onto an updatable view (no xmin) still names the rows another writer removed."""
    from tests.integration.models import Tag, TagMap

    raw = await schema_connection()
    try:
        await raw.execute(
            "ALTER TABLE tags RENAME TO tag_rows; "
            "CREATE VIEW tags AS SELECT id, label FROM tag_rows"
        )
        await raw.execute(
            "INSERT INTO tag_rows VALUES ($1, 'a'), ($2, 'b')", uuid.UUID(int=1), uuid.UUID(int=2)
        )
        uow = UnitOfWork(store, registry)
        a, b = await uow.repository(Tag).find(order_by=TagMap.label)
        await raw.execute("DELETE FROM tag_rows WHERE label = 'b'")
        a.label, b.label = "A", "B"
        with pytest.raises(StaleEntityError, match="update of Tag") as raised:
            await write_changes(uow, how)
        assert [row.key for row in raised.value.rows] == [b.id]
        assert raised.value.retryable
        await uow.close()
    finally:
        await raw.execute("DROP VIEW IF EXISTS tags; ALTER TABLE tag_rows RENAME TO tags")
        await raw.close()


async def test_plan_after_a_stream_shows_the_delete_that_runs(store: Database) -> None:
    """A stream opens a transaction without writing: plan() shows the DELETE a flush sends."""
    async with UnitOfWork(store, registry) as uow:
        uow.repository(Role).add_all([Role("a"), Role("b")])
    async with UnitOfWork(store, registry) as uow:
        roles = uow.repository(Role)
        async for _ in roles.stream(chunk_size=10):
            pass
        roles.remove_all(await roles.find())
        (planned,) = uow.plan()
        with statements(store) as log:
            await uow.flush()
        assert [e.sql for e in log.events if e.operation == "delete"] == list(planned.sql)
        assert "RETURNING" not in planned.sql[0]


async def _tags_without_their_key() -> asyncpg.Connection:
    """The tags table remade without its primary key, holding one key twice."""
    connection = await schema_connection()
    await connection.execute(
        "DROP TABLE tags CASCADE; CREATE TABLE tags (id uuid NOT NULL, label varchar(50) NOT NULL)"
    )
    await connection.execute("INSERT INTO tags VALUES ($1, 'twin'), ($1, 'twin')", uuid.UUID(int=7))
    return connection


def live_driver_rows() -> int:
    return sum(1 for thing in gc.get_objects() if type(thing) is asyncpg.Record)


async def test_a_bulk_load_frees_the_drivers_rows_before_it_returns(store: Database) -> None:
    """An untracked find() of BULK_ROWS rows or more returns with none of asyncpg's records
    still alive (the event loop would hold them until the caller's next await); a tracked
    one keeps each as its entity's snapshot, and no more."""
    async with UnitOfWork(store, registry) as uow:
        uow.repository(Role).add_all([Role(f"role {n}") for n in range(BULK_ROWS)])
    gc.collect()
    before = live_driver_rows()  # others' records, not yet collected
    async with UnitOfWork(store, registry) as uow:
        shown = await uow.repository(Role).find(track=False)
        alive = live_driver_rows()
        assert len(shown) == BULK_ROWS
        assert alive == before
    async with UnitOfWork(store, registry) as uow:
        held = await uow.repository(Role).find()
        alive = live_driver_rows()
        assert len(held) == BULK_ROWS
        assert alive == before + BULK_ROWS
