"""Fixtures of the bookstore's tests, built on `mapper.testing`.

`db` is an empty bookstore database, made afresh for each test and once per URL of
`mapper.testing.database_urls()`: memory:// always, plus what MAPPER_TEST_URLS lists, e.g.
MAPPER_TEST_URLS=sqlite:////tmp/bookstore.db,postgresql://postgres@127.0.0.1:5432/test.
`shelf` fills it with a small catalogue through the services, as the shop itself would.
"""

from __future__ import annotations

import pytest

from examples.bookstore.mappings import registry
from examples.bookstore.tests.shelf import Shelf, stock_shelf
from mapper import Database
from mapper.testing import database_fixture

db = database_fixture(registry)


@pytest.fixture
async def shelf(db: Database) -> Shelf:
    """The small catalogue of `shelf.py`, stored in `db`."""
    return await stock_shelf(db)
