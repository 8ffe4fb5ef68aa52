"""Unit tests of relations: declarations, compiled metadata, link tables, placeholders, SQL.

No database. Declaring a relation wrongly fails when the mapping class is created
(`InvalidMapping`) or when the registry compiles (`ConfigurationError`), naming the mapping
and the relation at fault. Link tables compile to mappings of their own, shared by both sides.
Placeholders refuse every use with `RelationNotLoaded`. Criteria across relations compile to
`IN (subquery)` on PostgreSQL and SQLite, pinned here with their parameters, as is the one
join that loads a many-to-many relation.
"""

from __future__ import annotations

import operator
import uuid
from collections.abc import Callable
from typing import Any

import attrs
import pytest

from mapper import (
    Column,
    ConfigurationError,
    EntityMap,
    InvalidMapping,
    ManyToMany,
    ManyToOne,
    MapperError,
    OneToMany,
    OneToOne,
    Registry,
    RelationNotLoaded,
)
from mapper import types as t
from mapper.criteria import Criterion
from mapper.dialects.base import SqlCompiler
from mapper.dialects.postgres import PostgresCompiler, PostgresDialect
from mapper.dialects.sqlite import SqliteCompiler, SqliteDialect
from mapper.mapping import EntityMeta, ForeignKeyMeta, RelationMeta
from mapper.operations import Select, SelectLinked
from mapper.placeholders import (
    NotLoadedCollection,
    NotLoadedReference,
    is_placeholder,
    placeholder_key,
)
from mapper.relations import expand_related_is
from mapper.schema import create_statements

# -- a domain with every kind of relation -------------------------------------------------------


@attrs.define
class Role:
    name: str
    users: list[User] = attrs.Factory(list)
    id: int | None = None


@attrs.define
class Tag:
    code: str
    label: str
    users: list[User] = attrs.Factory(list)


@attrs.define
class User:
    name: str
    role: Role | None = None
    manager: User | None = None
    reports: list[User] = attrs.Factory(list)
    tags: list[Tag] = attrs.Factory(list)
    friends: list[User] = attrs.Factory(list)
    badge: Badge | None = None
    id: int | None = None


@attrs.define
class Badge:
    token: uuid.UUID
    owner: User | None = None


registry = Registry()


@registry.map
class RoleMap(EntityMap[Role]):
    __table__ = "roles"
    id = Column(t.Integer(), primary_key=True, generated=True)
    name = Column(t.String(20))
    users = OneToMany(User, back="role", on_delete="set_null")


@registry.map
class TagMap(EntityMap[Tag]):
    __table__ = "tags"
    code = Column(t.String(12), primary_key=True)
    label = Column(t.Text())
    users = ManyToMany(User, through="user_tags")


@registry.map
class UserMap(EntityMap[User]):
    __table__ = "users"
    id = Column(t.BigInteger(), primary_key=True, generated=True)
    name = Column(t.String(20))
    role = ManyToOne(Role, column="role_id")
    manager = ManyToOne("User", column="manager_id")
    reports = OneToMany(User, back="manager")
    tags = ManyToMany(Tag, through="user_tags")
    friends = ManyToMany(User, through="friendships")
    badge = OneToOne(Badge, back="owner", on_delete="cascade")


@registry.map
class BadgeMap(EntityMap[Badge]):
    __table__ = "badges"
    token = Column(t.UUID(), primary_key=True)
    owner = OneToOne(User, column="owner_id", nullable=False)


def _meta(entity: type) -> EntityMeta:
    return registry.meta(entity)


def _relation(entity: type, attribute: str) -> RelationMeta:
    return _meta(entity).relations[attribute]


def _postgres() -> PostgresCompiler:
    return PostgresCompiler(object.__new__(PostgresDialect).make_capabilities())


def _sqlite() -> SqliteCompiler:
    return SqliteCompiler(object.__new__(SqliteDialect).make_capabilities())


def _configure(*maps: type[EntityMap[Any]]) -> Registry:
    """A registry of `maps`, compiled (raising what compiling raises)."""
    fresh = Registry()
    for map_class in maps:
        fresh.map(map_class)
    fresh.configure()
    return fresh


# -- declarations refused when the mapping class is created --------------------------------------


@attrs.define
class Owner:
    name: str
    role: Role | None = None
    role_id: int | None = None
    other: Role | None = None
    roles: list[Role] = attrs.Factory(list)
    id: int | None = None


