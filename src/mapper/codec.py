"""Compiled converters between entities, Python row tuples and driver rows.

Per mapping, `EntityCodec` reads an entity's column values into a tuple (`values`), reads its
key (`key`), builds a loaded entity from a tuple (`build`) without running `__init__` (a
loaded entity is reconstituted, not created, so validators and `__attrs_post_init__` do not
run, and frozen or slotted classes work alike) and finds the held entities whose values
differ from their snapshots (`changed`, the flush's scan over everything loaded). Per
mapping and dialect, `RowCodec` applies the column types' loaders and binders. The functions
are generated once as Python source and registered in `linecache` (as attrs does) so
tracebacks show real code.

Pure. Built and cached by `codecs_for()`; called by the unit of work and the dialects.
"""

from __future__ import annotations

import linecache
import operator
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import attrs

from mapper.mapping import ColumnMeta, EntityMeta, RelationMeta, per_mapping
from mapper.placeholders import (
    NotLoaded,
    NotLoadedCollection,
    NotLoadedReference,
    placeholder_key,
)
from mapper.types import Converter, DialectName

__all__ = [
    "ChangedKeys",
    "EntityCodec",
    "PendingKey",
    "WrongReference",
    "RowCodec",
    "compile_function",
    "entity_codec",
    "reference_kind",
    "row_codec",
    "value_expressions",
    "write_attribute",
]

_counter = 0

write_attribute: Callable[[object, str, Any], None] = object.__setattr__
"""Set an attribute the mapper owns (keys, versions), bypassing frozen and validators."""


def compile_function(name: str, source: str, namespace: dict[str, Any]) -> Callable[..., Any]:
    """Run generated `source` defining `name`, registered in linecache for tracebacks."""
    global _counter  # noqa: PLW0603 - a unique file name per generated function
    _counter += 1
    filename = f"<mapper generated {name} #{_counter}>"
    code = compile(source, filename, "exec")
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    exec(code, namespace)
    function: Callable[..., Any] = namespace[name]
    return function


Materializer = Callable[[Sequence[Sequence[Any]], dict[Any, Any], dict[Any, Any], bool], list[Any]]


def _getter(names: Sequence[str]) -> Callable[[Any], Any]:
    return operator.attrgetter(*names)


@attrs.frozen(eq=False)
class EntityCodec:
    """Compiled entity access for one mapping."""

    meta: EntityMeta
    values: Callable[[Any], tuple[Any, ...]]
    """The entity's column values as a tuple, in column order."""
    key: Callable[[Any], Any]
    """The entity's primary key: the value, or a tuple for a composite key."""
    build: Callable[[Sequence[Any]], Any]
    """A loaded entity from column values in column order; `__init__` is not run."""
    snapshot: Callable[[Sequence[Any]], tuple[Any, ...]]
    """Column values as change tracking keeps and compares them: mutable values (JSON) in
    their frozen `snapshot_form`, which later changes made in place cannot reach."""
    mutable_positions: tuple[int, ...]
    changed: Callable[[Mapping[Any, Any], Mapping[Any, Sequence[Any]]], ChangedKeys]
    """The keys of the entities (by key) whose snapshot form differs from their snapshots,
    with their column values as the scan read them where the mapping has no mutable column."""
    materialize: Materializer
    """`materialize(rows, entities, snapshots, track)`: the entity of each row, the held one
    where `entities` has its key, else built (and, if `track`, held with its snapshot: the
    row itself where no column is mutable)."""


class ChangedKeys(list[Any]):
    """Keys of held entities whose values differ from their snapshots, as the flush's scan
    found them, with `rows`: each one's column values as the scan read them (a tuple in
    column order, same order as the keys), so the change set need not read them again; None
    where the scan compared something else (the frozen forms of mutable columns). A copy
    of the keys is a plain list and drops the rows: whoever changes entities after the
    scan (relation rules) hands the change set such a copy, which reads them anew."""

    __slots__ = ("rows",)

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[tuple[Any, ...]] | None = None


