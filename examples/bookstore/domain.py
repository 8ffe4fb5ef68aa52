"""The bookstore's domain: plain attrs entities and the rules of the business.

Nothing here knows about storage; this module imports only the standard library and attrs,
so the rules can be tested without a database. `mappings.py` maps these classes to tables
from the outside, and `services.py` calls the rules inside units of work.

Entities refer to each other by key (`Book.author_id`, `OrderLine.order_id`) because the
mapper's relations (ManyToOne, ...) are not available yet.
"""

from __future__ import annotations

import datetime as dt
import decimal
import enum
import uuid
from collections.abc import Iterable, Mapping

import attrs

__all__ = [
    "Author",
    "Book",
    "Customer",
    "Dimensions",
    "DomainError",
    "Order",
    "OrderLine",
    "OrderStatus",
    "OutOfStock",
    "Stock",
    "discounted",
    "is_valid_isbn13",
    "isbn13",
    "normalize_email",
    "normalize_isbn",
    "order_lines",
    "order_total",
]

CENT = decimal.Decimal("0.01")


class DomainError(Exception):
    """A business rule refused the request."""


class OutOfStock(DomainError):
    """Fewer copies on hand than were asked for."""

    def __init__(self, isbn: str, wanted: int, on_hand: int) -> None:
        self.isbn = isbn
        self.wanted = wanted
        self.on_hand = on_hand
        super().__init__(f"{isbn}: {wanted} wanted, {on_hand} on hand")


class OrderStatus(enum.Enum):
    PLACED = "placed"
    SHIPPED = "shipped"


@attrs.frozen
class Dimensions:
    """A value object: the printed book's size in millimetres (stored as one JSON value)."""

    height: int
    width: int
    depth: int


@attrs.define
class Author:
    name: str
    born: dt.date | None = None
    id: int | None = None


@attrs.define
class Book:
    """A title in the catalogue, identified by its ISBN-13 (a natural key)."""

    isbn: str
    title: str
    author_id: int
    price: decimal.Decimal
    published: dt.date
    genres: list[str] = attrs.Factory(list)
    dimensions: Dimensions | None = None


@attrs.define
class Customer:
    name: str
    email: str
    created_at: dt.datetime
    id: uuid.UUID | None = None


@attrs.define
class Order:
    customer_id: uuid.UUID
    placed_at: dt.datetime
    total: decimal.Decimal = decimal.Decimal("0.00")
    status: OrderStatus = OrderStatus.PLACED
    id: int | None = None


@attrs.define
class OrderLine:
    """One line of an order; (order_id, line_no) is its key."""

    order_id: int
    line_no: int
    isbn: str
    quantity: int
    unit_price: decimal.Decimal

    @property
    def amount(self) -> decimal.Decimal:
        return self.unit_price * self.quantity


@attrs.define
class Stock:
    """Copies on hand of one book. Two clerks may sell the same copies, hence `version`."""

    isbn: str
    on_hand: int
    version: int = 0

    def take(self, quantity: int) -> None:
        if quantity < 1:
            raise DomainError(f"{self.isbn}: cannot take {quantity} copies")
        if quantity > self.on_hand:
            raise OutOfStock(self.isbn, quantity, self.on_hand)
        self.on_hand -= quantity

    def put_back(self, quantity: int) -> None:
        self.on_hand += quantity


def normalize_isbn(text: str) -> str:
    """The 13 digits of an ISBN written with hyphens or spaces ("978-0-306-40615-7")."""
    return "".join(ch for ch in text if ch.isdigit())


def _check_digit(first12: str) -> str:
    total = sum(int(d) * (3 if i % 2 else 1) for i, d in enumerate(first12))
    return str((10 - total % 10) % 10)


def isbn13(serial: int, prefix: str = "978") -> str:
    """A valid ISBN-13 made of `prefix`, a 9-digit serial and the check digit."""
    first12 = f"{prefix}{serial:09d}"
    return first12 + _check_digit(first12)


def is_valid_isbn13(text: str) -> bool:
    digits = normalize_isbn(text)
    return len(digits) == 13 and _check_digit(digits[:12]) == digits[12]


def normalize_email(email: str) -> str:
    return email.strip().lower()


def discounted(price: decimal.Decimal, percent: int) -> decimal.Decimal:
    """`price` less `percent` per cent, rounded half-up to the cent."""
    factor = decimal.Decimal(100 - percent) / 100
    return (price * factor).quantize(CENT, rounding=decimal.ROUND_HALF_UP)


def order_total(books: Iterable[Book], quantities: Mapping[str, int]) -> decimal.Decimal:
    """What `quantities` (copies per ISBN) of `books` cost at today's prices."""
    return sum((book.price * quantities[book.isbn] for book in books), decimal.Decimal("0.00"))


def order_lines(
    order: Order, books: Iterable[Book], quantities: Mapping[str, int]
) -> list[OrderLine]:
    """The lines of `order` at today's prices, numbered from 1 in the order of `books`.

    The order must already have its key: lines refer to it by `order_id`.
    """
    if order.id is None:
        raise DomainError("the order has no id yet; store it before adding its lines")
    return [
        OrderLine(order.id, number, book.isbn, quantities[book.isbn], book.price)
        for number, book in enumerate(books, start=1)
    ]