class TestDeclarations:
    def test_one_to_one_needs_column_or_back(self) -> None:
        """OneToOne with neither column= nor back= is refused, saying which to give."""
        with pytest.raises(InvalidMapping, match=r"column= \(the owning side\) or back="):
            OneToOne(Role)

    def test_one_to_one_takes_only_one_of_column_and_back(self) -> None:
        """OneToOne with both column= and back= is refused."""
        with pytest.raises(InvalidMapping, match="OneToOne takes column="):
            OneToOne(Role, column="role_id", back="owner")

    @pytest.mark.parametrize("rule", ["nullify", "CASCADE", ""])
    def test_an_unknown_delete_rule_is_refused(self, rule: str) -> None:
        """on_delete must be restrict, cascade or set_null; the message lists them."""
        with pytest.raises(InvalidMapping, match="restrict, cascade, set_null"):
            OneToMany(User, back="role", on_delete=rule)

    def test_a_relation_for_a_missing_attribute_is_refused(self) -> None:
        """A relation on an attribute the entity lacks names mapping and attribute."""
        with pytest.raises(InvalidMapping, match=r"OwnerMap\.boss: Owner has no attribute 'boss'"):

            class OwnerMap(EntityMap[Owner]):
                __table__ = "owners"
                id = Column(t.Integer(), primary_key=True)
                name = Column(t.Text())
                boss = ManyToOne(User, column="boss_id")

    def test_a_foreign_key_column_clashing_with_a_column_is_refused(self) -> None:
        """ManyToOne(column="role_id") beside a mapped role_id column is refused."""
        with pytest.raises(InvalidMapping, match=r"OwnerMap\.role: column 'role_id' is written"):

            class OwnerMap(EntityMap[Owner]):
                __table__ = "owners"
                id = Column(t.Integer(), primary_key=True)
                name = Column(t.Text())
                role_id = Column(t.Integer())
                role = ManyToOne(Role, column="role_id")

    def test_a_foreign_key_column_clashing_with_a_renamed_column_is_refused(self) -> None:
        """A relation column equal to another column's database name (any case) is refused."""
        with pytest.raises(InvalidMapping, match=r"OwnerMap\.role: column 'ROLE_REF'"):

            class OwnerMap(EntityMap[Owner]):
                __table__ = "owners"
                id = Column(t.Integer(), primary_key=True)
                name = Column(t.Text(), name="role_ref")
                role = ManyToOne(Role, column="ROLE_REF")

    def test_two_relations_writing_one_column_are_refused(self) -> None:
        """Two many-to-one relations with the same column name are refused."""
        with pytest.raises(InvalidMapping, match=r"OwnerMap\.other: column 'role_fk'"):

            class OwnerMap(EntityMap[Owner]):
                __table__ = "owners"
                id = Column(t.Integer(), primary_key=True)
                name = Column(t.Text())
                role = ManyToOne(Role, column="role_fk")
                other = ManyToOne(Role, column="role_fk")

    @pytest.mark.parametrize("column", ["role id", "1role", 'role"id'])
    def test_a_foreign_key_column_must_be_an_identifier(self, column: str) -> None:
        """A relation's column= that is not a plain identifier is refused."""
        with pytest.raises(InvalidMapping, match="not a plain identifier"):

            class OwnerMap(EntityMap[Owner]):
                __table__ = "owners"
                id = Column(t.Integer(), primary_key=True)
                name = Column(t.Text())
                role = ManyToOne(Role, column=column)

    def test_a_link_table_must_be_an_identifier(self) -> None:
        """ManyToMany(through=...) that is not a plain identifier is refused."""
        with pytest.raises(InvalidMapping, match=r"OwnerMap\.roles through"):

            class OwnerMap(EntityMap[Owner]):
                __table__ = "owners"
                id = Column(t.Integer(), primary_key=True)
                name = Column(t.Text())
                roles = ManyToMany(Role, through="owner roles")

    def test_link_columns_must_be_identifiers(self) -> None:
        """ManyToMany(link_columns=...) with a bad name is refused."""
        with pytest.raises(InvalidMapping, match="link column"):

            class OwnerMap(EntityMap[Owner]):
                __table__ = "owners"
                id = Column(t.Integer(), primary_key=True)
                name = Column(t.Text())
                roles = ManyToMany(Role, through="owner_roles", link_columns=("owner-id", "x"))

    def test_the_target_must_be_a_class_or_a_name(self) -> None:
        """A relation to something that is neither a class nor a name is refused."""
        with pytest.raises(InvalidMapping, match="must be a class"):

            class OwnerMap(EntityMap[Owner]):
                __table__ = "owners"
                id = Column(t.Integer(), primary_key=True)
                name = Column(t.Text())
                role = ManyToOne(42, column="role_id")  # type: ignore[arg-type]

    def test_a_relation_object_declared_twice_is_refused(self) -> None:
        """One relation object bound to two attributes is refused."""
        shared = ManyToOne(Role, column="role_id")
        with pytest.raises(InvalidMapping, match="already declared"):

            class OwnerMap(EntityMap[Owner]):
                __table__ = "owners"
                id = Column(t.Integer(), primary_key=True)
                name = Column(t.Text())
                role = shared
                other = shared


# -- declarations refused when the registry compiles ---------------------------------------------


@attrs.define
class Lone:
    target: Role | None = None
    id: int | None = None


@attrs.define
class Pair:
    a: int
    b: int


@attrs.define
class PairHolder:
    pair: Pair | None = None
    id: int | None = None


@attrs.define
class Parent:
    name: str
    kids: list[Kid] = attrs.Factory(list)
    only: Kid | None = None
    id: int | None = None


@attrs.define
class Kid:
    parent: Parent | None = None
    other: Role | None = None
    id: int | None = None


def _parent_map(relation: Any) -> type[EntityMap[Any]]:
    class ParentMap(EntityMap[Parent]):
        __table__ = "parents"
        id = Column(t.Integer(), primary_key=True)
        name = Column(t.Text())
        kids = relation

    return ParentMap


def _kid_map() -> type[EntityMap[Any]]:
    class KidMap(EntityMap[Kid]):
        __table__ = "kids"
        id = Column(t.Integer(), primary_key=True)
        parent = ManyToOne(Parent, column="parent_id")
        other = ManyToOne(Role, column="other_id")

    return KidMap


def _role_map() -> type[EntityMap[Any]]:
    class PlainRoleMap(EntityMap[Role]):
        __table__ = "roles"
        id = Column(t.Integer(), primary_key=True, generated=True)
        name = Column(t.String(20))

    return PlainRoleMap


