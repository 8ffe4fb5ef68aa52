"""Use cases of the bookstore: each runs in one unit of work and returns what it did.

A use case takes the open `Database`, opens one `UnitOfWork` (committed on a clean exit of
its `async with`, rolled back on an exception), works through repositories and the domain
rules, and returns plain values that callers can print or check. The scenario in
`__main__.py` and the integration test call them.
"""

from __future__ import annotations

import collections
import datetime as dt
import decimal
from collections.abc import Mapping, Sequence

import attrs

from examples.bookstore.domain import (
    Author,
    Book,
    Customer,
    DomainError,
    Order,
    OrderStatus,
    Stock,
    discounted,
    is_valid_isbn13,
    normalize_email,
    order_lines,
    order_total,
)
from examples.bookstore.mappings import BookMap, registry
from examples.bookstore.repositories import (
    BookRepository,
    CustomerRepository,
    OrderLineRepository,
    StockRepository,
)
from mapper import Database, PlannedBatch, UnitOfWork

__all__ = [
    "CatalogueReport",
    "Feed",
    "OrderCancelled",
    "PromotionResult",
    "Receipt",
    "Totals",
    "add_authors",
    "cancel_order",
    "catalogue_report",
    "import_feed",
    "place_order",
    "register_customer",
    "reset_schema",
    "run_promotion",
    "store_totals",
]


@attrs.frozen
class Feed:
    """A delivery from a partner: new titles (each with `copies` in stock) and customers."""

    books: Sequence[Book] = ()
    customers: Sequence[Customer] = ()
    copies: int = 10


@attrs.frozen
class Receipt:
    order_id: int
    lines: int
    total: decimal.Decimal


@attrs.frozen
class PromotionResult:
    discounted: int
    tagged: int
    plan: list[PlannedBatch]
    """The batches the commit ran, as `uow.plan()` showed them just before."""


@attrs.frozen
class OrderCancelled:
    order_id: int
    lines_removed: int
    copies_restocked: int
    plan: list[PlannedBatch]


@attrs.frozen
class CatalogueReport:
    """What the read-only queries of `catalogue_report` found."""

    book: Book
    fetched: list[str]
    by_author: list[str]
    cheapest: list[tuple[str, decimal.Decimal]]
    first_match: str | None
    books: int
    under_ten: int
    has_pre_1900: bool
    streamed: int
    genres: dict[str, int]
    running_low: list[tuple[str, int]]


@attrs.frozen
class Totals:
    books: int
    customers: int
    orders: int
    order_lines: int
    copies: int
    on_hand: dict[str, int]
    """Copies on hand of the books asked about."""


async def reset_schema(db: Database) -> list[str]:
    """Drop the bookstore's tables if they exist and create them empty; return their names."""
    await db.drop_all(registry)
    await db.create_all(registry)
    return [meta.table for meta in registry.table_order()]


async def add_authors(db: Database, authors: Sequence[Author]) -> list[int]:
    """Store new authors; return their generated ids, in the order given."""
    async with UnitOfWork(db, registry) as uow:
        uow.repository(Author).add_all(authors)
    # The commit's flush wrote the generated keys into the entities.
    return [author.id for author in authors if author.id is not None]


async def import_feed(db: Database, feed: Feed) -> int:
    """Store a feed's books (with their stock) and customers in one flush; return the books.

    Bad values (an ISBN longer than its column, a naive timestamp) make the mapper raise
    `mapper.ValidationError` before any SQL runs, so nothing of the feed is stored.
    """
    wrong = [book.isbn for book in feed.books if not is_valid_isbn13(book.isbn)]
    if wrong:
        raise DomainError(f"not ISBN-13s (check digit): {', '.join(wrong)}")
    async with UnitOfWork(db, registry) as uow:
        uow.repository(Book).add_all(feed.books)
        uow.repository(Stock).add_all(Stock(book.isbn, feed.copies) for book in feed.books)
        for customer in feed.customers:
            customer.email = normalize_email(customer.email)
        uow.repository(Customer).add_all(feed.customers)
    return len(feed.books)


async def register_customer(
    db: Database, name: str, email: str, created_at: dt.datetime
) -> Customer:
    """Sign up a customer; `mapper.IntegrityError` if the email is taken."""
    async with UnitOfWork(db, registry) as uow:
        customer = Customer(name, normalize_email(email), created_at)
        uow.repository(Customer).add(customer)
    return customer


