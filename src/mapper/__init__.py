"""mapper: an async data mapper for plain attrs entities.

The public API, re-exported from the modules that define it.
"""

from mapper import types
from mapper.capabilities import Capabilities
from mapper.criteria import Criterion, Ordering
from mapper.database import Database, connect
from mapper.errors import (
    CommitOutcomeUnknown,
    ConfigurationError,
    ConflictError,
    ConnectionLost,
    DatabaseError,
    DataError,
    EntityNotFoundError,
    IntegrityError,
    InvalidMapping,
    MapperError,
    PoolTimeout,
    RelationNotLoaded,
    SchemaChangedError,
    StaleEntityError,
    StaleRow,
    StorageFull,
    UnitOfWorkClosed,
    UnitOfWorkError,
    ValidationError,
    Violation,
)
from mapper.events import HookHandle, StatementEvent
from mapper.keys import uuid7
from mapper.mapping import Column, EntityMap, ManyToMany, ManyToOne, OneToMany, OneToOne
from mapper.operations import PlannedBatch
from mapper.registry import Registry
from mapper.uow import Repository, UnitOfWork, UnitOfWorkState
from mapper.url import DatabaseURL

__all__ = [
    "Capabilities",
    "Column",
    "CommitOutcomeUnknown",
    "ConfigurationError",
    "ConflictError",
    "ConnectionLost",
    "Criterion",
    "DataError",
    "Database",
    "DatabaseError",
    "DatabaseURL",
    "EntityMap",
    "EntityNotFoundError",
    "HookHandle",
    "IntegrityError",
    "InvalidMapping",
    "ManyToMany",
    "ManyToOne",
    "MapperError",
    "OneToMany",
    "OneToOne",
    "Ordering",
    "PlannedBatch",
    "PoolTimeout",
    "Registry",
    "RelationNotLoaded",
    "Repository",
    "SchemaChangedError",
    "StaleEntityError",
    "StaleRow",
    "StatementEvent",
    "StorageFull",
    "UnitOfWork",
    "UnitOfWorkClosed",
    "UnitOfWorkError",
    "UnitOfWorkState",
    "ValidationError",
    "Violation",
    "connect",
    "types",
    "uuid7",
]
