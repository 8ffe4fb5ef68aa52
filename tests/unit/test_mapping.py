"""Unit tests of `mapper.mapping` and `mapper.registry`: declarations, checks, compiled metadata.

Every refused mapping raises `InvalidMapping` when the class is declared, or
`ConfigurationError` when the registry compiles, and the message names the mapping and the
attribute at fault (GUARANTEES G10, DESIGN principle 7).
"""

import datetime as dt
import decimal
import types
import uuid
from collections.abc import Callable
from typing import Any

import attrs
import pytest

from mapper import Column, EntityMap, Registry
from mapper import types as t
from mapper.errors import ConfigurationError, InvalidMapping
from mapper.mapping import MAX_IDENTIFIER_BYTES, ColumnMeta, ForeignKeyMeta, check_identifier
from tests.unit import future_entities as fe


@attrs.define
class User:
    name: str
    email: str
    nickname: str | None = None
    version: int = 0
    id: int | None = None


@attrs.define
class Order:
    user_id: int
    total: decimal.Decimal
    id: int | None = None


@attrs.define
class Line:
    order_id: int
    qty: int
    id: int | None = None


@attrs.frozen
class Address:
    street: str
    city: str


@attrs.define
class Profile:
    user_id: int
    bio: str
    born: dt.date | None = None
    address: Address | None = None
    tags: list[str] = attrs.Factory(list)
    id: uuid.UUID | None = None


def registry_of(*maps: type[EntityMap[Any]]) -> Registry:
    """A registry with `maps` registered and compiled."""
    registry = Registry()
    for map_class in maps:
        registry.map(map_class)
    registry.configure()
    return registry


def message(error: pytest.ExceptionInfo[BaseException]) -> str:
    return str(error.value)


BAD_IDENTIFIERS = [
    'us"ers',
    "us`ers",
    "us\\ers",
    "my users",
    "1users",
    "",
    "users\n",
    "users;",
    "a-b",
    "na\u00efve",
    "t\x00",
    'x" , version() AS injected FROM t --',
    "x" * (MAX_IDENTIFIER_BYTES + 1),
]


class TestIdentifiers:
    @pytest.mark.parametrize("name", BAD_IDENTIFIERS, ids=repr)
    def test_a_bad_table_name_is_refused(self, name: str) -> None:
        """Quotes, backslashes, spaces, leading digits and names over 63 bytes are refused."""
        with pytest.raises(InvalidMapping) as error:

            class UserMap(EntityMap[User]):
                __table__ = name
                id = Column(t.Integer(), primary_key=True)

        assert "UserMap.__table__" in message(error)

    @pytest.mark.parametrize("name", [n for n in BAD_IDENTIFIERS if n], ids=repr)
    def test_a_bad_column_name_is_refused(self, name: str) -> None:
        """A bad `name=` is refused, naming the mapping and the attribute."""
        with pytest.raises(InvalidMapping) as error:

            class UserMap(EntityMap[User]):
                __table__ = "users"
                id = Column(t.Integer(), primary_key=True)
                email = Column(t.String(100), name=name)

        assert "UserMap.email" in message(error)
        assert repr(name) in message(error)

    def test_a_name_of_exactly_63_bytes_is_accepted(self) -> None:
        """63 bytes is PostgreSQL's limit and is accepted."""
        name = "t" * MAX_IDENTIFIER_BYTES
        assert MAX_IDENTIFIER_BYTES == 63
        assert check_identifier(name, "table") == name

    def test_a_name_of_64_bytes_says_why(self) -> None:
        """A 64-byte name is refused because PostgreSQL would truncate it."""
        with pytest.raises(InvalidMapping, match="63 bytes"):
            check_identifier("t" * 64, "table")

    @pytest.mark.parametrize("name", [None, 5, b"users"], ids=repr)
    def test_a_non_string_name_is_refused(self, name: object) -> None:
        """Only strings are identifiers."""
        with pytest.raises(InvalidMapping):
            check_identifier(name, "table")

    @pytest.mark.parametrize("word", ["order", "user", "select", "group", "from", "table"])
    def test_reserved_words_are_allowed(self, word: str) -> None:
        """SQL reserved words are valid table and column names (they are quoted)."""

        class OrderMap(EntityMap[Order]):
            __table__ = word
            id = Column(t.Integer(), primary_key=True, name=word)
            user_id = Column(t.Integer(), name=f"{word}_id")
            total = Column(t.Decimal(10, 2))

        meta = registry_of(OrderMap).meta(Order)
        assert meta.table == word
        assert meta.column("id").name == word

    def test_a_bad_identifier_in_a_reference_is_refused(self) -> None:
        """`references="users.na me"` is refused when declared."""
        with pytest.raises(InvalidMapping) as error:

            class OrderMap(EntityMap[Order]):
                __table__ = "orders"
                id = Column(t.Integer(), primary_key=True)
                user_id = Column(t.Integer(), references="users.na me")
                total = Column(t.Decimal(10, 2))

        assert "OrderMap.user_id" in message(error)


