"""Entities whose annotations are strings (`from __future__ import annotations`).

Used by `test_mapping.py` and `test_codec.py`: `Invoice` names `Customer` and `Money` before they
are defined, and `Draft` names a type that exists only for type checkers.
"""

from __future__ import annotations

import datetime as dt
import decimal
import uuid
from typing import TYPE_CHECKING

import attrs

if TYPE_CHECKING:
    from collections import OrderedDict

__all__ = ["Customer", "Draft", "Invoice", "Money"]


@attrs.define
class Invoice:
    number: str
    total: Money
    issued: dt.datetime | None = None
    customer_id: uuid.UUID | None = None
    amount: decimal.Decimal = decimal.Decimal("0.00")
    lines: list[str] = attrs.Factory(list)
    id: int | None = None


@attrs.frozen
class Money:
    amount: str
    currency: str


@attrs.define
class Customer:
    name: str
    id: uuid.UUID | None = None


@attrs.define
class Draft:
    title: str
    note: str | None = None
    extra: OrderedDict[str, int] | None = None
    id: int | None = None
