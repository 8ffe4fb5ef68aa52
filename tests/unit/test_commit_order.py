"""Commit order (`uow/commit_order.py`): the batches of a flush and the order they run in.

Inserts go parents first and deletes children first by foreign key; rows within a table go
in primary-key order (GUARANTEES G8) except that rows whose key the database generates keep
the order they were added; self-referencing rows go parents first on insert and children
first on delete; updates form one batch per changed-column set. Change sets are built with
`compute_changes` from an identity map, as the unit of work does. Pure; no database.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

import attrs
import pytest

from mapper import Column, EntityMap, Registry, ValidationError
from mapper import types as t
from mapper.codec import entity_codec
from mapper.mapping import EntityMeta
from mapper.operations import DeleteBatch, InsertBatch, LockRows, UpdateBatch
from mapper.uow.changes import ChangeSet, Deletes, Updates, compute_changes
from mapper.uow.commit_order import Step, after_writes, order_changes
from mapper.uow.identity_map import IdentityMap
from mapper.uow.removals import Removals


@attrs.define
class Author:
    id: int
    name: str


@attrs.define
class Book:
    id: int
    author_id: int
    title: str
    pages: int = 0


@attrs.define
class Review:
    id: int
    book_id: int
    text: str


@attrs.define
class Note:
    text: str
    id: int | None = None


@attrs.define
class Node:
    id: int
    parent_id: int | None = None
    label: str = ""


@attrs.define
class Line:
    order_no: int
    number: int
    qty: int = 0
    version: int = 0


@attrs.define
class Ticket:
    code: uuid.UUID
    title: str


registry = Registry()


# Registered children before parents: the order must come from the foreign keys.
@registry.map
class ReviewMap(EntityMap[Review]):
    __table__ = "reviews"
    id = Column(t.Integer(), primary_key=True)
    book_id = Column(t.Integer(), references="books.id")
    text = Column(t.Text())


@registry.map
class BookMap(EntityMap[Book]):
    __table__ = "books"
    id = Column(t.Integer(), primary_key=True)
    author_id = Column(t.Integer(), references="authors.id")
    title = Column(t.Text())
    pages = Column(t.Integer())


@registry.map
class AuthorMap(EntityMap[Author]):
    __table__ = "authors"
    id = Column(t.Integer(), primary_key=True)
    name = Column(t.Text())


@registry.map
class NoteMap(EntityMap[Note]):
    __table__ = "notes"
    id = Column(t.Integer(), primary_key=True, generated=True)
    text = Column(t.Text())


@registry.map
class NodeMap(EntityMap[Node]):
    __table__ = "nodes"
    id = Column(t.Integer(), primary_key=True)
    parent_id = Column(t.Integer(), references="nodes.id")
    label = Column(t.Text())


@registry.map
class LineMap(EntityMap[Line]):
    __table__ = "lines"
    order_no = Column(t.Integer(), primary_key=True)
    number = Column(t.Integer(), primary_key=True)
    qty = Column(t.Integer())
    version = Column(t.Integer(), version=True)


@registry.map
class TicketMap(EntityMap[Ticket]):
    __table__ = "tickets"
    code = Column(t.UUID(), primary_key=True)
    title = Column(t.Text())


def _meta(entity: object) -> EntityMeta:
    return registry.meta(type(entity))


class Flush:
    """A small stand-in for the unit of work's bookkeeping: loaded, added, removed."""

    def __init__(self) -> None:
        self.identity = IdentityMap()
        self.added: list[tuple[EntityMeta, Any]] = []
        self.removed = Removals()

    def load(self, *entities: Any) -> None:
        for entity in entities:
            meta = _meta(entity)
            codec = entity_codec(meta)
            self.identity.put(meta, codec.key(entity), entity, codec.snapshot(codec.values(entity)))

    def add(self, *entities: Any) -> None:
        self.added.extend((_meta(entity), entity) for entity in entities)

    def remove(self, *entities: Any) -> None:
        for entity in entities:
            meta = _meta(entity)
            self.removed.add(meta, entity_codec(meta).key(entity), entity)

    def changes(self) -> ChangeSet:
        return compute_changes(self.identity, self.added, self.removed)

    def snapshot_of(self, meta: EntityMeta, key: Any) -> Sequence[Any]:
        return self.identity.table(meta).snapshots[key]

    def steps(self, row_locks: bool = False) -> list[Step]:
        return order_changes(
            self.changes(), registry.table_order(), self.snapshot_of, row_locks=row_locks
        )


