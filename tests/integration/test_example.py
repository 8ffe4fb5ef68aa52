"""The bookstore example (`python -m examples.bookstore`) on every backend under test.

The scenario runs once per backend (its `main()` coroutine, not a subprocess); the tests check
the `Summary` it returns and then read the database it left behind with a fresh connection.
"""

from __future__ import annotations

import asyncio
import decimal

import pytest

from examples.bookstore.__main__ import IMPORTED_BOOKS, Summary, main
from examples.bookstore.domain import Book, OrderLine, Stock, isbn13
from examples.bookstore.mappings import BookMap, registry
from examples.bookstore.repositories import BookRepository
from mapper import UnitOfWork, connect
from tests.integration.conftest import backend_url

DUNE = isbn13(6)
WIZARD = isbn13(3)
CLASSICS = 7


class Run:
    def __init__(self, url: str, summary: Summary, output: list[str]) -> None:
        self.url = url
        self.summary = summary
        self.output = output


@pytest.fixture(scope="module")
def run(backend: str, tmp_path_factory: pytest.TempPathFactory) -> Run:
    """The scenario, run once per backend; its database stays for the tests to read."""
    url = backend_url(backend, tmp_path_factory.mktemp("bookstore"))
    if url == "memory://":
        url = "memory://bookstore-example"  # a named memory database outlives its connection
    output: list[str] = []
    summary = asyncio.run(main(url, echo=output.append))
    return Run(url, summary, output)


def test_scenario_prints_every_step(run: Run) -> None:
    """Each numbered step of the scenario prints a line."""
    numbered = [line.split(".")[0] for line in run.output if line[:1].isdigit()]
    assert numbered == [str(step) for step in range(1, 13)]


def test_schema_is_recreated_parents_first(run: Run) -> None:
    """create_all makes every table, each after the tables its foreign keys point at."""
    tables = run.summary.tables
    assert set(tables) == {"authors", "books", "customers", "orders", "order_lines", "stock"}
    assert tables.index("authors") < tables.index("books") < tables.index("stock")
    assert tables.index("orders") < tables.index("order_lines")


def test_generated_author_keys_come_back(run: Run) -> None:
    """add_all of five authors writes five generated keys into the entities."""
    ids = run.summary.author_ids
    assert len(ids) == 5
    assert len(set(ids)) == 5


def test_import_of_500_books_takes_four_statements(run: Run) -> None:
    """500 books and their 500 stock rows go in one insert per table, in one transaction."""
    assert run.summary.import_statements == {"begin": 1, "insert": 2, "commit": 1}


def test_bad_values_are_refused_before_any_sql(run: Run) -> None:
    """A too-long ISBN (book and stock) and a naive timestamp fail together, with no SQL."""
    assert run.summary.validation_errors == ["Book.isbn", "Stock.isbn", "Customer.created_at"]
    assert run.summary.validation_statements == 0


def test_duplicate_email_names_the_attribute(run: Run) -> None:
    """A second customer with a taken email is an IntegrityError on Customer.email."""
    assert run.summary.duplicate_email == "Customer.email"


def test_queries_answer_from_the_catalogue(run: Run) -> None:
    """get, get_many, find, first, count, exists and stream see the stored books."""
    report = run.summary.report
    books = IMPORTED_BOOKS + CLASSICS + 1
    assert report.book.title == "Dune"
    assert report.book.dimensions is not None
    assert report.book.dimensions.height == 178
    assert report.fetched == [DUNE, WIZARD, isbn13(1)]
    assert report.by_author == [
        "The Dispossessed",
        "The Left Hand of Darkness",
        "A Wizard of Earthsea",
    ]
    assert [price for _, price in report.cheapest] == sorted(p for _, p in report.cheapest)
    assert all(price < decimal.Decimal("10.00") for _, price in report.cheapest)
    assert len(report.cheapest) == 3
    assert report.first_match == "The Left Hand of Darkness"
    assert report.books == report.streamed == books
    assert 0 < report.under_ten < books
    assert report.has_pre_1900 is True
    assert sum(report.genres.values()) >= books


def test_promotion_writes_one_update_per_changed_column_set(run: Run) -> None:
    """Price-only and price-and-genres changes are two update batches of books."""
    promotion = run.summary.promotion
    assert (promotion.discounted, promotion.tagged) == (3, 2)
    writes = [b for b in promotion.plan if b.operation != "lock"]  # row locks: PostgreSQL
    assert sorted((b.operation, b.table, b.rows) for b in writes) == [
        ("update", "books", 1),
        ("update", "books", 2),
    ]
    assert all(batch.sql for batch in promotion.plan)


def test_stale_write_is_retried_by_db_run(run: Run) -> None:
    """The write-off loses to a concurrent sale once, then succeeds on db.run's retry."""
    assert run.summary.race == ["stale", "committed"]
    assert any("StaleEntityError" in line for line in run.output)


def test_cancel_deletes_lines_before_their_order(run: Run) -> None:
    """Cancelling restocks and removes the lines, then the order."""
    cancelled = run.summary.cancelled
    assert cancelled.order_id == run.summary.receipt.order_id
    assert (cancelled.lines_removed, cancelled.copies_restocked) == (2, 3)
    steps = [(b.operation, b.table) for b in cancelled.plan]
    assert ("update", "stock") in steps
    assert steps.index(("delete", "order_lines")) < steps.index(("delete", "orders"))


async def test_database_holds_what_the_scenario_reported(run: Run) -> None:
    """A fresh connection reads the final state: counts, stock, versions and prices."""
    db = await connect(run.url)
    async with db, UnitOfWork(db, registry) as uow:
        totals = run.summary.totals
        assert await uow.repository(Book).count() == totals.books == IMPORTED_BOOKS + 8
        assert await uow.repository(OrderLine).count() == totals.order_lines == 1
        # 6 copies, -1 (order), -1 (clerk A), -2 (clerk B's write-off), +1 (cancelled order)
        dune = await uow.repository(Stock).get(DUNE)
        assert dune.on_hand == totals.on_hand[DUNE] == 3
        assert dune.version == 5  # inserted as 1, then four committed updates
        books = uow.repository(Book)
        assert isinstance(books, BookRepository)  # registered on the registry
        wizard = await books.get(WIZARD)
        assert wizard.price == decimal.Decimal("7.99")  # 9.99 less 20%
        assert wizard.genres == ["fantasy", "classic"]
        assert not await books.exists(BookMap.isbn.like("%-%"))
