"""Unit tests of `mapper.uow.flushing` helpers that need no connection: putting generated keys
into written rows."""

import attrs
import pytest

from mapper import Column, EntityMap
from mapper import types as t
from mapper.uow.flushing import _keyed
from tests.unit.test_codec import meta_of


@attrs.define
class Ticket:
    title: str
    seat: int
    id: int | None = None


class TestKeyed:
    def test_puts_the_key_where_its_column_is(self) -> None:
        """The generated key lands at its column's position, whatever the column order."""

        class TicketMap(EntityMap[Ticket]):
            __table__ = "tickets"
            title = Column(t.String(20))
            id = Column(t.Integer(), primary_key=True, generated=True)
            seat = Column(t.Integer())

        meta = meta_of(TicketMap)
        keyed = _keyed(meta)
        assert keyed(("a", None, 3), 41) == ("a", 41, 3)
        assert _keyed(meta) is keyed  # compiled once per mapping

    def test_key_declared_last(self) -> None:
        """A key declared after every other column is the last value."""

        class TicketMap(EntityMap[Ticket]):
            __table__ = "tickets"
            title = Column(t.String(20))
            seat = Column(t.Integer())
            id = Column(t.Integer(), primary_key=True, generated=True)

        assert _keyed(meta_of(TicketMap))(("b", 7, None), 9) == ("b", 7, 9)

    def test_refuses_a_mapping_without_generated_key(self) -> None:
        """A mapping whose keys the client makes has nothing to put in."""

        class TicketMap(EntityMap[Ticket]):
            __table__ = "tickets"
            title = Column(t.String(20))
            seat = Column(t.Integer())
            id = Column(t.Integer(), primary_key=True)

        with pytest.raises(TypeError, match="no generated key"):
            _keyed(meta_of(TicketMap))
