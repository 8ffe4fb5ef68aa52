"""The small catalogue most tests start from, stored through the bookstore's services.

`stock_shelf(db)` is what the `shelf` fixture of `conftest.py` runs; tests import `Shelf` and
`MORNING` from here for their annotations and timestamps.
"""

from __future__ import annotations

import datetime as dt
import decimal

import attrs

from examples.bookstore import services
from examples.bookstore.domain import Author, Book, isbn13
from mapper import Database

__all__ = ["COPIES", "MORNING", "Shelf", "stock_shelf"]

MORNING = dt.datetime(2024, 5, 6, 9, 0, tzinfo=dt.UTC)
COPIES = 5

# short name, title, author, price, published
_BOOKS = [
    ("wizard", "A Wizard of Earthsea", "le guin", "9.99", dt.date(1968, 11, 1)),
    ("darkness", "The Left Hand of Darkness", "le guin", "12.50", dt.date(1969, 3, 1)),
    ("dispossessed", "The Dispossessed", "le guin", "13.99", dt.date(1974, 5, 1)),
    ("kindred", "Kindred", "butler", "10.49", dt.date(1979, 6, 1)),
]


@attrs.frozen
class Shelf:
    """What `stock_shelf` stored: author ids and ISBNs by short name, the customer's email."""

    authors: dict[str, int]
    isbns: dict[str, str]
    customer: str


async def stock_shelf(db: Database) -> Shelf:
    """Two authors, four books with COPIES copies each, and one customer, Ann."""
    le_guin, butler = await services.add_authors(
        db, [Author("Ursula K. Le Guin"), Author("Octavia E. Butler")]
    )
    authors = {"le guin": le_guin, "butler": butler}
    isbns = {name: isbn13(serial) for serial, (name, *_) in enumerate(_BOOKS, start=1)}
    books = [
        Book(isbns[name], title, authors[author], decimal.Decimal(price), published)
        for name, title, author, price, published in _BOOKS
    ]
    await services.import_feed(db, services.Feed(books=books, copies=COPIES))
    customer = await services.register_customer(db, "Ann", "ann@example.com", MORNING)
    return Shelf(authors, isbns, customer.email)
