"""Unit tests of `mapper.codec`: building entities without __init__, values, keys, snapshots,
per-dialect row conversion, and generated code that tracebacks can show."""

import datetime as dt
import decimal
import inspect
import linecache
import traceback
import uuid
from collections.abc import Callable, Sequence
from typing import Any, overload

import attrs
import pytest

from mapper import Column, EntityMap, Registry
from mapper import types as t
from mapper.codec import RowCodec, entity_codec, row_codec, write_attribute
from mapper.mapping import EntityMeta

D = decimal.Decimal
CALLS: list[str] = []


def _refuse(instance: Any, attribute: Any, value: Any) -> None:
    CALLS.append(f"validator {attribute.name}")
    raise ValueError("validators must not run when loading")


def meta_of(map_class: type[EntityMap[Any]]) -> EntityMeta:
    """The compiled metadata of one mapping, in a registry of its own."""
    registry = Registry()
    registry.map(map_class)
    return registry.meta_for_map(map_class)


ENTITY_STYLES: dict[str, Callable[[type], type]] = {
    "slotted": attrs.define,
    "dict": attrs.define(slots=False),
    "frozen": attrs.frozen,
    "frozen-dict": attrs.frozen(slots=False),
}


def account_meta(style: Callable[[type], type]) -> EntityMeta:
    """A mapping of an entity whose __init__, validators and post-init all refuse to run."""

    @style
    class Account:
        owner: str = attrs.field(validator=_refuse)
        balance: D = attrs.field(validator=_refuse)
        id: int | None = None
        tags: list[str] = attrs.Factory(list)
        label: str = attrs.Factory(lambda self: f"{self.owner}:{self.id}", takes_self=True)
        region: str = "eu"
        cache: dict[str, int] = attrs.field(init=False, factory=dict)

        def __attrs_post_init__(self) -> None:
            CALLS.append("post_init")
            raise RuntimeError("__attrs_post_init__ must not run when loading")

    class AccountMap(EntityMap[Account]):
        __table__ = "accounts"
        id = Column(t.Integer(), primary_key=True)
        owner = Column(t.String(50))
        balance = Column(t.Decimal(10, 2))

    return meta_of(AccountMap)


@pytest.fixture(autouse=True)
def _clear_calls() -> None:
    CALLS.clear()


