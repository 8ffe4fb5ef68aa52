"""Unit tests of `mapper.operations`: the error naming a batch's stale rows."""

import attrs

from mapper import Column, EntityMap
from mapper import types as t
from mapper.operations import DeleteBatch, UpdateBatch, stale_entity_error
from tests.unit.test_codec import meta_of


@attrs.define
class Seat:
    row: int
    number: int
    holder: str = ""
    version: int = 0


@attrs.define
class Note:
    text: str
    id: int | None = None


class SeatMap(EntityMap[Seat]):
    __table__ = "seats"
    row = Column(t.Integer(), primary_key=True)
    number = Column(t.Integer(), primary_key=True)
    holder = Column(t.String(20))
    version = Column(t.Integer(), version=True)


class NoteMap(EntityMap[Note]):
    __table__ = "notes"
    id = Column(t.Integer(), primary_key=True, generated=True)
    text = Column(t.Text())


class TestStaleEntityError:
    def test_names_rows_by_key_and_expected_version(self) -> None:
        """A composite key is named as its tuple, with the version the row had to have."""
        meta = meta_of(SeatMap)
        op = UpdateBatch(
            meta, (meta.column("holder"),), keys=[(1, 1), (1, 2)], values=[("a",), ("b",)]
        )
        op = attrs.evolve(op, versions=[4, 7])
        error = stale_entity_error(op, [1])
        assert [(r.entity, r.key, r.expected_version) for r in error.rows] == [("Seat", (1, 2), 7)]
        assert error.operation == "update of Seat"
        assert "Seat (1, 2) (expected version 7)" in str(error)
        assert error.retryable

    def test_a_single_column_key_is_named_bare(self) -> None:
        """A one-column key is the value itself, as the identity map and get() know it."""
        error = stale_entity_error(DeleteBatch(meta_of(NoteMap), keys=[(5,), (6,)]), [0, 1])
        assert [(r.key, r.expected_version) for r in error.rows] == [(5, None), (6, None)]
        assert "delete of Note found stale rows: Note 5 (row no longer exists)" in str(error)

    def test_rows_that_could_not_be_named_are_counted(self) -> None:
        """Stale rows that matched again when looked up are counted and said so."""
        op = DeleteBatch(meta_of(NoteMap), keys=[(5,), (6,), (7,)])
        error = stale_entity_error(op, [0], unnamed=2)
        assert error.unnamed == 2
        assert "Note 5 (row no longer exists), and 2 that matched again when looked up" in str(
            error
        )
        only_unnamed = stale_entity_error(op, [], unnamed=1)
        assert only_unnamed.rows == ()
        assert "found stale rows: 1 that matched again when looked up;" in str(only_unnamed)