class TestConfiguration:
    def test_a_target_not_mapped_is_refused(self) -> None:
        """A relation to an entity the registry does not map names both."""

        class LoneMap(EntityMap[Lone]):
            __table__ = "lones"
            id = Column(t.Integer(), primary_key=True)
            target = ManyToOne(Role, column="target_id")

        with pytest.raises(
            ConfigurationError, match=r"LoneMap\.target refers to Role, which is not mapped"
        ):
            _configure(LoneMap)

    def test_a_target_named_but_not_mapped_is_refused(self) -> None:
        """A relation to an entity given by a name nobody maps names that name."""

        class LoneMap(EntityMap[Lone]):
            __table__ = "lones"
            id = Column(t.Integer(), primary_key=True)
            target = ManyToOne("Role", column="target_id")

        with pytest.raises(ConfigurationError, match="refers to Role, which is not mapped"):
            _configure(LoneMap)

    def test_a_target_named_by_string_resolves(self) -> None:
        """ManyToOne("Role", ...) finds the mapping of the class named Role."""

        class LoneMap(EntityMap[Lone]):
            __table__ = "lones"
            id = Column(t.Integer(), primary_key=True)
            target = ManyToOne("Role", column="target_id")

        compiled = _configure(LoneMap, _role_map())
        assert compiled.meta(Lone).relations["target"].target is compiled.meta(Role)

    def test_a_composite_key_target_is_refused_naming_the_relation(self) -> None:
        """A relation to an entity with a composite key is refused, naming the relation."""

        class PairMap(EntityMap[Pair]):
            __table__ = "pairs"
            a = Column(t.Integer(), primary_key=True)
            b = Column(t.Integer(), primary_key=True)

        class PairHolderMap(EntityMap[PairHolder]):
            __table__ = "pair_holders"
            id = Column(t.Integer(), primary_key=True)
            pair = ManyToOne(Pair, column="pair_id")

        with pytest.raises(ConfigurationError, match="composite key") as raised:
            _configure(PairMap, PairHolderMap)
        assert "PairHolderMap.pair" in str(raised.value)

    @pytest.mark.parametrize(
        "back",
        [
            pytest.param("missing", id="no_such_relation"),
            pytest.param("other", id="refers_elsewhere"),
            pytest.param("id", id="a_column"),
        ],
    )
    def test_a_bad_back_is_refused(self, back: str) -> None:
        """back= must name a many-to-one of the target that refers back; the message says so."""
        with pytest.raises(ConfigurationError, match=rf"Parent\.kids: back='{back}' must name"):
            _configure(_parent_map(OneToMany(Kid, back=back)), _kid_map(), _role_map())

    def test_back_naming_a_collection_is_refused(self) -> None:
        """A one-to-one back= naming a one-to-many (not a many-to-one) is refused."""

        @attrs.define
        class Shelf:
            books: list[Book] = attrs.Factory(list)
            id: int | None = None

        @attrs.define
        class Book:
            shelf: Shelf | None = None
            featured: Shelf | None = None
            id: int | None = None

        class ShelfMap(EntityMap[Shelf]):
            __table__ = "shelves"
            id = Column(t.Integer(), primary_key=True)
            books = OneToMany(Book, back="shelf")

        class BookMap(EntityMap[Book]):
            __table__ = "books"
            id = Column(t.Integer(), primary_key=True)
            shelf = ManyToOne(Shelf, column="shelf_id")
            featured = OneToOne(Shelf, back="books")

        with pytest.raises(ConfigurationError, match=r"Book\.featured: back='books' must name"):
            _configure(ShelfMap, BookMap)

    def test_a_many_to_one_annotated_with_another_class_is_refused(self) -> None:
        """ManyToOne(Role) on an attribute annotated Tag | None is refused, naming both."""

        @attrs.define
        class Holder:
            role: Tag | None = None
            id: int | None = None

        class HolderMap(EntityMap[Holder]):
            __table__ = "holders"
            id = Column(t.Integer(), primary_key=True)
            role = ManyToOne(Role, column="role_id")

        with pytest.raises(
            ConfigurationError,
            match=r"HolderMap\.role relates to Role, but the attribute is annotated Tag",
        ):
            _configure(HolderMap, _role_map())

    def test_a_many_to_one_annotated_as_a_list_is_refused(self) -> None:
        """ManyToOne on an attribute annotated list[Role] is refused."""

        @attrs.define
        class Holder:
            role: list[Role] = attrs.Factory(list)
            id: int | None = None

        class HolderMap(EntityMap[Holder]):
            __table__ = "holders"
            id = Column(t.Integer(), primary_key=True)
            role = ManyToOne(Role, column="role_id")

        with pytest.raises(ConfigurationError, match=r"HolderMap\.role"):
            _configure(HolderMap, _role_map())

    @pytest.mark.parametrize(
        "annotation",
        [
            pytest.param(set[Role], id="set"),
            pytest.param(Role, id="single"),
            pytest.param(list[int], id="list_of_int"),
            pytest.param(list[Tag], id="list_of_other_entity"),
        ],
    )
    def test_a_many_to_many_with_a_wrong_annotation_is_refused(self, annotation: Any) -> None:
        """A many-to-many on an attribute that is not list[Target] is refused."""
        holder = attrs.make_class(
            "Holder",
            {
                "roles": attrs.field(type=annotation, factory=list),
                "id": attrs.field(type=int | None, default=None),
            },
        )

        class HolderMap(EntityMap[holder]):  # type: ignore[valid-type]
            __table__ = "holders"
            id = Column(t.Integer(), primary_key=True)
            roles = ManyToMany(Role, through="holder_roles")

        with pytest.raises(ConfigurationError, match=r"HolderMap\.roles"):
            _configure(HolderMap, _role_map())

    def test_a_one_to_many_annotated_as_a_set_is_refused(self) -> None:
        """OneToMany on an attribute annotated set[Kid] is refused, asking for list[...]."""

        @attrs.define
        class Holder:
            name: str
            kids: set[Kid] = attrs.Factory(set)
            id: int | None = None

        @attrs.define
        class Child:
            holder: Holder | None = None
            id: int | None = None

        class HolderMap(EntityMap[Holder]):
            __table__ = "holders"
            id = Column(t.Integer(), primary_key=True)
            name = Column(t.Text())
            kids = OneToMany(Child, back="holder")

        class ChildMap(EntityMap[Child]):
            __table__ = "children"
            id = Column(t.Integer(), primary_key=True)
            holder = ManyToOne(Holder, column="holder_id")

        with pytest.raises(ConfigurationError, match="list"):
            _configure(HolderMap, ChildMap)

    def test_a_link_table_declared_with_other_columns_is_refused(self) -> None:
        """Two relations through one table with different link columns are refused."""

        @attrs.define
        class Holder:
            roles: list[Role] = attrs.Factory(list)
            more: list[Role] = attrs.Factory(list)
            id: int | None = None

        class HolderMap(EntityMap[Holder]):
            __table__ = "holders"
            id = Column(t.Integer(), primary_key=True)
            roles = ManyToMany(Role, through="holder_roles")
            more = ManyToMany(Role, through="holder_roles", link_columns=("h", "r"))

        with pytest.raises(
            ConfigurationError, match="'holder_roles' is declared with other columns"
        ):
            _configure(HolderMap, _role_map())

    def test_a_link_table_named_like_a_mapped_table_is_refused(self) -> None:
        """through= naming a table a mapping already uses is refused, naming the relation."""

        @attrs.define
        class Holder:
            roles: list[Role] = attrs.Factory(list)
            id: int | None = None

        class HolderMap(EntityMap[Holder]):
            __table__ = "holders"
            id = Column(t.Integer(), primary_key=True)
            roles = ManyToMany(Role, through="roles")

        with pytest.raises(ConfigurationError, match=r"HolderMap\.roles") as raised:
            _configure(HolderMap, _role_map())
        assert "roles" in str(raised.value)

    def test_a_link_table_shared_by_other_tables_is_refused(self) -> None:
        """One through= table for two relations between different tables is refused."""

        @attrs.define
        class Holder:
            roles: list[Role] = attrs.Factory(list)
            id: int | None = None

        @attrs.define
        class Keeper:
            holders: list[Holder] = attrs.Factory(list)
            id: int | None = None

        class HolderMap(EntityMap[Holder]):
            __table__ = "holders"
            id = Column(t.Integer(), primary_key=True)
            roles = ManyToMany(Role, through="links", link_columns=("a_id", "b_id"))

        class KeeperMap(EntityMap[Keeper]):
            __table__ = "keepers"
            id = Column(t.Integer(), primary_key=True)
            holders = ManyToMany(Holder, through="links", link_columns=("a_id", "b_id"))

        with pytest.raises(ConfigurationError, match="links"):
            _configure(HolderMap, KeeperMap, _role_map())

    def test_the_back_side_of_one_to_one_with_a_wrong_annotation_is_refused(self) -> None:
        """OneToOne(back=...) on an attribute annotated int is refused."""

        @attrs.define
        class Holder:
            badge: int | None = None
            id: int | None = None

        @attrs.define
        class Card:
            holder: Holder | None = None
            id: int | None = None

        class HolderMap(EntityMap[Holder]):
            __table__ = "holders"
            id = Column(t.Integer(), primary_key=True)
            badge = OneToOne(Card, back="holder")

        class CardMap(EntityMap[Card]):
            __table__ = "cards"
            id = Column(t.Integer(), primary_key=True)
            holder = OneToOne(Holder, column="holder_id")

        with pytest.raises(ConfigurationError, match=r"HolderMap\.badge"):
            _configure(HolderMap, CardMap)

    def test_tables_referring_to_each_other_without_a_nullable_key_are_refused(self) -> None:
        """A cycle of NOT NULL relations between two tables is refused: no row could go first."""

        @attrs.define
        class Egg:
            hen: Hen | None = None
            id: int | None = None

        @attrs.define
        class Hen:
            egg: Egg | None = None
            id: int | None = None

        class EggMap(EntityMap[Egg]):
            __table__ = "eggs"
            id = Column(t.Integer(), primary_key=True)
            hen = ManyToOne(Hen, column="hen_id", nullable=False)

        class HenMap(EntityMap[Hen]):
            __table__ = "hens"
            id = Column(t.Integer(), primary_key=True)
            egg = ManyToOne(Egg, column="egg_id", nullable=False)

        with pytest.raises(ConfigurationError, match="cycle"):
            _configure(EggMap, HenMap)

    def test_tables_referring_to_each_other_through_a_nullable_key_are_ordered(self) -> None:
        """A cycle with one nullable relation compiles; the other relation decides the order."""

        @attrs.define
        class Egg:
            hen: Hen | None = None
            id: int | None = None

        @attrs.define
        class Hen:
            egg: Egg | None = None
            id: int | None = None

        class EggMap(EntityMap[Egg]):
            __table__ = "eggs"
            id = Column(t.Integer(), primary_key=True)
            hen = ManyToOne(Hen, column="hen_id", nullable=False)

        class HenMap(EntityMap[Hen]):
            __table__ = "hens"
            id = Column(t.Integer(), primary_key=True)
            egg = ManyToOne(Egg, column="egg_id")

        compiled = _configure(EggMap, HenMap)
        assert [m.table for m in compiled.table_order()] == ["hens", "eggs"]