class TestBuild:
    @pytest.mark.parametrize("style", ENTITY_STYLES.values(), ids=ENTITY_STYLES.keys())
    def test_build_skips_init_validators_and_post_init(self, style: Callable[[type], type]) -> None:
        """A loaded entity is reconstituted: no __init__, validator or __attrs_post_init__ runs."""
        meta = account_meta(style)
        with pytest.raises(ValueError, match="validators must not run"):
            meta.entity(owner="ann", balance=D("1.00"))
        CALLS.clear()
        account = entity_codec(meta).build((7, "ann", D("1.50")))
        assert CALLS == []
        assert type(account) is meta.entity
        assert (account.id, account.owner, account.balance) == (7, "ann", D("1.50"))

    def test_build_does_not_call_a_custom_init(self) -> None:
        """An entity with a hand-written __init__ is built without calling it."""

        @attrs.define(init=False)
        class Legacy:
            id: int
            name: str

            def __init__(self) -> None:
                CALLS.append("init")
                raise RuntimeError("__init__ must not run when loading")

        class LegacyMap(EntityMap[Legacy]):
            __table__ = "legacy"
            id = Column(t.Integer(), primary_key=True)
            name = Column(t.Text())

        legacy = entity_codec(meta_of(LegacyMap)).build([1, "x"])
        assert CALLS == []
        assert (legacy.id, legacy.name) == (1, "x")

    @pytest.mark.parametrize("style", ENTITY_STYLES.values(), ids=ENTITY_STYLES.keys())
    def test_unmapped_fields_get_their_defaults(self, style: Callable[[type], type]) -> None:
        """Unmapped fields get plain defaults, Factory values and takes_self factories."""
        meta = account_meta(style)
        account = entity_codec(meta).build((7, "ann", D("1.50")))
        assert account.tags == []
        assert account.label == "ann:7"
        assert account.region == "eu"
        assert account.cache == {}

    @pytest.mark.parametrize("style", ENTITY_STYLES.values(), ids=ENTITY_STYLES.keys())
    def test_factories_give_each_entity_its_own_value(self, style: Callable[[type], type]) -> None:
        """Two loaded entities never share a Factory-made list."""
        codec = entity_codec(account_meta(style))
        first = codec.build((1, "a", D(0)))
        second = codec.build((2, "b", D(0)))
        assert first.tags is not second.tags
        assert first.cache is not second.cache

    @pytest.mark.parametrize("style", [attrs.frozen, attrs.frozen(slots=False)], ids=str)
    def test_frozen_entities_stay_frozen(self, style: Callable[[type], type]) -> None:
        """Building a frozen entity does not unfreeze it."""
        account = entity_codec(account_meta(style)).build((1, "a", D(0)))
        with pytest.raises(attrs.exceptions.FrozenInstanceError):
            account.owner = "b"

    def test_slotted_entities_get_no_instance_dict(self) -> None:
        """A slotted entity stays slotted: nothing is stored outside its slots."""
        account = entity_codec(account_meta(attrs.define)).build((1, "a", D(0)))
        assert not hasattr(account, "__dict__")

    def test_built_entities_equal_constructed_ones(self) -> None:
        """A loaded entity compares equal to the same entity made by its constructor."""

        @attrs.define
        class Item:
            name: str
            tags: list[str] = attrs.Factory(list)
            id: int | None = None

        class ItemMap(EntityMap[Item]):
            __table__ = "items"
            id = Column(t.Integer(), primary_key=True)
            name = Column(t.Text())

        assert entity_codec(meta_of(ItemMap)).build((3, "pen")) == Item("pen", id=3)

    def test_write_attribute_sets_frozen_attributes(self) -> None:
        """write_attribute sets a key on a frozen entity (the mapper owns keys and versions)."""
        account = entity_codec(account_meta(attrs.frozen)).build((None, "a", D(0)))
        write_attribute(account, "id", 42)
        assert account.id == 42
        assert CALLS == []


@attrs.define
class Line:
    order_id: int
    number: int
    qty: int
    data: dict[str, Any] = attrs.Factory(dict)


class LineMap(EntityMap[Line]):
    __table__ = "lines"
    order_id = Column(t.Integer(), primary_key=True)
    number = Column(t.Integer(), primary_key=True)
    qty = Column(t.Integer())
    data = Column(t.JSON())


@attrs.define
class Tag:
    id: int


class TagMap(EntityMap[Tag]):
    __table__ = "tags"
    id = Column(t.Integer(), primary_key=True)


class TestValuesAndKeys:
    def test_values_are_in_column_order(self) -> None:
        """values() reads every mapped attribute, in declaration order."""
        line = Line(order_id=1, number=2, qty=3, data={"a": 1})
        assert entity_codec(meta_of(LineMap)).values(line) == (1, 2, 3, {"a": 1})

    def test_a_single_column_gives_a_one_tuple(self) -> None:
        """values() of a one-column mapping is still a tuple."""
        assert entity_codec(meta_of(TagMap)).values(Tag(5)) == (5,)

    def test_a_single_key_is_the_bare_value(self) -> None:
        """key() of a single-column key is the value itself."""
        assert entity_codec(meta_of(TagMap)).key(Tag(5)) == 5

    def test_a_composite_key_is_a_tuple_in_key_order(self) -> None:
        """key() of a composite key is a tuple of the key columns in declaration order."""
        line = Line(order_id=1, number=2, qty=3)
        assert entity_codec(meta_of(LineMap)).key(line) == (1, 2)

    def test_values_of_a_built_entity_are_the_row(self) -> None:
        """values(build(row)) gives the row back."""
        codec = entity_codec(meta_of(LineMap))
        row = (1, 2, 3, {"k": [1, 2]})
        assert codec.values(codec.build(row)) == row

    def test_codecs_are_compiled_once_per_mapping(self) -> None:
        """entity_codec() and row_codec() return the cached codec on later calls."""
        meta = meta_of(LineMap)
        assert entity_codec(meta) is entity_codec(meta)
        assert row_codec(meta, "sqlite") is row_codec(meta, "sqlite")
        assert row_codec(meta, "sqlite") is not row_codec(meta, "postgresql")