class TestDeclaration:
    def test_a_column_for_a_missing_attribute_is_refused(self) -> None:
        """A column for an attribute the entity lacks names the mapping, attribute and fields."""
        with pytest.raises(InvalidMapping) as error:

            class UserMap(EntityMap[User]):
                __table__ = "users"
                id = Column(t.Integer(), primary_key=True)
                nick = Column(t.String(20))

        text = message(error)
        assert "UserMap.nick" in text
        assert "User has no attribute 'nick'" in text
        assert "nickname" in text

    def test_a_mapping_without_a_primary_key_is_refused(self) -> None:
        """Every mapping needs a primary key column."""
        with pytest.raises(InvalidMapping) as error:

            class UserMap(EntityMap[User]):
                __table__ = "users"
                id = Column(t.Integer())
                name = Column(t.String(100))
                email = Column(t.String(100))

        assert "UserMap has no primary key" in message(error)

    def test_a_mapping_without_a_table_is_refused(self) -> None:
        """A mapping must name its table."""
        with pytest.raises(InvalidMapping, match="UserMap has no __table__"):

            class UserMap(EntityMap[User]):
                id = Column(t.Integer(), primary_key=True)

    def test_a_mapping_without_columns_is_refused(self) -> None:
        """A mapping must declare at least one column."""
        with pytest.raises(InvalidMapping, match="UserMap declares no Column"):

            class UserMap(EntityMap[User]):
                __table__ = "users"

    def test_an_entity_that_is_not_an_attrs_class_is_refused(self) -> None:
        """Entities are attrs classes."""

        class Plain:
            id: int

        with pytest.raises(InvalidMapping, match="PlainMap: Plain is not an attrs class"):

            class PlainMap(EntityMap[Plain]):
                __table__ = "plain"
                id = Column(t.Integer(), primary_key=True)

    def test_the_entity_argument_must_be_a_class(self) -> None:
        """EntityMap["User"] (a string) is refused."""
        with pytest.raises(InvalidMapping, match="UserMap: EntityMap"):

            class UserMap(EntityMap["User"]):  # type: ignore[type-var]
                __table__ = "users"
                id = Column(t.Integer(), primary_key=True)

    def test_a_mapping_is_never_instantiated(self) -> None:
        """A mapping class is a declaration, not a base of entities."""

        class UserMap(EntityMap[User]):
            __table__ = "users"
            id = Column(t.Integer(), primary_key=True)
            name = Column(t.String(100))
            email = Column(t.String(100))

        with pytest.raises(TypeError, match="not instantiated"):
            UserMap()

    def test_a_column_type_must_be_a_mapper_type(self) -> None:
        """Column(int) is refused: types come from mapper.types."""
        with pytest.raises(InvalidMapping, match=r"t\.Integer\(\)"):
            Column(int)  # type: ignore[arg-type]

    def test_an_unbound_column_has_no_owner(self) -> None:
        """A column not declared on a mapping says so when asked for its owner or attribute."""
        column = Column(t.Integer())
        assert repr(column) == "Column(<unbound>)"
        with pytest.raises(InvalidMapping, match="not declared"):
            _ = column.owner
        with pytest.raises(InvalidMapping, match="not declared"):
            _ = column.attribute

    def test_a_bound_column_knows_its_owner_and_attribute(self) -> None:
        """A declared column knows its mapping, attribute and database name."""

        class UserMap(EntityMap[User]):
            __table__ = "users"
            id = Column(t.Integer(), primary_key=True)
            name = Column(t.String(100), name="full_name")
            email = Column(t.String(100))

        assert UserMap.__dict__["name"].owner is UserMap
        assert UserMap.__dict__["name"].attribute == "name"
        assert UserMap.__dict__["name"].column_name == "full_name"
        assert repr(UserMap.__dict__["email"]) == "UserMap.email"

    def test_a_column_object_declared_twice_in_one_mapping_is_refused(self) -> None:
        """One Column object under two attributes raises InvalidMapping naming both."""
        shared = Column(t.String(100))
        with pytest.raises(InvalidMapping) as error:

            class UserMap(EntityMap[User]):
                __table__ = "users"
                id = Column(t.Integer(), primary_key=True)
                name = shared
                email = shared

        assert "UserMap.name" in message(error)
        assert "UserMap.email" in message(error)

    def test_a_column_object_declared_in_two_mappings_is_refused(self) -> None:
        """One Column object on two mappings raises InvalidMapping naming both."""
        shared = Column(t.Integer(), primary_key=True)

        class UserMap(EntityMap[User]):
            __table__ = "users"
            id = shared
            name = Column(t.String(100))
            email = Column(t.String(100))

        with pytest.raises(InvalidMapping) as error:

            class LineMap(EntityMap[Line]):
                __table__ = "lines"
                id = shared
                order_id = Column(t.Integer())
                qty = Column(t.Integer())

        assert "UserMap.id" in message(error)
        assert "LineMap.id" in message(error)

    def test_an_unmapped_field_without_default_is_refused(self) -> None:
        """A loaded entity could not be built without the field, so the mapping is refused."""
        with pytest.raises(InvalidMapping) as error:

            class UserMap(EntityMap[User]):
                __table__ = "users"
                id = Column(t.Integer(), primary_key=True)
                name = Column(t.String(100))

        assert "UserMap" in message(error)
        assert "User.email" in message(error)

    def test_unmapped_fields_with_defaults_are_allowed(self) -> None:
        """Fields with a default or a Factory need not be mapped."""

        class ProfileMap(EntityMap[Profile]):
            __table__ = "profiles"
            id = Column(t.UUID(), primary_key=True)
            user_id = Column(t.Integer())
            bio = Column(t.Text())

        meta = registry_of(ProfileMap).meta(Profile)
        assert [name for name, _ in meta.loading_defaults] == ["born", "address", "tags"]

    def test_duplicate_column_names_are_refused(self) -> None:
        """Two attributes stored in the same column are refused, naming both."""
        with pytest.raises(InvalidMapping) as error:

            class UserMap(EntityMap[User]):
                __table__ = "users"
                id = Column(t.Integer(), primary_key=True)
                name = Column(t.String(100), name="email")
                email = Column(t.String(100))

        assert "UserMap.email" in message(error)
        assert "UserMap.name" in message(error)

    def test_column_names_differing_only_in_case_are_duplicates(self) -> None:
        """Names differing only in case (Email, email) clash on case-insensitive backends."""
        with pytest.raises(InvalidMapping, match=r"UserMap\.email"):

            class UserMap(EntityMap[User]):
                __table__ = "users"
                id = Column(t.Integer(), primary_key=True)
                name = Column(t.String(100), name="Email")
                email = Column(t.String(100))

    @pytest.mark.parametrize("reference", [42, ("users", "id")], ids=repr)
    def test_a_reference_must_be_a_column_or_text(self, reference: Any) -> None:
        """references= takes a Column or "table.column"."""
        with pytest.raises(InvalidMapping, match=r"OrderMap\.user_id: references="):

            class OrderMap(EntityMap[Order]):
                __table__ = "orders"
                id = Column(t.Integer(), primary_key=True)
                user_id = Column(t.Integer(), references=reference)
                total = Column(t.Decimal(10, 2))

    @pytest.mark.parametrize("reference", ["users", "public.users.id", "users."])
    def test_a_reference_must_be_table_dot_column(self, reference: str) -> None:
        """A reference string is exactly "table.column"."""
        with pytest.raises(InvalidMapping, match=r"OrderMap\.user_id"):

            class OrderMap(EntityMap[Order]):
                __table__ = "orders"
                id = Column(t.Integer(), primary_key=True)
                user_id = Column(t.Integer(), references=reference)
                total = Column(t.Decimal(10, 2))


