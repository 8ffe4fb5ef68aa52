"""Test helpers for the integration suite: counting statements through the statement hook."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager

import attrs

from mapper import Database, StatementEvent


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


@contextmanager
def statements(db: Database) -> Iterator[StatementLog]:
    """Record the statements `db` runs inside the block."""
    log = StatementLog()
    with db.on_statement(log):
        yield log