# -- compiled metadata: foreign key columns and relation metas -----------------------------------


class TestCompiledRelations:
    def test_a_many_to_one_adds_a_typed_indexed_foreign_key_column(self) -> None:
        """role_id is added with the target key's type, nullable, indexed, via the relation."""
        column = _meta(User).column("role_id")
        assert (column.name, column.type, column.nullable) == ("role_id", t.Integer(), True)
        assert (column.index, column.unique, column.via, column.label) == (
            True,
            False,
            "role",
            "role",
        )
        assert column.foreign_key == ForeignKeyMeta("role_id", "roles", "id")

    def test_a_self_reference_takes_the_key_type_of_its_own_table(self) -> None:
        """manager_id refers to users.id and is a bigint like it."""
        column = _meta(User).column("manager_id")
        assert column.type == t.BigInteger()
        assert column.foreign_key == ForeignKeyMeta("manager_id", "users", "id")

    def test_the_entity_gets_no_attribute_for_the_foreign_key(self) -> None:
        """The foreign key columns follow the declared columns; the entity has no such field."""
        assert [c.name for c in _meta(User).columns] == ["id", "name", "role_id", "manager_id"]
        assert "role_id" not in attrs.fields_dict(User)

    def test_an_owning_one_to_one_is_unique_and_follows_nullable(self) -> None:
        """OneToOne(column=...) is unique, not separately indexed, NOT NULL when asked."""
        column = _meta(Badge).column("owner_id")
        assert (column.unique, column.index, column.nullable) == (True, False, False)
        assert column.type == t.BigInteger()

    def test_relation_metas_connect_tables_and_columns(self) -> None:
        """Each compiled relation names its column, remote column, back relation and rule."""
        role = _relation(User, "role")
        users = _relation(Role, "users")
        badge = _relation(User, "badge")
        assert (role.column, role.remote, role.single) == (
            _meta(User).column("role_id"),
            None,
            True,
        )
        assert users.remote is _meta(User).column("role_id")
        assert users.back is role
        assert (users.on_delete, users.collection) == ("set_null", True)
        assert badge.back is _relation(Badge, "owner")
        assert (badge.remote, badge.on_delete, badge.single) == (
            _meta(Badge).column("owner_id"),
            "cascade",
            True,
        )
        assert _relation(User, "reports").on_delete == "restrict"

    def test_labels_and_load_hints_name_the_relation(self) -> None:
        """A relation's label is Entity.attribute and its hint the load= that loads it."""
        relation = _relation(User, "tags")
        assert relation.label == "User.tags"
        assert relation.load_hint == "load=[UserMap.tags]"


