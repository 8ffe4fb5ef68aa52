"""Registry: which mapping maps which entity, and the compiled metadata of all of them.

`@registry.map` records a mapping class; `configure()` (run on first use) compiles every
declaration into `EntityMeta`, resolving annotations, foreign keys and mappings that refer
to mappings declared after them, and raises `ConfigurationError` before any SQL if something
refers to what was never mapped. Custom repository classes are registered here too.

Pure. Used by users, `schema.py`, the unit of work and the dialects.
"""

from __future__ import annotations

import decimal
import graphlib
import sys
import typing
from collections.abc import Callable, Iterator
from typing import Any, Optional, TypeVar

import attrs

from mapper import types as t
from mapper.errors import ConfigurationError, InvalidMapping
from mapper.mapping import (
    Column,
    ColumnMeta,
    EntityMap,
    EntityMeta,
    ForeignKeyMeta,
    check_integer_role,
)
from mapper.relations import check_annotations, foreign_key_columns, link_maps, relation_metas

__all__ = ["Registry"]

M = TypeVar("M", bound=type[EntityMap[Any]])
_NOTHING: Any = attrs.NOTHING


class Registry:
    """Holds the mappings of one application and compiles them into metadata."""

    def __init__(self) -> None:
        self._maps: dict[type, type[EntityMap[Any]]] = {}
        self._repositories: dict[type, type] = {}
        self._metas: dict[type, EntityMeta] | None = None
        self._by_map: dict[type, EntityMeta] = {}
        self._order: tuple[EntityMeta, ...] = ()

    def map(self, map_class: M) -> M:
        """Register a mapping class; use as a class decorator."""
        if not (isinstance(map_class, type) and issubclass(map_class, EntityMap)):
            raise InvalidMapping(f"registry.map takes an EntityMap subclass, got {map_class!r}")
        entity = getattr(map_class, "__entity__", None)
        if entity is None:
            raise InvalidMapping(f"{map_class.__name__} does not name its entity: EntityMap[X]")
        existing = self._maps.get(entity)
        if existing is not None and existing is not map_class:
            raise InvalidMapping(
                f"{entity.__name__} is already mapped by {existing.__name__}; "
                f"{map_class.__name__} cannot map it again"
            )
        for other in self._maps.values():
            if other is not map_class and other.__table__.lower() == map_class.__table__.lower():
                raise InvalidMapping(
                    f"{map_class.__name__} and {other.__name__} both use table "
                    f"{map_class.__table__!r}"
                )
        self._maps[entity] = map_class
        self._metas = None
        return map_class

    def repository(self, entity: type, repository_class: type) -> None:
        """Use `repository_class` (a `Repository[entity]` subclass) for `entity`."""
        # Repository lives in uow/, above this module; it marks itself instead of being imported.
        if not (
            isinstance(repository_class, type)
            and getattr(repository_class, "__mapper_repository__", False) is True
        ):
            raise ConfigurationError(
                f"registry.repository({entity.__name__}, ...) needs a Repository subclass, "
                f"got {repository_class!r}"
            )
        self._repositories[entity] = repository_class

    def repository_class(self, entity: type) -> type | None:
        """The custom repository class registered for `entity`, if any."""
        return self._repositories.get(entity)

    def configure(self) -> None:
        """Compile every mapping; raise `ConfigurationError` for anything unresolved."""
        if self._metas is not None:
            return
        if not self._maps:
            raise ConfigurationError("the registry has no mappings; decorate them @registry.map")
        check_annotations(self._maps, _annotations)
        maps = {**self._maps, **link_maps(self._maps, _annotations)}
        tables = {m.__table__.lower(): m for m in maps.values()}
        metas: dict[type, EntityMeta] = {}
        for entity, map_class in maps.items():
            metas[entity] = _compile(map_class, maps, tables)
        relation_metas(metas, maps)
        _check_foreign_key_types(metas)
        self._order = _dependency_order(tuple(metas.values()))
        self._metas = metas
        self._by_map = {meta.map_class: meta for meta in metas.values()}

    @property
    def configured(self) -> bool:
        return self._metas is not None

    def _compiled(self) -> dict[type, EntityMeta]:
        self.configure()
        metas = self._metas
        if metas is None:  # pragma: no cover - configure() sets it or raises
            raise ConfigurationError("registry failed to configure")
        return metas

    def meta(self, entity: type) -> EntityMeta:
        """The compiled metadata of `entity`; `ConfigurationError` if it is not mapped."""
        try:
            return self._compiled()[entity]
        except KeyError:
            name = getattr(entity, "__name__", repr(entity))
            raise ConfigurationError(
                f"{name} is not mapped in this registry (mapped: {self._names()})"
            ) from None

    def meta_for_map(self, map_class: type) -> EntityMeta:
        """The compiled metadata of the mapping class `map_class`."""
        self._compiled()
        try:
            return self._by_map[map_class]
        except KeyError:
            raise ConfigurationError(
                f"{map_class.__name__} is not registered in this registry"
            ) from None

    def meta_for_column(self, column: Column) -> tuple[EntityMeta, ColumnMeta]:
        """The mapping and compiled column behind a column used in criteria."""
        meta = self.meta_for_map(column.owner)
        return meta, meta.column(column.attribute)

    def metas(self) -> tuple[EntityMeta, ...]:
        """All compiled mappings, in registration order."""
        return tuple(self._compiled().values())

    def table_order(self) -> tuple[EntityMeta, ...]:
        """All mappings with every table after the tables its foreign keys point at."""
        self._compiled()
        return self._order

    def __iter__(self) -> Iterator[EntityMeta]:
        return iter(self.metas())

    def _names(self) -> str:
        return ", ".join(e.__name__ for e in self._maps) or "none"

    def __repr__(self) -> str:
        return f"<Registry of {self._names()}>"