def _build_body(meta: EntityMeta) -> tuple[list[str], dict[str, Any]]:
    """Statements building entity `e` from the tuple `values` (indented one level)."""
    entity = meta.entity
    # No custom __setattr__ (frozen classes and attrs validators install one): assign directly.
    plain = entity.__setattr__ is object.__setattr__  # type: ignore[comparison-overlap]
    namespace: dict[str, Any] = {"_new": object.__new__, "_cls": entity, "_set": write_attribute}
    lines = ["    e = _new(_cls)"]

    def assign(attribute: str, expression: str) -> str:
        if plain:
            return f"    e.{attribute} = {expression}"
        return f"    _set(e, {attribute!r}, {expression})"

    namespace["_Collection"] = NotLoadedCollection
    namespace["_Unknown"] = NotLoaded
    for column in meta.columns:
        if column.via is None:
            lines.append(assign(column.attribute, f"values[{column.position}]"))
    for index, relation in enumerate(meta.relations.values()):
        # Unloaded relations hold placeholders; a NULL foreign key is known to be None.
        namespace[f"_r{index}"] = relation
        if relation.column is not None:
            # Rows sharing a foreign key share its (immutable) placeholder.
            namespace[f"_c{index}"], namespace[f"_m{index}"] = _reference_cache(relation)
            lines.append(f"    k{index} = values[{relation.column.position}]")
            lines.append(f"    p{index} = None if k{index} is None else _c{index}.get(k{index})")
            lines.append(f"    if p{index} is None and k{index} is not None:")
            lines.append(f"        p{index} = _m{index}(k{index})")
            value = f"p{index}"
        elif relation.collection:
            value = f"_Collection(_r{index})"
        else:
            value = f"_Unknown(_r{index})"
        lines.append(assign(relation.attribute, value))
    for index, (attribute, default) in enumerate(meta.loading_defaults):
        if isinstance(default, attrs.Factory):  # type: ignore[arg-type]
            namespace[f"_f{index}"] = default.factory
            call = f"_f{index}(e)" if default.takes_self else f"_f{index}()"
            lines.append(assign(attribute, call))
        else:
            namespace[f"_d{index}"] = default
            lines.append(assign(attribute, f"_d{index}"))
    return lines, namespace


def _build_function(meta: EntityMeta) -> Callable[[Sequence[Any]], Any]:
    body, namespace = _build_body(meta)
    source = "def build(values):\n" + "".join(f"{line}\n" for line in body) + "    return e\n"
    return compile_function("build", source, namespace)


def _materialize_function(meta: EntityMeta, snapshot: Callable[..., Any]) -> Materializer:
    """The loading loop with `build` inlined: every loaded row passes through it."""
    body, namespace = _build_body(meta)
    namespace["_snapshot"] = snapshot
    # Rows are immutable and compare as the tuples of their values (`Connection.select`):
    # with no mutable column to freeze, the row itself is the snapshot, not a copy of it.
    kept = "values" if snapshot is tuple else "_snapshot(values)"
    key = ", ".join(f"values[{c.position}]" for c in meta.primary_key)
    if meta.composite_key:
        key = f"({key})"
    lines = [
        "def materialize(rows, entities, snapshots, track):",
        "    result = []",
        "    append = result.append",
        "    held = entities.get",
        "    for values in rows:",
        f"        key = {key}",
        "        e = held(key)",
        "        if e is None:",
        *("        " + line for line in body),
        "            if track:",
        "                entities[key] = e",
        f"                snapshots[key] = {kept}",
        "        append(e)",
        "    return result",
    ]
    function: Materializer = compile_function("materialize", "\n".join(lines) + "\n", namespace)
    return function


_REFERENCE_CACHE_SIZE = 4096


@per_mapping
def _reference_kinds(meta: EntityMeta) -> dict[str, type[NotLoadedReference]]:
    """`reference_kind` of each relation of `meta` made so far, by attribute."""
    return {}


def reference_kind(relation: RelationMeta) -> type[NotLoadedReference]:
    """The class of `relation`'s placeholders: a subclass of `NotLoadedReference` of its
    own, so the loops that run per row tell this relation's placeholders from another's
    (assigned by mistake) by their type alone."""
    kinds = _reference_kinds(relation.owner)
    kind = kinds.get(relation.attribute)
    if kind is None:
        namespace = {"__slots__": (), "__module__": NotLoadedReference.__module__}
        kind = kinds[relation.attribute] = type(
            NotLoadedReference.__name__, (NotLoadedReference,), namespace
        )
    return kind


def _reference_cache(
    relation: RelationMeta,
) -> tuple[dict[Any, NotLoadedReference], Callable[[Any], NotLoadedReference]]:
    """A bounded cache of a relation's placeholders by foreign key, and what fills it."""
    cache: dict[Any, NotLoadedReference] = {}
    kind = reference_kind(relation)

    def make(key: Any) -> NotLoadedReference:
        if len(cache) >= _REFERENCE_CACHE_SIZE:
            cache.clear()  # bounded: a placeholder is cheap to build again
        placeholder = cache[key] = kind(relation, key)
        return placeholder

    return cache, make