class TestSnapshot:
    def test_in_place_changes_to_json_do_not_reach_the_snapshot(self) -> None:
        """A snapshot keeps a JSON value as it was, so a later in-place change shows up."""
        codec = entity_codec(meta_of(LineMap))
        line = Line(order_id=1, number=2, qty=3, data={"items": [1, 2]})
        before = codec.snapshot(codec.values(line))
        line.data["items"].append(3)
        assert codec.snapshot(codec.values(line)) != before
        untouched = Line(order_id=1, number=2, qty=3, data={"items": [1, 2]})
        assert codec.snapshot(codec.values(untouched)) == before

    def test_equal_json_values_give_equal_snapshots(self) -> None:
        """Two equal JSON documents, built separately and in another key order, compare equal."""
        codec = entity_codec(meta_of(LineMap))
        first = codec.snapshot((1, 2, 3, {"a": 1, "b": [1.5, None]}))
        second = codec.snapshot((1, 2, 3, {"b": [1.5, None], "a": 1}))
        assert first == second

    def test_json_values_equal_in_python_but_not_in_json_differ(self) -> None:
        """1 and True are equal in Python but stored differently, so the snapshots differ."""
        codec = entity_codec(meta_of(LineMap))
        assert codec.snapshot((1, 2, 3, {"a": 1})) != codec.snapshot((1, 2, 3, {"a": True}))

    def test_only_mutable_columns_are_transformed(self) -> None:
        """Immutable column values go into the snapshot as they are."""
        codec = entity_codec(meta_of(LineMap))
        assert codec.mutable_positions == (3,)
        values = (1, 2, 3, {"a": 1})
        snapshot = codec.snapshot(values)
        assert snapshot[:3] == values[:3]
        assert snapshot[0] is values[0]
        assert snapshot[3] is not values[3]

    def test_a_null_json_value_snapshots_as_none(self) -> None:
        """A NULL JSON column stays None in the snapshot."""
        codec = entity_codec(meta_of(LineMap))
        assert codec.snapshot((1, 2, 3, None))[3] is None

    def test_an_unserialisable_json_value_does_not_break_the_snapshot(self) -> None:
        """A value JSON cannot hold still snapshots; it differs from any other snapshot."""
        codec = entity_codec(meta_of(LineMap))
        first = codec.snapshot((1, 2, 3, {"a": {1, 2}}))
        second = codec.snapshot((1, 2, 3, {"a": {1, 2}}))
        assert first != second

    def test_a_wrong_value_for_a_value_object_does_not_break_the_snapshot(self) -> None:
        """A dict set on a JSON(Address) attribute snapshots; the flush's checks report it."""
        codec = entity_codec(meta_of(PlaceMap))
        snapshot = codec.snapshot((1, {"street": "Main St"}))
        assert snapshot[0] == 1

    def test_a_mapping_without_mutable_columns_snapshots_as_a_tuple(self) -> None:
        """Without JSON columns the snapshot is just a tuple of the values."""
        codec = entity_codec(meta_of(TagMap))
        assert codec.mutable_positions == ()
        assert codec.snapshot([5]) == (5,)


@attrs.frozen
class Address:
    street: str
    city: str


@attrs.define
class Place:
    id: int
    address: Address


