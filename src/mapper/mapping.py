"""Mapping declarations and the compiled metadata they become.

Users subclass `EntityMap[Entity]` and declare `Column`s; those classes are declarations,
checked when the class is created for everything one mapping can know (GUARANTEES G10:
identifiers; attributes that exist; a primary key). `registry.py` compiles each declaration
into the read-only `EntityMeta` / `ColumnMeta` below, which the rest of the library uses.

Pure; imports no backend. Called by `registry.py`, read by `codec.py`, `schema.py`, the unit
of work and the dialects.
"""

from __future__ import annotations

import functools
import re
import typing
from collections.abc import Callable, Iterator
from typing import Any, ClassVar, Generic, Literal, TypeVar

import attrs

from mapper import types as t
from mapper.criteria import And, ColumnReference, Criterion, Not, Operand, Related, RelatedIs
from mapper.errors import ConfigurationError, InvalidMapping

__all__ = [
    "Column",
    "ColumnMeta",
    "EntityMap",
    "EntityMeta",
    "ForeignKeyMeta",
    "ManyToMany",
    "ManyToOne",
    "OneToMany",
    "OneToOne",
    "Relation",
    "RelationMeta",
    "check_identifier",
    "check_integer_role",
    "per_mapping",
]

T = TypeVar("T")

_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
# PostgreSQL silently truncates longer names; MySQL refuses names over 64.
MAX_IDENTIFIER_BYTES = 63
_NOTHING: Any = attrs.NOTHING


def check_identifier(name: object, what: str) -> str:
    """Return `name` if it is a plain SQL identifier, else raise `InvalidMapping`."""
    if not isinstance(name, str) or not _IDENTIFIER.match(name):
        raise InvalidMapping(
            f"{what} {name!r} is not a plain identifier: use letters, digits and _ "
            "(not starting with a digit); quotes, spaces and backslashes are refused"
        )
    if len(name.encode()) > MAX_IDENTIFIER_BYTES:
        raise InvalidMapping(f"{what} {name!r} is longer than {MAX_IDENTIFIER_BYTES} bytes")
    return name


class Column(Operand):
    """Declares that an entity attribute is stored in a table column.

    Arguments:
        type: the column type; omitted, it follows the attribute's annotation.
        primary_key: part of the primary key (several columns make a composite key).
        generated: the database generates the value on insert (integer keys only).
        nullable: may hold NULL; omitted, `X | None` annotations are nullable.
        unique, index: a unique constraint / a plain index on this column.
        default: a value, or a function of no arguments, used on insert when the
            attribute is None (a client-generated key such as `mapper.uuid7`).
        name: the database column name when it differs from the attribute.
        references: a foreign key: another mapped `Column`, or "table.column".
        version: an optimistic-concurrency counter, checked and bumped on every write.
    """

    __slots__ = (
        "_attribute",
        "_owner",
        "default",
        "generated",
        "index",
        "name",
        "nullable",
        "primary_key",
        "references",
        "type",
        "unique",
        "version",
    )
    _owner: type | None
    _attribute: str | None

    def __init__(
        self,
        type: t.ColumnType | None = None,
        *,
        primary_key: bool = False,
        generated: bool = False,
        nullable: bool | None = None,
        unique: bool = False,
        index: bool = False,
        default: Any = _NOTHING,
        name: str | None = None,
        references: Column | str | None = None,
        version: bool = False,
    ) -> None:
        if type is not None and not isinstance(type, t.ColumnType):
            raise InvalidMapping(
                f"Column type must be a mapper.types instance such as t.Integer(), got {type!r}"
            )
        self.type = type
        self.primary_key = primary_key
        self.generated = generated
        self.nullable = nullable
        self.unique = unique
        self.index = index
        self.default = default
        self.name = name
        self.references = references
        self.version = version
        self._owner = None
        self._attribute = None

    def __set_name__(self, owner: type, name: str) -> None:
        # A Column bound once keeps its first place; the mapping's own check reports reuse
        # (an error raised here would reach users wrapped in RuntimeError on Python 3.11).
        if self._owner is None:
            self._owner = owner
            self._attribute = name

    @property
    def owner(self) -> type:
        """The mapping class this column is declared on."""
        if self._owner is None:
            raise InvalidMapping("this Column is not declared on an EntityMap class")
        return self._owner

    @property
    def attribute(self) -> str:
        """The entity attribute this column stores."""
        if self._attribute is None:
            raise InvalidMapping("this Column is not declared on an EntityMap class")
        return self._attribute

    @property
    def column_name(self) -> str:
        """The database column name."""
        return self.name or self.attribute

    def __repr__(self) -> str:
        if self._owner is None:
            return "Column(<unbound>)"
        return f"{self._owner.__name__}.{self._attribute}"


