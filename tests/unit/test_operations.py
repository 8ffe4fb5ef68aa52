"""Unit tests of `mapper.operations`: the error naming a batch's stale rows, and the rows a
batch picks out of fuller rows."""

import attrs
import pytest

from mapper import Column, EntityMap
from mapper import types as t
from mapper.operations import DeleteBatch, PickedRows, UpdateBatch, stale_entity_error
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


class TestPickedRows:
    def test_reads_as_the_tuples_it_stands_for(self) -> None:
        """Rows picked by positions read, index, slice and compare as the tuples they stand for."""
        rows = PickedRows([(1, "a", True), (2, "b", False), (3, "c", True)], (2, 0))
        assert len(rows) == 3
        assert list(rows) == [(True, 1), (False, 2), (True, 3)]
        assert rows[0] == (True, 1)
        assert rows[-1] == (True, 3)
        assert rows[1:] == [(False, 2), (True, 3)]
        assert rows == [(True, 1), (False, 2), (True, 3)]
        assert rows != [(True, 1), (False, 2)]
        assert rows != "abc"

    def test_one_position_gives_one_value_tuples(self) -> None:
        """One position picks a 1-tuple per row, not the bare value."""
        assert list(PickedRows([(1, "a"), (2, "b")], (1,))) == [("a",), ("b",)]

    def test_bare_values_are_rows_of_one_column(self) -> None:
        """Without positions each value is a row's only value (a one-column key)."""
        keys = [5, 6]
        rows = PickedRows(keys)
        assert list(rows) == [(5,), (6,)]
        assert rows[1] == (6,)
        column = rows.column(0)
        assert column == [5, 6]
        column.append(7)
        assert keys == [5, 6]  # a column is a list of its own
        with pytest.raises(IndexError, match="no column 1"):
            rows.column(1)

    def test_columns_come_from_the_fuller_rows(self) -> None:
        """column(i) is the value at the i-th picked position of every fuller row."""
        rows = PickedRows([(1, "a", True), (2, "b", False)], (2, 0))
        assert rows.column(0) == [True, False]
        assert rows.column(1) == [1, 2]

    def test_is_unhashable_as_the_lists_it_equals(self) -> None:
        """Equal to a list, so unhashable as a list is."""
        with pytest.raises(TypeError):
            hash(PickedRows([1]))

    def test_leading_positions_take_the_row_itself(self) -> None:
        """Picking every value of a row, in order, gives that same tuple: nothing is copied."""
        row = (1, "a")
        assert PickedRows([row], (0, 1))[0] is row
        assert PickedRows([(1, "a", True)], (0, 1))[0] == (1, "a")