class PlaceMap(EntityMap[Place]):
    __table__ = "places"
    id = Column(t.Integer(), primary_key=True)
    address = Column(t.JSON())


@attrs.define
class Event:
    id: uuid.UUID
    at: dt.datetime
    price: D
    paid: bool
    kind: str
    payload: dict[str, Any] | None = None
    note: str | None = None


class EventMap(EntityMap[Event]):
    __table__ = "events"
    id = Column(t.UUID(), primary_key=True)
    at = Column(t.DateTime())
    price = Column(t.Decimal(10, 2))
    paid = Column(t.Boolean())
    kind = Column(t.String(20))
    payload = Column(t.JSON())
    note = Column(t.Text())


EVENT_ID = uuid.UUID("01890a5d-ac96-774b-bcce-b302099a8057")
EVENT_AT = dt.datetime(2024, 5, 1, 12, 30, tzinfo=dt.timezone(dt.timedelta(hours=2)))


class TestRowCodec:
    def test_sqlite_binds_each_column_with_its_type(self) -> None:
        """SQLite gets text for UUIDs, datetimes, decimals and JSON; None stays None."""
        meta = meta_of(EventMap)
        codec = row_codec(meta, "sqlite")
        bound = [
            codec.bind(column, value)
            for column, value in zip(
                meta.columns,
                (EVENT_ID, EVENT_AT, D("9.5"), True, "sale", {"a": 1}, None),
                strict=True,
            )
        ]
        assert bound == [
            str(EVENT_ID),
            "2024-05-01 10:30:00.000000",
            "9.50",
            True,
            "sale",
            '{"a":1}',
            None,
        ]

    def test_sqlite_loads_each_column_with_its_type(self) -> None:
        """A SQLite row loads as UUID, aware datetime, Decimal, bool and JSON; NULL as None."""
        codec = row_codec(meta_of(EventMap), "sqlite")
        assert codec.load is not None
        row = codec.load(
            (str(EVENT_ID), "2024-05-01 10:30:00.000000", 9.5, 1, "sale", '{"a":1}', None)
        )
        assert tuple(row) == (EVENT_ID, EVENT_AT, D("9.50"), True, "sale", {"a": 1}, None)
        assert row[1].utcoffset() == dt.timedelta(0)
        assert type(row[3]) is bool

    def test_sqlite_nulls_load_as_none_in_every_column(self) -> None:
        """NULL in any converted column loads as None, never through the converter."""
        codec = row_codec(meta_of(EventMap), "sqlite")
        assert codec.load is not None
        assert tuple(codec.load((None,) * 7)) == (None,) * 7

    def test_postgresql_passes_native_values(self) -> None:
        """asyncpg takes UUIDs, datetimes and decimals as they are; JSON goes as text."""
        meta = meta_of(EventMap)
        codec = row_codec(meta, "postgresql")
        assert codec.bind(meta.column("id"), EVENT_ID) is EVENT_ID
        assert codec.bind(meta.column("at"), EVENT_AT) is EVENT_AT
        assert codec.bind(meta.column("price"), D("9.5")) == D("9.50")
        assert codec.bind(meta.column("payload"), {"a": [1]}) == '{"a":[1]}'
        assert codec.load is not None
        loaded = codec.load((EVENT_ID, EVENT_AT, D("9.50"), True, "sale", '{"a":1}', None))
        assert tuple(loaded) == (EVENT_ID, EVENT_AT, D("9.50"), True, "sale", {"a": 1}, None)

    def test_a_mapping_with_nothing_to_convert_has_no_loader(self) -> None:
        """Rows of plain ints need no load step."""
        codec = row_codec(meta_of(TagMap), "postgresql")
        assert isinstance(codec, RowCodec)
        assert codec.load is None
        assert codec.binders == (None,)

    def test_binders_for_picks_columns_by_position(self) -> None:
        """binders_for returns the converters of the given columns in the given order."""
        meta = meta_of(EventMap)
        codec = row_codec(meta, "sqlite")
        picked = codec.binders_for([meta.column("note"), meta.column("price")])
        assert picked[0] is None
        assert picked[1] is not None
        assert picked[1](D("1")) == "1.00"

    @pytest.mark.parametrize("dialect", ["postgresql", "sqlite"])
    def test_bind_then_load_gives_the_entity_back(self, dialect: Any) -> None:
        """Binding an entity's values and loading them rebuilds an equal entity."""
        meta = meta_of(EventMap)
        entity = Event(EVENT_ID, EVENT_AT, D("9.50"), False, "sale", {"a": [1]}, "n")
        codec = row_codec(meta, dialect)
        codecs = entity_codec(meta)
        bound = tuple(
            codec.bind(c, v) for c, v in zip(meta.columns, codecs.values(entity), strict=True)
        )
        loaded = codec.load(bound) if codec.load is not None else bound
        assert codecs.build(loaded) == entity


