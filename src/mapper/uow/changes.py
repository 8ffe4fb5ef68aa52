"""Change sets: what a flush must write, computed from snapshots. Pure.

`changed_keys` finds the persistent entities whose column values differ from their
snapshots (one compiled scan per mapping); `compute_changes` works out which columns of
those changed (only changed columns are written; an unchanged entity writes nothing), collects
the entities added and removed, fills in column defaults and initial versions, and checks
every value that will be written (`validation.py`), raising one `ValidationError` before any
SQL. It never writes into entities: `plan()` runs it too.

Updates and deletes are recorded column-wise (`Updates`, `Deletes`: parallel lists of
entities, keys, rows and versions), not as one object per row: every changed or removed
entity passes through here, and lists are filled and reordered in C.

Called by `uow/unit_of_work.py` at flush and plan.
"""

from __future__ import annotations

import itertools
import operator
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import attrs

from mapper.codec import ChangedKeys, compile_function, entity_codec, value_expressions
from mapper.errors import UnitOfWorkError, ValidationError, Violation
from mapper.mapping import EntityMeta, per_mapping
from mapper.uow.identity_map import IdentityMap, TableEntries
from mapper.uow.removals import Removals
from mapper.uow.validation import check_source, row_check_source, validator_for

__all__ = [
    "ChangeSet",
    "Deletes",
    "Dirty",
    "Insert",
    "Updates",
    "changed_keys",
    "compute_changes",
    "key_tuple",
]

INITIAL_VERSION = 1


def key_tuple(meta: EntityMeta, key: Any) -> tuple[Any, ...]:
    """A key as a tuple of its column values (identity-map keys are bare for one column)."""
    return key if meta.composite_key else (key,)


@attrs.define(eq=False)  # not frozen: one is made per written row, and frozen init is slow
class Insert:
    """A new entity: the values to insert and the attributes the flush sets on it first."""

    entity: Any
    values: tuple[Any, ...]
    writes: tuple[tuple[str, Any], ...]
    """(attribute, value) pairs from column defaults and the initial version."""


@attrs.define(eq=False)
class Updates:
    """Held entities of one mapping whose columns at `positions` differ from their
    snapshots, column-wise: `entities[i]`, held under `keys[i]` (an identity-map key: bare
    for a one-column key), now has the values `rows[i]` (every column, in column order)
    and, if versioned, must still have `versions[i]` (from its snapshot).

    The flush puts what it writes besides (versions, keys of rows it inserted) into `rows`,
    so they are what was written when it settles the snapshots."""

    positions: tuple[int, ...]
    entities: list[Any]
    keys: list[Any]
    rows: list[tuple[Any, ...]]
    versions: list[Any] | None

    def __len__(self) -> int:
        return len(self.keys)

    def reordered(self, order: Sequence[int]) -> Updates:
        """The same updates, row `order[i]` going i-th."""
        return Updates(
            self.positions,
            _taken(self.entities, order),
            _taken(self.keys, order),
            _taken(self.rows, order),
            None if self.versions is None else _taken(self.versions, order),
        )


@attrs.define(eq=False)
class Deletes:
    """Rows of one mapping to delete, column-wise: `entities[i]` (None for a link row) is
    held under `keys[i]` and, if versioned, must still have `versions[i]`."""

    entities: list[Any]
    keys: list[Any]
    versions: list[Any] | None

    def __len__(self) -> int:
        return len(self.keys)

    def append(self, entity: Any, key: Any, version: Any = None) -> None:
        self.entities.append(entity)
        self.keys.append(key)
        if self.versions is not None:
            self.versions.append(version)

    def reordered(self, order: Sequence[int]) -> Deletes:
        """The same deletes, row `order[i]` going i-th."""
        return Deletes(
            _taken(self.entities, order),
            _taken(self.keys, order),
            None if self.versions is None else _taken(self.versions, order),
        )


def _taken(values: list[Any], order: Sequence[int]) -> list[Any]:
    return list(map(values.__getitem__, order))


@attrs.define
class ChangeSet:
    """Everything one flush writes, per mapping (updates: one `Updates` per column set)."""

    inserts: dict[EntityMeta, list[Insert]] = attrs.Factory(dict)
    updates: dict[EntityMeta, list[Updates]] = attrs.Factory(dict)
    deletes: dict[EntityMeta, Deletes] = attrs.Factory(dict)

    def __bool__(self) -> bool:
        return bool(self.inserts or self.updates or self.deletes)

    @property
    def rows(self) -> int:
        """How many rows it writes."""
        inserted = sum(map(len, self.inserts.values()))
        updated = sum(len(group) for groups in self.updates.values() for group in groups)
        return inserted + updated + sum(map(len, self.deletes.values()))