class TestGeneratedAndVersion:
    def test_generated_is_for_primary_keys(self) -> None:
        """generated=True on a non-key column is refused."""
        with pytest.raises(InvalidMapping, match=r"LineMap\.qty: generated=True"):

            class LineMap(EntityMap[Line]):
                __table__ = "lines"
                id = Column(t.Integer(), primary_key=True)
                order_id = Column(t.Integer())
                qty = Column(t.Integer(), generated=True)

    @pytest.mark.parametrize("column_type", [t.String(36), t.UUID(), t.Decimal(10, 0)], ids=repr)
    def test_generated_keys_must_be_integers(self, column_type: t.ColumnType) -> None:
        """Only integer keys can be generated; the message points at client-generated keys."""
        with pytest.raises(InvalidMapping) as error:

            class LineMap(EntityMap[Line]):
                __table__ = "lines"
                id = Column(column_type, primary_key=True, generated=True)
                order_id = Column(t.Integer())
                qty = Column(t.Integer())

        assert "LineMap.id" in message(error)
        assert "uuid7" in message(error)

    def test_a_generated_key_inferred_as_non_integer_is_refused(self) -> None:
        """Column(primary_key=True, generated=True) on a UUID attribute is refused."""

        class ProfileMap(EntityMap[Profile]):
            __table__ = "profiles"
            id = Column(primary_key=True, generated=True)
            user_id = Column(t.Integer())
            bio = Column(t.Text())

        with pytest.raises(ConfigurationError) as error:
            registry_of(ProfileMap)
        assert "ProfileMap.id" in message(error)

    def test_a_generated_key_cannot_have_a_default(self) -> None:
        """A key is generated by the database or by a default, not both."""
        with pytest.raises(InvalidMapping, match=r"LineMap\.id: a generated key"):

            class LineMap(EntityMap[Line]):
                __table__ = "lines"
                id = Column(t.Integer(), primary_key=True, generated=True, default=1)
                order_id = Column(t.Integer())
                qty = Column(t.Integer())

    def test_two_generated_columns_are_refused(self) -> None:
        """Only one column per table is generated, and the message names both."""
        with pytest.raises(InvalidMapping) as error:

            class LineMap(EntityMap[Line]):
                __table__ = "lines"
                id = Column(t.Integer(), primary_key=True, generated=True)
                order_id = Column(t.Integer(), primary_key=True, generated=True)
                qty = Column(t.Integer())

        assert "LineMap.id" in message(error)
        assert "LineMap.order_id" in message(error)

    def test_two_version_columns_are_refused(self) -> None:
        """Only one column is the version column, and the message names both."""

        @attrs.define
        class Doc:
            id: int
            version: int = 0
            revision: int = 0

        with pytest.raises(InvalidMapping) as error:

            class DocMap(EntityMap[Doc]):
                __table__ = "docs"
                id = Column(t.Integer(), primary_key=True)
                version = Column(t.Integer(), version=True)
                revision = Column(t.Integer(), version=True)

        assert "DocMap.version" in message(error)
        assert "DocMap.revision" in message(error)

    def test_a_version_column_is_not_part_of_the_key(self) -> None:
        """A version column in the key is refused."""
        with pytest.raises(InvalidMapping, match=r"UserMap\.version: a version column"):

            class UserMap(EntityMap[User]):
                __table__ = "users"
                id = Column(t.Integer(), primary_key=True)
                version = Column(t.Integer(), primary_key=True, version=True)
                name = Column(t.String(100))
                email = Column(t.String(100))

    def test_a_version_column_must_be_an_integer(self) -> None:
        """A version column of a non-integer type is refused."""
        with pytest.raises(InvalidMapping, match=r"UserMap\.version: a version column must"):

            class UserMap(EntityMap[User]):
                __table__ = "users"
                id = Column(t.Integer(), primary_key=True)
                version = Column(t.String(10), version=True)
                name = Column(t.String(100))
                email = Column(t.String(100))

    def test_a_version_column_inferred_as_non_integer_is_refused(self) -> None:
        """Column(version=True) on a str attribute is refused when the registry compiles."""

        @attrs.define
        class Doc:
            id: int
            etag: str = ""

        class DocMap(EntityMap[Doc]):
            __table__ = "docs"
            id = Column(t.Integer(), primary_key=True)
            etag = Column(version=True)

        with pytest.raises(ConfigurationError) as error:
            registry_of(DocMap)
        assert "DocMap.etag" in message(error)

    def test_generated_and_version_columns_are_compiled(self) -> None:
        """The compiled metadata points at the generated and the version column."""

        class UserMap(EntityMap[User]):
            __table__ = "users"
            id = Column(t.Integer(), primary_key=True, generated=True)
            name = Column(t.String(100))
            email = Column(t.String(100), unique=True)
            version = Column(t.Integer(), version=True)

        meta = registry_of(UserMap).meta(User)
        assert meta.generated is meta.column("id")
        assert meta.version is meta.column("version")
        assert meta.column("email").unique