def _make_snapshot(
    meta: EntityMeta,
) -> tuple[Callable[[Sequence[Any]], tuple[Any, ...]], tuple[int, ...]]:
    mutable = tuple(c.position for c in meta.columns if c.type.mutable)
    if not mutable:
        return tuple, mutable
    forms = [(c.position, c.type.snapshot_form) for c in meta.columns if c.type.mutable]

    def snapshot(values: Sequence[Any]) -> tuple[Any, ...]:
        frozen = list(values)
        for position, form in forms:
            frozen[position] = form(frozen[position])
        return tuple(frozen)

    return snapshot, mutable


class PendingKey:
    """A foreign key whose target is new: its key exists once the target is inserted."""

    __slots__ = ("target",)

    def __init__(self, target: Any) -> None:
        self.target = target

    def __repr__(self) -> str:
        return f"<key of new {type(self.target).__name__}>"


class WrongReference:
    """What a relation attribute holds when it is not the target entity (nor None).

    A bare key (`user.role = 3`) would pass the key column's own checks, so the codec marks
    the value and validation reports it, naming the entity the relation expects.
    """

    __slots__ = ("expected", "value")

    def __init__(self, value: Any, expected: type) -> None:
        self.value = value
        self.expected = expected

    def rule(self) -> str:
        if isinstance(self.value, NotLoadedReference):
            other = self.value._mapper_relation.target.name
            return (
                f"expected a {self.expected.__name__} (or None), got the unloaded reference "
                f"of another relation, to a {other}; assign the related entity"
            )
        return (
            f"expected a {self.expected.__name__} (or None), got {type(self.value).__name__}; "
            "assign the related entity, not its key"
        )

    def __repr__(self) -> str:
        return repr(self.value)


def _foreign_key(relation: RelationMeta) -> Callable[[Any], Any]:
    """The foreign key a relation attribute's value stands for."""
    target = relation.target
    target_key = operator.attrgetter(target.primary_key[0].attribute)
    target_class = target.entity

    def foreign_key(value: Any) -> Any:
        if value is None:
            return None
        if isinstance(value, NotLoadedReference):
            # Another relation's placeholder stands for a row of its own target's table.
            if value._mapper_relation.target is target:
                return placeholder_key(value)
            return WrongReference(value, target_class)
        if not isinstance(value, target_class):
            return WrongReference(value, target_class)
        key = target_key(value)
        return PendingKey(value) if key is None else key

    return foreign_key


def value_expressions(meta: EntityMeta, namespace: dict[str, Any]) -> tuple[list[str], list[str]]:
    """Source computing each column value of entity `e`: (statements indented one level,
    one expression per column); what they refer to goes into `namespace`. For the loops
    generated per mapping, here and in `uow/changes.py`."""
    prelude, parts = [], []
    for column in meta.columns:
        if column.via is None:
            parts.append(f"e.{column.attribute}")
            continue
        position = column.position
        relation = meta.relations[column.via]
        namespace[f"_k{position}"] = _foreign_key(relation)
        namespace[f"_t{position}"] = relation.target.entity
        namespace[f"_g{position}"] = reference_kind(relation)
        target_key = relation.target.primary_key[0].attribute
        r = f"r{position}"
        # What most rows hold is read inline: an untouched placeholder of this relation, or
        # the key of a stored target; the function handles None, new targets, other
        # relations' placeholders and wrong values.
        prelude += [
            f"    {r} = e.{column.via}",
            f"    if type({r}) is _g{position}:",
            f"        {r} = {r}._mapper_key",
            f"    elif type({r}) is _t{position} and {r}.{target_key} is not None:",
            f"        {r} = {r}.{target_key}",
            "    else:",
            f"        {r} = _k{position}({r})",
        ]
        parts.append(r)
    return prelude, parts


def _values_function(meta: EntityMeta) -> Callable[[Any], tuple[Any, ...]]:
    names = [c.attribute for c in meta.columns]
    if not any(c.via is not None for c in meta.columns):
        if len(names) == 1:
            single = operator.attrgetter(names[0])
            return lambda entity: (single(entity),)
        return _getter(names)
    namespace: dict[str, Any] = {}
    prelude, parts = value_expressions(meta, namespace)
    body = "".join(line + "\n" for line in prelude)
    source = f"def values(e):\n{body}    return ({', '.join(parts)},)\n"
    return compile_function("values", source, namespace)