def _check_foreign_key_types(metas: dict[type, EntityMeta]) -> None:
    """A foreign key column holds the same kind of value as the column it points at."""
    by_table = {meta.table.lower(): meta for meta in metas.values()}
    for meta in metas.values():
        for column in meta.columns:
            fk = column.foreign_key
            if fk is None:
                continue
            target = by_table[fk.target_table.lower()]
            pointed = next(c for c in target.columns if c.name == fk.target_column)
            if column.type.python_type != pointed.type.python_type:
                raise ConfigurationError(
                    f"{meta.map_class.__name__}.{column.attribute} is "
                    f"{type(column.type).__name__} but references "
                    f"{target.map_class.__name__}.{pointed.attribute}, which is "
                    f"{type(pointed.type).__name__}"
                )


def _dependency_order(metas: tuple[EntityMeta, ...]) -> tuple[EntityMeta, ...]:
    """Parents before children by foreign key (graphlib); self-references do not count.

    Tables whose foreign keys form a cycle are ordered by leaving out a nullable foreign key
    of the cycle: rows then go in with that column NULL and get it by an update once their
    target is in (the unit of work does this when it meets a key not yet known).
    """
    by_table = {meta.table.lower(): meta for meta in metas}
    edges: dict[tuple[str, str], bool] = {}  # (child, parent) -> every such key nullable
    for meta in metas:
        child = meta.table.lower()
        for column in meta.columns:
            fk = column.foreign_key
            if fk is None or fk.target_table.lower() == child:
                continue
            edge = (child, fk.target_table.lower())
            edges[edge] = edges.get(edge, True) and column.nullable
    left_out: set[tuple[str, str]] = set()
    while True:
        sorter: graphlib.TopologicalSorter[str] = graphlib.TopologicalSorter()
        for table in by_table:
            sorter.add(table)
        for (child, parent), _ in edges.items():
            if (child, parent) not in left_out:
                sorter.add(child, parent)
        try:
            order = list(sorter.static_order())
            break
        except graphlib.CycleError as error:
            cycle = list(error.args[1])
            links = list(zip(cycle[1:], cycle[:-1], strict=True))  # (child, parent) pairs
            breakable = [link for link in links if edges.get(link)]
            if not breakable:
                path = " -> ".join(str(table) for table in cycle)
                raise ConfigurationError(
                    f"foreign keys form a cycle between tables ({path}) and none of them is "
                    "nullable; make one nullable so rows can be inserted before their target"
                ) from None
            left_out.add(breakable[0])
    return tuple(by_table[table] for table in order)


def _annotations(entity: type) -> dict[str, Any]:
    """The entity's resolved annotations; unresolvable ones become Any."""
    try:
        return typing.get_type_hints(entity)
    except Exception:
        module = vars(sys.modules.get(entity.__module__, sys))
        resolved: dict[str, Any] = {}
        for field in attrs.fields(entity):
            annotation = field.type
            if isinstance(annotation, str):
                try:
                    annotation = eval(annotation, module, {})
                except Exception:
                    # Unresolvable (a TYPE_CHECKING import, say): keep what the text says
                    # about None, so an optional attribute stays nullable.
                    annotation = Optional[Any] if _names_none(annotation) else Any  # noqa: UP045
            resolved[field.name] = Any if annotation is None else annotation
        return resolved


def _names_none(annotation: str) -> bool:
    compact = annotation.replace(" ", "")
    return "|None" in compact or "None|" in compact or compact.startswith("Optional[")