class TestRegistryErrors:
    def test_a_type_that_does_not_fit_the_annotation_is_refused(self) -> None:
        """t.Integer() on a str attribute is refused, naming mapping, attribute and annotation."""

        class UserMap(EntityMap[User]):
            __table__ = "users"
            id = Column(t.Integer(), primary_key=True)
            name = Column(t.Integer())
            email = Column(t.String(100))

        with pytest.raises(ConfigurationError) as error:
            registry_of(UserMap)
        text = message(error)
        assert "UserMap.name" in text
        assert "Integer" in text
        assert "'str'" in text

    @pytest.mark.parametrize(
        ("attribute", "column_type"),
        [("name", t.Boolean()), ("name", t.Date()), ("version", t.String(10)), ("id", t.Text())],
    )
    def test_other_mismatched_types_are_refused(
        self, attribute: str, column_type: t.ColumnType
    ) -> None:
        """Booleans, dates, floats and text do not fit attributes of another type."""
        columns: dict[str, Column] = {
            "id": Column(t.Integer(), primary_key=True),
            "name": Column(t.String(100)),
            "email": Column(t.String(100)),
            "version": Column(t.Integer()),
        }
        columns[attribute] = Column(column_type, primary_key=attribute == "id")
        user_map = types.new_class(
            "UserMap",
            (EntityMap[User],),
            exec_body=lambda namespace: namespace.update(columns, __table__="users"),
        )
        with pytest.raises(ConfigurationError, match=f"UserMap.{attribute}"):
            registry_of(user_map)

    def test_a_type_that_cannot_be_inferred_is_refused(self) -> None:
        """Column() on a Decimal attribute asks for an explicit type."""

        class OrderMap(EntityMap[Order]):
            __table__ = "orders"
            id = Column(t.Integer(), primary_key=True)
            user_id = Column()
            total = Column()

        with pytest.raises(ConfigurationError) as error:
            registry_of(OrderMap)
        assert "OrderMap.total" in message(error)
        assert "Column(t." in message(error)

    def test_a_nullable_primary_key_is_refused(self) -> None:
        """nullable=True on a key column is refused."""

        class UserMap(EntityMap[User]):
            __table__ = "users"
            id = Column(t.Integer(), primary_key=True, nullable=True)
            name = Column(t.String(100))
            email = Column(t.String(100))

        with pytest.raises(ConfigurationError, match=r"UserMap\.id: a primary key"):
            registry_of(UserMap)

    def test_a_reference_to_an_unregistered_mapping_is_refused(self) -> None:
        """A Column reference to a mapping outside the registry names both."""

        class UserMap(EntityMap[User]):
            __table__ = "users"
            id = Column(t.Integer(), primary_key=True)
            name = Column(t.String(100))
            email = Column(t.String(100))

        class OrderMap(EntityMap[Order]):
            __table__ = "orders"
            id = Column(t.Integer(), primary_key=True)
            user_id = Column(t.Integer(), references=UserMap.__dict__["id"])
            total = Column(t.Decimal(10, 2))

        with pytest.raises(ConfigurationError) as error:
            registry_of(OrderMap)
        assert "OrderMap.user_id" in message(error)
        assert "UserMap is not registered" in message(error)

    def test_a_reference_to_an_unknown_table_is_refused(self) -> None:
        """references="people.id" with no mapping on table people is refused."""

        class OrderMap(EntityMap[Order]):
            __table__ = "orders"
            id = Column(t.Integer(), primary_key=True)
            user_id = Column(t.Integer(), references="people.id")
            total = Column(t.Decimal(10, 2))

        with pytest.raises(ConfigurationError) as error:
            registry_of(OrderMap)
        assert "OrderMap.user_id" in message(error)
        assert "'people'" in message(error)

    def test_a_reference_to_an_unknown_column_is_refused(self) -> None:
        """references="users.uid" where users has no uid column is refused."""

        class UserMap(EntityMap[User]):
            __table__ = "users"
            id = Column(t.Integer(), primary_key=True)
            name = Column(t.String(100))
            email = Column(t.String(100))

        class OrderMap(EntityMap[Order]):
            __table__ = "orders"
            id = Column(t.Integer(), primary_key=True)
            user_id = Column(t.Integer(), references="users.uid")
            total = Column(t.Decimal(10, 2))

        with pytest.raises(ConfigurationError) as error:
            registry_of(UserMap, OrderMap)
        assert "OrderMap.user_id" in message(error)
        assert "UserMap has no such column" in message(error)

    def test_a_reference_to_a_non_unique_column_is_refused(self) -> None:
        """A foreign key must point at a primary key or unique column."""

        class UserMap(EntityMap[User]):
            __table__ = "users"
            id = Column(t.Integer(), primary_key=True)
            name = Column(t.String(100))
            email = Column(t.String(100))
            version = Column(t.Integer())

        class OrderMap(EntityMap[Order]):
            __table__ = "orders"
            id = Column(t.Integer(), primary_key=True)
            user_id = Column(t.Integer(), references="users.version")
            total = Column(t.Decimal(10, 2))

        with pytest.raises(ConfigurationError) as error:
            registry_of(UserMap, OrderMap)
        assert "OrderMap.user_id" in message(error)
        assert "UserMap.version" in message(error)
        assert "unique" in message(error)

    def test_a_reference_to_part_of_a_composite_key_is_refused(self) -> None:
        """A foreign key to one column of a two-column key matches no unique row."""

        class LineMap(EntityMap[Line]):
            __table__ = "lines"
            order_id = Column(t.Integer(), primary_key=True)
            id = Column(t.Integer(), primary_key=True)
            qty = Column(t.Integer())

        class OrderMap(EntityMap[Order]):
            __table__ = "orders"
            id = Column(t.Integer(), primary_key=True)
            user_id = Column(t.Integer(), references="lines.id")
            total = Column(t.Decimal(10, 2))

        with pytest.raises(ConfigurationError) as error:
            registry_of(LineMap, OrderMap)
        assert "OrderMap.user_id" in message(error)
        assert "LineMap.id" in message(error)

    def test_an_entity_cannot_be_mapped_twice(self) -> None:
        """A second mapping of the same entity in one registry is refused, naming both."""

        class UserMap(EntityMap[User]):
            __table__ = "users"
            id = Column(t.Integer(), primary_key=True)
            name = Column(t.String(100))
            email = Column(t.String(100))

        class OtherUserMap(EntityMap[User]):
            __table__ = "other_users"
            id = Column(t.Integer(), primary_key=True)
            name = Column(t.String(100))
            email = Column(t.String(100))

        registry = Registry()
        registry.map(UserMap)
        registry.map(UserMap)  # registering the same mapping again is harmless
        with pytest.raises(InvalidMapping, match="User is already mapped by UserMap"):
            registry.map(OtherUserMap)

    def test_two_mappings_cannot_share_a_table(self) -> None:
        """Two mappings on the same table (ignoring case) are refused."""

        class UserMap(EntityMap[User]):
            __table__ = "users"
            id = Column(t.Integer(), primary_key=True)
            name = Column(t.String(100))
            email = Column(t.String(100))

        class LineMap(EntityMap[Line]):
            __table__ = "Users"
            id = Column(t.Integer(), primary_key=True)
            order_id = Column(t.Integer())
            qty = Column(t.Integer())

        registry = Registry()
        registry.map(UserMap)
        with pytest.raises(InvalidMapping, match="LineMap and UserMap both use table"):
            registry.map(LineMap)

    @pytest.mark.parametrize("thing", [User, object(), EntityMap], ids=repr)
    def test_only_mapping_classes_can_be_registered(self, thing: Any) -> None:
        """registry.map takes EntityMap[X] subclasses only."""
        with pytest.raises(InvalidMapping):
            Registry().map(thing)

    def test_an_empty_registry_cannot_be_configured(self) -> None:
        """A registry without mappings says how to add them."""
        with pytest.raises(ConfigurationError, match=r"@registry\.map"):
            Registry().configure()

    def test_an_unmapped_entity_has_no_meta(self) -> None:
        """Asking for an unmapped entity names it and the mapped ones."""

        class UserMap(EntityMap[User]):
            __table__ = "users"
            id = Column(t.Integer(), primary_key=True)
            name = Column(t.String(100))
            email = Column(t.String(100))

        registry = registry_of(UserMap)
        with pytest.raises(ConfigurationError, match=r"Order is not mapped.*mapped: User"):
            registry.meta(Order)

    def test_an_unregistered_mapping_has_no_meta(self) -> None:
        """meta_for_map of a mapping outside the registry names it."""

        class UserMap(EntityMap[User]):
            __table__ = "users"
            id = Column(t.Integer(), primary_key=True)
            name = Column(t.String(100))
            email = Column(t.String(100))

        class LineMap(EntityMap[Line]):
            __table__ = "lines"
            id = Column(t.Integer(), primary_key=True)
            order_id = Column(t.Integer())
            qty = Column(t.Integer())

        registry = registry_of(UserMap)
        with pytest.raises(ConfigurationError, match="LineMap is not registered"):
            registry.meta_for_map(LineMap)

    def test_a_repository_must_be_a_repository_class(self) -> None:
        """registry.repository refuses a class that is not a Repository."""
        with pytest.raises(ConfigurationError, match=r"registry\.repository\(User"):
            Registry().repository(User, dict)

    def test_a_repository_subclass_is_recorded(self) -> None:
        """A Repository subclass is registered for its entity."""
        from mapper import Repository

        class UserRepository(Repository[User]):
            pass

        registry = Registry()
        registry.repository(User, UserRepository)
        assert registry.repository_class(User) is UserRepository
        assert registry.repository_class(Order) is None

    def test_the_decorator_returns_the_mapping_class(self) -> None:
        """@registry.map leaves the class usable under its own name."""
        registry = Registry()

        @registry.map
        class UserMap(EntityMap[User]):
            __table__ = "users"
            id = Column(t.Integer(), primary_key=True)
            name = Column(t.String(100))
            email = Column(t.String(100))

        assert isinstance(UserMap, type)
        assert registry.meta_for_map(UserMap).entity is User


