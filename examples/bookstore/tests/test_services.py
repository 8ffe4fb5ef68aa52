"""The bookstore's use cases, called as the shop calls them, checked through what they store."""

from __future__ import annotations

import datetime as dt
import decimal

import pytest

from examples.bookstore import services
from examples.bookstore.domain import (
    Author,
    Book,
    Customer,
    DomainError,
    Order,
    OrderStatus,
    OutOfStock,
    Stock,
    isbn13,
)
from examples.bookstore.mappings import registry
from examples.bookstore.repositories import StockRepository
from examples.bookstore.tests.shelf import COPIES, MORNING, Shelf
from mapper import Database, IntegrityError, StaleEntityError, UnitOfWork, ValidationError

NEW_ISBN = isbn13(900_001)


def _book(isbn: str, author_id: int) -> Book:
    return Book(isbn, "Lilith's Brood", author_id, decimal.Decimal("18.00"), dt.date(2000, 1, 1))


async def _on_hand(db: Database, isbn: str) -> int:
    async with UnitOfWork(db, registry) as uow:
        return (await uow.repository(Stock).get(isbn)).on_hand


class TestAddAuthors:
    async def test_returns_the_generated_ids_in_order(self, db: Database) -> None:
        """Each author gets a new key, in the order the authors were given."""
        authors = [Author("Mary Shelley"), Author("Frank Herbert")]
        ids = await services.add_authors(db, authors)
        assert ids == [author.id for author in authors]
        assert len(set(ids)) == 2


class TestImportFeed:
    async def test_stores_each_book_with_its_stock(self, db: Database, shelf: Shelf) -> None:
        """A feed's books are stored with `copies` copies each."""
        feed = services.Feed(books=[_book(NEW_ISBN, shelf.authors["butler"])], copies=3)
        assert await services.import_feed(db, feed) == 1
        assert await _on_hand(db, NEW_ISBN) == 3

    async def test_refuses_a_wrong_check_digit(self, db: Database, shelf: Shelf) -> None:
        """A bad ISBN refuses the whole feed before anything is stored."""
        wrong = NEW_ISBN[:-1] + str((int(NEW_ISBN[-1]) + 1) % 10)
        books = [_book(NEW_ISBN, shelf.authors["butler"]), _book(wrong, shelf.authors["butler"])]
        with pytest.raises(DomainError, match=wrong):
            await services.import_feed(db, services.Feed(books=books))
        totals = await services.store_totals(db, [])
        assert totals.books == len(shelf.isbns)

    async def test_refuses_a_naive_timestamp(self, db: Database, shelf: Shelf) -> None:
        """A customer without a time zone fails validation, and the feed's book is not stored."""
        naive = Customer("Cleo", "cleo@example.com", dt.datetime(2024, 5, 1, 17, 45))
        feed = services.Feed([_book(NEW_ISBN, shelf.authors["butler"])], [naive])
        with pytest.raises(ValidationError) as refused:
            await services.import_feed(db, feed)
        assert [(v.entity, v.attribute) for v in refused.value.violations] == [
            ("Customer", "created_at")
        ]
        assert (await services.store_totals(db, [])).books == len(shelf.isbns)


class TestRegisterCustomer:
    async def test_stores_the_email_normalized(self, db: Database) -> None:
        """Spaces and capitals are taken out of the email."""
        customer = await services.register_customer(db, "Bob", " Bob@Example.COM", MORNING)
        assert customer.email == "bob@example.com"
        assert customer.id is not None

    async def test_refuses_a_taken_email(self, db: Database, shelf: Shelf) -> None:
        """A second customer with Ann's email is an IntegrityError on Customer.email."""
        with pytest.raises(IntegrityError) as refused:
            await services.register_customer(db, "Ann again", "ANN@example.com", MORNING)
        assert (refused.value.entity, refused.value.attribute) == ("Customer", "email")