# -- link tables ----------------------------------------------------------------------------------


class TestLinkTables:
    def test_a_link_table_has_two_key_columns_typed_like_the_keys(self) -> None:
        """user_tags holds tag_id varchar(12) and user_id bigint, both the primary key."""
        link = _relation(User, "tags").link
        assert link is not None
        assert link.table == "user_tags"
        columns = {c.name: c for c in link.columns}
        assert set(columns) == {"user_id", "tag_id"}
        assert columns["user_id"].type == t.BigInteger()
        assert columns["tag_id"].type == t.String(12)
        assert {c.name for c in link.primary_key} == {"user_id", "tag_id"}
        assert not any(c.nullable for c in link.columns)

    def test_a_link_table_refers_to_both_tables(self) -> None:
        """Each link column is a foreign key to its side's key."""
        link = _relation(User, "tags").link
        assert link is not None
        assert set(link.foreign_keys) == {
            ForeignKeyMeta("user_id", "users", "id"),
            ForeignKeyMeta("tag_id", "tags", "code"),
        }

    def test_both_sides_share_one_link_table(self) -> None:
        """User.tags and Tag.users use the same compiled link table, each from its own side."""
        mine, theirs = _relation(User, "tags"), _relation(Tag, "users")
        assert mine.link is theirs.link
        assert mine.link_owner is theirs.link_target
        assert mine.link_target is theirs.link_owner
        assert mine.link_owner is not None and mine.link_owner.name == "user_id"
        links = [m for m in registry.metas() if m.table == "user_tags"]
        assert len(links) == 1

    def test_a_self_referential_link_names_its_second_column_after_the_relation(self) -> None:
        """User.friends links user_id to friends_id, both referring to users."""
        relation = _relation(User, "friends")
        assert relation.link is not None
        assert [c.name for c in relation.link.columns] == ["user_id", "friends_id"]
        assert relation.link_owner is not None and relation.link_owner.name == "user_id"
        assert relation.link_target is not None and relation.link_target.name == "friends_id"

    def test_link_columns_name_the_columns(self) -> None:
        """link_columns=(a, b) names the owner's and the target's column."""

        @attrs.define
        class Holder:
            roles: list[Role] = attrs.Factory(list)
            id: int | None = None

        class HolderMap(EntityMap[Holder]):
            __table__ = "holders"
            id = Column(t.Integer(), primary_key=True)
            roles = ManyToMany(Role, through="holder_roles", link_columns=("h_id", "r_id"))

        compiled = _configure(HolderMap, _role_map())
        relation = compiled.meta(Holder).relations["roles"]
        assert relation.link_owner is not None and relation.link_owner.name == "h_id"
        assert relation.link_target is not None and relation.link_target.name == "r_id"
        assert relation.link is not None
        assert set(relation.link.foreign_keys) == {
            ForeignKeyMeta("h_id", "holders", "id"),
            ForeignKeyMeta("r_id", "roles", "id"),
        }

    def test_link_tables_come_after_both_sides_in_table_order(self) -> None:
        """create_all creates link tables after the tables they refer to."""
        order = [meta.table for meta in registry.table_order()]
        for link, sides in (("user_tags", ("users", "tags")), ("friendships", ("users",))):
            assert all(order.index(side) < order.index(link) for side in sides)

    def test_the_link_table_ddl_on_postgres(self) -> None:
        """The link table's CREATE TABLE on PostgreSQL is pinned."""
        link = _relation(User, "tags").link
        assert link is not None
        assert create_statements([link], _postgres()) == [
            'CREATE TABLE IF NOT EXISTS "user_tags" (\n'
            '  "tag_id" varchar(12) COLLATE "C" NOT NULL,\n'
            '  "user_id" bigint NOT NULL,\n'
            '  CONSTRAINT "pk_user_tags__tag_id__user_id" PRIMARY KEY ("tag_id","user_id"),\n'
            '  CONSTRAINT "fk_user_tags__tag_id" FOREIGN KEY ("tag_id") '
            'REFERENCES "tags" ("code"),\n'
            '  CONSTRAINT "fk_user_tags__user_id" FOREIGN KEY ("user_id") '
            'REFERENCES "users" ("id")\n'
            ")"
        ]

    def test_the_link_table_ddl_on_sqlite(self) -> None:
        """The link table's CREATE TABLE on SQLite is pinned."""
        link = _relation(User, "friends").link
        assert link is not None
        assert create_statements([link], _sqlite()) == [
            'CREATE TABLE IF NOT EXISTS "friendships" (\n'
            '  "user_id" INTEGER NOT NULL,\n'
            '  "friends_id" INTEGER NOT NULL,\n'
            '  CONSTRAINT "pk_friendships__user_id__friends_id" '
            'PRIMARY KEY ("user_id","friends_id"),\n'
            '  CONSTRAINT "fk_friendships__user_id" FOREIGN KEY ("user_id") '
            'REFERENCES "users" ("id"),\n'
            '  CONSTRAINT "fk_friendships__friends_id" FOREIGN KEY ("friends_id") '
            'REFERENCES "users" ("id")\n'
            ")"
        ]

    def test_the_foreign_key_column_ddl(self) -> None:
        """users gets role_id and manager_id with foreign keys and indexes on PostgreSQL."""
        statements = create_statements([_meta(User)], _postgres())
        assert statements[0].splitlines()[3:5] == ['  "role_id" integer,', '  "manager_id" bigint,']
        assert (
            '  CONSTRAINT "fk_users__role_id" FOREIGN KEY ("role_id") REFERENCES "roles" ("id"),'
            in statements[0].splitlines()
        )
        assert statements[1:] == [
            'CREATE INDEX IF NOT EXISTS "ix_users__role_id" ON "users" ("role_id")',
            'CREATE INDEX IF NOT EXISTS "ix_users__manager_id" ON "users" ("manager_id")',
        ]