def _changed_function(
    meta: EntityMeta,
) -> Callable[[Mapping[Any, Any], Mapping[Any, Sequence[Any]]], ChangedKeys]:
    """The flush's scan: one pass over every held entity of the mapping, so it is compiled.
    Where no column is mutable, what it compares is the row's values: those of the changed
    entities are kept (`ChangedKeys.rows`)."""
    namespace: dict[str, Any] = {"_found": ChangedKeys}
    prelude, parts = value_expressions(meta, namespace)
    keeps = True
    for column in meta.columns:
        if column.type.mutable:
            keeps = False
            namespace[f"_form{column.position}"] = column.type.snapshot_form
            parts[column.position] = f"_form{column.position}({parts[column.position]})"
    note = ["found.append(key)", "add_row(now)"] if keeps else ["found.append(key)"]
    lines = [
        "def changed(entities, snapshots):",
        "    found = _found()",
        *(["    found.rows = rows = []", "    add_row = rows.append"] if keeps else []),
        "    for key, e in entities.items():",
        *("    " + line for line in prelude),
        f"        now = ({', '.join(parts)},)",
        "        try:",
        "            if now != snapshots[key]:",
        *(f"                {line}" for line in note),
        "        except ArithmeticError:",  # Decimal("sNaN") refuses comparison
        *(f"            {line}" for line in note),
        "    return found",
    ]
    return compile_function("changed", "\n".join(lines) + "\n", namespace)


def _make_entity_codec(meta: EntityMeta) -> EntityCodec:
    values = _values_function(meta)
    key_names = [c.attribute for c in meta.primary_key]
    snapshot, mutable = _make_snapshot(meta)
    return EntityCodec(
        meta=meta,
        values=values,
        key=operator.attrgetter(*key_names),
        build=_build_function(meta),
        snapshot=snapshot,
        mutable_positions=mutable,
        changed=_changed_function(meta),
        materialize=_materialize_function(meta, snapshot),
    )


@attrs.frozen(eq=False)
class RowCodec:
    """Conversions between Python values and one dialect's driver values, per mapping."""

    meta: EntityMeta
    dialect: DialectName
    load: Callable[[Sequence[Any]], Sequence[Any]] | None
    """Driver row (all columns, column order) to Python values; None when nothing converts."""
    binders: tuple[Converter | None, ...]
    """Per column position: Python value to driver value, None when identity."""

    def bind(self, column: ColumnMeta, value: Any) -> Any:
        """One Python value as the driver wants it (None stays None)."""
        binder = self.binders[column.position]
        return value if binder is None or value is None else binder(value)

    def binders_for(self, columns: Sequence[ColumnMeta]) -> list[Converter | None]:
        return [self.binders[c.position] for c in columns]


def _make_row_codec(meta: EntityMeta, dialect: DialectName) -> RowCodec:
    loaders = [c.type.loader(dialect) for c in meta.columns]
    binders = tuple(c.type.binder(dialect) for c in meta.columns)
    if not any(loaders):
        return RowCodec(meta, dialect, None, binders)
    namespace: dict[str, Any] = {}
    parts = []
    prelude = []
    for position, loader in enumerate(loaders):
        if loader is None:
            parts.append(f"row[{position}]")
        else:
            namespace[f"_l{position}"] = loader
            prelude.append(f"    v{position} = row[{position}]")
            parts.append(f"None if v{position} is None else _l{position}(v{position})")
    body = "\n".join(prelude)
    source = f"def load(row):\n{body}\n    return ({', '.join(parts)},)\n"
    return RowCodec(meta, dialect, compile_function("load", source, namespace), binders)


@per_mapping
def entity_codec(meta: EntityMeta) -> EntityCodec:
    """The compiled `EntityCodec` of `meta`, built on first use."""
    return _make_entity_codec(meta)


def row_codec(meta: EntityMeta, dialect: DialectName) -> RowCodec:
    """The compiled `RowCodec` of `meta` for `dialect`, built on first use."""
    cache_key = (RowCodec, dialect)
    codec: RowCodec | None = meta.compiled.get(cache_key)
    if codec is None:
        codec = meta.compiled[cache_key] = _make_row_codec(meta, dialect)
    return codec
