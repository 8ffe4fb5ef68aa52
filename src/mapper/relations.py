"""Compiling relation declarations: foreign key columns, link tables and `RelationMeta`.

A `ManyToOne(Role, column="role_id")` adds a column to its mapping's table, typed like the
target's key; a `ManyToMany(Tag, through="user_tags")` adds a mapping of its own for the link
table (two key columns, each a foreign key), so DDL, batches and the memory backend treat
links like any other rows. Once every mapping is compiled, each declaration becomes a
`RelationMeta` naming the tables and columns that connect owner and target.

Pure. Called by `registry.py` while it configures.
"""

from __future__ import annotations

import types
import typing
from typing import Any

import attrs

from mapper import types as t
from mapper.criteria import (
    And,
    ColumnRef,
    Comparison,
    Criterion,
    IsNull,
    Not,
    Or,
    Related,
    RelatedIs,
)
from mapper.errors import ConfigurationError, ValidationError, Violation
from mapper.mapping import (
    Column,
    ColumnMeta,
    EntityMap,
    EntityMeta,
    ForeignKeyMeta,
    ManyToMany,
    ManyToOne,
    OneToMany,
    OneToOne,
    Relation,
    RelationMeta,
)

__all__ = [
    "check_annotations",
    "expand_related_is",
    "foreign_key_columns",
    "link_maps",
    "relation_metas",
    "target_map",
]

Maps = dict[type, type[EntityMap[Any]]]


def target_map(owner: type[EntityMap[Any]], relation: Relation, maps: Maps) -> type[EntityMap[Any]]:
    """The mapping of the relation's target entity (given as a class or its name)."""
    target = relation.target
    for entity, map_class in maps.items():
        if entity is target or (isinstance(target, str) and entity.__name__ == target):
            return map_class
    name = target if isinstance(target, str) else getattr(target, "__name__", repr(target))
    raise ConfigurationError(
        f"{owner.__name__}.{relation.attribute} refers to {name}, which is not mapped in this "
        "registry"
    )


def key_column(
    map_class: type[EntityMap[Any]], hints: dict[str, Any], at: str
) -> tuple[str, t.ColumnType]:
    """The single key column (name, type) of a mapping the relation `at` points at."""
    keys = [(a, c) for a, c in map_class.__columns__.items() if c.primary_key]
    if len(keys) != 1:
        raise ConfigurationError(
            f"{at}: {map_class.__name__} has a composite key; relations can point only at "
            "entities with a single-column key"
        )
    attribute, column = keys[0]
    column_type = column.type or t.type_for_annotation(
        t.split_optional(hints.get(attribute, Any))[0]
    )
    if column_type is None:
        raise ConfigurationError(f"{map_class.__name__}.{attribute}: give the key a column type")
    return column.column_name, column_type


def check_annotations(maps: Maps, annotations_of: typing.Callable[[type], dict[str, Any]]) -> None:
    """Refuse a relation whose attribute's annotation does not fit it.

    A collection needs `list[Target]` (loading fills a list and diffs it by position-free
    identity, so a set or a single value would be silently misread); a reference needs
    `Target` or `Target | None`. Unannotated (Any) attributes are taken on trust.
    """
    for owner in maps.values():
        hints = annotations_of(owner.__entity__)
        for attribute, relation in owner.__relations__.items():
            target = target_map(owner, relation, maps).__entity__
            _check_annotation(owner, relation, hints.get(attribute, Any), target)


def _check_annotation(
    owner: type[EntityMap[Any]], relation: Relation, annotation: Any, target: type
) -> None:
    base = t.split_optional(annotation)[0]
    at = f"{owner.__name__}.{relation.attribute}"
    is_list = base is list or typing.get_origin(base) is list
    if relation.collection:
        if base is not Any and not is_list:
            raise ConfigurationError(
                f"{at}: a {type(relation).__name__} needs a list[{target.__name__}] attribute, "
                f"not {_name(base)}"
            )
        base = typing.get_args(base)[0] if typing.get_args(base) else Any
    elif is_list or typing.get_origin(base) in (set, frozenset, tuple, dict):
        raise ConfigurationError(
            f"{at}: a {type(relation).__name__} holds one {target.__name__}, but the attribute "
            f"is annotated {_name(base)}"
        )
    if base is not Any and isinstance(base, type) and not issubclass(target, base):
        raise ConfigurationError(
            f"{at} relates to {target.__name__}, but the attribute is annotated {_name(base)}"
        )