def _user_order_line_maps() -> tuple[type[EntityMap[Any]], ...]:
    """Three mappings chained by foreign keys: lines -> orders -> users."""

    class LineMap(EntityMap[Line]):
        __table__ = "lines"
        id = Column(t.Integer(), primary_key=True, generated=True)
        order_id = Column(t.Integer(), references="orders.id")
        qty = Column(t.Integer())

    class OrderMap(EntityMap[Order]):
        __table__ = "orders"
        id = Column(t.Integer(), primary_key=True, generated=True)
        user_id = Column(t.Integer(), references="users.id")
        total = Column(t.Decimal(10, 2))

    class UserMap(EntityMap[User]):
        __table__ = "users"
        id = Column(t.Integer(), primary_key=True, generated=True)
        name = Column(t.String(100))
        email = Column(t.String(100), unique=True)

    return LineMap, OrderMap, UserMap


class TestReferencesAndOrder:
    def test_a_reference_may_name_a_table_mapped_later(self) -> None:
        """ "orders.id" resolves though OrderMap is declared and registered after LineMap."""
        registry = registry_of(*_user_order_line_maps())
        assert registry.meta(Line).column("order_id").foreign_key == ForeignKeyMeta(
            "order_id", "orders", "id"
        )
        assert registry.meta(Order).foreign_keys == (ForeignKeyMeta("user_id", "users", "id"),)
        assert registry.meta(User).foreign_keys == ()

    def test_a_reference_may_be_a_column_object(self) -> None:
        """references=UserMap.id becomes a foreign key to the column's database name."""

        class UserMap(EntityMap[User]):
            __table__ = "users"
            id = Column(t.Integer(), primary_key=True, name="user_key")
            name = Column(t.String(100))
            email = Column(t.String(100))

        class OrderMap(EntityMap[Order]):
            __table__ = "orders"
            id = Column(t.Integer(), primary_key=True)
            user_id = Column(t.Integer(), references=UserMap.id, name="buyer")
            total = Column(t.Decimal(10, 2))

        registry = registry_of(UserMap, OrderMap)
        foreign_key = ForeignKeyMeta("buyer", "users", "user_key")
        assert registry.meta(Order).foreign_keys == (foreign_key,)

    def test_a_reference_may_use_the_database_column_name(self) -> None:
        """ "users.user_key" finds the column stored as user_key (attribute id)."""

        class UserMap(EntityMap[User]):
            __table__ = "users"
            id = Column(t.Integer(), primary_key=True, name="user_key")
            name = Column(t.String(100))
            email = Column(t.String(100))

        class OrderMap(EntityMap[Order]):
            __table__ = "orders"
            id = Column(t.Integer(), primary_key=True)
            user_id = Column(t.Integer(), references="users.user_key")
            total = Column(t.Decimal(10, 2))

        registry = registry_of(OrderMap, UserMap)
        assert registry.meta(Order).foreign_keys[0].target_column == "user_key"

    def test_table_order_puts_parents_first(self) -> None:
        """table_order() lists users, then orders, then lines, whatever the registration order."""
        registry = registry_of(*_user_order_line_maps())
        assert [meta.table for meta in registry.table_order()] == ["users", "orders", "lines"]
        assert [meta.table for meta in registry.metas()] == ["lines", "orders", "users"]
        assert [meta.table for meta in registry] == ["lines", "orders", "users"]

    def test_a_self_reference_is_not_a_cycle(self) -> None:
        """A table whose foreign key points at itself (a tree) is allowed."""

        @attrs.define
        class Node:
            id: int
            parent_id: int | None = None

        class NodeMap(EntityMap[Node]):
            __table__ = "nodes"
            id = Column(t.Integer(), primary_key=True)
            parent_id = Column(t.Integer(), references="nodes.id")

        registry = registry_of(NodeMap)
        assert [meta.table for meta in registry.table_order()] == ["nodes"]
        assert registry.meta(Node).column("parent_id").nullable

    def test_a_cycle_through_a_nullable_key_is_ordered(self) -> None:
        """Foreign keys a -> b -> a order by leaving out a nullable one (filled by an update)."""

        @attrs.define
        class A:
            id: int
            b_id: int | None = None

        @attrs.define
        class B:
            id: int
            a_id: int

        class AMap(EntityMap[A]):
            __table__ = "a_table"
            id = Column(t.Integer(), primary_key=True)
            b_id = Column(t.Integer(), references="b_table.id")

        class BMap(EntityMap[B]):
            __table__ = "b_table"
            id = Column(t.Integer(), primary_key=True)
            a_id = Column(t.Integer(), references="a_table.id")

        order = [meta.table for meta in registry_of(AMap, BMap).table_order()]
        assert order == ["a_table", "b_table"]  # a's key to b is the nullable one

    def test_a_cycle_of_required_keys_is_refused(self) -> None:
        """Foreign keys a -> b -> a, neither nullable, raise ConfigurationError naming both."""

        @attrs.define
        class A:
            id: int
            b_id: int

        @attrs.define
        class B:
            id: int
            a_id: int

        class AMap(EntityMap[A]):
            __table__ = "a_table"
            id = Column(t.Integer(), primary_key=True)
            b_id = Column(t.Integer(), references="b_table.id")

        class BMap(EntityMap[B]):
            __table__ = "b_table"
            id = Column(t.Integer(), primary_key=True)
            a_id = Column(t.Integer(), references="a_table.id")

        with pytest.raises(ConfigurationError) as error:
            registry_of(AMap, BMap)
        assert "cycle" in message(error)
        assert "a_table" in message(error)
        assert "b_table" in message(error)

    def test_registering_after_configure_recompiles(self) -> None:
        """A mapping registered after the registry compiled is part of the next lookup."""
        _, order_map, user_map = _user_order_line_maps()
        registry = registry_of(user_map)
        assert registry.configured
        registry.map(order_map)
        assert not registry.configured
        assert registry.meta(Order).table == "orders"