def _summary(steps: list[Step]) -> list[tuple[str, str]]:
    return [(step.op.operation, step.op.meta.table) for step in steps]


def _first_column(step: Step) -> list[Any]:
    return [row[0] for row in step.op.rows]


def _keys(step: Step) -> list[tuple[Any, ...]]:
    assert isinstance(step.op, (UpdateBatch, DeleteBatch))
    return list(step.op.keys)


def _versions(step: Step) -> Any:
    assert isinstance(step.op, (UpdateBatch, DeleteBatch))
    return step.op.versions


# -- tables in foreign-key order ---------------------------------------------------------------


def test_inserts_write_parent_tables_before_child_tables() -> None:
    """Authors are inserted before books, and books before reviews."""
    flush = Flush()
    flush.add(Review(1, 1, "good"), Book(1, 1, "Dune"), Author(1, "Frank"))
    assert _summary(flush.steps()) == [
        ("insert", "authors"),
        ("insert", "books"),
        ("insert", "reviews"),
    ]


def test_deletes_remove_child_tables_before_parent_tables() -> None:
    """Reviews are deleted before books, and books before authors."""
    flush = Flush()
    author, book, review = Author(1, "Frank"), Book(1, 1, "Dune"), Review(1, 1, "good")
    flush.load(author, book, review)
    flush.remove(author, book, review)
    assert _summary(flush.steps()) == [
        ("delete", "reviews"),
        ("delete", "books"),
        ("delete", "authors"),
    ]


def test_inserts_run_before_updates_and_updates_before_deletes() -> None:
    """A flush inserts everything, then updates, then deletes."""
    flush = Flush()
    old_book, kept_author = Book(9, 1, "Old"), Author(1, "Frank")
    flush.load(old_book, kept_author)
    flush.remove(old_book)
    kept_author.name = "Francis"
    flush.add(Book(2, 1, "New"), Author(5, "Ann"))
    assert _summary(flush.steps()) == [
        ("insert", "authors"),
        ("insert", "books"),
        ("update", "authors"),
        ("delete", "books"),
    ]


def test_nothing_to_write_gives_no_steps() -> None:
    """Loaded, unchanged entities produce no batches."""
    flush = Flush()
    flush.load(Author(1, "Frank"), Book(1, 1, "Dune"))
    assert flush.steps() == []


# -- rows in primary-key order (G8) -----------------------------------------------------------


def test_client_key_inserts_go_in_key_order() -> None:
    """Rows with client keys are inserted in key order, not in the order they were added."""
    flush = Flush()
    flush.add(Author(3, "c"), Author(1, "a"), Author(2, "b"))
    (step,) = flush.steps()
    assert isinstance(step.op, InsertBatch)
    assert _first_column(step) == [1, 2, 3]
    assert step.op.returning == ()
    assert [record.entity.id for record in step.records] == [1, 2, 3]


def test_uuid_keys_are_inserted_in_key_order() -> None:
    """Client-generated UUID keys sort like any other key."""
    low, mid, high = uuid.UUID(int=1), uuid.UUID(int=2), uuid.UUID(int=3)
    flush = Flush()
    flush.add(Ticket(high, "h"), Ticket(low, "l"), Ticket(mid, "m"))
    (step,) = flush.steps()
    assert _first_column(step) == [low, mid, high]


def test_updates_go_in_key_order() -> None:
    """Rows of one update batch are in key order whatever order they were loaded in."""
    authors = [Author(i, f"n{i}") for i in (5, 2, 9, 1)]
    flush = Flush()
    flush.load(*authors)
    for author in authors:
        author.name += "!"
    (step,) = flush.steps()
    assert isinstance(step.op, UpdateBatch)
    assert _keys(step) == [(1,), (2,), (5,), (9,)]
    assert list(step.op.values) == [("n1!",), ("n2!",), ("n5!",), ("n9!",)]
    assert isinstance(step.records, Updates)
    assert [entity.id for entity in step.records.entities] == [1, 2, 5, 9]
    assert step.records.keys == [1, 2, 5, 9]
    assert [row[1] for row in step.records.rows] == ["n1!", "n2!", "n5!", "n9!"]