# -- placeholders ---------------------------------------------------------------------------------


def _reference() -> NotLoadedReference:
    return NotLoadedReference(_relation(User, "role"), 7)


def _collection() -> NotLoadedCollection:
    return NotLoadedCollection(_relation(User, "tags"))


def _iadd(p: Any) -> None:
    p += [1]


def _setitem(p: Any) -> None:
    p[0] = 1


def _delitem(p: Any) -> None:
    del p[0]


def _setattr(p: Any) -> None:
    p.name = "x"


USES: list[Any] = [
    pytest.param(lambda p: p.name, id="attribute"),
    pytest.param(lambda p: getattr(p, "name", None), id="getattr_default"),
    pytest.param(lambda p: hasattr(p, "name"), id="hasattr"),
    pytest.param(_setattr, id="setattr"),
    pytest.param(bool, id="bool"),
    pytest.param(lambda p: p == 1, id="eq"),
    pytest.param(lambda p: p != 1, id="ne"),
    pytest.param(lambda p: operator.eq(1, p), id="eq_reflected"),
    pytest.param(hash, id="hash"),
    pytest.param(iter, id="iter"),
    pytest.param(list, id="list"),
    pytest.param(len, id="len"),
    pytest.param(lambda p: 1 in p, id="contains"),
    pytest.param(lambda p: p[0], id="getitem"),
    pytest.param(lambda p: {p}, id="set_member"),
]
COLLECTION_USES: list[Any] = [
    pytest.param(lambda p: p.append(1), id="append"),
    pytest.param(lambda p: p.extend([1]), id="extend"),
    pytest.param(lambda p: p.remove(1), id="remove"),
    pytest.param(lambda p: p.insert(0, 1), id="insert"),
    pytest.param(lambda p: p.pop(), id="pop"),
    pytest.param(lambda p: p.clear(), id="clear"),
    pytest.param(lambda p: p.sort(), id="sort"),
    pytest.param(lambda p: p.index(1), id="index"),
    pytest.param(reversed, id="reversed"),
    pytest.param(sorted, id="sorted"),
    pytest.param(_setitem, id="setitem"),
    pytest.param(_delitem, id="delitem"),
    pytest.param(_iadd, id="iadd"),
]


class TestPlaceholders:
    @pytest.mark.parametrize("use", USES)
    def test_a_reference_refuses_every_use(self, use: Callable[[Any], Any]) -> None:
        """Any use of a many-to-one placeholder raises RelationNotLoaded naming the load=."""
        with pytest.raises(RelationNotLoaded, match=r"User\.role .*load=\[UserMap\.role\]"):
            use(_reference())

    @pytest.mark.parametrize("use", USES + COLLECTION_USES)
    def test_a_collection_refuses_every_use(self, use: Callable[[Any], Any]) -> None:
        """Any use of a collection placeholder, list methods included, raises RelationNotLoaded."""
        with pytest.raises(RelationNotLoaded, match=r"User\.tags .*load=\[UserMap\.tags\]"):
            use(_collection())

    def test_the_repr_says_not_loaded_and_how_to_load(self) -> None:
        """repr() and str() of a placeholder say it is not loaded and name the load=."""
        assert repr(_reference()) == "<User.role not loaded; use load=[UserMap.role]>"
        assert str(_collection()) == "<User.tags not loaded; use load=[UserMap.tags]>"

    def test_an_entity_holding_placeholders_has_a_repr(self) -> None:
        """An entity's attrs repr shows its placeholders without raising."""
        user = User("ann")
        user.role = _reference()  # type: ignore[assignment]
        assert "role=<User.role not loaded; use load=[UserMap.role]>" in repr(user)

    def test_a_reference_carries_its_foreign_key(self) -> None:
        """placeholder_key() reads the foreign key a reference stands for, without using it."""
        reference = _reference()
        assert is_placeholder(reference) and is_placeholder(_collection())
        assert placeholder_key(reference) == 7
        assert not is_placeholder(None) and not is_placeholder([])

    def test_placeholders_are_not_lists_or_entities(self) -> None:
        """A collection placeholder is no list and a reference no Role, for isinstance checks."""
        assert not isinstance(_collection(), list)
        assert not isinstance(_reference(), Role)

    def test_protocol_probes_see_a_plain_object(self) -> None:
        """Dunder probes (copy, pickle) get AttributeError rather than RelationNotLoaded."""
        with pytest.raises(AttributeError):
            _reference().__deepcopy__  # noqa: B018


