"""The custom repositories' queries, asked directly through a unit of work."""

from __future__ import annotations

import datetime as dt
import decimal

from examples.bookstore import services
from examples.bookstore.domain import Book, isbn13
from examples.bookstore.mappings import registry
from examples.bookstore.repositories import (
    BookRepository,
    CustomerRepository,
    OrderLineRepository,
    StockRepository,
)
from examples.bookstore.tests.shelf import MORNING, Shelf
from mapper import Database, UnitOfWork


class TestBookRepository:
    async def test_by_author_lists_newest_first(self, db: Database, shelf: Shelf) -> None:
        """An author's books come newest first."""
        async with UnitOfWork(db, registry) as uow:
            books = await uow.repository(BookRepository).by_author(shelf.authors["le guin"])
        assert [book.title for book in books] == [
            "The Dispossessed",
            "The Left Hand of Darkness",
            "A Wizard of Earthsea",
        ]

    async def test_by_author_stops_at_the_limit(self, db: Database, shelf: Shelf) -> None:
        """`limit` keeps the newest books only."""
        async with UnitOfWork(db, registry) as uow:
            books = await uow.repository(BookRepository).by_author(
                shelf.authors["le guin"], limit=1
            )
        assert [book.title for book in books] == ["The Dispossessed"]

    async def test_first_titled_ignores_case(self, db: Database, shelf: Shelf) -> None:
        """Searching for DARKNESS finds "The Left Hand of Darkness"."""
        async with UnitOfWork(db, registry) as uow:
            book = await uow.repository(BookRepository).first_titled("DARKNESS")
        assert book is not None
        assert book.isbn == shelf.isbns["darkness"]

    async def test_first_titled_takes_wildcards_literally(self, db: Database, shelf: Shelf) -> None:
        """A % in the search words matches a % in the title, not any text."""
        author = shelf.authors["butler"]
        titles = ["100 Stories", "100% Butler"]
        books = [
            Book(isbn13(100 + n), title, author, decimal.Decimal("5.00"), dt.date(2020, 1, 1))
            for n, title in enumerate(titles)
        ]
        await services.import_feed(db, services.Feed(books=books))
        async with UnitOfWork(db, registry) as uow:
            book = await uow.repository(BookRepository).first_titled("0%")
        assert book is not None
        assert book.title == "100% Butler"

    async def test_cheapest_lists_recent_books_under_a_price(
        self, db: Database, shelf: Shelf
    ) -> None:
        """Books since a date and under a price, cheapest first."""
        async with UnitOfWork(db, registry) as uow:
            books = await uow.repository(BookRepository).cheapest(
                published_since=dt.date(1969, 1, 1), under=decimal.Decimal("13.00"), limit=5
            )
        assert [book.title for book in books] == ["Kindred", "The Left Hand of Darkness"]


class TestStockRepository:
    async def test_running_low_lists_fewest_copies_first(self, db: Database, shelf: Shelf) -> None:
        """Only books under the threshold, fewest copies first."""
        wizard, kindred = shelf.isbns["wizard"], shelf.isbns["kindred"]
        await services.place_order(db, shelf.customer, {wizard: 4, kindred: 2}, MORNING)
        async with UnitOfWork(db, registry) as uow:
            low = await uow.repository(StockRepository).running_low(threshold=4)
        assert [(stock.isbn, stock.on_hand) for stock in low] == [(wizard, 1), (kindred, 3)]


class TestCustomerRepository:
    async def test_by_email_ignores_case_and_spaces(self, db: Database, shelf: Shelf) -> None:
        """An email typed with capitals and spaces finds the customer."""
        async with UnitOfWork(db, registry) as uow:
            customer = await uow.repository(CustomerRepository).by_email(" Ann@Example.COM ")
        assert customer is not None
        assert customer.name == "Ann"

    async def test_by_email_of_a_stranger_is_none(self, db: Database, shelf: Shelf) -> None:
        """An unknown email finds nobody."""
        async with UnitOfWork(db, registry) as uow:
            assert await uow.repository(CustomerRepository).by_email("zoe@example.com") is None


class TestOrderLineRepository:
    async def test_of_order_lists_the_lines_in_order(self, db: Database, shelf: Shelf) -> None:
        """An order's lines come back numbered from 1, in the order they were asked for."""
        wanted = {shelf.isbns["kindred"]: 1, shelf.isbns["wizard"]: 2}
        receipt = await services.place_order(db, shelf.customer, wanted, MORNING)
        async with UnitOfWork(db, registry) as uow:
            lines = await uow.repository(OrderLineRepository).of_order(receipt.order_id)
        assert [(line.line_no, line.isbn, line.quantity) for line in lines] == [
            (1, shelf.isbns["kindred"], 1),
            (2, shelf.isbns["wizard"], 2),
        ]
