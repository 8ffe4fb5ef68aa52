"""How the bookstore's entities live in tables: one `EntityMap` per entity, and the registry.

The entities in `domain.py` stay plain; everything about tables, keys, column types and
foreign keys is said here. Imported by `repositories.py` (which registers the custom
repositories on `registry`), `services.py` and the scenario in `__main__.py`.
"""

from __future__ import annotations

from examples.bookstore.domain import (
    Author,
    Book,
    Customer,
    Dimensions,
    Order,
    OrderLine,
    OrderStatus,
    Stock,
)
from mapper import Column, EntityMap, Registry, uuid7
from mapper import types as t

__all__ = [
    "AuthorMap",
    "BookMap",
    "CustomerMap",
    "OrderLineMap",
    "OrderMap",
    "StockMap",
    "registry",
]

registry = Registry()


@registry.map
class AuthorMap(EntityMap[Author]):
    __table__ = "authors"
    id = Column(t.Integer(), primary_key=True, generated=True)
    name = Column(t.String(100), index=True)
    born = Column(t.Date())


@registry.map
class BookMap(EntityMap[Book]):
    __table__ = "books"
    # The ISBN is a natural key: known before the book is stored, so nothing is read back.
    isbn = Column(t.String(13), primary_key=True)
    title = Column(t.String(200), index=True)
    author_id = Column(t.Integer(), references=AuthorMap.id, index=True)
    price = Column(t.Decimal(8, 2))
    published = Column(t.Date())
    genres = Column(t.JSON(list[str]))
    dimensions = Column(t.JSON(Dimensions))


@registry.map
class CustomerMap(EntityMap[Customer]):
    __table__ = "customers"
    # Client-generated, time-ordered key: set at flush, without a round trip.
    id = Column(t.UUID(), primary_key=True, default=uuid7)
    name = Column(t.String(100))
    email = Column(t.String(255), unique=True)
    created_at = Column(t.DateTime(tz=True))


@registry.map
class OrderMap(EntityMap[Order]):
    __table__ = "orders"
    id = Column(t.Integer(), primary_key=True, generated=True)
    customer_id = Column(t.UUID(), references=CustomerMap.id, index=True)
    placed_at = Column(t.DateTime(tz=True))
    total = Column(t.Decimal(10, 2))
    status = Column(t.Enum(OrderStatus))


@registry.map
class OrderLineMap(EntityMap[OrderLine]):
    __table__ = "order_lines"
    order_id = Column(t.Integer(), primary_key=True, references=OrderMap.id)
    line_no = Column(t.SmallInteger(), primary_key=True)
    isbn = Column(t.String(13), references=BookMap.isbn, index=True)
    quantity = Column(t.Integer())
    unit_price = Column(t.Decimal(8, 2))


@registry.map
class StockMap(EntityMap[Stock]):
    __table__ = "stock"
    isbn = Column(t.String(13), primary_key=True, references=BookMap.isbn)
    on_hand = Column(t.Integer())
    # Checked and bumped by every update: two clerks selling the same copies cannot both win.
    version = Column(t.Integer(), version=True)
