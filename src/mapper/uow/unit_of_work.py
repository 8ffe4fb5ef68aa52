"""The unit of work: tracks loaded, added and removed entities and writes them in batches.

`async with UnitOfWork(db, registry) as uow:` commits on clean exit and rolls back on error.
Reads go through the identity map (`loading.py`); a flush computes the change set from
snapshots (`changes.py`), orders it into batches (`commit_order.py`) and runs them
(`flushing.py`). The transaction begins lazily, at the first write.

What a failure leaves behind (GUARANTEES G1-G4): any error during a flush or commit rolls the
transaction back before it reaches the caller, restores what the mapper wrote into entities
since the transaction began (generated keys, defaults, versions), and closes the unit of
work, which then refuses further use naming the original error. Bad values raise
`ValidationError` before any SQL and leave the unit of work usable. A connection lost or a
task cancelled during COMMIT, when the outcome cannot be learnt, is `CommitOutcomeUnknown`:
then nothing is restored, since the data may have landed. A commit whose only write is one
batch may be sent as that one statement, without BEGIN and COMMIT, where the backend can
(`Capabilities.single_statement_commits`): the statement is then the commit, with the
commit's three outcomes. Cancellation always reaches the caller unchanged, and a connection
is never pooled again mid-transaction.

Called by users; repositories (`repository.py`) delegate to it.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import functools
import operator
from collections.abc import (
    AsyncGenerator,
    AsyncIterator,
    Awaitable,
    Callable,
    Coroutine,
    Iterable,
    Sequence,
    Sized,
)
from types import TracebackType
from typing import Any, TypeVar, overload

from mapper.codec import entity_codec, write_attribute
from mapper.criteria import ColumnRef, InList
from mapper.database import Connection, Database
from mapper.errors import (
    CommitOutcomeUnknown,
    DatabaseError,
    MapperError,
    UnitOfWorkClosed,
    UnitOfWorkError,
)
from mapper.mapping import EntityMeta, RelationMeta
from mapper.operations import Count, PlannedBatch, Select, SelectLinked
from mapper.placeholders import NotLoaded
from mapper.registry import Registry
from mapper.uow.cascades import Collections, RelationPlanner
from mapper.uow.changes import ChangeSet, Dirty, changed_keys, compute_changes
from mapper.uow.collector import BULK_ROWS, collector_paused
from mapper.uow.commit_order import Step, after_writes, order_changes
from mapper.uow.flushing import Flush, UndoLog, single_statement, undo, written_entities
from mapper.uow.identity_map import IdentityMap
from mapper.uow.loading import (
    LoadTree,
    fill_references,
    foreign_keys_to_load,
    group_members,
    load_tree,
    materialize,
    related_entities,
    unloaded,
)
from mapper.uow.removals import Removals
from mapper.uow.repository import Repository, entity_of_repository, keys_criterion

__all__ = ["UnitOfWork", "UnitOfWorkState"]

_Mark = tuple[dict[int, tuple[EntityMeta, Any]], Removals, Collections, int]

T = TypeVar("T")
R = TypeVar("R", bound=Repository[Any])

# How long a cancelled commit may keep running before its outcome is declared unknown.
_COMMIT_SETTLE_SECONDS = 5.0
# How long a cancelled commit sent as one statement may keep running before it is interrupted.
_ALONE_SETTLE_SECONDS = 0.5
# How long commit() and rollback() wait for abandoned streams to be finalised.
_STREAM_CLOSE_SECONDS = 0.5
# Background releases of connections whose COMMIT outlived its unit of work.
_settling: set[asyncio.Task[None]] = set()


class UnitOfWorkState(enum.Enum):
    """Where a unit of work is in its life."""

    OPEN = "open"
    """Usable; a transaction may or may not be running."""
    CLOSED = "closed"
    """Ended normally (committed or rolled back by `async with`, or `close()`)."""
    FAILED = "failed"
    """A flush or commit failed; see `UnitOfWork.failure` for what happened."""


class UnitOfWork:
    """One business transaction: loaded entities, their changes, and one database transaction."""

    def __init__(self, db: Database, registry: Registry) -> None:
        registry.configure()
        db.check_registry(registry)
        self._db = db
        self._registry = registry
        self._state = UnitOfWorkState.OPEN
        self._failure: BaseException | None = None
        self._connection: Connection | None = None
        self._transaction = False
        self._wrote = False
        """Whether a flush ran statements since the last BEGIN (a stream opens a transaction
        on PostgreSQL without writing); read through `_written_in_transaction`."""
        self._identity = IdentityMap()
        self._new: dict[int, tuple[EntityMeta, Any]] = {}
        self._removed = Removals()
        self._collections: Collections = {}
        self._undo: UndoLog = []
        self._repositories: dict[type, Repository[Any]] = {}
        self._busy: str | None = None
        self._outliving: asyncio.Future[None] | None = None
        """A cancelled commit still learning its outcome: it keeps the unit of work busy
        (and its connection) until it ends, whoever was cancelled meanwhile."""
        self._streams = 0
        self._no_streams = asyncio.Event()
        self._no_streams.set()

    # -- life cycle ------------------------------------------------------------------------

    @property
    def state(self) -> UnitOfWorkState:
        return self._state

    @property
    def failure(self) -> BaseException | None:
        """The error that failed this unit of work, if it failed."""
        return self._failure

    @property
    def database(self) -> Database:
        return self._db

    @property
    def registry(self) -> Registry:
        return self._registry

    async def __aenter__(self) -> UnitOfWork:
        self._check_open("enter")
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._busy is not None:
            # Another task is inside an operation: it rolls back and releases as it ends.
            busy = self._busy
            if self._state is UnitOfWorkState.OPEN:
                self._state = UnitOfWorkState.CLOSED
            if exc is None:
                raise UnitOfWorkError(
                    f"the unit of work ended while another task was busy with {busy}; "
                    "nothing was committed"
                )
            return
        if self._state is not UnitOfWorkState.OPEN:
            await self._release()
            if exc is None and self._state is UnitOfWorkState.FAILED:
                self._check_open("commit")  # raises: the block swallowed the failure
            return
        if exc is None:
            try:
                await self._commit(ending=True)
            except BaseException:
                if self._state is UnitOfWorkState.OPEN:
                    # Refused before its flush wrote (bad values, say): the block ends with
                    # this error, so the transaction goes, with what earlier flushes wrote
                    # into entities, as for an error raised in the block (G1, G2).
                    self._state = UnitOfWorkState.CLOSED
                    await self._end()
                raise
            finally:
                if self._state is UnitOfWorkState.OPEN:
                    self._state = UnitOfWorkState.CLOSED
                await self._release()
            return
        self._state = UnitOfWorkState.CLOSED
        await self._end()

    async def close(self) -> None:
        """End the unit of work, rolling back anything not committed."""
        if self._state is UnitOfWorkState.OPEN:
            async with self._guard("close"):
                self._state = UnitOfWorkState.CLOSED
        await self._release()

    def _check_open(self, action: str) -> None:
        if self._state is UnitOfWorkState.FAILED:
            failure = self._failure
            if isinstance(failure, CommitOutcomeUnknown):
                what = "its commit's outcome is unknown: the changes may or may not have landed"
            else:
                what = "it failed and everything was rolled back"
            raise UnitOfWorkClosed(
                f"cannot {action}: {what}; start a new unit of work. "
                f"The failure: {type(failure).__name__}: {failure}",
                cause=failure,
            )
        if self._state is UnitOfWorkState.CLOSED:
            raise UnitOfWorkClosed(f"cannot {action}: this unit of work is closed")

    @contextlib.asynccontextmanager
    async def _guard(self, action: str) -> AsyncIterator[None]:
        """One operation at a time (C6). If the unit of work was ended meanwhile, clean up."""
        self._check_open(action)
        if self._busy is not None:
            raise UnitOfWorkError(
                f"cannot {action}: this unit of work is busy with {self._busy} in another "
                "task; a unit of work is not shared between concurrent tasks"
            )
        self._busy = action
        try:
            yield
        finally:
            if self._outliving is None:  # else the settling commit ends the operation
                self._busy = None
                if self._state is UnitOfWorkState.CLOSED:
                    await self._end()

    async def _end(self) -> None:
        """Roll back what was not committed and give the connection back."""
        try:
            await self._abort()
        finally:
            await self._release()

    # -- repositories ----------------------------------------------------------------------

    @overload
    def repository(self, kind: type[R]) -> R: ...

    @overload
    def repository(self, kind: type[T]) -> Repository[T]: ...

    def repository(self, kind: type[Any]) -> Any:
        """The repository of an entity class, or an instance of a `Repository` subclass.

        `uow.repository(User)` gives the repository registered for User (or the plain one);
        `uow.repository(UserRepository)` gives that class, typed as such.
        """
        self._check_open("use a repository")
        if isinstance(kind, type) and issubclass(kind, Repository):
            entity = entity_of_repository(kind)
            if entity is None:
                raise UnitOfWorkError(
                    f"{kind.__name__} does not name its entity: subclass Repository[Entity]"
                )
            repository_class: type[Repository[Any]] = kind
        else:
            entity = kind
            repository_class = self._registry.repository_class(entity) or Repository
        # One repository per entity and class: asking by entity or by its registered class
        # gives the same object.
        found = self._repositories.get(entity)
        if found is not None and type(found) is repository_class:
            return found
        repository = repository_class(self, self._registry.meta(entity))
        self._repositories[entity] = repository
        return repository

    # -- tracking --------------------------------------------------------------------------

    def add_entity(self, meta: EntityMeta, entity: Any) -> None:
        """Track a new entity (called by `Repository.add`)."""
        self.add_entities(meta, (entity,))

    def add_entities(self, meta: EntityMeta, entities: Iterable[Any]) -> None:
        """Track new entities, in order (called by `Repository.add_all`)."""
        self._check_open("add")
        entity_class = meta.entity
        key_of = entity_codec(meta).key
        new = self._new
        held = self._identity.table(meta).entities
        if not isinstance(entities, Sized):
            entities = list(entities)
        with collector_paused(len(entities)):
            for entity in entities:  # every new entity passes here: kept lean
                if type(entity) is not entity_class and not isinstance(entity, entity_class):
                    raise TypeError(
                        f"the {meta.name} repository cannot add {type(entity).__name__}"
                    )
                ident = id(entity)
                if ident in new:
                    continue
                key = key_of(entity)
                if key is not None and held:
                    key = _known_key(meta, key)
                    if key is not None and self._is_held(meta, key, entity):
                        continue
                new[ident] = (meta, entity)

    def _is_held(self, meta: EntityMeta, key: Any, entity: Any) -> bool:
        """Whether `entity` is already held (and no longer removed); refuses a second object
        with a held entity's key."""
        held = self._identity.get(meta, key)
        if held is entity:
            self._removed.discard(meta, key)  # removed then added back: keep it
            return True
        if held is not None:
            raise UnitOfWorkError(
                f"another {meta.name} with key {key!r} is already in this unit of work"
            )
        return False

    def remove_entity(self, meta: EntityMeta, entity: Any) -> None:
        """Delete a persistent entity at flush, or forget a new one (`Repository.remove`)."""
        self.remove_entities(meta, (entity,))

    def remove_entities(self, meta: EntityMeta, entities: Iterable[Any]) -> None:
        """Delete persistent entities at flush, or forget new ones (`Repository.remove_all`).

        Every entity is checked before any is marked: one of another class, or one that this
        unit of work does not hold, refuses the whole call.
        """
        self._check_open("remove")
        entities = list(entities)
        entity_class = meta.entity
        for kind in set(map(type, entities)):
            if kind is not entity_class and not issubclass(kind, entity_class):
                raise TypeError(f"the {meta.name} repository cannot remove {kind.__name__}")
        new = self._new
        forgotten = [id(entity) for entity in entities if id(entity) in new] if new else []
        if forgotten:
            entities = [entity for entity in entities if id(entity) not in new]
        # Every removed entity passes here: the passes run in C (map, zip), not per entity.
        keys = list(map(entity_codec(meta).key, entities))
        held = self._identity.table(meta).entities
        if any(map(operator.is_not, map(held.get, keys), entities)):
            stranger = next(
                e for e, key in zip(entities, keys, strict=True) if held.get(key) is not e
            )
            raise UnitOfWorkError(
                f"{meta.name} {stranger!r} is not in this unit of work: load it here "
                "(get, find) before removing it"
            )
        for ident in forgotten:
            new.pop(ident, None)
        self._removed.add_all(meta, keys, entities)

    # -- reading ---------------------------------------------------------------------------

    async def _reader(self) -> Connection:
        if self._new or self._removed or self._identity:
            await self._flush()
        return await self._connect()

    async def query(
        self, select: Select, load: Sequence[Any] = (), track: bool = True
    ) -> list[Any]:
        """Entities for a query, through the identity map, with `load=` relations filled.

        Untracked (`track=False`), entities not already held are built but not held.
        """
        async with self._guard("query"):
            tree = load_tree(select.meta, load)
            connection = await self._reader()
            rows = await self._read(connection.select(select))
            entities = materialize(self._identity, select.meta, rows, track=track)
            if tree:
                await self._load_tree(entities, tree)  # its first read frees `rows`
            elif len(rows) >= BULK_ROWS:
                del rows
                await _free_driver_rows()
            return entities

    async def load(self, entities: Iterable[Any], *relations: Any) -> None:
        """Load relations of entities already in hand: `await uow.load(users, UserMap.role)`.

        Relations take the same forms as `load=`: a relation, or a path tuple such as
        `(UserMap.role, RoleMap.permissions)`; one query per relation per level.
        """
        async with self._guard("load"):
            held = list(entities)
            if not held or not relations:
                return
            tree = load_tree(self._registry.meta(type(held[0])), relations)
            await self._reader()
            await self._load_tree(held, tree)

    async def _load_tree(self, owners: list[Any], tree: LoadTree) -> None:
        for relation, subtree in tree.items():
            await self._load_relation(relation, owners)
            if subtree:
                await self._load_tree(related_entities(owners, relation), subtree)

    async def _load_relation(self, relation: RelationMeta, owners: list[Any]) -> None:
        """Replace the relation's placeholders on `owners`: one query whatever their number."""
        target = relation.target
        if relation.column is not None:
            keys = [
                key
                for key in foreign_keys_to_load(owners, relation)
                if self._identity.get(target, key) is None
            ]
            if keys:
                connection = await self._connect()
                select = Select(target, keys_criterion(target, keys))
                materialize(self._identity, target, await self._read(connection.select(select)))
            fill_references(self._identity, owners, relation)
            return
        key_of = entity_codec(relation.owner).key
        pending = unloaded(owners, relation)
        if not pending:
            return
        pairs = await self._read_related(relation, [key_of(owner) for owner in pending])
        groups = group_members(self._identity, pending, relation, pairs)
        back = relation.back
        for owner in pending:
            members = groups[id(owner)]
            # A streamed entity the unit of work does not hold is untracked: it gets its
            # related entities, but no snapshot, and held rows never point back at it.
            held = self._identity.holds(relation.owner, key_of(owner), owner)
            if relation.collection:
                write_attribute(owner, relation.attribute, list(members))
            else:
                write_attribute(owner, relation.attribute, members[0] if members else None)
            if held:  # what the flush compares the collection (or one-to-one) with
                self._collections[(id(owner), relation.attribute)] = tuple(members)
            if back is not None and held:
                for member in members:
                    if isinstance(getattr(member, back.attribute), NotLoaded):
                        write_attribute(member, back.attribute, owner)

    async def _read_related(
        self, relation: RelationMeta, owner_keys: Sequence[Any]
    ) -> list[tuple[Any, Any]]:
        """(owner key, related entity) for a one-to-many or many-to-many relation."""
        connection = await self._connect()
        target = relation.target
        if relation.remote is not None:
            remote = relation.remote
            criterion = InList(ColumnRef(target.map_class, remote.attribute), tuple(owner_keys))
            rows = await self._read(connection.select(Select(target, criterion)))
            members = materialize(self._identity, target, rows)
            snapshots = self._identity.table(target).snapshots
            key_of = entity_codec(target).key
            return [(snapshots[key_of(m)][remote.position], m) for m in members]
        pairs = await self._read(connection.select_linked(SelectLinked(relation, owner_keys)))
        members = materialize(self._identity, target, [row for _, row in pairs])
        return [(key, member) for (key, _), member in zip(pairs, members, strict=True)]

    async def load_by_keys(
        self, meta: EntityMeta, keys: Sequence[Any], load: Sequence[Any] = ()
    ) -> list[Any]:
        """Entities by primary key, in the order given; held ones cost no query."""
        async with self._guard("get"):
            tree = load_tree(meta, load)
            found: dict[Any, Any] = {}
            missing = []
            wanted = [_normalize_key(meta, key) for key in keys]
            for key in wanted:
                entity = self._identity.get(meta, key)
                if entity is not None:
                    if (meta, key) not in self._removed:
                        found[key] = entity
                elif key not in found:
                    missing.append(key)
            if missing:
                # One query whatever the count: every backend takes the list as one parameter.
                connection = await self._reader()
                select = Select(meta, keys_criterion(meta, missing))
                rows = await self._read(connection.select(select))
                key_of = entity_codec(meta).key
                for entity in materialize(self._identity, meta, rows):
                    found[key_of(entity)] = entity
            result = [found[key] for key in wanted if key in found]
            if tree and result:
                await self._load_tree(result, tree)
            return result

    async def count(self, count: Count) -> int:
        """Rows matching a count or exists query (called by repositories)."""
        async with self._guard("count"):
            connection = await self._reader()
            return int(await self._read(connection.count(count)))

    async def stream(
        self, select: Select, chunk_size: int, load: Sequence[Any] = ()
    ) -> AsyncGenerator[list[Any]]:
        """Chunks of entities; ones not already held are built untracked.

        Each chunk is read under the one-operation guard, and between chunks the caller may
        use the unit of work; commit() and rollback() wait for open streams to close.
        """
        tree = load_tree(select.meta, load)
        async with self._guard("stream"):
            connection = await self._reader()
            if self._db.capabilities.transactional_cursors and not self._transaction:
                # The cursor needs a transaction; later writes of this unit of work use it.
                await self._begin(connection)
            chunks = connection.stream(select, chunk_size)
        self._streams += 1
        self._no_streams.clear()
        try:
            async with contextlib.aclosing(chunks):
                while True:
                    async with self._guard("stream"):
                        try:
                            rows = await self._read(anext(chunks))
                        except StopAsyncIteration:
                            return
                        entities = materialize(self._identity, select.meta, rows, track=False)
                        if tree:
                            await self._load_tree(entities, tree)
                    yield entities
        finally:
            self._streams -= 1
            if not self._streams:
                self._no_streams.set()

    async def _read(self, pending: Awaitable[Any]) -> Any:
        """Await a read. A database failure inside the transaction ends the unit of work (G1)."""
        try:
            return await pending
        except StopAsyncIteration:
            raise
        except MapperError as error:
            if isinstance(error, DatabaseError):
                await self._read_failed(error)
            raise  # other mapper errors come before any SQL: nothing to undo
        except BaseException as error:
            await self._read_failed(error)
            raise

    async def _read_failed(self, error: BaseException) -> None:
        if self._transaction:
            await self._fail(error)
        else:
            # Outside a transaction nothing is lost; a dead or interrupted connection goes
            # back (or away) now, so the next operation takes a healthy one (G5).
            await self._release()

    # -- writing ---------------------------------------------------------------------------

    def _planner(self, read: bool, changed: Dirty) -> RelationPlanner:
        return RelationPlanner(
            registry=self._registry,
            identity=self._identity,
            new=self._new,
            removed=self._removed,
            collections=self._collections,
            write=self._write,
            read=self._read_related if read else _no_reads,
            changed=changed,
        )

    def _mark(self) -> _Mark:
        """The tracking state before relation rules are applied, to go back to."""
        return dict(self._new), self._removed.copy(), dict(self._collections), len(self._undo)

    def _back_to(self, mark: _Mark) -> None:
        new, removed, collections, undone = mark
        undo(self._undo[undone:])
        del self._undo[undone:]
        self._new.clear()
        self._new.update(new)
        self._removed.replace(removed)
        self._collections.clear()
        self._collections.update(collections)

    def _write(self, entity: Any, attribute: str, value: Any) -> None:
        """Set an attribute for the user's intent (relation rules), remembering the old value."""
        self._undo.append((entity, attribute, getattr(entity, attribute)))
        write_attribute(entity, attribute, value)

    def _changes(self, links: ChangeSet, changed: Dirty, mark: _Mark) -> ChangeSet:
        dirty = self._written_since(mark, changed)
        changes = compute_changes(self._identity, self._new.values(), self._removed, dirty)
        for meta, inserts in links.inserts.items():
            changes.inserts.setdefault(meta, []).extend(inserts)
        # A link table is never an entity's table (`relations.py` refuses mapping one), so
        # no mapping has both entity deletes and link deletes.
        changes.deletes.update(links.deletes)
        return changes

    def _written_since(self, mark: _Mark, changed: Dirty) -> Dirty:
        """`changed` plus the held entities relation rules wrote into since `mark`."""
        written = self._undo[mark[3] :]
        if not written:
            return changed
        # Plain lists, not the scan's `ChangedKeys`: the change set then reads the entities
        # again instead of taking the values the scan read before these writes.
        dirty = {meta: list(keys) for meta, keys in changed.items()}
        for entity in written_entities(written):
            meta = self._registry.meta(type(entity))
            key = entity_codec(meta).key(entity)
            with contextlib.suppress(TypeError):  # a key made unhashable: the scan saw it
                if self._identity.get(meta, key) is entity:
                    dirty.setdefault(meta, []).append(key)
        return {meta: list(dict.fromkeys(keys)) for meta, keys in dirty.items()}

    def _steps(self, changes: ChangeSet) -> list[Step]:
        return order_changes(
            changes,
            self._registry.table_order(),
            self._snapshot_of,
            row_locks=self._db.capabilities.row_locks,
        )

    def _snapshot_of(self, meta: EntityMeta, key: Any) -> Sequence[Any]:
        return self._identity.table(meta).snapshots[key]

    def plan(self) -> list[PlannedBatch]:
        """The batches the next flush would run, in order, without running them.

        Shown as commit() would send them: with no transaction open, a commit whose only
        write is one batch sends it alone where the backend can, in its guarded form
        (`Capabilities.single_statement_commits`); flush() sends the plain form. What a
        backend learns about a table before its first write there (on PostgreSQL: whether
        a unique index keeps its key unique, whether it has rules or triggers) is taken to
        be the usual until then.
        Relation rules (cascades, collection changes) are applied to the tracking state as
        the flush would apply them; when that needs rows no query loaded, plan() refuses
        and says which relation to load.
        """
        self._check_open("plan")
        mark = self._mark()
        try:
            changed = changed_keys(self._identity, self._removed)
            links = _run_sync(self._planner(read=False, changed=changed).plan())
            planned = []
            steps = self._steps(self._changes(links, changed, mark))
            alone = self._runs_alone(steps) and self._db.dialect.can_send_alone(steps[0].op)
            for step, wrote in zip(
                steps, after_writes(steps, self._written_in_transaction), strict=True
            ):
                op = step.op
                sql = self._db.dialect.compile(op, after_writes=wrote, alone=alone)
                planned.append(PlannedBatch(op.operation, op.meta.table, len(op.rows), sql))
            return planned
        finally:
            self._back_to(mark)  # planning leaves no trace on the next flush

    async def flush(self) -> None:
        """Write every pending change now, inside the unit of work's transaction."""
        async with self._guard("flush"):
            await self._flush()

    def _runs_alone(self, steps: Sequence[Step]) -> bool:
        """Whether a commit may send `steps` as one statement that is its own transaction
        (if the connection agrees for the table: `Connection.can_send_alone`)."""
        return (
            not self._transaction
            and self._db.capabilities.single_statement_commits
            and single_statement(steps)
        )

    async def _flush(self, committing: bool = False, ending: bool = False) -> None:
        """Write every pending change. `committing`: commit() follows at once, so a flush
        that is one statement may be sent alone, as the commit itself. `ending`: the unit of
        work ends with that commit, so nothing is settled (see `_commit`)."""
        mark = self._mark()
        try:
            changed = changed_keys(self._identity, self._removed)
            links = await self._planner(read=True, changed=changed).plan()
            rows = len(self._new) + len(self._removed) + links.rows
            with collector_paused(rows + sum(map(len, changed.values()))):
                changes = self._changes(links, changed, mark)  # ValidationError before SQL
                steps = self._steps(changes)
        except BaseException:
            # Nothing was written: the user may fix the entities and flush again.
            self._back_to(mark)
            raise
        if not changes:
            return
        flush = Flush(self._registry, steps, self._undo, self._written_in_transaction)
        alone = committing and self._runs_alone(steps)
        try:
            connection = await self._connect()
            alone = alone and await connection.can_send_alone(steps[0].op)
            if not alone:
                if not self._transaction:
                    await self._begin(connection)
                self._wrote = True
                await flush.run(connection)
                if not ending:
                    self._settle(flush, changes.rows)
        except BaseException as error:
            await self._fail(error)
            raise
        if alone:
            await self._commit_alone(flush, connection, changes.rows, ending)

    def _settle(self, flush: Flush, rows: int) -> None:
        """Record in memory what a flush of `rows` rows wrote, once it has."""
        with collector_paused(rows):
            flush.settle(self._identity, self._new, self._removed)
            self._snapshot_collections()

    # -- transactions ----------------------------------------------------------------------

    async def _connect(self) -> Connection:
        if self._connection is None:
            self._connection = await self._db.acquire()
        return self._connection

    @property
    def _written_in_transaction(self) -> bool:
        return self._transaction and self._wrote

    async def _begin(self, connection: Connection) -> None:
        await connection.begin()
        self._transaction = True
        self._wrote = False

    async def commit(self) -> None:
        """Flush, then commit the transaction. The unit of work stays usable afterwards."""
        await self._commit(ending=False)

    async def _commit(self, ending: bool) -> None:
        """`ending`: the unit of work ends after this commit (`async with` leaving cleanly),
        so what the flush wrote is not recorded in its bookkeeping: nothing reads it again."""
        async with self._guard("commit"):
            await self._no_open_streams("commit")
            await self._flush(committing=True, ending=ending)
            connection = self._connection
            if connection is not None and self._transaction:
                commit = asyncio.ensure_future(connection.commit())
                await self._committed(commit, _nothing, alone=False)
            self._undo.clear()
            await self._release()

    async def _commit_alone(
        self, flush: Flush, connection: Connection, rows: int, ending: bool
    ) -> None:
        """Send a flush that is one statement without a transaction: it is the commit."""
        running = asyncio.ensure_future(flush.run(connection, alone=True))
        landed = _nothing if ending else functools.partial(self._settle, flush, rows)
        await self._committed(running, landed, alone=True)

    async def _committed(
        self, committing: asyncio.Future[None], landed: Callable[[], None], alone: bool
    ) -> None:
        """Await a commit: a COMMIT, or (`alone`) a flush sent as one statement outside a
        transaction. `landed` records in memory what it wrote, once it has."""
        try:
            await asyncio.shield(committing)
        except asyncio.CancelledError:
            # G3: the commit may still land. Learn its real outcome (a bounded wait that a
            # second cancellation cannot cut short), then let the cancellation through. The
            # settling owns the unit of work until it ends: it takes the connection, which
            # its statement still runs on, and keeps the unit of work busy, so a second
            # cancellation leaves nothing to pool the connection or send the batch again.
            lent, self._connection = self._connection, None
            settling = asyncio.ensure_future(
                self._settle_cancelled_commit(committing, landed, alone, lent)
            )
            self._outliving = settling
            self._busy = "a cancelled commit, learning its outcome"
            if lent is not None:
                self._db.hand_over(lent, settling)
            _settling.add(settling)
            settling.add_done_callback(_settling.discard)
            await asyncio.shield(settling)
            raise
        except CommitOutcomeUnknown as error:
            self._commit_unknown(error, committing)
            raise
        except BaseException as error:
            await self._fail(error)
            raise
        self._transaction = False
        landed()

    async def _settle_cancelled_commit(
        self,
        committing: asyncio.Future[None],
        landed: Callable[[], None],
        alone: bool,
        lent: Connection | None,
    ) -> None:
        """After a cancel: the commit's outcome, once learnt or given up on. `lent`, the
        connection the commit runs on, goes back (or away) here, and the unit of work is
        free again (or ended, if it was closed meanwhile) when this returns."""
        # A COMMIT is quick unless the server is in trouble: it is given time to finish. A
        # statement sent alone may be waiting for a row lock: it gets a short grace, then is
        # interrupted (the server most likely rolls it back, but cannot say so any more).
        grace = _ALONE_SETTLE_SECONDS if alone else _COMMIT_SETTLE_SECONDS
        # After a failed COMMIT the transaction's state is not known: that connection goes.
        discard = not alone
        try:
            done, _ = await asyncio.wait({committing}, timeout=grace)
            if committing not in done or committing.cancelled():
                what = "a commit sent as one statement" if alone else "COMMIT"
                message = f"cancelled during {what}, which had not finished {grace}s later"
                if alone and committing not in done:
                    # The driver asks the server to cancel the statement, and the pool
                    # waits for its answer before lending the connection again.
                    committing.cancel()
                    message += " and was interrupted"
                unknown = CommitOutcomeUnknown(message)
                self._commit_unknown(unknown, committing, discard=not alone, connection=lent)
                lent = None  # released when the commit ends
                return
            error = committing.exception()
            if isinstance(error, CommitOutcomeUnknown):
                self._commit_unknown(error, committing, connection=lent)
                lent = None
                return
            if error is None:
                self._transaction = False  # committed: nothing to restore
                landed()
                self._undo.clear()
                discard = False
            else:
                self._transaction = False  # the connection goes with what it had open
                await self._fail(error)
        finally:
            if lent is not None:
                await self._db.release(lent, discard=discard)
            self._outliving = None
            self._busy = None
            if self._state is UnitOfWorkState.CLOSED:
                await self._end()

    def _commit_unknown(
        self,
        error: CommitOutcomeUnknown,
        committing: asyncio.Future[None],
        discard: bool = True,
        connection: Connection | None = None,
    ) -> None:
        """The data may have landed: restore nothing. The connection (the unit of work's,
        or `connection` lent to a lone statement) goes when the commit ends, thrown away
        unless the driver can still tell its state (`discard`)."""
        self._state = UnitOfWorkState.FAILED
        self._failure = error
        self._transaction = False
        self._undo.clear()
        committing.add_done_callback(_consume)
        if connection is None:
            connection, self._connection = self._connection, None
        if connection is None:
            return

        def release(_: object) -> None:
            task = asyncio.ensure_future(self._db.release(connection, discard=discard))
            _settling.add(task)
            task.add_done_callback(_settling.discard)

        committing.add_done_callback(release)

    async def _no_open_streams(self, action: str) -> None:
        if not self._streams:
            return
        # A stream left by `break` closes when its generator is finalised, a few loop turns
        # later (asyncio schedules the aclose()); give that a moment before refusing.
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(_STREAM_CLOSE_SECONDS):
                await self._no_streams.wait()
        if not self._streams:
            return
        raise UnitOfWorkError(
            f"cannot {action} while a stream() is open: its cursor lives in this transaction; "
            "finish the stream or leave its loop first"
        )

    async def rollback(self) -> None:
        """Roll back the transaction and forget every tracked entity and pending change.

        Entities keep the values the user set; keys, defaults and versions the mapper wrote
        into them since the transaction began are put back. The unit of work stays usable.
        """
        async with self._guard("rollback"):
            await self._no_open_streams("rollback")
            await self._end()

    async def _abort(self) -> None:
        """Restore entities, then roll back on the server (or drop the connection)."""
        self._restore()
        connection = self._connection
        was_open, self._transaction = self._transaction, False
        if connection is None or not was_open:
            return
        rolling = asyncio.ensure_future(connection.rollback())
        try:
            await asyncio.shield(rolling)
        except asyncio.CancelledError:
            rolling.add_done_callback(_consume)
            await self._release(discard=True)
            raise
        except Exception:
            await self._release(discard=True)

    def _snapshot_collections(self) -> None:
        """After a flush: the loaded collections (and one-to-one back sides) as now stored."""
        self._collections.clear()
        for meta, entries in self._identity.tables():
            remote = [r for r in meta.relations.values() if r.collection or r.remote is not None]
            if not remote:
                continue
            for entity in entries.entities.values():
                for relation in remote:
                    members = getattr(entity, relation.attribute)
                    if isinstance(members, NotLoaded):
                        continue
                    if not relation.collection:
                        members = () if members is None else (members,)
                    self._collections[(id(entity), relation.attribute)] = tuple(members)

    def _restore(self) -> None:
        undo(self._undo)
        self._undo.clear()
        self._identity.clear()
        self._new.clear()
        self._removed.clear()
        self._collections.clear()

    async def _fail(self, error: BaseException) -> None:
        """A flush or commit failed: restore entities, roll back, close (G1, G2, G4)."""
        if self._state is UnitOfWorkState.FAILED:
            return
        self._state = UnitOfWorkState.FAILED
        self._failure = error
        await self._end()

    async def _release(self, discard: bool = False) -> None:
        if self._state is not UnitOfWorkState.OPEN:
            # Repositories point back here: dropped once the unit of work has ended, so
            # what it held is freed as soon as the caller lets go of it, not by a later
            # garbage collection.
            self._repositories.clear()
        connection, self._connection = self._connection, None
        if connection is not None:
            await self._db.release(connection, discard=discard)

    def __repr__(self) -> str:
        if self._state is not UnitOfWorkState.OPEN:
            # Its bookkeeping is not kept up to date once it ends (see `_commit`).
            return f"<UnitOfWork {self._state.value}>"
        pending = f"{len(self._new)} new, {len(self._removed)} removed"
        return f"<UnitOfWork {self._state.value}: {len(self._identity)} held, {pending}>"