class EntityMap(Generic[T]):
    """Base of mapping classes: `class UserMap(EntityMap[User])` maps `User` to a table.

    The mapping is a separate class; the entity stays a plain attrs class. Class attributes
    are `Column`s (and relations); `__table__` names the table.
    """

    __table__: ClassVar[str]
    __entity__: ClassVar[type]
    __columns__: ClassVar[dict[str, Column]]
    __relations__: ClassVar[dict[str, Relation]]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        entity = _entity_argument(cls)
        if entity is None:
            return  # a generic intermediate base, not a mapping
        cls.__entity__ = entity
        cls.__columns__ = {
            name: value for name, value in vars(cls).items() if isinstance(value, Column)
        }
        cls.__relations__ = {
            name: value for name, value in vars(cls).items() if isinstance(value, Relation)
        }
        _check_declaration(cls)

    def __init__(self) -> None:
        raise TypeError(f"{type(self).__name__} is a mapping declaration; it is not instantiated")


def _entity_argument(cls: type) -> type | None:
    for base in getattr(cls, "__orig_bases__", ()):
        if typing.get_origin(base) is EntityMap:
            (argument,) = typing.get_args(base)
            if isinstance(argument, TypeVar):
                return None
            if not isinstance(argument, type):
                raise InvalidMapping(
                    f"{cls.__name__}: EntityMap[...] takes an entity class, got {argument!r}"
                )
            return argument
    raise InvalidMapping(
        f"{cls.__name__} must subclass EntityMap[Entity] directly, naming the entity class"
    )


def _check_declaration(map_class: type[EntityMap[Any]]) -> None:
    """Everything that one mapping can get wrong on its own (InvalidMapping)."""
    where = map_class.__name__
    entity = map_class.__entity__
    if not attrs.has(entity):
        raise InvalidMapping(f"{where}: {entity.__name__} is not an attrs class")
    table = getattr(map_class, "__table__", None)
    if table is None:
        raise InvalidMapping(f"{where} has no __table__ naming its table")
    check_identifier(table, f"{where}.__table__")
    fields = {f.name: f for f in attrs.fields(entity)}
    columns = map_class.__columns__
    if not columns:
        raise InvalidMapping(f"{where} declares no Column")
    seen: dict[str, str] = {}
    for attribute, column in columns.items():
        at = f"{where}.{attribute}"
        if column._owner is not map_class or column._attribute != attribute:
            raise InvalidMapping(
                f"{at}: this Column object is already declared as {column!r}; "
                "create one Column per attribute"
            )
        if column.name is not None:
            check_identifier(column.name, f"{at} column name")
        if attribute not in fields:
            raise InvalidMapping(
                f"{at}: {entity.__name__} has no attribute {attribute!r} "
                f"(it has {', '.join(sorted(fields))})"
            )
        name = check_identifier(column.column_name, f"{at} column name")
        if name.lower() in seen:
            raise InvalidMapping(
                f"{at}: column name {name!r} is also used by {where}.{seen[name.lower()]}"
            )
        seen[name.lower()] = attribute
        if column.generated:
            if not column.primary_key:
                raise InvalidMapping(f"{at}: generated=True is for primary key columns")
            if column.type is not None:
                check_integer_role(at, column.type, "generated")
            if column.default is not _NOTHING:
                raise InvalidMapping(f"{at}: a generated key cannot also have a default")
        if column.version:
            if column.primary_key:
                raise InvalidMapping(f"{at}: a version column cannot be part of the key")
            if column.type is not None:
                check_integer_role(at, column.type, "version")
        if column.references is not None and not isinstance(column.references, (Column, str)):
            raise InvalidMapping(
                f"{at}: references= takes a mapped Column or 'table.column', "
                f"got {column.references!r}"
            )
        if isinstance(column.references, str):
            parts = column.references.split(".")
            if len(parts) != 2:
                raise InvalidMapping(
                    f"{at}: references={column.references!r} is not 'table.column'"
                )
            for part in parts:
                check_identifier(part, f"{at} references")
    primary = [a for a, c in columns.items() if c.primary_key]
    if not primary:
        raise InvalidMapping(f"{where} has no primary key column (Column(..., primary_key=True))")
    generated = [f"{where}.{a}" for a, c in columns.items() if c.generated]
    if len(generated) > 1:
        raise InvalidMapping(
            f"{where}: only one column can be generated by the database, not {', '.join(generated)}"
        )
    versions = [f"{where}.{a}" for a, c in columns.items() if c.version]
    if len(versions) > 1:
        raise InvalidMapping(
            f"{where}: only one column can be the version column, not {', '.join(versions)}"
        )
    relations = map_class.__relations__
    for attribute, relation in relations.items():
        _check_relation(map_class, attribute, relation, fields, seen)
    for name, field in fields.items():
        if name not in columns and name not in relations and field.default is _NOTHING:
            raise InvalidMapping(
                f"{where}: {entity.__name__}.{name} is not mapped and has no default, so a "
                "loaded entity could not be built; map it or give it a default"
            )