def _name(annotation: Any) -> str:
    return annotation.__name__ if isinstance(annotation, type) else str(annotation)


def foreign_key_columns(
    map_class: type[EntityMap[Any]],
    maps: Maps,
    hints: dict[str, Any],
    annotations_of: typing.Callable[[type], dict[str, Any]],
    first_position: int,
) -> list[ColumnMeta]:
    """The foreign key columns the mapping's many-to-one (and owning one-to-one) relations add."""
    columns = []
    position = first_position
    for attribute, relation in map_class.__relations__.items():
        if not isinstance(relation, ManyToOne) or relation.column is None:
            continue
        target = target_map(map_class, relation, maps)
        at = f"{map_class.__name__}.{attribute}"
        name, key_type = key_column(target, annotations_of(target.__entity__), at)
        optional = t.split_optional(hints.get(attribute, Any))[1]
        nullable = optional if relation.nullable is None else relation.nullable
        columns.append(
            ColumnMeta(
                attribute=relation.column,
                name=relation.column,
                type=key_type,
                position=position,
                nullable=nullable,
                unique=isinstance(relation, OneToOne),
                index=relation.index,
                foreign_key=ForeignKeyMeta(relation.column, target.__table__, name),
                via=attribute,
            )
        )
        position += 1
    return columns


def link_maps(maps: Maps, annotations_of: typing.Callable[[type], dict[str, Any]]) -> Maps:
    """A mapping for each many-to-many link table (one per table, shared by both sides)."""
    links: dict[str, type[EntityMap[Any]]] = {}
    result: Maps = {}
    mapped = {m.__table__.lower() for m in maps.values()}
    for owner in list(maps.values()):
        for relation in owner.__relations__.values():
            if not isinstance(relation, ManyToMany):
                continue
            at = f"{owner.__name__}.{relation.attribute}"
            if relation.through.lower() in mapped:
                raise ConfigurationError(
                    f"{at}: link table {relation.through!r} is already the table of a mapping; "
                    "name a table of its own"
                )
            target = target_map(owner, relation, maps)
            names = relation.link_columns or _default_link_columns(owner, target, relation)
            existing = links.get(relation.through.lower())
            if existing is not None:
                if set(existing.__columns__) != set(names):
                    raise ConfigurationError(
                        f"{at}: link table {relation.through!r} is declared with other columns "
                        "elsewhere"
                    )
                joined = _linked_tables(existing)
                if joined != {owner.__table__.lower(), target.__table__.lower()}:
                    raise ConfigurationError(
                        f"{at}: link table {relation.through!r} already links other tables "
                        f"({', '.join(sorted(joined))})"
                    )
                continue
            link = _link_map(owner, target, relation, names, annotations_of)
            links[relation.through.lower()] = link
            result[link.__entity__] = link
    return result


def _linked_tables(link: type[EntityMap[Any]]) -> set[str]:
    """The tables a link mapping built by `_link_map` joins (its references are "table.col")."""
    return {str(c.references).split(".")[0].lower() for c in link.__columns__.values()}


def _default_link_columns(
    owner: type[EntityMap[Any]], target: type[EntityMap[Any]], relation: ManyToMany
) -> tuple[str, str]:
    owner_column = f"{owner.__entity__.__name__.lower()}_id"
    target_column = f"{target.__entity__.__name__.lower()}_id"
    if owner_column == target_column:
        target_column = f"{relation.attribute}_id"
    return owner_column, target_column


def _link_map(
    owner: type[EntityMap[Any]],
    target: type[EntityMap[Any]],
    relation: ManyToMany,
    names: tuple[str, str],
    annotations_of: typing.Callable[[type], dict[str, Any]],
) -> type[EntityMap[Any]]:
    at = f"{owner.__name__}.{relation.attribute}"
    owner_key, owner_type = key_column(owner, annotations_of(owner.__entity__), at)
    target_key, target_type = key_column(target, annotations_of(target.__entity__), at)
    stem = f"{owner.__entity__.__name__}{relation.attribute.title().replace('_', '')}"
    entity = attrs.make_class(f"{stem}Link", [names[0], names[1]], frozen=True)

    def body(namespace: dict[str, Any]) -> None:
        namespace["__table__"] = relation.through
        namespace["__module__"] = __name__
        namespace[names[0]] = Column(
            owner_type, primary_key=True, references=f"{owner.__table__}.{owner_key}"
        )
        namespace[names[1]] = Column(
            target_type, primary_key=True, references=f"{target.__table__}.{target_key}"
        )

    base = EntityMap[entity]  # type: ignore[valid-type]
    link: type[EntityMap[Any]] = types.new_class(f"{stem}LinkMap", (base,), {}, body)
    return link