class TestGeneratedCode:
    def test_build_has_source_in_linecache(self) -> None:
        """The generated build function's source can be read (inspect, linecache)."""
        codec = entity_codec(account_meta(attrs.define))
        filename = codec.build.__code__.co_filename
        assert filename.startswith("<mapper generated build")
        assert "def build(values):" in "".join(linecache.getlines(filename))
        assert "def build(values):" in inspect.getsource(codec.build)

    def test_a_failing_factory_shows_the_generated_line_in_the_traceback(self) -> None:
        """A Factory that raises during build shows the generated line that called it."""

        def broken() -> list[str]:
            raise LookupError("factory failed")

        @attrs.define
        class Item:
            id: int
            tags: list[str] = attrs.Factory(broken)

        class ItemMap(EntityMap[Item]):
            __table__ = "items"
            id = Column(t.Integer(), primary_key=True)

        codec = entity_codec(meta_of(ItemMap))
        with pytest.raises(LookupError) as error:
            codec.build((1,))
        frames = traceback.extract_tb(error.value.__traceback__)
        generated = [f for f in frames if f.filename.startswith("<mapper generated build")]
        assert len(generated) == 1
        assert generated[0].line is not None
        assert "_f0()" in generated[0].line

    def test_a_failing_loader_shows_the_generated_line_in_the_traceback(self) -> None:
        """A loader that raises shows the generated load line naming the column position."""
        codec = row_codec(meta_of(EventMap), "sqlite")
        assert codec.load is not None
        with pytest.raises(ValueError) as error:
            codec.load(("not-a-uuid", None, None, None, None, None, None))
        frames = traceback.extract_tb(error.value.__traceback__)
        generated = [f for f in frames if f.filename.startswith("<mapper generated load")]
        assert len(generated) == 1
        assert generated[0].line is not None
        assert "_l0(v0)" in generated[0].line

    def test_each_generated_function_has_its_own_file_name(self) -> None:
        """Two mappings' generated functions never share a linecache entry."""
        first = entity_codec(meta_of(TagMap)).build.__code__.co_filename
        second = entity_codec(meta_of(LineMap)).build.__code__.co_filename
        assert first != second
        assert linecache.getlines(first) != linecache.getlines(second)

    def test_generated_source_survives_checkcache(self) -> None:
        """linecache.checkcache() (run by traceback printing) keeps the generated source."""
        codec = entity_codec(meta_of(TagMap))
        filename = codec.build.__code__.co_filename
        linecache.checkcache()
        assert linecache.getlines(filename)


class DriverRow(Sequence[Any]):
    """An immutable row that is no tuple but compares as one, as asyncpg's Record does."""

    def __init__(self, values: tuple[Any, ...]) -> None:
        self._values = values

    @overload
    def __getitem__(self, index: int) -> Any: ...

    @overload
    def __getitem__(self, index: slice) -> tuple[Any, ...]: ...

    def __getitem__(self, index: int | slice) -> Any:
        return self._values[index]

    def __len__(self) -> int:
        return len(self._values)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, DriverRow):
            other = other._values
        return isinstance(other, tuple) and self._values == other

    def __hash__(self) -> int:
        return hash(self._values)