def _as_factory(default: Any) -> Callable[[], Any] | None:
    if default is _NOTHING:
        return None
    if callable(default):
        return typing.cast(Callable[[], Any], default)
    return lambda: default


def _compile(
    map_class: type[EntityMap[Any]],
    maps: dict[type, type[EntityMap[Any]]],
    tables: dict[str, type[EntityMap[Any]]],
) -> EntityMeta:
    entity = map_class.__entity__
    where = map_class.__name__
    hints = _annotations(entity)
    columns: list[ColumnMeta] = []
    for position, (attribute, column) in enumerate(map_class.__columns__.items()):
        at = f"{where}.{attribute}"
        annotation, optional = t.split_optional(hints.get(attribute, Any))
        column_type = column.type or t.type_for_annotation(annotation)
        if column_type is None:
            example = "t.Decimal(12, 2)" if annotation is decimal.Decimal else "t.String(100)"
            raise ConfigurationError(
                f"{at}: cannot tell the column type from the annotation {annotation!r}; "
                f"pass one, e.g. Column({example})"
            )
        if column.generated:
            check_integer_role(at, column_type, "generated")
        if column.version:
            check_integer_role(at, column_type, "version")
        if not column_type.accepts_annotation(annotation):
            raise ConfigurationError(
                f"{at}: {type(column_type).__name__} does not fit the annotation "
                f"{getattr(annotation, '__name__', annotation)!r} of {entity.__name__}.{attribute}"
            )
        column_type = column_type.for_annotation(annotation)
        nullable = optional if column.nullable is None else column.nullable
        if column.primary_key:
            if column.nullable:
                raise ConfigurationError(f"{at}: a primary key column cannot be nullable")
            nullable = False
        foreign_key = None
        if column.references is not None:
            foreign_key = _resolve_reference(at, column, maps, tables)
        columns.append(
            ColumnMeta(
                attribute=attribute,
                name=column.column_name,
                type=column_type,
                position=position,
                nullable=nullable,
                primary_key=column.primary_key,
                generated=column.generated,
                unique=column.unique,
                index=column.index,
                version=column.version,
                default=_as_factory(column.default),
                foreign_key=foreign_key,
            )
        )
    columns += foreign_key_columns(map_class, maps, hints, _annotations, len(columns))
    # Attributes a loaded entity fills from defaults: neither columns nor relations (those
    # get what the row says, or a not-loaded placeholder).
    mapped = {c.attribute for c in columns} | set(map_class.__relations__)
    loading_defaults = tuple(
        (f.name, f.default) for f in attrs.fields(entity) if f.name not in mapped
    )
    return EntityMeta(
        entity=entity,
        map_class=map_class,
        table=map_class.__table__,
        columns=tuple(columns),
        primary_key=tuple(c for c in columns if c.primary_key),
        generated=next((c for c in columns if c.generated), None),
        version=next((c for c in columns if c.version), None),
        foreign_keys=tuple(c.foreign_key for c in columns if c.foreign_key is not None),
        by_attribute={c.attribute: c for c in columns},
        loading_defaults=loading_defaults,
    )


def _resolve_reference(
    at: str,
    column: Column,
    maps: dict[type, type[EntityMap[Any]]],
    tables: dict[str, type[EntityMap[Any]]],
) -> ForeignKeyMeta:
    reference = column.references
    target_map: type[EntityMap[Any]]
    if isinstance(reference, Column):
        target_map = reference.owner
        if target_map not in maps.values():
            raise ConfigurationError(
                f"{at} references {reference!r}, but {target_map.__name__} is not registered "
                "in this registry"
            )
        target = reference
    else:
        table_name, column_name = str(reference).split(".")
        found = tables.get(table_name.lower())
        if found is None:
            raise ConfigurationError(
                f"{at} references {reference!r}, but no mapping in this registry uses table "
                f"{table_name!r}"
            )
        target_map = found
        matches = [
            c
            for c in target_map.__columns__.values()
            if column_name in (c.attribute, c.column_name)
        ]
        if not matches:
            raise ConfigurationError(
                f"{at} references {reference!r}, but {target_map.__name__} has no such column"
            )
        target = matches[0]
    sole_key = (
        target.primary_key and sum(c.primary_key for c in target_map.__columns__.values()) == 1
    )
    if not (sole_key or target.unique):
        raise ConfigurationError(
            f"{at} references {target!r}, which is neither the whole primary key nor unique"
        )
    return ForeignKeyMeta(
        column=column.column_name,
        target_table=target_map.__table__,
        target_column=target.column_name,
    )
