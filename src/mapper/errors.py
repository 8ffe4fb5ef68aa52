"""The exception hierarchy of mapper. Raised by every layer; imported by all of them.

Each branch is a moment of failure::

    MapperError
    ├── ConfigurationError          declaring or completing mappings
    │   └── InvalidMapping          one mapping is wrong on its own (bad name, no key, ...)
    ├── ValidationError             values checked before any SQL runs (all violations at once)
    ├── EntityNotFoundError         `get` found no row (also a LookupError)
    ├── RelationNotLoaded           a relation that no query loaded was used
    ├── UnitOfWorkError             misuse of a unit of work
    │   └── UnitOfWorkClosed        used after close, commit failure or a failed flush
    ├── PoolTimeout                 no connection within the pool's timeout (also a TimeoutError)
    └── DatabaseError               the database answered with an error (driver error as __cause__)
        ├── IntegrityError          unique, foreign key, not null, check
        ├── ConflictError           retryable: serialization failure, deadlock, lock timeout, busy
        │   └── StaleEntityError    optimistic version check or vanished row
        ├── DataError               the server refused a value the checks let through
        ├── SchemaChangedError      cached statements outlived a schema change (retryable)
        ├── StorageFull             disk or database full
        ├── ConnectionLost          the connection died; the transaction is gone
        └── CommitOutcomeUnknown    the connection died during COMMIT: it may have landed

Driver exceptions never reach users: the dialects translate them at the edge with
``raise ... from driver_error``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import attrs

__all__ = [
    "CommitOutcomeUnknown",
    "ConfigurationError",
    "ConflictError",
    "ConnectionLost",
    "DataError",
    "DatabaseError",
    "EntityNotFoundError",
    "IntegrityError",
    "InvalidMapping",
    "MapperError",
    "PoolTimeout",
    "RelationNotLoaded",
    "SchemaChangedError",
    "StaleEntityError",
    "StaleRow",
    "StorageFull",
    "UnitOfWorkClosed",
    "UnitOfWorkError",
    "ValidationError",
    "Violation",
]


class MapperError(Exception):
    """Root of every error mapper raises."""


class ConfigurationError(MapperError):
    """A mapping or registry is wrong; raised when declared or when the registry completes."""


class InvalidMapping(ConfigurationError):
    """One mapping is wrong on its own: a bad identifier, a missing attribute, no primary key."""


def _short(value: object, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


@attrs.frozen
class Violation:
    """One bad value: which entity and attribute, the value, and the rule it breaks."""

    entity: str
    attribute: str
    value: Any
    rule: str

    def __str__(self) -> str:
        return f"{self.entity}.{self.attribute} = {_short(self.value)}: {self.rule}"


class ValidationError(MapperError, ValueError):
    """Values that break their column's rules; raised before any SQL runs.

    ``violations`` lists every bad attribute found, not just the first.
    """

    def __init__(self, violations: Sequence[Violation]) -> None:
        self.violations = tuple(violations)
        lines = "\n  ".join(str(v) for v in self.violations)
        count = len(self.violations)
        noun = "value" if count == 1 else "values"
        super().__init__(f"{count} invalid {noun}, nothing was written:\n  {lines}")


class EntityNotFoundError(MapperError, LookupError):
    """`Repository.get` found no row with the given key."""

    def __init__(self, entity: str, key: object) -> None:
        self.entity = entity
        self.key = key
        super().__init__(f"no {entity} with key {key!r}")


class RelationNotLoaded(MapperError):
    """A relation that no query loaded was used. The message names the `load=` that fixes it.

    Deliberately not an AttributeError: `getattr(x, name, default)` and `hasattr` must not
    mistake an unloaded relation for a missing attribute.
    """

    def __init__(self, relation: str, hint: str) -> None:
        self.relation = relation
        self.hint = hint
        super().__init__(
            f"{relation} was not loaded: no attribute access ever queries. "
            f"Load it with {hint} on the query, or `await uow.load(entities, ...)`"
        )


class UnitOfWorkError(MapperError):
    """A unit of work was used in a way its state does not allow."""


class UnitOfWorkClosed(UnitOfWorkError):
    """The unit of work is closed; ``cause`` is the failure that closed it, if any."""

    def __init__(self, message: str, cause: BaseException | None = None) -> None:
        self.cause = cause
        super().__init__(message)


class PoolTimeout(MapperError, TimeoutError):
    """No pooled connection became free in time."""

    def __init__(self, size: int, in_use: int, waited: float) -> None:
        self.size = size
        self.in_use = in_use
        self.waited = waited
        super().__init__(
            f"no connection free after {waited:.2f}s: pool size {size}, {in_use} in use. "
            "Raise pool_max, shorten units of work, or check for a task that opens a second "
            "unit of work while holding one."
        )


class DatabaseError(MapperError):
    """The database answered with an error. The driver's exception is ``__cause__``."""

    retryable: bool = False

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        retryable: bool | None = None,
    ) -> None:
        self.code = code
        if retryable is not None:
            self.retryable = retryable
        super().__init__(message)