def test_deletes_go_in_key_order() -> None:
    """Rows of one delete batch are in key order whatever order they were removed in."""
    authors = [Author(i, "x") for i in (5, 2, 9, 1)]
    flush = Flush()
    flush.load(*authors)
    flush.remove(*authors)
    (step,) = flush.steps()
    assert isinstance(step.op, DeleteBatch)
    assert _keys(step) == [(1,), (2,), (5,), (9,)]
    assert step.op.versions is None
    assert isinstance(step.records, Deletes)
    assert [entity.id for entity in step.records.entities] == [1, 2, 5, 9]


def test_composite_keys_sort_by_every_key_column() -> None:
    """Composite keys sort by the first column, then the next."""
    lines = [Line(2, 1), Line(1, 2), Line(1, 1), Line(2, 0)]
    flush = Flush()
    flush.load(*lines)
    flush.remove(*lines)
    (step,) = flush.steps()
    assert _keys(step) == [(1, 1), (1, 2), (2, 0), (2, 1)]


# -- generated keys -----------------------------------------------------------------------------


def test_generated_key_rows_keep_the_order_they_were_added() -> None:
    """Rows whose key the database generates are inserted in the order they were added."""
    notes = [Note("c"), Note("a"), Note("b")]
    flush = Flush()
    flush.add(*notes)
    (step,) = flush.steps()
    assert isinstance(step.op, InsertBatch)
    meta = registry.meta(Note)
    assert [c.name for c in step.op.columns] == ["text"]
    assert step.op.returning == (meta.generated,)
    assert list(step.op.rows) == [("c",), ("a",), ("b",)]
    assert [record.entity for record in step.records] == notes


def test_a_value_for_a_generated_key_is_refused() -> None:
    """A row that carries its own value for a database-generated key is refused before SQL."""
    flush = Flush()
    flush.add(Note("new"), Note("seven", id=7))
    with pytest.raises(ValidationError, match=r"Note\.id = 7: is generated by the database"):
        flush.steps()


# -- self-referencing tables ----------------------------------------------------------------------


def test_self_referencing_inserts_put_parents_before_children() -> None:
    """A row is inserted after the rows of its own table that it refers to."""
    flush = Flush()
    # 1 is a child of 3, 2 a child of 1, 3 the root: key order would break the foreign key.
    flush.add(Node(1, parent_id=3), Node(2, parent_id=1), Node(3))
    (step,) = flush.steps()
    assert _first_column(step) == [3, 1, 2]
    assert [record.entity.id for record in step.records] == [3, 1, 2]


def test_self_referencing_deletes_remove_children_before_parents() -> None:
    """A row is deleted before the rows of its own table that it refers to."""
    nodes = [Node(1), Node(2, parent_id=1), Node(3, parent_id=2)]
    flush = Flush()
    flush.load(*nodes)
    flush.remove(*nodes)
    (step,) = flush.steps()
    assert _keys(step) == [(3,), (2,), (1,)]


def test_self_referencing_delete_order_uses_the_loaded_parent() -> None:
    """Deletes follow the parent as loaded, even if the entity was changed since."""
    root, child = Node(1), Node(2, parent_id=1)
    flush = Flush()
    flush.load(root, child)
    child.parent_id = None
    flush.remove(root, child)
    (step,) = flush.steps()
    assert _keys(step) == [(2,), (1,)]


def test_self_referencing_inserts_take_the_smallest_key_free_to_go_next() -> None:
    """Among rows whose parents are already written, the smallest key is inserted next."""
    # 1 waits for its parent 4; 2, 3 and 4 are free, so key order gives 2, 3, 4, then 1.
    flush = Flush()
    flush.add(Node(1, parent_id=4), Node(2), Node(3), Node(4))
    (step,) = flush.steps()
    assert _first_column(step) == [2, 3, 4, 1]


def test_self_referencing_deletes_take_the_earliest_key_free_to_go_next() -> None:
    """A child is deleted just before its parent; other rows keep key order among themselves."""
    # 2 must go before its parent 1; 1, 3 and 4 keep key order relative to each other.
    # Deleting 4 before 3 while another unit of work updates them in key order (3, 4) is the
    # lock-order inversion G8 prevents.
    nodes = [Node(1), Node(2, parent_id=1), Node(3), Node(4)]
    flush = Flush()
    flush.load(*nodes)
    flush.remove(*nodes)
    (step,) = flush.steps()
    assert _keys(step) == [(2,), (1,), (3,), (4,)]
    assert [key for key in _keys(step) if key != (2,)] == [(1,), (3,), (4,)]