def _check_relation(
    map_class: type[EntityMap[Any]],
    attribute: str,
    relation: Relation,
    fields: dict[str, Any],
    columns: dict[str, str],
) -> None:
    at = f"{map_class.__name__}.{attribute}"
    entity = map_class.__entity__
    if relation._owner is not map_class or relation._attribute != attribute:
        raise InvalidMapping(f"{at}: this relation object is already declared as {relation!r}")
    if attribute not in fields:
        raise InvalidMapping(
            f"{at}: {entity.__name__} has no attribute {attribute!r} to hold the relation"
        )
    if attribute in map_class.__columns__:
        raise InvalidMapping(f"{at} is declared both as a Column and as a relation")
    if not isinstance(relation.target, (type, str)):
        raise InvalidMapping(f"{at}: the related entity must be a class, got {relation.target!r}")
    column = getattr(relation, "column", None)
    if column is not None:
        check_identifier(column, f"{at} column")
        if column.lower() in columns:
            raise InvalidMapping(
                f"{at}: column {column!r} is written by this relation; do not also map "
                f"{map_class.__name__}.{columns[column.lower()]} to it"
            )
        columns[column.lower()] = attribute
    through = getattr(relation, "through", None)
    if through is not None:
        check_identifier(through, f"{at} through")
    for name in getattr(relation, "link_columns", None) or ():
        check_identifier(name, f"{at} link column")


def check_integer_role(at: str, column_type: t.ColumnType, role: str) -> None:
    """Generated keys and version columns must be integers (checked again once inferred)."""
    if isinstance(column_type, t.IntegerType):
        return
    if role == "generated":
        raise InvalidMapping(
            f"{at}: only integer keys can be generated by the database; use a "
            "client-generated default (default=mapper.uuid7) for other key types"
        )
    raise InvalidMapping(f"{at}: a version column must be an integer type")


OnDelete = Literal["restrict", "cascade", "set_null"]
_ON_DELETE = ("restrict", "cascade", "set_null")


class Relation:
    """Base of the relation declarations of a mapping (`ManyToOne`, `OneToMany`, ...).

    The entity attribute holds the related entity (or a list of them); until a query loads
    it, a loaded entity holds a placeholder that raises `RelationNotLoaded`.
    """

    kind: ClassVar[str]
    collection: ClassVar[bool] = False
    _owner: type | None
    _attribute: str | None

    def __init__(self, target: type | str) -> None:
        self.target = target
        self._owner = None
        self._attribute = None

    def __set_name__(self, owner: type, name: str) -> None:
        if self._owner is None:
            self._owner = owner
            self._attribute = name

    @property
    def owner(self) -> type:
        if self._owner is None:
            raise InvalidMapping("this relation is not declared on an EntityMap class")
        return self._owner

    @property
    def attribute(self) -> str:
        if self._attribute is None:
            raise InvalidMapping("this relation is not declared on an EntityMap class")
        return self._attribute

    def __repr__(self) -> str:
        if self._owner is None:
            return f"{type(self).__name__}(<unbound>)"
        return f"{self._owner.__name__}.{self._attribute}"

    __hash__ = object.__hash__


def _where(criteria: tuple[Criterion, ...]) -> Criterion | None:
    if not criteria:
        return None
    return criteria[0] if len(criteria) == 1 else And.of(*criteria)


def _on_delete(value: str) -> OnDelete:
    if value not in _ON_DELETE:
        raise InvalidMapping(f"on_delete must be one of {', '.join(_ON_DELETE)}, got {value!r}")
    return typing.cast(OnDelete, value)


