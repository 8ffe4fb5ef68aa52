"""Test helpers for the integration suite: counting statements through the statement hook,
and the checks backend-specific modules share."""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager

import attrs
import pytest

from mapper import Database, DatabaseError, StatementEvent, UnitOfWork
from tests.integration.models import Tag, TagMap, registry


@attrs.define
class StatementLog:
    """Every finished statement's event, in order."""

    events: list[StatementEvent] = attrs.Factory(list)

    def __call__(self, event: StatementEvent) -> None:
        self.events.append(event)

    def operations(self) -> list[str]:
        return [event.operation for event in self.events]

    def count(self, *operations: str) -> int:
        """Statements of these operations (all statements when none are named)."""
        if not operations:
            return len(self.events)
        return sum(1 for event in self.events if event.operation in operations)

    def by_operation(self) -> Counter[str]:
        return Counter(self.operations())

    def writes(self) -> int:
        return self.count("insert", "update", "delete")

    def clear(self) -> None:
        self.events.clear()


WAYS_TO_COMMIT = ("commit", "flush then commit")
"""How a test writes its changes, for `write_changes`: parametrize over both, so a check runs
on a commit sent alone (where the backend does) and inside a transaction."""


async def write_changes(uow: UnitOfWork, how: str) -> None:
    """commit(), which sends a commit of one batch alone where it can; or flush() first,
    which writes inside a transaction that commit() then ends."""
    if how == "flush then commit":
        await uow.flush()
    await uow.commit()


def around_commit(db: Database, writes: int) -> int:
    """Statements a commit of `writes` write statements adds: BEGIN and COMMIT, or none where
    the backend sends a commit of one statement alone."""
    return 0 if writes == 1 and db.capabilities.single_statement_commits else 2


@contextmanager
def statements(db: Database) -> Iterator[StatementLog]:
    """Record the statements `db` runs inside the block."""
    log = StatementLog()
    with db.on_statement(log):
        yield log


async def twin_key_writes_fail(
    store: Database, stored_labels: Callable[[], Awaitable[list[str]]]
) -> None:
    """Changing, then removing, the tag whose key two stored rows share (a tags table made
    without its key, holding two "twin" rows): each commit fails naming the table, and
    `stored_labels()`, read past mapper, shows nothing was written. Each way to commit."""
    for change, how in itertools.product(("update", "delete"), WAYS_TO_COMMIT):
        uow = UnitOfWork(store, registry)
        tag, twin = await uow.repository(Tag).find(TagMap.label == "twin")
        assert twin is tag  # one key, one object
        if change == "update":
            tag.label = "changed"
        else:
            uow.repository(Tag).remove(tag)
        with pytest.raises(
            DatabaseError, match=rf"{change} of Tag: a key matched more than one row of table tags"
        ):
            await write_changes(uow, how)
        await uow.close()
        assert await stored_labels() == ["twin", "twin"]