class _Inserter:
    """Builds the `Insert`s of one mapping; what does not change per row is looked up once."""

    def __init__(self, meta: EntityMeta) -> None:
        self.read = entity_codec(meta).values
        self.check = validator_for(meta).row
        # Columns the flush fills in: versions always, defaults where the entity says None.
        self.filled = [c for c in meta.columns if c.version or c.default is not None]
        self.plain = None if self.filled else _insert_loop(meta)

    def inserts(self, entities: Iterable[Any], out: list[Violation]) -> list[Insert]:
        if self.plain is not None:
            return self.plain(entities, out)
        return [self._filled(entity, out) for entity in entities]

    def _filled(self, entity: Any, out: list[Violation]) -> Insert:
        values = self.read(entity)
        row = list(values)
        filled = []
        for column in self.filled:
            if column.version:
                value: Any = INITIAL_VERSION
            elif row[column.position] is None:
                value = column.default_value()
            else:
                continue
            row[column.position] = value
            filled.append((column.attribute, value))
        values = tuple(row)
        self.check(values, out)
        return Insert(entity, values, tuple(filled))


def _insert_loop(meta: EntityMeta) -> Callable[[Iterable[Any], list[Violation]], list[Insert]]:
    """`inserts(entities, out)`: an `Insert` per new entity of a mapping whose rows the
    flush fills nothing into, its values checked into `out`. Every new entity passes
    through it, so reading and checking its values are inlined rather than called."""
    namespace: dict[str, Any] = {"_Insert": Insert}
    prelude, parts = value_expressions(meta, namespace)
    names = [f"v{column.position}" for column in meta.columns]
    lines = [
        "def inserts(entities, out):",
        "    records = []",
        "    add = records.append",
        "    for e in entities:",
        *("    " + line for line in prelude),
        *(f"        {name} = {part}" for name, part in zip(names, parts, strict=True)),
        *("        " + line for line in row_check_source(meta, names, namespace)),
        f"        add(_Insert(e, ({', '.join(names)},), ()))",
        "    return records",
    ]
    loop: Callable[[Iterable[Any], list[Violation]], list[Insert]] = compile_function(
        "inserts", "\n".join(lines) + "\n", namespace
    )
    return loop


@per_mapping
def _inserter(meta: EntityMeta) -> _Inserter:
    return _Inserter(meta)


_second = operator.itemgetter(1)

Dirty = dict[EntityMeta, list[Any]]
"""Keys of held entities that may have changed, per mapping."""


def changed_keys(identity: IdentityMap, removed: Removals | None = None) -> Dirty:
    """The keys of held entities whose column values differ from their snapshots; entities
    in `removed` are left out (they are deleted, not updated)."""
    dirty: Dirty = {}
    for meta, entries in identity.tables():
        entities = entries.entities
        skipped = None if removed is None else removed.of(meta)
        if skipped and skipped.keys() >= entities.keys():
            continue  # every held entity of the mapping is going
        if skipped and 2 * len(skipped) >= len(entities):
            # Most of them are going: the scan skips them. Otherwise copying every held
            # entity to leave out a few would cost more than scanning those few.
            entities = {k: e for k, e in entities.items() if k not in skipped}
        if entities:
            found = entity_codec(meta).changed(entities, entries.snapshots)
            if skipped and not skipped.keys().isdisjoint(found):
                found = _without(found, skipped)
            if found:
                dirty[meta] = found
    return dirty


def _without(found: ChangedKeys, skipped: Mapping[Any, Any]) -> ChangedKeys:
    """`found` less the keys in `skipped`, with the rows of those kept."""
    kept = ChangedKeys()
    if found.rows is None:
        kept.extend(key for key in found if key not in skipped)
        return kept
    rows = kept.rows = []
    for key, row in zip(found, found.rows, strict=True):
        if key not in skipped:
            kept.append(key)
            rows.append(row)
    return kept