class IntegrityError(DatabaseError):
    """A constraint refused the write: unique, foreign key, not null or check."""

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        constraint: str | None = None,
        table: str | None = None,
        columns: tuple[str, ...] = (),
        entity: str | None = None,
        attribute: str | None = None,
    ) -> None:
        self.constraint = constraint
        self.table = table
        self.columns = columns
        self.entity = entity
        self.attribute = attribute
        super().__init__(message, code=code, retryable=False)


class ConflictError(DatabaseError):
    """Another transaction got in the way; running the whole unit of work again may succeed."""

    retryable = True


@attrs.frozen
class StaleRow:
    """A row an update or delete expected to find, by key and (if versioned) version."""

    entity: str
    key: Any
    expected_version: Any | None

    def __str__(self) -> str:
        if self.expected_version is None:
            return f"{self.entity} {self.key!r} (row no longer exists)"
        return f"{self.entity} {self.key!r} (expected version {self.expected_version!r})"


class StaleEntityError(ConflictError):
    """An update or delete matched fewer rows than it expected: someone else got there first.

    `rows` names the stale rows. Where a backend names them by looking again after the
    statement (PostgreSQL, after a short count), a row another writer changed in between is
    named too, and one changed back is only counted (`unnamed`).
    """

    def __init__(self, operation: str, rows: Sequence[StaleRow], unnamed: int = 0) -> None:
        self.operation = operation
        self.rows = tuple(rows)
        self.unnamed = unnamed
        """Stale rows beyond `rows` that could not be named: they matched again when looked
        up after the statement (another unit of work changed them back meanwhile)."""
        listed = ", ".join(str(r) for r in self.rows[:10])
        more = f" and {len(self.rows) - 10} more" if len(self.rows) > 10 else ""
        if unnamed:
            listed = f"{listed}{more}, and " if self.rows else ""
            more = f"{unnamed} that matched again when looked up"
        super().__init__(
            f"{operation} found stale rows: {listed}{more}; they were changed or removed "
            "by another unit of work. The transaction was rolled back; load them again and retry."
        )


class DataError(DatabaseError):
    """The server refused a value that mapper's own checks let through."""


class SchemaChangedError(DatabaseError):
    """A cached statement no longer fits the schema; retrying the unit of work fixes it."""

    retryable = True


class StorageFull(DatabaseError):
    """The database or its disk is full."""


class ConnectionLost(DatabaseError):
    """The connection died before COMMIT; the transaction did not land."""

    retryable = True


class CommitOutcomeUnknown(DatabaseError):
    """The connection died or the task was cancelled during COMMIT (or during a commit sent
    as one statement, which is its own transaction): the data may have landed.

    Retry only with client-generated keys or another idempotent design.
    """

    retryable = False