def test_inserting_rows_that_refer_to_each_other_in_a_cycle_yields_one_batch() -> None:
    """Rows referring to each other in a cycle are inserted in key order, in one batch."""
    flush = Flush()
    flush.add(Node(2, parent_id=1), Node(1, parent_id=2))
    (step,) = flush.steps()
    assert step.op.operation == "insert"
    assert _first_column(step) == [1, 2]


def test_deleting_rows_that_refer_to_each_other_in_a_cycle_yields_one_batch() -> None:
    """Removing rows that refer to each other in a cycle deletes them in key order, one batch."""
    nodes = [Node(2, parent_id=1), Node(1, parent_id=2)]
    flush = Flush()
    flush.load(*nodes)
    flush.remove(*nodes)
    (step,) = flush.steps()
    assert _keys(step) == [(1,), (2,)]


def test_a_row_that_is_its_own_parent_is_inserted() -> None:
    """A row whose foreign key points at itself needs no other row first."""
    flush = Flush()
    flush.add(Node(2), Node(1, parent_id=1))
    (step,) = flush.steps()
    assert _first_column(step) == [1, 2]


# -- updates grouped by column set -----------------------------------------------------------------


def test_updates_are_grouped_by_changed_column_set() -> None:
    """Each distinct set of changed columns is one batch holding all rows that changed it."""
    books = [Book(i, 1, f"t{i}", pages=i) for i in range(1, 6)]
    flush = Flush()
    flush.load(*books)
    books[0].title = "T1"
    books[3].title = "T4"
    books[1].pages = 20
    books[2].title = "T3"
    books[2].pages = 30
    steps = flush.steps()
    assert len(steps) == 3
    # Batches go in the order of their first key: 1 (title), 2 (pages), 3 (title, pages).
    updates = [step.op for step in steps if isinstance(step.op, UpdateBatch)]
    assert [tuple(c.name for c in op.columns) for op in updates] == [
        ("title",),
        ("pages",),
        ("title", "pages"),
    ]
    groups = {
        tuple(c.name for c in step.op.columns): (_keys(step), list(step.op.values))
        for step in steps
        if isinstance(step.op, UpdateBatch)
    }
    assert groups == {
        ("title",): ([(1,), (4,)], [("T1",), ("T4",)]),
        ("pages",): ([(2,)], [(20,)]),
        ("title", "pages"): ([(3,)], [("T3", 30)]),
    }


def test_update_batches_do_not_depend_on_load_order() -> None:
    """The same changes give the same batches in the same order whatever the load order."""

    def plan(load_order: list[int]) -> list[tuple[tuple[str, ...], list[Any]]]:
        books = {i: Book(i, 1, f"t{i}", pages=i) for i in load_order}
        flush = Flush()
        flush.load(*books.values())
        books[1].pages = 10
        books[2].title = "T2"
        return [
            (tuple(c.name for c in step.op.columns), _keys(step))
            for step in flush.steps()
            if isinstance(step.op, UpdateBatch)
        ]

    # Two units of work making these changes must lock rows 1 and 2 in the same order (G8).
    assert plan([1, 2]) == plan([2, 1])
    assert plan([2, 1]) == [(("pages",), [(1,)]), (("title",), [(2,)])]


def test_versioned_updates_carry_the_loaded_versions() -> None:
    """A versioned update batch lists each row's version as loaded, in row order."""
    lines = [Line(1, 2, qty=1, version=7), Line(1, 1, qty=1, version=3)]
    flush = Flush()
    flush.load(*lines)
    for line in lines:
        line.qty = 5
    (step,) = flush.steps()
    assert isinstance(step.op, UpdateBatch)
    assert _keys(step) == [(1, 1), (1, 2)]
    assert step.op.versions == [3, 7]
    assert [c.name for c in step.op.columns] == ["qty"]