# -- RelationNotLoaded ----------------------------------------------------------------------------


class TestRelationNotLoaded:
    def test_the_message_names_the_relation_and_the_fix(self) -> None:
        """The message names the relation, says nothing was queried, and gives the load=."""
        error = RelationNotLoaded("User.role", "load=[UserMap.role]")
        assert str(error) == (
            "User.role was not loaded: no attribute access ever queries. Load it with "
            "load=[UserMap.role] on the query, or `await uow.load(entities, ...)`"
        )
        assert (error.relation, error.hint) == ("User.role", "load=[UserMap.role]")

    def test_it_is_a_mapper_error_and_not_an_attribute_error(self) -> None:
        """RelationNotLoaded is a MapperError, never mistaken for a missing attribute."""
        assert issubclass(RelationNotLoaded, MapperError)
        assert not issubclass(RelationNotLoaded, AttributeError)

    def test_a_placeholder_raises_it_with_the_relations_names(self) -> None:
        """The error a placeholder raises carries the relation's label and load hint."""
        with pytest.raises(RelationNotLoaded) as raised:
            len(_collection())
        assert (raised.value.relation, raised.value.hint) == ("User.tags", "load=[UserMap.tags]")


# -- criteria across relations: SQL ---------------------------------------------------------------

ROLE = Role("admin", id=7)
USER_COLUMNS = '"id","name","role_id","manager_id"'

CRITERIA: list[Any] = [
    pytest.param(
        User,
        lambda: UserMap.role.has(RoleMap.name == "admin"),
        '"role_id" IN (SELECT "id" FROM "roles" WHERE "name"={0})',
        ["admin"],
        id="has",
    ),
    pytest.param(
        User,
        UserMap.role.has,
        '"role_id" IN (SELECT "id" FROM "roles")',
        [],
        id="has_nothing",
    ),
    pytest.param(
        User,
        lambda: ~UserMap.role.has(RoleMap.name == "admin"),
        'NOT "role_id" IN (SELECT "id" FROM "roles" WHERE "name"={0})',
        ["admin"],
        id="not_has",
    ),
    pytest.param(User, lambda: UserMap.role == ROLE, '"role_id"={0}', [7], id="eq_entity"),
    pytest.param(User, lambda: UserMap.role != ROLE, 'NOT "role_id"={0}', [7], id="ne_entity"),
    pytest.param(
        User,
        lambda: UserMap.role == None,  # noqa: E711
        '"role_id" IS NULL',
        [],
        id="eq_none",
    ),
    pytest.param(User, UserMap.role.is_null, '"role_id" IS NULL', [], id="is_null"),
    pytest.param(User, UserMap.role.is_not_null, 'NOT "role_id" IS NULL', [], id="is_not_null"),
    pytest.param(
        Role,
        RoleMap.users.any,
        '"id" IN (SELECT "role_id" FROM "users" WHERE "role_id" IS NOT NULL)',
        [],
        id="any",
    ),
    pytest.param(
        Role,
        lambda: RoleMap.users.any(UserMap.name == "bob"),
        '"id" IN (SELECT "role_id" FROM "users" WHERE "name"={0} AND "role_id" IS NOT NULL)',
        ["bob"],
        id="any_where",
    ),
    pytest.param(
        Role,
        lambda: ~RoleMap.users.any((UserMap.name == "a") | (UserMap.name == "b")),
        'NOT "id" IN (SELECT "role_id" FROM "users" WHERE ("name"={0} OR "name"={1}) '
        'AND "role_id" IS NOT NULL)',
        ["a", "b"],
        id="not_any_or",
    ),
    pytest.param(
        User,
        lambda: UserMap.tags.any(TagMap.label == "red"),
        '"id" IN (SELECT "user_id" FROM "user_tags" WHERE "tag_id" IN '
        '(SELECT "code" FROM "tags" WHERE "label"={0}))',
        ["red"],
        id="many_to_many",
    ),
    pytest.param(
        User,
        lambda: ~UserMap.tags.any(),
        'NOT "id" IN (SELECT "user_id" FROM "user_tags" WHERE "tag_id" IN '
        '(SELECT "code" FROM "tags"))',
        [],
        id="not_many_to_many",
    ),
    pytest.param(
        Tag,
        lambda: TagMap.users.any(UserMap.name == "ann"),
        '"code" IN (SELECT "tag_id" FROM "user_tags" WHERE "user_id" IN '
        '(SELECT "id" FROM "users" WHERE "name"={0}))',
        ["ann"],
        id="many_to_many_other_side",
    ),
    pytest.param(
        User,
        lambda: UserMap.manager.has(UserMap.name == "ann"),
        '"manager_id" IN (SELECT "id" FROM "users" WHERE "name"={0})',
        ["ann"],
        id="self",
    ),
    pytest.param(
        User,
        lambda: (UserMap.name == "x") & UserMap.role.has(RoleMap.name == "y"),
        '"name"={0} AND "role_id" IN (SELECT "id" FROM "roles" WHERE "name"={1})',
        ["x", "y"],
        id="and_column",
    ),
]