class TestPlaceOrder:
    async def test_takes_the_copies_from_stock(self, db: Database, shelf: Shelf) -> None:
        """Ordering two copies leaves COPIES - 2 on hand."""
        wizard = shelf.isbns["wizard"]
        await services.place_order(db, shelf.customer, {wizard: 2}, MORNING)
        assert await _on_hand(db, wizard) == COPIES - 2

    async def test_charges_todays_prices(self, db: Database, shelf: Shelf) -> None:
        """The receipt totals price times quantity over every line."""
        wanted = {shelf.isbns["wizard"]: 2, shelf.isbns["kindred"]: 1}
        receipt = await services.place_order(db, shelf.customer, wanted, MORNING)
        assert receipt.lines == 2
        assert receipt.total == decimal.Decimal("9.99") * 2 + decimal.Decimal("10.49")

    async def test_out_of_stock_writes_nothing(self, db: Database, shelf: Shelf) -> None:
        """Asking for more copies than there are stores no order and takes no copies."""
        wanted = {shelf.isbns["wizard"]: 1, shelf.isbns["kindred"]: COPIES + 1}
        with pytest.raises(OutOfStock):
            await services.place_order(db, shelf.customer, wanted, MORNING)
        totals = await services.store_totals(db, list(wanted))
        assert totals.orders == 0
        assert totals.on_hand == {isbn: COPIES for isbn in wanted}

    async def test_refuses_an_unknown_customer(self, db: Database, shelf: Shelf) -> None:
        """Only registered customers can order."""
        with pytest.raises(DomainError, match=r"zoe@example\.com"):
            await services.place_order(db, "zoe@example.com", {shelf.isbns["wizard"]: 1}, MORNING)

    async def test_refuses_a_book_not_in_the_catalogue(self, db: Database, shelf: Shelf) -> None:
        """An ISBN the shop does not carry is named in the error."""
        with pytest.raises(DomainError, match=NEW_ISBN):
            await services.place_order(db, shelf.customer, {NEW_ISBN: 1}, MORNING)

    async def test_a_sale_in_between_makes_a_stale_write_fail(
        self, db: Database, shelf: Shelf
    ) -> None:
        """Changing stock that another sale changed since it was read is a StaleEntityError."""
        wizard = shelf.isbns["wizard"]
        with pytest.raises(StaleEntityError):
            async with UnitOfWork(db, registry) as uow:
                stock = await uow.repository(StockRepository).get(wizard)
                await services.place_order(db, shelf.customer, {wizard: 1}, MORNING)
                stock.take(2)
        assert await _on_hand(db, wizard) == COPIES - 1


class TestRunPromotion:
    async def test_discounts_every_book_of_the_author(self, db: Database, shelf: Shelf) -> None:
        """20% off each of Le Guin's three books, and nothing off Butler's."""
        result = await services.run_promotion(db, shelf.authors["le guin"], 20, dt.date(1900, 1, 1))
        assert result.discounted == 3
        async with UnitOfWork(db, registry) as uow:
            books = await uow.repository(Book).get_many(
                [shelf.isbns["wizard"], shelf.isbns["kindred"]]
            )
        assert [book.price for book in books] == [
            decimal.Decimal("7.99"),
            decimal.Decimal("10.49"),
        ]

    async def test_tags_old_books_classic_once(self, db: Database, shelf: Shelf) -> None:
        """Books published before the date are tagged "classic", and not again next time."""
        le_guin, before = shelf.authors["le guin"], dt.date(1970, 1, 1)
        first = await services.run_promotion(db, le_guin, 10, before)
        second = await services.run_promotion(db, le_guin, 10, before)
        assert (first.tagged, second.tagged) == (2, 0)

    async def test_plans_one_update_per_changed_column_set(
        self, db: Database, shelf: Shelf
    ) -> None:
        """Price-only and price-and-genres changes are two update batches of books."""
        result = await services.run_promotion(db, shelf.authors["le guin"], 20, dt.date(1970, 1, 1))
        writes = [batch for batch in result.plan if batch.operation != "lock"]
        assert sorted((b.operation, b.table, b.rows) for b in writes) == [
            ("update", "books", 1),
            ("update", "books", 2),
        ]


class TestCancelOrder:
    async def test_restocks_and_removes_the_order(self, db: Database, shelf: Shelf) -> None:
        """Cancelling puts the copies back and deletes the order with its lines."""
        wanted = {shelf.isbns["wizard"]: 2, shelf.isbns["kindred"]: 1}
        receipt = await services.place_order(db, shelf.customer, wanted, MORNING)
        cancelled = await services.cancel_order(db, receipt.order_id)
        assert (cancelled.lines_removed, cancelled.copies_restocked) == (2, 3)
        totals = await services.store_totals(db, list(wanted))
        assert (totals.orders, totals.order_lines) == (0, 0)
        assert totals.on_hand == {isbn: COPIES for isbn in wanted}

    async def test_refuses_a_shipped_order(self, db: Database, shelf: Shelf) -> None:
        """A shipped order stays, with its lines."""
        receipt = await services.place_order(
            db, shelf.customer, {shelf.isbns["wizard"]: 1}, MORNING
        )
        async with UnitOfWork(db, registry) as uow:
            (await uow.repository(Order).get(receipt.order_id)).status = OrderStatus.SHIPPED
        with pytest.raises(DomainError, match="shipped"):
            await services.cancel_order(db, receipt.order_id)
        assert (await services.store_totals(db, [])).order_lines == 1


class TestStoreTotals:
    async def test_counts_rows_and_copies(self, db: Database, shelf: Shelf) -> None:
        """Books, customers and every copy in stock are counted."""
        totals = await services.store_totals(db, [shelf.isbns["kindred"]])
        assert (totals.books, totals.customers, totals.orders) == (4, 1, 0)
        assert totals.copies == 4 * COPIES
        assert totals.on_hand == {shelf.isbns["kindred"]: COPIES}