class TestMaterialize:
    @pytest.mark.parametrize("style", ENTITY_STYLES.values(), ids=list(ENTITY_STYLES))
    def test_rows_become_entities_with_snapshots(self, style: Callable[[type], type]) -> None:
        """Each new row is built like `build` (no __init__) and held with its snapshot."""
        meta = account_meta(style)
        entities: dict[Any, Any] = {}
        snapshots: dict[Any, Any] = {}
        rows = [(1, "ann", D("1.50")), (2, "bob", D("2.00"))]
        loaded = entity_codec(meta).materialize(rows, entities, snapshots, True)
        assert [(a.id, a.owner, a.balance, a.label) for a in loaded] == [
            (1, "ann", D("1.50"), "ann:1"),
            (2, "bob", D("2.00"), "bob:2"),
        ]
        assert CALLS == []
        assert entities == {1: loaded[0], 2: loaded[1]}
        assert snapshots == {1: rows[0], 2: rows[1]}

    def test_a_held_key_gives_the_held_object_and_keeps_its_snapshot(self) -> None:
        """A row whose key is held yields that object; untracked rows are not held."""
        meta = account_meta(attrs.define)
        codec = entity_codec(meta)
        held = codec.build((1, "ann", D("1.50")))
        write_attribute(held, "owner", "changed")
        entities: dict[Any, Any] = {1: held}
        snapshots: dict[Any, Any] = {1: (1, "ann", D("1.50"))}
        rows = [(1, "ann", D("9.99")), (3, "cy", D("0.10"))]
        first, third = codec.materialize(rows, entities, snapshots, False)
        assert first is held and first.owner == "changed"
        assert third.id == 3 and 3 not in entities and 3 not in snapshots
        assert snapshots[1] == (1, "ann", D("1.50"))

    def test_a_row_is_its_own_snapshot_without_mutable_columns(self) -> None:
        """The row object itself is held as the snapshot, even a driver's own row type that
        is no tuple (as asyncpg's Record), and the change scan compares against it."""
        meta = account_meta(attrs.define)
        codec = entity_codec(meta)
        entities: dict[Any, Any] = {}
        snapshots: dict[Any, Any] = {}
        rows = [DriverRow((1, "ann", D("1.50"))), DriverRow((2, "bob", D("2.00")))]
        _, bob = codec.materialize(rows, entities, snapshots, True)
        assert snapshots[1] is rows[0] and snapshots[2] is rows[1]
        assert codec.changed(entities, snapshots) == []
        write_attribute(bob, "owner", "robert")
        assert codec.changed(entities, snapshots) == [2]

    def test_a_row_with_a_json_column_is_snapshotted_in_its_frozen_form(self) -> None:
        """A mutable value is copied into its snapshot form, so changing it in place shows."""
        codec = entity_codec(meta_of(LineMap))
        snapshots: dict[Any, Any] = {}
        row = (1, 2, 3, {"items": [1]})
        (line,) = codec.materialize([row], {}, snapshots, True)
        assert snapshots[(1, 2)] is not row
        assert codec.snapshot(codec.values(line)) == snapshots[(1, 2)]
        line.data["items"].append(2)
        assert codec.snapshot(codec.values(line)) != snapshots[(1, 2)]

    def test_composite_keys_are_tuples(self) -> None:
        """A composite key is held as the tuple of its columns."""

        @attrs.define
        class Seat:
            row: int
            number: int

        class SeatMap(EntityMap[Seat]):
            __table__ = "seats"
            row = Column(t.Integer(), primary_key=True)
            number = Column(t.Integer(), primary_key=True)

        meta = meta_of(SeatMap)
        entities: dict[Any, Any] = {}
        (seat,) = entity_codec(meta).materialize([(4, 7)], entities, {}, True)
        assert entities == {(4, 7): seat}
