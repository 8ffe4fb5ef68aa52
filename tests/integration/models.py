"""A small domain for the integration suite: roles, users (versioned), tags, orders.

Covers generated and client-generated keys, a composite key, foreign keys, unique columns,
a version column, most column types, and names that are SQL reserved words (`order`, `user`).
"""

from __future__ import annotations

import datetime as dt
import decimal
import enum
import uuid

import attrs

from mapper import Column, EntityMap, Registry, uuid7
from mapper import types as t


class Status(enum.Enum):
    ACTIVE = "active"
    BLOCKED = "blocked"


@attrs.frozen
class Address:
    street: str
    city: str


@attrs.define
class Role:
    name: str
    id: int | None = None


@attrs.define
class User:
    name: str
    email: str
    role_id: int | None = None
    status: Status = Status.ACTIVE
    active: bool = True
    score: float = 0.0
    balance: decimal.Decimal = decimal.Decimal("0.00")
    born: dt.date | None = None
    wakes: dt.time | None = None
    created: dt.datetime | None = None
    address: Address | None = None
    avatar: bytes | None = None
    version: int = 0
    id: int | None = None


@attrs.define
class Tag:
    label: str
    id: uuid.UUID | None = None


@attrs.define
class Membership:
    """A composite primary key (user_id, tag_id)."""

    user_id: int
    tag_id: uuid.UUID
    since: dt.date


@attrs.define
class Order:
    """Table "order" and a column "user": reserved words that must round-trip."""

    user: str
    total: decimal.Decimal
    id: uuid.UUID | None = None


registry = Registry()


@registry.map
class RoleMap(EntityMap[Role]):
    __table__ = "roles"
    id = Column(t.Integer(), primary_key=True, generated=True)
    name = Column(t.String(50), unique=True)


@registry.map
class UserMap(EntityMap[User]):
    __table__ = "users"
    id = Column(t.Integer(), primary_key=True, generated=True)
    name = Column(t.String(100), index=True)
    email = Column(t.String(255), unique=True)
    role_id = Column(t.Integer(), references=RoleMap.id)
    status = Column(t.Enum(Status))
    active = Column(t.Boolean())
    score = Column(t.Float())
    balance = Column(t.Decimal(12, 2))
    born = Column(t.Date())
    wakes = Column(t.Time())
    created = Column(t.DateTime(tz=True))
    address = Column(t.JSON())
    avatar = Column(t.Bytes())
    version = Column(t.Integer(), version=True)


@registry.map
class TagMap(EntityMap[Tag]):
    __table__ = "tags"
    id = Column(t.UUID(), primary_key=True, default=uuid7)
    label = Column(t.String(50), unique=True)


@registry.map
class MembershipMap(EntityMap[Membership]):
    __table__ = "memberships"
    user_id = Column(t.Integer(), primary_key=True, references=UserMap.id)
    tag_id = Column(t.UUID(), primary_key=True, references="tags.id")
    since = Column(t.Date())


@registry.map
class OrderMap(EntityMap[Order]):
    __table__ = "order"
    id = Column(t.UUID(), primary_key=True, default=uuid7)
    user = Column(t.String(100))
    total = Column(t.Decimal(10, 2))
