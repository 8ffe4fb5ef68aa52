"""Unit tests of `mapper.uow.flushing` helpers that need no connection: putting generated keys
into written rows, and telling a flush of one statement."""

import attrs
import pytest

from mapper import Column, EntityMap, ManyToOne
from mapper import types as t
from mapper.codec import PendingKey
from mapper.mapping import EntityMeta
from mapper.operations import DeleteBatch, InsertBatch, LockRows, UpdateBatch
from mapper.uow.changes import Insert
from mapper.uow.commit_order import Step
from mapper.uow.flushing import _keyed, single_statement
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


class TestSingleStatement:
    """Which flushes are one statement, so a commit may send them alone."""

    @staticmethod
    def _meta() -> EntityMeta:
        class TicketMap(EntityMap[Ticket]):
            __table__ = "tickets"
            id = Column(t.Integer(), primary_key=True, generated=True)
            title = Column(t.String(20))
            seat = Column(t.Integer())

        return meta_of(TicketMap)

    def _insert(self, meta: EntityMeta, *rows: tuple[object, ...]) -> Step:
        records = tuple(Insert(Ticket("t", 1), row, ()) for row in rows)
        return Step(InsertBatch(meta, meta.columns, [r.values for r in records]), records)

    def test_one_batch_of_any_kind_is_one_statement(self) -> None:
        """One insert, update or delete batch is one statement."""
        meta = self._meta()
        update = UpdateBatch(meta, (meta.columns[1],), keys=[(1,)], values=[("a",)])
        assert single_statement([self._insert(meta, (None, "a", 1), (None, "b", 2))])
        assert single_statement([Step(update, ())])
        assert single_statement([Step(DeleteBatch(meta, keys=[(1,)]), ())])

    def test_two_batches_or_a_lock_are_not(self) -> None:
        """Two batches need a transaction; so does a lock step."""
        meta = self._meta()
        delete = Step(DeleteBatch(meta, keys=[(1,)]), ())
        assert not single_statement([self._insert(meta, (None, "a", 1)), delete])
        assert not single_statement([Step(LockRows(meta, [(1,)]), ())])
        assert not single_statement([])

    def test_an_insert_waiting_for_a_new_rows_key_is_not(self) -> None:
        """A row referring to a new row's key may need a second statement to fill it in."""

        class NodeMap(EntityMap[Node]):
            __table__ = "nodes"
            id = Column(t.Integer(), primary_key=True, generated=True)
            name = Column(t.String(20))
            parent = ManyToOne(Node, column="parent_id")

        meta = meta_of(NodeMap)
        parent = Node("root")
        rows = [(None, "root", None), (None, "leaf", PendingKey(parent))]
        records = tuple(Insert(Node(name), row, ()) for name, row in zip("ab", rows, strict=True))
        step = Step(InsertBatch(meta, meta.columns, [r.values for r in records]), records)
        assert not single_statement([step])
        assert single_statement([Step(step.op, records[:1])])


@attrs.define
class Node:
    name: str
    parent: "Node | None" = None
    id: int | None = None
