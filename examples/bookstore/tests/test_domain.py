"""The business rules of `domain.py`: plain Python, no database and no fixture."""

from __future__ import annotations

import datetime as dt
import decimal
import uuid

import pytest

from examples.bookstore.domain import (
    DomainError,
    Order,
    OutOfStock,
    Stock,
    discounted,
    is_valid_isbn13,
    isbn13,
    normalize_isbn,
    order_lines,
)

CUSTOMER = uuid.UUID(int=1)


def test_isbn13_makes_valid_isbns() -> None:
    """isbn13() appends the check digit that is_valid_isbn13() expects."""
    assert isbn13(30640615) == "9780306406157"
    assert is_valid_isbn13("978-0-306-40615-7")
    assert not is_valid_isbn13("9780306406158")


def test_normalize_isbn_keeps_only_digits() -> None:
    """Hyphens and spaces are dropped."""
    assert normalize_isbn("978-0 306-40615-7") == "9780306406157"


def test_discounted_rounds_half_up_to_the_cent() -> None:
    """15% off 9.99 is 8.4915, which rounds to 8.49; 50% off 0.05 is 0.025, to 0.03."""
    assert discounted(decimal.Decimal("9.99"), 15) == decimal.Decimal("8.49")
    assert discounted(decimal.Decimal("0.05"), 50) == decimal.Decimal("0.03")


def test_stock_take_refuses_more_than_on_hand() -> None:
    """Taking more copies than there are raises OutOfStock and takes none."""
    stock = Stock("9780306406157", on_hand=2)
    with pytest.raises(OutOfStock):
        stock.take(3)
    assert stock.on_hand == 2


def test_stock_take_refuses_nothing_or_less() -> None:
    """Taking zero copies is a mistake, not a no-op."""
    with pytest.raises(DomainError):
        Stock("9780306406157", on_hand=2).take(0)


def test_order_lines_need_a_stored_order() -> None:
    """Lines refer to their order by key, so an order without an id has no lines."""
    order = Order(CUSTOMER, dt.datetime(2024, 5, 6, tzinfo=dt.UTC))
    with pytest.raises(DomainError):
        order_lines(order, [], {})