class TestCompiledColumns:
    def test_nullability_follows_optional_annotations(self) -> None:
        """`X | None` attributes are nullable; plain ones are not."""

        class UserMap(EntityMap[User]):
            __table__ = "users"
            id = Column(t.Integer(), primary_key=True)
            name = Column(t.String(100))
            email = Column(t.String(100))
            nickname = Column(t.String(20))

        meta = registry_of(UserMap).meta(User)
        assert meta.column("nickname").nullable is True
        assert meta.column("name").nullable is False
        assert meta.column("id").nullable is False

    def test_nullable_overrides_the_annotation(self) -> None:
        """nullable=False on an optional attribute and nullable=True on a plain one win."""

        class UserMap(EntityMap[User]):
            __table__ = "users"
            id = Column(t.Integer(), primary_key=True)
            name = Column(t.String(100), nullable=True)
            email = Column(t.String(100))
            nickname = Column(t.String(20), nullable=False)

        meta = registry_of(UserMap).meta(User)
        assert meta.column("name").nullable is True
        assert meta.column("nickname").nullable is False

    def test_types_are_inferred_from_annotations(self) -> None:
        """Column() takes its type from the annotation, None stripped."""

        @attrs.define
        class Everything:
            id: int
            text: str
            flag: bool
            ratio: float | None
            blob: bytes
            at: dt.datetime
            day: dt.date | None
            clock: dt.time
            key: uuid.UUID
            address: Address
            tags: list[str]

        class EverythingMap(EntityMap[Everything]):
            __table__ = "everything"
            id = Column(primary_key=True)
            text = Column()
            flag = Column()
            ratio = Column()
            blob = Column()
            at = Column()
            day = Column()
            clock = Column()
            key = Column()
            address = Column()
            tags = Column()

        meta = registry_of(EverythingMap).meta(Everything)
        assert {c.attribute: c.type for c in meta.columns} == {
            "id": t.Integer(),
            "text": t.Text(),
            "flag": t.Boolean(),
            "ratio": t.Float(),
            "blob": t.Bytes(),
            "at": t.DateTime(tz=True),
            "day": t.Date(),
            "clock": t.Time(),
            "key": t.UUID(),
            "address": t.JSON(Address),
            "tags": t.JSON(list[str]),
        }
        assert meta.column("ratio").nullable
        assert meta.column("day").nullable
        assert not meta.column("text").nullable

    def test_an_untyped_json_column_takes_the_annotation(self) -> None:
        """Column(t.JSON()) on an `Address | None` attribute becomes JSON(Address)."""

        class ProfileMap(EntityMap[Profile]):
            __table__ = "profiles"
            id = Column(t.UUID(), primary_key=True)
            user_id = Column(t.Integer())
            bio = Column(t.Text())
            address = Column(t.JSON())

        column = registry_of(ProfileMap).meta(Profile).column("address")
        assert column.type == t.JSON(Address)
        assert column.nullable

    def test_columns_keep_declaration_order_and_names(self) -> None:
        """Columns are numbered in declaration order and keep their database names."""

        class UserMap(EntityMap[User]):
            __table__ = "users"
            id = Column(t.Integer(), primary_key=True)
            email = Column(t.String(100), name="mail", index=True)
            name = Column(t.String(100))

        meta = registry_of(UserMap).meta(User)
        assert [(c.attribute, c.name, c.position) for c in meta.columns] == [
            ("id", "id", 0),
            ("email", "mail", 1),
            ("name", "name", 2),
        ]
        assert list(meta.iter_names()) == ["id", "mail", "name"]
        assert meta.column("email").index
        assert meta.name == "User"
        assert repr(meta) == "EntityMeta(User -> users)"

    def test_composite_keys_are_compiled_in_declaration_order(self) -> None:
        """Several primary_key columns make a composite key, in declaration order."""

        class LineMap(EntityMap[Line]):
            __table__ = "lines"
            order_id = Column(t.Integer(), primary_key=True)
            id = Column(t.Integer(), primary_key=True)
            qty = Column(t.Integer())

        meta = registry_of(LineMap).meta(Line)
        assert meta.composite_key
        assert [c.attribute for c in meta.primary_key] == ["order_id", "id"]

    @pytest.mark.parametrize(
        ("default", "expected"),
        [(7, 7), (lambda: 8, 8), (attrs.NOTHING, None)],
        ids=["value", "function", "none"],
    )
    def test_defaults_become_factories(self, default: Any, expected: Any) -> None:
        """A default value or function is what default_value() returns; no default gives None."""

        class LineMap(EntityMap[Line]):
            __table__ = "lines"
            id = Column(t.Integer(), primary_key=True)
            order_id = Column(t.Integer())
            qty = Column(t.Integer(), default=default)

        column: ColumnMeta = registry_of(LineMap).meta(Line).column("qty")
        assert column.default_value() == expected

    def test_a_function_default_is_called_each_time(self) -> None:
        """A function default gives a fresh value per call (uuid7 keys)."""
        from mapper import uuid7

        class ProfileMap(EntityMap[Profile]):
            __table__ = "profiles"
            id = Column(t.UUID(), primary_key=True, default=uuid7)
            user_id = Column(t.Integer())
            bio = Column(t.Text())

        column = registry_of(ProfileMap).meta(Profile).column("id")
        assert column.default_value() != column.default_value()