def _placeholders(compiler: SqlCompiler, count: int) -> list[str]:
    if isinstance(compiler, PostgresCompiler):
        return [f"${i}" for i in range(1, count + 1)]
    return ["?"] * count


@pytest.mark.parametrize("compiler", [_postgres(), _sqlite()], ids=["postgres", "sqlite"])
@pytest.mark.parametrize(("entity", "criterion", "where", "parameters"), CRITERIA)
def test_criteria_across_relations_compile_to_subqueries(
    compiler: SqlCompiler,
    entity: type,
    criterion: Callable[[], Criterion],
    where: str,
    parameters: list[Any],
) -> None:
    """has / any / == / is_null compile to the pinned WHERE text and parameters."""
    meta = _meta(entity)
    bound = compiler.select(Select(meta, expand_related_is(meta, criterion())))
    columns = ",".join(f'"{c.name}"' for c in meta.columns)
    expected = where.format(*_placeholders(compiler, len(parameters)))
    assert bound.sql == f'SELECT {columns} FROM "{meta.table}" WHERE {expected}'
    assert list(bound.parameters) == parameters


def test_an_in_list_inside_a_relation_uses_the_dialects_list_form() -> None:
    """users.any(name.in_([...])) binds one array on PostgreSQL and one JSON text on SQLite."""
    meta = _meta(Role)
    criterion = RoleMap.users.any(UserMap.name.in_(["x", "y"]))
    postgres = _postgres().select(Select(meta, criterion))
    sqlite = _sqlite().select(Select(meta, criterion))
    assert postgres.sql.endswith(
        'WHERE "id" IN (SELECT "role_id" FROM "users" WHERE "name"=ANY($1) '
        'AND "role_id" IS NOT NULL)'
    )
    assert list(postgres.parameters) == [["x", "y"]]
    assert sqlite.sql.endswith(
        'WHERE "id" IN (SELECT "role_id" FROM "users" WHERE "name" IN '
        '(SELECT value FROM json_each(?)) AND "role_id" IS NOT NULL)'
    )
    assert list(sqlite.parameters) == ['["x","y"]']


def test_a_relation_criterion_of_another_mapping_is_refused() -> None:
    """Comparing UserMap.role on a query of roles raises ConfigurationError naming RoleMap."""
    with pytest.raises(ConfigurationError, match="not a relation of RoleMap"):
        _postgres().select(Select(_meta(Role), UserMap.role.has()))


def test_equality_with_a_collection_relation_is_refused() -> None:
    """RoleMap.users compared with == to an entity is not a criterion of a collection."""
    result = RoleMap.users == User("x")
    assert not isinstance(result, Criterion)


def test_equal_criteria_share_one_cached_statement() -> None:
    """has() with different values reuses the statement text; has() and ~has() differ."""
    compiler = _postgres()
    meta = _meta(User)
    first = compiler.select(Select(meta, UserMap.role.has(RoleMap.name == "a")))
    second = compiler.select(Select(meta, UserMap.role.has(RoleMap.name == "b")))
    negated = compiler.select(Select(meta, ~UserMap.role.has(RoleMap.name == "b")))
    assert first.sql is second.sql
    assert negated.sql != first.sql


# -- loading a many-to-many: one join -------------------------------------------------------------


@pytest.mark.parametrize(
    ("compiler", "sql", "parameters"),
    [
        pytest.param(
            _postgres(),
            'SELECT l."user_id",t."code",t."label" FROM "tags" AS t JOIN "user_tags" AS l '
            'ON l."tag_id"=t."code" WHERE l."user_id"=ANY($1)',
            [[1, 2, 3]],
            id="postgres",
        ),
        pytest.param(
            _sqlite(),
            'SELECT l."user_id",t."code",t."label" FROM "tags" AS t JOIN "user_tags" AS l '
            'ON l."tag_id"=t."code" WHERE l."user_id" IN (SELECT value FROM json_each(?))',
            ["[1,2,3]"],
            id="sqlite",
        ),
    ],
)
def test_a_many_to_many_loads_through_one_join(
    compiler: SqlCompiler, sql: str, parameters: list[Any]
) -> None:
    """select_linked reads the owner key and the target row for any number of owners."""
    bound = compiler.select_linked(SelectLinked(_relation(User, "tags"), (1, 2, 3)))
    assert bound.sql == sql
    assert list(bound.parameters) == parameters
    assert (bound.operation, bound.table) == ("select", "user_tags")


def test_the_other_side_and_a_self_reference_join_from_their_own_column() -> None:
    """Tag.users joins on user_id and filters tag_id; User.friends filters user_id."""
    compiler = _postgres()
    other = compiler.select_linked(SelectLinked(_relation(Tag, "users"), ("a",)))
    assert other.sql == (
        'SELECT l."tag_id",t."id",t."name",t."role_id",t."manager_id" FROM "users" AS t '
        'JOIN "user_tags" AS l ON l."user_id"=t."id" WHERE l."tag_id"=ANY($1)'
    )
    friends = compiler.select_linked(SelectLinked(_relation(User, "friends"), (5,)))
    assert friends.sql == (
        'SELECT l."user_id",t."id",t."name",t."role_id",t."manager_id" FROM "users" AS t '
        'JOIN "friendships" AS l ON l."friends_id"=t."id" WHERE l."user_id"=ANY($1)'
    )
    assert list(friends.parameters) == [[5]]


def test_select_linked_sql_is_the_same_for_any_number_of_owners() -> None:
    """One statement text serves 1 or 1,000 owners (the keys travel as one parameter)."""
    relation = _relation(User, "tags")
    for compiler in (_postgres(), _sqlite()):
        one = compiler.select_linked(SelectLinked(relation, (1,)))
        many = compiler.select_linked(SelectLinked(relation, tuple(range(1000))))
        assert one.sql == many.sql
        assert len(many.parameters) == 1