class _Differ:
    """Which columns of held entities changed, as `Updates`: one compiled loop per mapping.

    The loop (`_update_loop`) reads each entity's column values and compares them with its
    snapshot, column by column, into a mask (bit i set when column i differs); the positions
    to write and the key test then come per distinct mask (`written`), which is what a
    batch of similar changes shares, and are looked up again only when the mask differs
    from the previous row's. Every changed entity passes through the loop, so reading,
    comparing, checking and recording are inlined there rather than called.
    """

    def __init__(self, meta: EntityMeta) -> None:
        self.meta = meta
        self.by_mask: dict[int, tuple[tuple[int, ...], bool]] = {}
        """`written(mask)` of the masks seen so far."""
        self.key_mask = sum(1 << c.position for c in meta.primary_key)
        self.version_mask = 0 if meta.version is None else 1 << meta.version.position
        self.updates: Callable[
            [Iterable[Any], TableEntries, Mapping[Any, Any], list[Violation]],
            list[Updates],
        ] = _update_loop(self)

    def written(self, mask: int) -> tuple[tuple[int, ...], bool]:
        """(positions to write, whether a key column changed) for a mask."""
        found = self.by_mask.get(mask)
        if found is None:
            write = mask & ~self.version_mask
            positions = tuple(p for p in range(len(self.meta.columns)) if write >> p & 1)
            found = self.by_mask[mask] = (positions, bool(mask & self.key_mask))
        return found

    def collected(self, found: dict[int, tuple[list[Any], ...]]) -> list[Updates]:
        """The loop's (entities, keys, rows[, versions]) lists per mask, as one `Updates`
        per column set (masks that differ only in the version write the same columns)."""
        groups: dict[tuple[int, ...], Updates] = {}
        versioned = self.meta.version is not None
        for mask, lists in found.items():
            versions = lists[3] if versioned else None
            group = Updates(self.by_mask[mask][0], lists[0], lists[1], lists[2], versions)
            known = groups.get(group.positions)
            if known is None:
                groups[group.positions] = group
                continue
            known.entities += group.entities
            known.keys += group.keys
            known.rows += group.rows
            if known.versions is not None and versions is not None:
                known.versions += versions
        return list(groups.values())

    def refuse_key_change(self, key: Any, entity: Any) -> None:
        """Called by the loop for an entity whose key columns differ from its snapshot."""
        raise UnitOfWorkError(
            f"the primary key of a loaded {self.meta.name} changed from {key!r} to "
            f"{entity_codec(self.meta).key(entity)!r}; keys cannot change: remove the entity "
            "and add a new one"
        )


def _update_loop(differ: _Differ) -> Callable[..., list[Updates]]:
    """`updates(keys, entries, removed, out)`: the `Updates` of the held entities among
    `keys` whose values differ from their snapshots (only the version differing writes
    nothing), leaving out the keys in `removed` (the mapping's removed entities by key); the
    written values are checked into `out`."""
    meta = differ.meta
    namespace: dict[str, Any] = {
        "_differ": differ,
        "_by_value": _mask_by_value,
        "_nones": itertools.repeat(None),
    }
    prelude, parts = value_expressions(meta, namespace)
    width = len(meta.columns)
    names = [f"v{p}" for p in range(width)]
    reads = [f"            v{p} = {part}" for p, part in enumerate(parts)]
    forms = []
    compared = []  # per column, the name its comparison with the snapshot uses
    for column in meta.columns:
        p = column.position
        if column.type.mutable:  # compared in the frozen form its snapshot keeps
            namespace[f"_form{p}"] = column.type.snapshot_form
            forms.append(f"        c{p} = _form{p}(v{p})")
            compared.append(f"c{p}")
        else:
            compared.append(f"v{p}")
    # A changed column's value is checked where its bit is set. Keys are left out (a changed
    # key is refused first) and so is the version (the mapper owns it: never written).
    checks = []
    for column in meta.columns:
        if column.primary_key or column.version:
            continue
        p = column.position
        checks.append(f"        if m & {1 << p}:")
        checks += [f"            {line}" for line in check_source(meta, column, f"v{p}", namespace)]
    version = meta.version
    kept = ["entity", "key", "row"] if version is None else ["entity", "key", "row", "version"]
    appenders = ", ".join(f"add_{name}" for name in kept)
    bound = ", ".join(f"lists[{i}].append" for i in range(len(kept)))
    lines = [
        "def updates(keys, entries, removed, out):",
        "    found = {}  # mask: the entities, keys, rows (and versions) of the rows with it",
        "    held = entries.entities.get",
        "    snapshots = entries.snapshots",
        "    last = 0  # the mask whose lists the appenders fill (0: none yet)",
        "    scanned = getattr(keys, 'rows', None)  # the values the scan read (ChangedKeys)",
        "    for key, now in zip(keys, _nones if scanned is None else scanned):",
        "        e = held(key)",
        "        if e is None:",
        "            continue",
        "        if now is None:",
        *("        " + line for line in prelude),
        *reads,
        f"            now = ({', '.join(names)},)",
        "        else:",
        f"            {', '.join(names)}, = now",
        *forms,
        "        then = snapshots[key]",
        "        try:",
        "            m = 0",
    ]
    for p, c in enumerate(compared):
        # `is not` first, as tuple comparison does: the same object (a NaN too) is unchanged.
        lines += [
            f"            if {c} is not then[{p}] and {c} != then[{p}]:",
            f"                m |= {1 << p}",
        ]
    lines += [
        "        except ArithmeticError:",  # Decimal("sNaN") refuses comparison
        f"            m = _by_value(({', '.join(compared)},), then)",
        "        if not m or (removed and key in removed):",
        "            continue",
        "        if m != last:",  # rows of one batch of changes mostly share their mask
        "            written = _differ.written(m)",
        "            if written[1]:",
        "                _differ.refuse_key_change(key, e)",
        "            if not written[0]:",
        "                continue  # only the version differs: the mapper owns it",
        "            lists = found.get(m)",
        "            if lists is None:",
        f"                lists = found[m] = ({'[], ' * len(kept)})",
        f"            {appenders} = {bound}",
        "            last = m",
        *checks,
        "        add_entity(e)",
        "        add_key(key)",
        "        add_row(now)",
    ]
    if version is not None:
        lines.append(f"        add_version(then[{version.position}])")
    lines.append("    return _differ.collected(found) if found else []")
    return compile_function("updates", "\n".join(lines) + "\n", namespace)