class ManyToOne(Relation):
    """Each entity refers to at most one target, through the foreign key `column`.

    The column is created in this mapping's table with the target key's type; the entity
    has no attribute for it (`role = ManyToOne(Role, column="role_id")`).
    """

    kind: ClassVar[str] = "many_to_one"

    def __init__(
        self,
        target: type | str,
        *,
        column: str,
        nullable: bool | None = None,
        index: bool = True,
    ) -> None:
        super().__init__(target)
        self.column = column
        self.nullable = nullable
        self.index = index

    def has(self, *criteria: Criterion) -> Criterion:
        """The related entity exists and matches all `criteria`."""
        return Related(self, _where(criteria))

    def __eq__(self, other: object) -> Criterion:  # type: ignore[override]
        """Refers to `other` (an entity with a key), or with None to nothing."""
        return RelatedIs(self, other)

    def __ne__(self, other: object) -> Criterion:  # type: ignore[override]
        """Refers to something other than `other` (unknown, like SQL's <>, when NULL)."""
        return Not(RelatedIs(self, other))

    def is_null(self) -> Criterion:
        """Refers to nothing."""
        return RelatedIs(self, None)

    def is_not_null(self) -> Criterion:
        """Refers to something."""
        return Not(RelatedIs(self, None))

    __hash__ = Relation.__hash__


class OneToOne(ManyToOne):
    """At most one target: the owning side has `column` (unique), the other names `back`."""

    kind: ClassVar[str] = "one_to_one"

    def __init__(
        self,
        target: type | str,
        *,
        column: str | None = None,
        back: str | None = None,
        nullable: bool | None = None,
        on_delete: str = "restrict",
    ) -> None:
        if (column is None) == (back is None):
            raise InvalidMapping("OneToOne takes column= (the owning side) or back= (the other)")
        Relation.__init__(self, target)
        self.column = column  # type: ignore[assignment]
        self.back = back
        self.nullable = nullable
        self.index = False  # the unique constraint indexes it
        self.on_delete = _on_delete(on_delete)

    __hash__ = Relation.__hash__


class OneToMany(Relation):
    """The targets whose many-to-one relation `back` refers to this entity.

    `on_delete` says what removing this entity does to them: refuse while they exist
    ("restrict"), remove them too ("cascade") or clear their reference ("set_null").
    """

    kind: ClassVar[str] = "one_to_many"
    collection: ClassVar[bool] = True

    def __init__(self, target: type | str, *, back: str, on_delete: str = "restrict") -> None:
        super().__init__(target)
        self.back = back
        self.on_delete = _on_delete(on_delete)

    def any(self, *criteria: Criterion) -> Criterion:
        """Some related entity matches all `criteria` (any at all without criteria)."""
        return Related(self, _where(criteria))


class ManyToMany(Relation):
    """Targets linked through the table `through` (created by `create_all`).

    Its two columns default to `<owner entity>_id` and `<target entity>_id` (the relation's
    name for the second when the entity refers to its own kind); `link_columns` names them.
    Removing an entity removes its links.
    """

    kind: ClassVar[str] = "many_to_many"
    collection: ClassVar[bool] = True

    def __init__(
        self,
        target: type | str,
        *,
        through: str,
        link_columns: tuple[str, str] | None = None,
    ) -> None:
        super().__init__(target)
        self.through = through
        self.link_columns = link_columns

    def any(self, *criteria: Criterion) -> Criterion:
        """Some linked entity matches all `criteria` (any at all without criteria)."""
        return Related(self, _where(criteria))


RelationKind = Literal["many_to_one", "one_to_one", "one_to_many", "many_to_many"]


@attrs.define(eq=False)
class RelationMeta:
    """A compiled relation: which tables and columns connect `owner` to `target`."""

    declaration: Relation
    owner: EntityMeta
    target: EntityMeta
    column: ColumnMeta | None = None
    """The foreign key in the owner's table (many-to-one, owning one-to-one)."""
    remote: ColumnMeta | None = None
    """The foreign key in the target's table (one-to-many, the other side of one-to-one)."""
    back: RelationMeta | None = None
    """The target's relation that holds `remote` (one-to-many, one-to-one by back=)."""
    link: EntityMeta | None = None
    link_owner: ColumnMeta | None = None
    link_target: ColumnMeta | None = None
    on_delete: OnDelete = "restrict"

    @functools.cached_property  # read per row on hot paths
    def attribute(self) -> str:
        return self.declaration.attribute

    @functools.cached_property  # read per row on hot paths
    def collection(self) -> bool:
        return self.declaration.collection

    @property
    def single(self) -> bool:
        """Holds one entity (or None) rather than a list."""
        return not self.declaration.collection

    @property
    def label(self) -> str:
        return f"{self.owner.name}.{self.attribute}"

    @property
    def load_hint(self) -> str:
        return f"load=[{self.owner.map_class.__name__}.{self.attribute}]"

    def __repr__(self) -> str:
        return f"RelationMeta({self.label} -> {self.target.name})"