def test_versioned_deletes_carry_the_loaded_versions() -> None:
    """A versioned delete batch lists each row's version as loaded."""
    lines = [Line(2, 1, version=4), Line(1, 1, version=9)]
    flush = Flush()
    flush.load(*lines)
    lines[0].version = 100  # what the row must still have is the loaded version
    flush.remove(*lines)
    (step,) = flush.steps()
    assert _keys(step) == [(1, 1), (2, 1)]
    assert _versions(step) == [9, 4]


def test_unversioned_updates_carry_no_versions() -> None:
    """A mapping without a version column sends versions=None."""
    author = Author(1, "a")
    flush = Flush()
    flush.load(author)
    author.name = "b"
    (step,) = flush.steps()
    assert isinstance(step.op, UpdateBatch)
    assert step.op.versions is None


@pytest.mark.parametrize("count", [1, 2, 50])
def test_step_records_follow_the_batch_rows(count: int) -> None:
    """Each step's records are in the same order as its batch rows."""
    authors = [Author(i, "x") for i in reversed(range(count))]
    flush = Flush()
    flush.load(*authors)
    for author in authors:
        author.name = f"y{author.id}"
    (step,) = flush.steps()
    assert isinstance(step.records, Updates)
    assert [(entity.id,) for entity in step.records.entities] == _keys(step)
    assert [(key,) for key in step.records.keys] == _keys(step)


# -- the lock step (G8, backends with row locks) -------------------------------------------------


def test_batches_in_key_order_still_lock_their_rows_first() -> None:
    """Several batches lock all rows first, even when their keys ascend batch after batch.

    A batch's own statement does not lock in key order: PostgreSQL may join the key array
    to the table by hash, reaching rows in heap order, so only the lock step's ORDER BY
    gives one order to every flush.
    """
    books = [Book(i, 1, f"t{i}", pages=i) for i in range(1, 7)]
    flush = Flush()
    flush.load(*books)
    books[0].title = "T1"  # group (title): key 1
    books[1].pages = 20  # group (pages): keys 2, 3
    books[2].pages = 30
    flush.remove(books[4], books[5])  # deletes: keys 5, 6
    steps = flush.steps(row_locks=True)
    assert _summary(steps) == [
        ("lock", "books"),
        ("update", "books"),
        ("update", "books"),
        ("delete", "books"),
    ]
    assert isinstance(steps[0].op, LockRows)
    assert list(steps[0].op.keys) == [(1,), (2,), (3,), (5,), (6,)]


def test_locks_go_table_by_table_in_foreign_key_order() -> None:
    """Updating a child table and deleting from its parent locks the parent's rows first."""
    author, book = Author(1, "a"), Book(1, 2, "t")
    flush = Flush()
    flush.load(author, book, Author(2, "b"))
    book.title = "T"
    flush.remove(author)
    assert _summary(flush.steps(row_locks=True)) == [
        ("lock", "authors"),
        ("lock", "books"),
        ("update", "books"),
        ("delete", "authors"),
    ]


def test_one_batch_takes_no_lock_step() -> None:
    """A flush with a single update or delete batch sends it alone."""
    books = [Book(i, 1, f"t{i}") for i in range(1, 4)]
    flush = Flush()
    flush.load(*books)
    for book in books:
        book.title = book.title.upper()
    assert _summary(flush.steps(row_locks=True)) == [("update", "books")]


def _one_changed_one_removed() -> Flush:
    """Three loaded books: the third retitled, the first removed (an update and a delete)."""
    books = [Book(i, 1, f"t{i}") for i in range(1, 4)]
    flush = Flush()
    flush.load(*books)
    books[2].title = "T3"
    flush.remove(books[0])
    return flush


def test_without_row_locks_no_lock_step_is_planned() -> None:
    """A backend without row locks gets the writes alone, whatever their order."""
    flush = _one_changed_one_removed()
    assert _summary(flush.steps()) == [("update", "books"), ("delete", "books")]


def test_each_step_knows_whether_its_transaction_wrote_before_it() -> None:
    """Every step after the first write runs after writes; a lock step writes nothing."""
    steps = _one_changed_one_removed().steps(row_locks=True)
    assert _summary(steps) == [("lock", "books"), ("update", "books"), ("delete", "books")]
    assert after_writes(steps, wrote=False) == [False, False, True]
    assert after_writes(steps, wrote=True) == [True, True, True]
