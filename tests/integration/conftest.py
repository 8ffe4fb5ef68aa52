"""Backend fixtures for the integration suite: every test runs once per selected backend.

`--backend=sqlite --backend=postgres` (repeatable) selects backends; without it, all run.
A backend whose server is down fails its tests: nothing here skips for a missing server.
PostgreSQL's URL comes from MAPPER_TEST_POSTGRES_URL (default: trust auth on 127.0.0.1).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from mapper import Database, Registry, connect

ALL_BACKENDS = ("memory", "sqlite", "postgres")
POSTGRES_URL = os.environ.get(
    "MAPPER_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)
# Each test run gets a schema of its own, so runs in parallel never share tables.
POSTGRES_SCHEMA = f"mapper_test_{os.getpid()}"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--backend",
        action="append",
        choices=ALL_BACKENDS,
        help="run the integration suite on this backend (repeatable; default: all)",
    )


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "backend" in metafunc.fixturenames:
        metafunc.parametrize("backend", _selected(metafunc.config), scope="session")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Backend-specific modules (`ONLY_BACKENDS = (...)`) run only on their backends."""
    selected = _selected(config)
    kept, dropped = [], []
    for item in items:
        only = getattr(item.module, "ONLY_BACKENDS", None)
        callspec = getattr(item, "callspec", None)
        backend = callspec.params.get("backend") if callspec is not None else None
        if only is None:
            keep = True
        elif backend is None:  # needs no fixture: runs when one of its backends is selected
            keep = any(name in selected for name in only)
        else:
            keep = backend in only
        (kept if keep else dropped).append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = kept


def _selected(config: pytest.Config) -> list[str]:
    return list(config.getoption("backend") or ALL_BACKENDS)


async def _postgres_schema(statement: str) -> None:
    import asyncpg

    connection = await asyncpg.connect(POSTGRES_URL)
    try:
        await connection.execute(statement)
    finally:
        await connection.close()


@pytest.fixture(scope="session", autouse=True)
def postgres_schema(request: pytest.FixtureRequest) -> Iterator[None]:
    """Create this run's PostgreSQL schema (when PostgreSQL is selected) and drop it after."""
    wanted = "postgres" in _selected(request.config)
    if wanted:
        asyncio.run(_postgres_schema(f'CREATE SCHEMA IF NOT EXISTS "{POSTGRES_SCHEMA}"'))
    yield
    if wanted:
        asyncio.run(_postgres_schema(f'DROP SCHEMA IF EXISTS "{POSTGRES_SCHEMA}" CASCADE'))


def backend_url(backend: str, directory: Path) -> str:
    """A URL for a fresh database of `backend` (SQLite: a new file in `directory`)."""
    if backend == "memory":
        return "memory://"
    if backend == "sqlite":
        return f"sqlite:///{directory / 'test.db'}"
    if backend == "postgres":
        return f"{POSTGRES_URL}?search_path={POSTGRES_SCHEMA}"
    raise ValueError(backend)


@pytest.fixture
async def db(backend: str, tmp_path: Path) -> AsyncIterator[Database]:
    """An open database of the backend under test; closed after the test."""
    database = await connect(backend_url(backend, tmp_path), pool_max=10)
    try:
        yield database
    finally:
        await database.close()


async def fresh_schema(db: Database, registry: Registry) -> None:
    """Drop and create the registry's tables, so a test starts from empty tables."""
    await db.drop_all(registry)
    await db.create_all(registry)


@pytest.fixture
async def store(db: Database) -> Database:
    """The database under test with empty tables of the shared test domain (models.py)."""
    from tests.integration.models import registry

    await fresh_schema(db, registry)
    return db