@attrs.frozen
class ForeignKeyMeta:
    """A compiled foreign key: this mapping's column refers to another table's column."""

    column: str
    target_table: str
    target_column: str


@attrs.frozen
class ColumnMeta:
    """A compiled column: what `Column` declared, with annotations and defaults resolved."""

    attribute: str
    name: str
    type: t.ColumnType
    position: int
    nullable: bool
    primary_key: bool = False
    generated: bool = False
    unique: bool = False
    index: bool = False
    version: bool = False
    default: Callable[[], Any] | None = None
    foreign_key: ForeignKeyMeta | None = None
    via: str | None = None
    """For a foreign key a relation maintains: the relation attribute its value comes from
    (the entity has no attribute for the column itself)."""

    @property
    def label(self) -> str:
        """The name users know this column by: its attribute, or its relation's."""
        return self.via or self.attribute

    def default_value(self) -> Any:
        return None if self.default is None else self.default()

    def operand_rule(self, value: Any, pattern: bool = False) -> str | None:
        """Why `value` cannot be compared with this column in a criterion, or None."""
        if value is None:
            return "None in a comparison matches nothing; use is_null()"
        return self.type.check_operand(value, pattern)


@attrs.frozen(eq=False)
class EntityMeta:
    """Everything the library knows about one mapped entity, compiled by the registry.

    `columns` are in declaration order; row tuples everywhere follow that order.
    """

    entity: type
    map_class: type[EntityMap[Any]]
    table: str
    columns: tuple[ColumnMeta, ...]
    primary_key: tuple[ColumnMeta, ...]
    generated: ColumnMeta | None
    version: ColumnMeta | None
    foreign_keys: tuple[ForeignKeyMeta, ...]
    by_attribute: dict[str, ColumnMeta] = attrs.field(repr=False)
    loading_defaults: tuple[tuple[str, Any], ...] = attrs.field(repr=False)
    """Unmapped attributes and the attrs default a loaded entity gets for them."""
    compiled: dict[object, Any] = attrs.field(factory=dict, repr=False, init=False)
    """Artifacts compiled from this mapping on first use (codecs, per dialect)."""
    relations: dict[str, RelationMeta] = attrs.field(factory=dict, repr=False, init=False)
    """The compiled relations, by attribute; filled in once every mapping is compiled."""
    link_of: RelationMeta | None = attrs.field(default=None, repr=False, init=False)
    """For the link table of a many-to-many relation: that relation."""

    @property
    def name(self) -> str:
        return self.entity.__name__

    @functools.cached_property  # read per row on hot paths
    def composite_key(self) -> bool:
        return len(self.primary_key) > 1

    def column(self, attribute: str) -> ColumnMeta:
        return self.by_attribute[attribute]

    def column_of(self, reference: ColumnReference) -> ColumnMeta:
        """The compiled column a criterion refers to; it must belong to this mapping."""
        if reference.owner is not self.map_class:
            raise ConfigurationError(
                f"{reference!r} belongs to {reference.owner.__name__}, not to "
                f"{self.map_class.__name__} which this query reads"
            )
        return self.by_attribute[reference.attribute]

    def relation_of(self, reference: Any) -> RelationMeta:
        """The compiled relation a criterion or `load=` path refers to."""
        if reference.owner is not self.map_class or reference.attribute not in self.relations:
            raise ConfigurationError(
                f"{reference!r} is not a relation of {self.map_class.__name__}, "
                "which this query reads"
            )
        return self.relations[reference.attribute]

    def iter_names(self) -> Iterator[str]:
        return (c.name for c in self.columns)

    def __repr__(self) -> str:
        return f"EntityMeta({self.name} -> {self.table})"


def per_mapping(build: Callable[[EntityMeta], T]) -> Callable[[EntityMeta], T]:
    """`build(meta)`, made on first use and kept in `meta.compiled` (codecs, checks, plans).

    A decorator for the functions that derive something from a mapping alone: the
    mapping's metadata is frozen once the registry completes, so what they make stays true.
    """

    def made(meta: EntityMeta) -> T:
        found: T | None = meta.compiled.get(made)
        if found is None:
            found = meta.compiled[made] = build(meta)
        return found

    return functools.update_wrapper(made, build)