ENTITY_STYLES: dict[str, Callable[[type], type]] = {
    "slotted": attrs.define,
    "dict": attrs.define(slots=False),
    "frozen": attrs.frozen,
    "frozen-dict": attrs.frozen(slots=False),
}


@pytest.mark.parametrize("style", ENTITY_STYLES.values(), ids=ENTITY_STYLES.keys())
def test_every_attrs_style_can_be_mapped(style: Callable[[type], type]) -> None:
    """Slotted, dict-based and frozen attrs entities map alike."""

    @style
    class Item:
        name: str
        price: decimal.Decimal
        note: str | None = None
        id: int | None = None

    entity = Item

    class ItemMap(EntityMap[Item]):
        __table__ = "items"
        id = Column(primary_key=True, generated=True)
        name = Column(t.String(50))
        price = Column(t.Decimal(10, 2))
        note = Column()

    meta = registry_of(ItemMap).meta(entity)
    assert meta.column("note").type == t.Text()
    assert meta.column("note").nullable
    assert meta.column("id").type == t.Integer()
    assert not meta.column("id").nullable


class TestFutureAnnotations:
    def test_string_annotations_resolve_forward_references(self) -> None:
        """Annotations naming classes defined later in the module resolve at configure time."""

        class InvoiceMap(EntityMap[fe.Invoice]):
            __table__ = "invoices"
            id = Column(primary_key=True, generated=True)
            number = Column(t.String(20))
            total = Column()
            issued = Column()
            customer_id = Column()
            amount = Column(t.Decimal(10, 2))
            lines = Column()

        meta = registry_of(InvoiceMap).meta(fe.Invoice)
        assert meta.column("total").type == t.JSON(fe.Money)
        assert meta.column("issued").type == t.DateTime()
        assert meta.column("issued").nullable
        assert meta.column("customer_id").type == t.UUID()
        assert meta.column("customer_id").nullable
        assert meta.column("lines").type == t.JSON(list[str])
        assert not meta.column("number").nullable

    def test_a_mismatch_is_found_through_string_annotations(self) -> None:
        """t.Integer() on a string-annotated str attribute is still refused."""

        class CustomerMap(EntityMap[fe.Customer]):
            __table__ = "customers"
            id = Column(t.UUID(), primary_key=True)
            name = Column(t.Integer())

        with pytest.raises(ConfigurationError, match=r"CustomerMap\.name"):
            registry_of(CustomerMap)

    def test_one_unresolvable_annotation_does_not_hide_the_others(self) -> None:
        """A TYPE_CHECKING-only annotation leaves the other attributes' types and nullability."""

        class DraftMap(EntityMap[fe.Draft]):
            __table__ = "drafts"
            id = Column(t.Integer(), primary_key=True)
            title = Column()
            note = Column()
            extra = Column(t.JSON())

        meta = registry_of(DraftMap).meta(fe.Draft)
        assert meta.column("title").type == t.Text()
        assert meta.column("note").type == t.Text()
        assert meta.column("note").nullable
        assert meta.column("extra").type == t.JSON()

    def test_an_unresolvable_optional_annotation_stays_nullable(self) -> None:
        """`OrderedDict[str, int] | None` under TYPE_CHECKING still makes a nullable column."""

        class DraftMap(EntityMap[fe.Draft]):
            __table__ = "drafts"
            id = Column(t.Integer(), primary_key=True)
            title = Column()
            extra = Column(t.JSON())

        assert registry_of(DraftMap).meta(fe.Draft).column("extra").nullable

    def test_an_unresolvable_annotation_needs_an_explicit_type(self) -> None:
        """Column() on an annotation that cannot be resolved asks for a type."""

        class DraftMap(EntityMap[fe.Draft]):
            __table__ = "drafts"
            id = Column(t.Integer(), primary_key=True)
            title = Column()
            extra = Column()

        with pytest.raises(ConfigurationError, match=r"DraftMap\.extra"):
            registry_of(DraftMap)
