"""Helpers for testing your own repositories and services on memory and on real databases.

- `database_urls()`: the databases to test on: `memory://`, plus the URLs listed in the
  environment variable MAPPER_TEST_URLS, so CI adds real databases without code changes.
- `fresh_database(url, registry)`: an async context manager giving an open `Database` with
  empty tables of the registry, and removing them afterwards. On PostgreSQL each one lives
  in a schema of its own, so parallel runs against one server never share tables.
- `clear(db, registry)`: delete every row (children first) to reuse one database between tests.
- `database_fixture(registry)`: a pytest fixture yielding a fresh database per test, once per
  URL of `database_urls()` (needs pytest and pytest-asyncio, imported only when called).

Called by users' test suites, typically in a `conftest.py`; not imported by `import mapper`,
and importable without pytest installed.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import AsyncIterator, Iterable, Sequence
from typing import Any

from mapper.database import ConnectionOptions, Database, connect
from mapper.errors import ConfigurationError, ConnectionLost, DatabaseError
from mapper.registry import Registry
from mapper.uow import Repository, UnitOfWork
from mapper.url import DatabaseURL

__all__ = ["URLS_VARIABLE", "clear", "database_fixture", "database_urls", "fresh_database"]

URLS_VARIABLE = "MAPPER_TEST_URLS"
"""The environment variable listing extra database URLs to test on, separated by commas."""


def database_urls(
    default: Iterable[str] = ("memory://",), env: str | None = URLS_VARIABLE
) -> list[str]:
    """The database URLs tests should run on: `default`, then those listed in `env`.

    The variable holds URLs separated by commas (write a comma inside a URL as `%2C`);
    blanks and repeats are dropped. Every URL is parsed here, so a typo fails when the tests
    are collected, naming the variable, not halfway through the run.
    """
    defaults = tuple(default)
    listed = os.environ.get(env, "") if env else ""
    urls: list[str] = []
    for url in (text.strip() for text in [*defaults, *listed.split(",")]):
        if not url or url in urls:
            continue
        try:
            DatabaseURL.parse(url)
        except ConfigurationError as error:
            source = f"{env}: " if url not in defaults and env else ""
            raise ConfigurationError(f"{source}{error}") from None
        urls.append(url)
    return urls


def _schema_name() -> str:
    """A new PostgreSQL schema name, unique to this process and call."""
    return f"mapper_test_{os.getpid()}_{secrets.token_hex(4)}"


async def _postgres_execute(url: DatabaseURL, statement: str, connect_timeout: float) -> None:
    """Run one statement on its own asyncpg connection (the mapper runs no raw SQL)."""
    import asyncpg  # noqa: PLC0415 - the driver loads only for PostgreSQL URLs

    try:
        connection = await asyncpg.connect(
            host=url.host or "localhost",
            port=url.port or 5432,
            user=url.username,
            password=url.password,
            database=url.database,
            timeout=connect_timeout,
        )
    except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as error:
        raise ConnectionLost(
            f"cannot connect to {url.render()}: {error}", code=getattr(error, "sqlstate", None)
        ) from error
    try:
        await connection.execute(statement)
    except asyncpg.PostgresError as error:
        raise DatabaseError(
            f"{statement!r} failed on {url.render()}: {error}", code=error.sqlstate
        ) from error
    finally:
        await connection.close()


@contextlib.asynccontextmanager
async def fresh_database(url: str, registry: Registry, **options: Any) -> AsyncIterator[Database]:
    """An open database at `url` with the registry's tables created empty.

    The tables are dropped (if they exist) and created on entry; on exit they are dropped and
    the database is closed, whether the block failed or not. `options` go to `connect()`.

    On PostgreSQL, unless the URL or `options` name a `search_path`, the tables live in a new
    schema (`mapper_test_<pid>_<random>`) that is dropped with everything in it on exit, so
    runs in parallel against one server never collide. A SQLite file or a named
    `memory://name` is shared by everyone who opens it: give parallel runs different names.
    """
    parsed = DatabaseURL.parse(url)
    schema: str | None = None
    timeout = 10.0
    if parsed.backend == "postgresql" and "search_path" not in {*parsed.options, *options}:
        # Checked as connect() checks it, before a schema exists that could be left behind.
        timeout = ConnectionOptions.from_url(parsed, options).connect_timeout
        schema = _schema_name()
        await _postgres_execute(parsed, f'CREATE SCHEMA "{schema}"', timeout)
        options = {**options, "search_path": schema}
    try:
        db = await connect(url, **options)
        try:
            if schema is None:
                await db.drop_all(registry)
            await db.create_all(registry)
            yield db
        finally:
            try:
                if schema is None:
                    await db.drop_all(registry)
            finally:
                await db.close()
    finally:
        if schema is not None:
            await _postgres_execute(parsed, f'DROP SCHEMA IF EXISTS "{schema}" CASCADE', timeout)


async def clear(db: Database, registry: Registry) -> int:
    """Delete every row of the registry's tables, children first; return how many.

    One unit of work loads each table and removes what it found, so foreign keys, version
    checks and the statement hook apply as for any other delete. Generated keys are not
    reset: tests should not expect particular key values after a `clear`.
    """
    async with UnitOfWork(db, registry) as uow:
        # Every table is read before anything is removed: a query autoflushes, and a flush
        # of half the removals would delete parents whose children are not removed yet.
        loaded: list[tuple[Repository[Any], list[Any]]] = []
        for meta in registry.table_order():
            repository: Repository[Any] = uow.repository(meta.entity)
            loaded.append((repository, await repository.find()))
        for repository, rows in loaded:
            for entity in rows:
                repository.remove(entity)
    return sum(len(rows) for _, rows in loaded)


def _ids(urls: Sequence[str]) -> list[str]:
    """Test ids naming each URL's backend: memory, sqlite, postgresql (sqlite-2 if repeated)."""
    ids: list[str] = []
    for url in urls:
        backend = DatabaseURL.parse(url).backend
        name, n = backend, 1
        while name in ids:
            n += 1
            name = f"{backend}-{n}"
        ids.append(name)
    return ids


def database_fixture(registry: Registry, urls: Sequence[str] | None = None, **options: Any) -> Any:
    """A pytest fixture giving each test a `fresh_database` of `registry`, once per URL.

    Assign it in a `conftest.py`; the name you assign is the fixture's name:

        from mapper.testing import database_fixture
        from myapp.mappings import registry

        db = database_fixture(registry)     # tests asking for `db` run on every URL

    `urls` defaults to `database_urls()`, read when the fixture is made; the test ids name
    the backends (`test_x[memory]`, `test_x[postgresql]`). `options` go to `connect()`.
    The fixture is a pytest-asyncio one, so it works in its strict and auto modes alike.
    """
    try:
        import pytest_asyncio  # noqa: PLC0415 - only tests that use the fixture need pytest
    except ImportError as error:
        raise ConfigurationError(
            "database_fixture needs pytest and pytest-asyncio: pip install pytest-asyncio"
        ) from error
    chosen = database_urls() if urls is None else database_urls(urls, env=None)
    if not chosen:
        raise ConfigurationError("database_fixture needs at least one database URL")

    async def database(request: Any) -> AsyncIterator[Database]:
        async with fresh_database(request.param, registry, **options) as db:
            yield db

    return pytest_asyncio.fixture(database, params=chosen, ids=_ids(chosen))