async def _no_reads(relation: RelationMeta, owner_keys: Sequence[Any]) -> list[tuple[Any, Any]]:
    raise UnitOfWorkError(
        f"plan() cannot tell what this flush does to {relation.label} without reading rows "
        f"no query loaded; load them first ({relation.load_hint}) or let flush() do it"
    )


async def _free_driver_rows() -> None:
    """Let the driver's rows of the read just made go, before the caller gets the entities.

    The event loop holds the future that delivered them until the task next suspends, so
    without this they live on into the caller's next await (often the commit), whatever
    the caller holds. Freed here, the rows not kept as snapshots (all of an untracked
    load's) go while still in the cache from being read: freeing 10,000 asyncpg records at
    a commit, after its scan had evicted them, took about 1 ms of it (asyncpg 0.32).
    """
    await asyncio.sleep(0)


def _run_sync(planning: Coroutine[Any, Any, ChangeSet]) -> ChangeSet:
    """Run the relation planner without a loop: with no reads allowed it never suspends."""
    try:
        planning.send(None)
    except StopIteration as done:
        result: ChangeSet = done.value
        return result
    planning.close()
    raise UnitOfWorkError("plan() needed to read rows; flush() instead")


def _nothing() -> None:
    """Nothing to record when a commit lands (its flush settled before COMMIT)."""


def _consume(task: asyncio.Future[None]) -> None:
    """Retrieve a background task's outcome so asyncio does not report it as lost."""
    if not task.cancelled():
        task.exception()


def _normalize_key(meta: EntityMeta, key: Any) -> Any:
    if meta.composite_key:
        if not isinstance(key, tuple) or len(key) != len(meta.primary_key):
            raise TypeError(
                f"{meta.name} has a composite key of {len(meta.primary_key)} columns; "
                f"pass a tuple, got {key!r}"
            )
        return key
    if isinstance(key, tuple) and len(key) == 1:
        return key[0]
    return key


def _known_key(meta: EntityMeta, key: Any) -> Any | None:
    """The entity's key if every column of it is set, else None (not yet generated)."""
    if meta.composite_key:
        return None if any(part is None for part in key) else key
    return key