async def place_order(
    db: Database, email: str, quantities: Mapping[str, int], placed_at: dt.datetime
) -> Receipt:
    """Order copies of books (ISBN -> quantity) for a customer, taking them from stock.

    Raises `OutOfStock` (nothing is written) when there are not enough copies, and
    `mapper.StaleEntityError` when another unit of work changed the same stock rows first.
    """
    async with UnitOfWork(db, registry) as uow:
        customer = await uow.repository(CustomerRepository).by_email(email)
        if customer is None or customer.id is None:
            raise DomainError(f"no customer with email {email!r}")
        books = await uow.repository(BookRepository).get_many(quantities)
        if len(books) != len(quantities):
            missing = set(quantities) - {book.isbn for book in books}
            raise DomainError(f"not in the catalogue: {', '.join(sorted(missing))}")
        for stock in await uow.repository(StockRepository).get_many(quantities):
            stock.take(quantities[stock.isbn])
        order = Order(customer.id, placed_at, total=order_total(books, quantities))
        uow.repository(Order).add(order)
        # Lines refer to the order by key, and the key is generated by the database: flush
        # the order first (relations, which would do this by themselves, come later).
        await uow.flush()
        lines = order_lines(order, books, quantities)
        uow.repository(OrderLineRepository).add_all(lines)
    if order.id is None:  # pragma: no cover - the flush above set it
        raise DomainError("the order was stored without an id")
    return Receipt(order.id, len(lines), order.total)


async def run_promotion(
    db: Database, author_id: int, percent: int, classic_before: dt.date
) -> PromotionResult:
    """Take `percent` off every book of an author; tag the old ones "classic" too.

    Nothing is saved explicitly: the unit of work notices the changed attributes at flush
    and writes one UPDATE per set of changed columns (price; price and genres).
    """
    async with UnitOfWork(db, registry) as uow:
        books = await uow.repository(BookRepository).by_author(author_id)
        tagged = 0
        for book in books:
            book.price = discounted(book.price, percent)
            if book.published < classic_before and "classic" not in book.genres:
                book.genres.append("classic")  # in-place changes to JSON values count too
                tagged += 1
        plan = uow.plan()
    return PromotionResult(len(books), tagged, plan)


async def cancel_order(db: Database, order_id: int) -> OrderCancelled:
    """Delete an order that has not shipped and its lines, and put the copies back."""
    async with UnitOfWork(db, registry) as uow:
        orders = uow.repository(Order)
        order = await orders.get(order_id)
        if order.status is not OrderStatus.PLACED:
            raise DomainError(f"order {order_id} is {order.status.value}; it cannot be cancelled")
        line_repository = uow.repository(OrderLineRepository)
        lines = await line_repository.of_order(order_id)
        stock = {
            s.isbn: s
            for s in await uow.repository(StockRepository).get_many(line.isbn for line in lines)
        }
        for line in lines:
            stock[line.isbn].put_back(line.quantity)
            line_repository.remove(line)
        orders.remove(order)
        plan = uow.plan()
    return OrderCancelled(order_id, len(lines), sum(line.quantity for line in lines), plan)


async def catalogue_report(
    db: Database, isbns: Sequence[str], author_id: int, search: str
) -> CatalogueReport:
    """Read-only questions about the catalogue, answered by the repositories' queries."""
    async with UnitOfWork(db, registry) as uow:
        books = uow.repository(BookRepository)
        book = await books.get(isbns[0])
        fetched = await books.get_many([*isbns, "0000000000000"])  # an unknown ISBN is left out
        by_author = await books.by_author(author_id, limit=3)
        cheapest = await books.cheapest(
            published_since=dt.date(2000, 1, 1), under=decimal.Decimal("10.00"), limit=3
        )
        first = await books.first_titled(search)
        total = await books.count()
        under_ten = await books.count(BookMap.price < decimal.Decimal("10.00"))
        has_pre_1900 = await books.exists(BookMap.published < dt.date(1900, 1, 1))
        genres: collections.Counter[str] = collections.Counter()
        streamed = 0
        # Rows arrive 100 at a time and are not tracked: memory stays flat for any catalogue.
        async for each in books.stream(order_by=BookMap.isbn, chunk_size=100):
            streamed += 1
            genres.update(each.genres)
        low = await uow.repository(StockRepository).running_low(threshold=5)
    return CatalogueReport(
        book=book,
        fetched=[b.isbn for b in fetched],
        by_author=[b.title for b in by_author],
        cheapest=[(b.title, b.price) for b in cheapest],
        first_match=None if first is None else first.title,
        books=total,
        under_ten=under_ten,
        has_pre_1900=has_pre_1900,
        streamed=streamed,
        genres=dict(genres.most_common()),
        running_low=[(s.isbn, s.on_hand) for s in low],
    )


async def store_totals(db: Database, isbns: Sequence[str]) -> Totals:
    """How many rows each table holds, all copies in stock, and the stock of `isbns`."""
    async with UnitOfWork(db, registry) as uow:
        stock = uow.repository(StockRepository)
        copies = 0
        async for row in stock.stream(chunk_size=250):
            copies += row.on_hand
        return Totals(
            books=await uow.repository(Book).count(),
            customers=await uow.repository(Customer).count(),
            orders=await uow.repository(Order).count(),
            order_lines=await uow.repository(OrderLineRepository).count(),
            copies=copies,
            on_hand={s.isbn: s.on_hand for s in await stock.get_many(isbns)},
        )