@per_mapping
def _differ(meta: EntityMeta) -> _Differ:
    return _Differ(meta)


def _mask_by_value(current: tuple[Any, ...], snapshot: Sequence[Any]) -> int:
    """The changed-column mask, column by column, for a row whose comparison raised (a
    Decimal sNaN): a value that refuses comparison differs; the same object (a NaN too)
    does not, as in the loop and in tuple comparison."""
    mask = 0
    for position, (now, then) in enumerate(zip(current, snapshot, strict=True)):
        if now is then:
            continue
        try:
            differs = bool(now != then)
        except ArithmeticError:
            differs = True
        if differs:
            mask |= 1 << position
    return mask


def compute_changes(
    identity: IdentityMap,
    added: Iterable[tuple[EntityMeta, Any]],
    removed: Removals,
    dirty: Mapping[EntityMeta, Iterable[Any]] | None = None,
) -> ChangeSet:
    """The change set of a unit of work; raises `ValidationError` listing every bad value.

    `dirty` names the held entities that may have changed (a superset is fine); by default
    every held entity is compared with its snapshot.
    """
    changes = ChangeSet()
    violations: list[Violation] = []
    # In runs of one mapping (add_all gives one run), in the order they were added.
    for meta, run in itertools.groupby(added, key=operator.itemgetter(0)):
        records = _inserter(meta).inserts(map(_second, run), violations)
        found = changes.inserts.get(meta)
        if found is None:
            changes.inserts[meta] = records
        else:
            found.extend(records)
    for meta, keys in (changed_keys(identity) if dirty is None else dirty).items():
        entries = identity.table(meta)
        updates = _differ(meta).updates(keys, entries, removed.of(meta), violations)
        if updates:
            changes.updates[meta] = updates
    if removed:
        changes.deletes = _deletes(identity, removed)
    if violations:
        raise ValidationError(violations)
    return changes


def _deletes(identity: IdentityMap, removed: Removals) -> dict[EntityMeta, Deletes]:
    """The removed entities as one `Deletes` per mapping, each expecting the version of its
    snapshot."""
    found = {}
    for meta, going in removed.by_mapping():
        keys = list(going)
        versions = None
        if meta.version is not None:
            snapshots = identity.table(meta).snapshots
            position = meta.version.position
            versions = [
                None if snapshot is None else snapshot[position]
                for snapshot in map(snapshots.get, keys)
            ]
        found[meta] = Deletes(list(going.values()), keys, versions)
    return found