def relation_metas(metas: dict[type, EntityMeta], maps: Maps) -> None:
    """Fill every mapping's `relations` with compiled `RelationMeta`s."""
    by_map = {meta.map_class: meta for meta in metas.values()}
    by_table = {meta.table.lower(): meta for meta in metas.values()}
    for meta in list(metas.values()):
        owner = meta.map_class
        for attribute, relation in owner.__relations__.items():
            target = by_map[target_map(owner, relation, maps)]
            compiled = RelationMeta(relation, meta, target)
            if isinstance(relation, OneToMany) or (
                isinstance(relation, OneToOne) and relation.back is not None
            ):
                compiled.on_delete = relation.on_delete
            if isinstance(relation, ManyToOne) and relation.column is not None:
                compiled.column = meta.column(relation.column)
            elif isinstance(relation, ManyToMany):
                link = by_table[relation.through.lower()]
                first, second = link.primary_key
                if relation.link_columns is not None:
                    first, second = (link.column(name) for name in relation.link_columns)
                elif first.foreign_key is None or (
                    first.foreign_key.target_table.lower() != meta.table.lower()
                ):
                    first, second = second, first  # the other side declared the table
                compiled.link = link
                compiled.link_owner = first
                compiled.link_target = second
                if link.link_of is None:
                    object.__setattr__(link, "link_of", compiled)
            meta.relations[attribute] = compiled
    for meta in metas.values():
        for compiled in meta.relations.values():
            back = getattr(compiled.declaration, "back", None)
            if back is None:
                continue
            other = compiled.target.relations.get(back)
            if other is None or other.column is None or other.target is not meta:
                raise ConfigurationError(
                    f"{compiled.label}: back={back!r} must name a ManyToOne (or OneToOne with "
                    f"column=) of {compiled.target.map_class.__name__} that refers to "
                    f"{meta.name}"
                )
            compiled.back = other
            compiled.remote = other.column


def _compared_key(meta: EntityMeta, relation: RelationMeta, entity: Any) -> Any:
    """The key of the entity a relation is compared with, or a ValidationError."""
    target = relation.target
    if not isinstance(entity, target.entity):
        rule = f"expected a {target.name}, got {type(entity).__name__}"
        raise ValidationError([Violation(meta.name, relation.attribute, entity, rule)])
    key = getattr(entity, target.primary_key[0].attribute)
    if key is None:
        rule = f"this {target.name} has no key yet: flush it before comparing with it"
        raise ValidationError([Violation(meta.name, relation.attribute, entity, rule)])
    return key


def expand_related_is(meta: EntityMeta, criterion: Criterion) -> Criterion:
    """`UserMap.role == role` becomes `role_id = <role's key>` (or `IS NULL` for None).

    Run when a query is built, so the dialects see only column criteria and `Related`
    subqueries (whose inner criteria are expanded against the related mapping).
    """
    if isinstance(criterion, RelatedIs):
        relation = meta.relation_of(criterion.relation)
        if relation.collection:
            raise ConfigurationError(
                f"{relation.label}: == compares a single related entity; use .any() on a collection"
            )
        entity = criterion.entity
        target = relation.target
        key = None if entity is None else _compared_key(meta, relation, entity)
        if relation.column is None:  # the back side of a one-to-one: the key is theirs
            if key is None:
                return Not(Related(criterion.relation, None))
            target_key = ColumnRef(target.map_class, target.primary_key[0].attribute)
            return Related(criterion.relation, Comparison(target_key, "=", key))
        reference = ColumnRef(meta.map_class, relation.column.attribute)
        return IsNull(reference) if key is None else Comparison(reference, "=", key)
    if isinstance(criterion, And):
        return And(tuple(expand_related_is(meta, part) for part in criterion.parts))
    if isinstance(criterion, Or):
        return Or(tuple(expand_related_is(meta, part) for part in criterion.parts))
    if isinstance(criterion, Not):
        return Not(expand_related_is(meta, criterion.part))
    if isinstance(criterion, Related) and criterion.where is not None:
        target = meta.relation_of(criterion.relation).target
        return Related(criterion.relation, expand_related_is(target, criterion.where))
    return criterion
