"""Custom repositories: the bookstore's named queries, written with the neutral API only.

Each class subclasses `mapper.Repository[Entity]` and builds criteria from the mapping
columns, so the same code runs on SQLite, PostgreSQL or any other backend. Importing this
module registers them on `mappings.registry`, so `uow.repository(Book)` hands out a
`BookRepository`; `uow.repository(BookRepository)` gives the same class, typed as such.

Called by `services.py`.
"""

from __future__ import annotations

import datetime as dt
import decimal

from examples.bookstore.domain import Book, Customer, OrderLine, Stock, normalize_email
from examples.bookstore.mappings import (
    BookMap,
    CustomerMap,
    OrderLineMap,
    StockMap,
    registry,
)
from mapper import Repository

__all__ = ["BookRepository", "CustomerRepository", "OrderLineRepository", "StockRepository"]


def _like_literal(text: str) -> str:
    """`text` with LIKE's wildcards escaped, so it matches only itself."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


class BookRepository(Repository[Book]):
    """The catalogue."""

    async def by_author(self, author_id: int, *, limit: int | None = None) -> list[Book]:
        """The author's books, newest first."""
        return await self.find(
            BookMap.author_id == author_id,
            order_by=[BookMap.published.desc(), BookMap.isbn],
            limit=limit,
        )

    async def first_titled(self, words: str) -> Book | None:
        """The first book by title whose title contains `words`, ignoring case."""
        return await self.first(
            BookMap.title.ilike(f"%{_like_literal(words)}%"), order_by=BookMap.title
        )

    async def cheapest(
        self, *, published_since: dt.date, under: decimal.Decimal, limit: int
    ) -> list[Book]:
        """The cheapest recent books below a price, cheapest first (ties by ISBN)."""
        return await self.find(
            BookMap.published >= published_since,
            BookMap.price < under,
            order_by=[BookMap.price, BookMap.isbn],
            limit=limit,
        )


class StockRepository(Repository[Stock]):
    """Copies on hand, one row per book."""

    async def running_low(self, threshold: int) -> list[Stock]:
        """Books with fewer than `threshold` copies, fewest first."""
        return await self.find(
            StockMap.on_hand < threshold, order_by=[StockMap.on_hand, StockMap.isbn]
        )


class CustomerRepository(Repository[Customer]):
    async def by_email(self, email: str) -> Customer | None:
        return await self.first(CustomerMap.email == normalize_email(email))


class OrderLineRepository(Repository[OrderLine]):
    async def of_order(self, order_id: int) -> list[OrderLine]:
        return await self.find(OrderLineMap.order_id == order_id, order_by=OrderLineMap.line_no)


registry.repository(Book, BookRepository)
registry.repository(Stock, StockRepository)
registry.repository(Customer, CustomerRepository)
registry.repository(OrderLine, OrderLineRepository)
