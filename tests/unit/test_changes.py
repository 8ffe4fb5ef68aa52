"""Change sets (`uow/changes.py`), the identity map and value validation. Pure; no database.

`compute_changes` compares loaded entities with their snapshots (only changed columns are
updated, the version column is the mapper's own), collects inserts with defaults and the
initial version filled in without writing into the entities, collects deletes with the
loaded version, and raises one `ValidationError` listing every bad value of every entity
(GUARANTEES G11) before any SQL.
"""

from __future__ import annotations

import copy
import datetime as dt
import decimal
import math
import uuid
from collections.abc import Callable
from typing import Any

import attrs
import pytest

from mapper import (
    Column,
    EntityMap,
    ManyToOne,
    Registry,
    UnitOfWorkError,
    ValidationError,
    uuid7,
)
from mapper import types as t
from mapper.codec import ChangedKeys, compile_function, entity_codec
from mapper.mapping import EntityMeta
from mapper.uow.changes import ChangeSet, changed_keys, compute_changes, key_tuple
from mapper.uow.identity_map import IdentityMap
from mapper.uow.removals import Removals
from mapper.uow.validation import Validator, check_source, validator_for


@attrs.define
class Profile:
    name: str
    email: str
    settings: dict[str, Any] = attrs.Factory(dict)
    tags: list[str] = attrs.Factory(list)
    joined: dt.datetime | None = None
    age: int | None = None
    version: int = 0
    id: int | None = None


@attrs.define
class Token:
    owner: str
    id: uuid.UUID | None = None
    kind: str | None = None


@attrs.define
class Seat:
    row: int
    number: int
    holder: str | None = None


@attrs.define
class Note:
    body: Any = None
    id: int = 1


@attrs.frozen
class Point:
    x: int
    y: int
    id: int


@attrs.define
class Owner:
    name: str
    id: int | None = None


@attrs.define
class Pet:
    name: str
    owner: Owner | None = None
    id: int | None = None


registry = Registry()


@registry.map
class ProfileMap(EntityMap[Profile]):
    __table__ = "profiles"
    id = Column(t.Integer(), primary_key=True, generated=True)
    name = Column(t.String(10))
    email = Column(t.String(50), unique=True)
    settings = Column(t.JSON())
    tags = Column(t.JSON())
    joined = Column(t.DateTime())
    age = Column(t.SmallInteger())
    version = Column(t.Integer(), version=True)


@registry.map
class TokenMap(EntityMap[Token]):
    __table__ = "tokens"
    id = Column(t.UUID(), primary_key=True, default=uuid7)
    owner = Column(t.Text())
    kind = Column(t.String(10), default="plain")


@registry.map
class SeatMap(EntityMap[Seat]):
    __table__ = "seats"
    row = Column(t.Integer(), primary_key=True)
    number = Column(t.Integer(), primary_key=True)
    holder = Column(t.Text())


@registry.map
class NoteMap(EntityMap[Note]):
    __table__ = "notes"
    id = Column(t.Integer(), primary_key=True)
    body = Column(t.JSON())


@registry.map
class PointMap(EntityMap[Point]):
    __table__ = "points"
    id = Column(t.Integer(), primary_key=True)
    x = Column(t.Integer())
    y = Column(t.Integer())


@registry.map
class OwnerMap(EntityMap[Owner]):
    __table__ = "owners"
    id = Column(t.Integer(), primary_key=True, generated=True)
    name = Column(t.String(20))


@registry.map
class PetMap(EntityMap[Pet]):
    __table__ = "pets"
    id = Column(t.Integer(), primary_key=True, generated=True)
    name = Column(t.String(5))
    owner = ManyToOne(Owner, column="owner_id")


def _meta(entity: object) -> EntityMeta:
    return registry.meta(type(entity))


def _load(identity: IdentityMap, *entities: Any, meta: EntityMeta | None = None) -> None:
    """Put entities in the identity map as a query would: with a snapshot of their values
    (of `meta`'s mapping, or this module's registry's)."""
    for entity in entities:
        mapped = meta or _meta(entity)
        codec = entity_codec(mapped)
        identity.put(mapped, codec.key(entity), entity, codec.snapshot(codec.values(entity)))


def _changes(
    identity: IdentityMap | None = None,
    added: tuple[Any, ...] = (),
    removed: tuple[Any, ...] = (),
) -> ChangeSet:
    going = Removals()
    for entity in removed:
        going.add(_meta(entity), entity_codec(_meta(entity)).key(entity), entity)
    return compute_changes(identity or IdentityMap(), [(_meta(e), e) for e in added], going)


@attrs.frozen
class Row:
    """One row of an `Updates` or `Deletes` record, as the tests read it."""

    entity: Any
    key: Any
    version: Any
    positions: tuple[int, ...] = ()
    values: tuple[Any, ...] = ()


def _update_rows(changes: ChangeSet, meta: EntityMeta) -> list[Row]:
    """Every updated row of `meta`, column set by column set."""
    rows = []
    for group in changes.updates.get(meta, []):
        versions = group.versions or [None] * len(group)
        for entity, key, values, version in zip(
            group.entities, group.keys, group.rows, versions, strict=True
        ):
            rows.append(Row(entity, key, version, group.positions, values))
    return rows


def _delete_rows(changes: ChangeSet, meta: EntityMeta) -> list[Row]:
    deletes = changes.deletes[meta]
    versions = deletes.versions or [None] * len(deletes)
    return [
        Row(entity, key, version)
        for entity, key, version in zip(deletes.entities, deletes.keys, versions, strict=True)
    ]


def _profile(**changes: Any) -> Profile:
    values: dict[str, Any] = {
        "name": "Ann",
        "email": "ann@example.com",
        "settings": {"theme": {"dark": True}},
        "tags": ["a"],
        "joined": dt.datetime(2024, 1, 1, tzinfo=dt.UTC),
        "age": 30,
        "version": 3,
        "id": 1,
    }
    values.update(changes)
    return Profile(**values)


# -- updates ---------------------------------------------------------------------------------------


def test_an_unchanged_entity_produces_no_changes() -> None:
    """A loaded entity nobody touched writes nothing."""
    identity = IdentityMap()
    _load(identity, _profile(), Seat(1, 2, "x"))
    changes = _changes(identity)
    assert not changes
    assert changes.updates == {}


def test_setting_the_same_value_again_is_not_a_change() -> None:
    """Assigning an equal value is not a change."""
    profile = _profile()
    identity = IdentityMap()
    _load(identity, profile)
    profile.name = "An" + "n"
    profile.settings = {"theme": {"dark": True}}
    assert not _changes(identity)


def test_an_update_lists_only_the_changed_columns() -> None:
    """An update names the positions of the changed columns and the current values."""
    profile = _profile()
    identity = IdentityMap()
    _load(identity, profile)
    profile.age = 31
    profile.name = "Anna"
    changes = _changes(identity)
    meta = registry.meta(Profile)
    (update,) = _update_rows(changes, meta)
    assert [meta.columns[p].attribute for p in update.positions] == ["name", "age"]
    assert update.values[meta.column("name").position] == "Anna"
    assert update.values[meta.column("age").position] == 31
    assert update.key == 1
    assert update.entity is profile
    assert changes.inserts == {}
    assert changes.deletes == {}


def test_the_version_column_is_not_a_user_change() -> None:
    """Changing only the version writes nothing; with other changes it is left out of them."""
    profile = _profile()
    identity = IdentityMap()
    _load(identity, profile)
    profile.version = 99
    assert not _changes(identity)
    profile.email = "new@example.com"
    meta = registry.meta(Profile)
    (update,) = _update_rows(_changes(identity), meta)
    assert [meta.columns[p].attribute for p in update.positions] == ["email"]


def test_an_update_expects_the_loaded_version() -> None:
    """The version an update checks is the one in the snapshot."""
    profile = _profile(version=3)
    identity = IdentityMap()
    _load(identity, profile)
    profile.name = "Bo"
    profile.version = 10
    (update,) = _update_rows(_changes(identity), registry.meta(Profile))
    assert update.version == 3


def test_an_unversioned_update_expects_no_version() -> None:
    """A mapping without a version column gives updates no expected version."""
    seat = Seat(1, 2)
    identity = IdentityMap()
    _load(identity, seat)
    seat.holder = "Cy"
    (update,) = _update_rows(_changes(identity), registry.meta(Seat))
    assert update.version is None
    assert update.key == (1, 2)


def test_a_changed_primary_key_raises_unit_of_work_error() -> None:
    """Changing a loaded entity's key is refused, naming the entity and both keys."""
    profile = _profile(id=1)
    identity = IdentityMap()
    _load(identity, profile)
    profile.id = 2
    with pytest.raises(UnitOfWorkError, match=r"Profile.*1.*2"):
        _changes(identity)


def test_a_changed_part_of_a_composite_key_raises_unit_of_work_error() -> None:
    """Changing one column of a composite key is refused too."""
    seat = Seat(1, 2)
    identity = IdentityMap()
    _load(identity, seat)
    seat.number = 3
    with pytest.raises(UnitOfWorkError, match="Seat"):
        _changes(identity)


def test_a_removed_entity_is_deleted_not_updated() -> None:
    """A changed entity that is also removed produces only a delete."""
    profile = _profile(version=4)
    identity = IdentityMap()
    _load(identity, profile)
    profile.name = "Gone"
    changes = _changes(identity, removed=(profile,))
    meta = registry.meta(Profile)
    assert changes.updates == {}
    (delete,) = _delete_rows(changes, meta)
    assert delete.entity is profile
    assert delete.key == 1
    assert delete.version == 4


def test_the_change_scan_leaves_out_removed_entities() -> None:
    """changed_keys finds changed entities, but not those being removed, of any mapping."""
    kept, gone, same = _profile(id=1), _profile(id=2), _profile(id=3)
    seat = Seat(1, 7, "ann")
    identity = IdentityMap()
    _load(identity, kept, gone, same, seat)
    for profile in (kept, gone):
        profile.name = "Changed"
    seat.holder = "bob"
    profile_meta, seat_meta = registry.meta(Profile), registry.meta(Seat)
    assert changed_keys(identity) == {profile_meta: [1, 2], seat_meta: [(1, 7)]}
    # One profile of three removed (the scan's result is filtered), the only seat removed
    # (the scan leaves it out), then two profiles of three (leaves them out).
    removed = Removals()
    removed.add(profile_meta, 2, gone)
    removed.add(seat_meta, (1, 7), seat)
    assert changed_keys(identity, removed) == {profile_meta: [1]}
    removed.add(profile_meta, 3, same)
    assert changed_keys(identity, removed) == {profile_meta: [1]}
    removed.add(profile_meta, 1, kept)
    assert changed_keys(identity, removed) == {}


def test_the_change_scan_keeps_the_values_it_read_of_changed_entities() -> None:
    """Where no column is mutable the scan keeps each changed entity's values, in the order
    of its keys, and leaving out a removed entity leaves out its values."""
    owner = Owner("Ann", 1)
    pets = [Pet("Rex", owner, 1), Pet("Tom", owner, 2), Pet("Max", None, 3)]
    identity = IdentityMap()
    _load(identity, owner, *pets)
    pets[0].name, pets[2].name = "Rexy", "Maxi"
    pet_meta = registry.meta(Pet)
    found = changed_keys(identity)[pet_meta]
    assert found == [1, 3]
    assert isinstance(found, ChangedKeys)
    assert found.rows == [(1, "Rexy", 1), (3, "Maxi", None)]
    removed = Removals()
    removed.add(pet_meta, 1, pets[0])
    kept = changed_keys(identity, removed)[pet_meta]
    assert kept == [3]
    assert isinstance(kept, ChangedKeys)
    assert kept.rows == [(3, "Maxi", None)]
    profile = _profile()
    _load(identity, profile)
    profile.name = "Bo"
    assert changed_keys(identity)[registry.meta(Profile)].rows is None  # compared frozen forms


def test_the_change_set_writes_the_values_the_scan_read_and_rereads_a_copy() -> None:
    """Keys from the scan carry the values it read, which the change set writes as they
    are; a copy of those keys (what relation rules hand on after writing into entities)
    makes it read the entities again."""
    pet = Pet("Rex", None, 1)
    identity = IdentityMap()
    _load(identity, pet)
    pet.name = "Rexy"
    dirty = changed_keys(identity)
    pet.name = "Rocky"  # after the scan, as a relation rule's write would be
    pet_meta = registry.meta(Pet)
    (scanned,) = _update_rows(compute_changes(identity, [], Removals(), dirty), pet_meta)
    assert scanned.values == (1, "Rexy", None)
    copied = {meta: list(keys) for meta, keys in dirty.items()}
    (reread,) = _update_rows(compute_changes(identity, [], Removals(), copied), pet_meta)
    assert reread.values == (1, "Rocky", None)


def test_a_removed_entity_without_snapshot_expects_no_version() -> None:
    """Removing an entity the identity map never loaded gives its delete no version."""
    profile = _profile()
    (delete,) = _delete_rows(_changes(removed=(profile,)), registry.meta(Profile))
    assert delete.version is None


def test_json_changed_in_place_is_detected() -> None:
    """Mutating a JSON dict or list in place is a change: the snapshot shares nothing with it."""
    profile = _profile()
    identity = IdentityMap()
    _load(identity, profile)
    profile.settings["theme"]["dark"] = False
    profile.tags.append("b")
    meta = registry.meta(Profile)
    (update,) = _update_rows(_changes(identity), meta)
    assert [meta.columns[p].attribute for p in update.positions] == ["settings", "tags"]
    assert update.values[meta.column("settings").position] == {"theme": {"dark": False}}
    assert update.values[meta.column("tags").position] == ["a", "b"]
    codec = entity_codec(meta)
    untouched = codec.snapshot(codec.values(_profile()))
    assert identity.table(meta).snapshots[1] == untouched
    profile.settings["theme"]["dark"] = True
    profile.tags.pop()
    assert not _changes(identity), "undoing the in-place changes should leave nothing to write"


def test_a_loaded_frozen_entity_produces_no_changes() -> None:
    """Frozen attrs entities are read and compared like any other."""
    point = Point(1, 2, id=5)
    identity = IdentityMap()
    _load(identity, point)
    assert not _changes(identity)


def test_compute_changes_never_writes_into_entities() -> None:
    """Computing changes leaves every added, loaded and removed entity exactly as it was."""
    loaded, removed = _profile(id=1), _profile(id=2, email="b@example.com")
    identity = IdentityMap()
    _load(identity, loaded, removed)
    loaded.name = "Changed"
    added: list[Any] = [Token("ann"), _profile(id=None, email="c@example.com", version=0)]
    before = [copy.deepcopy(attrs.asdict(e)) for e in (loaded, removed, *added)]
    _changes(identity, added=tuple(added), removed=(removed,))
    after = [attrs.asdict(e) for e in (loaded, removed, *added)]
    assert after == before


# -- inserts ---------------------------------------------------------------------------------------


def test_insert_applies_defaults_without_writing_into_the_entity() -> None:
    """A uuid7 key and a value default fill the insert values and are listed as writes only."""
    token = Token("ann")
    (insert,) = _changes(added=(token,)).inserts[registry.meta(Token)]
    meta = registry.meta(Token)
    key = insert.values[meta.column("id").position]
    assert isinstance(key, uuid.UUID)
    assert key.version == 7
    assert insert.values[meta.column("kind").position] == "plain"
    assert dict(insert.writes) == {"id": key, "kind": "plain"}
    assert token.id is None
    assert token.kind is None


def test_each_insert_gets_its_own_default_key() -> None:
    """A callable default is called once per inserted entity, giving increasing uuid7 keys."""
    tokens = [Token(f"o{i}") for i in range(5)]
    inserts = _changes(added=tuple(tokens)).inserts[registry.meta(Token)]
    keys = [insert.values[0] for insert in inserts]
    assert len(set(keys)) == 5
    assert keys == sorted(keys)


def test_values_set_by_the_user_win_over_defaults() -> None:
    """A default is used only where the attribute is None."""
    own = uuid.UUID(int=42)
    token = Token("ann", id=own, kind="admin")
    (insert,) = _changes(added=(token,)).inserts[registry.meta(Token)]
    assert insert.values == (own, "ann", "admin")
    meta = registry.meta(Token)
    assert insert.values[meta.column("id").position] == own
    assert insert.values[meta.column("kind").position] == "admin"
    assert insert.writes == ()


def test_insert_starts_the_version_at_one_without_writing_it() -> None:
    """A new versioned entity is inserted with version 1; the entity keeps its own value."""
    profile = _profile(id=None, version=0)
    meta = registry.meta(Profile)
    (insert,) = _changes(added=(profile,)).inserts[meta]
    assert insert.values[meta.column("version").position] == 1
    assert ("version", 1) in insert.writes
    assert profile.version == 0


def test_a_generated_key_may_be_none_on_insert() -> None:
    """A database-generated key left None is not a NOT NULL violation."""
    profile = _profile(id=None)
    (insert,) = _changes(added=(profile,)).inserts[registry.meta(Profile)]
    assert insert.values[registry.meta(Profile).column("id").position] is None


# -- validation ------------------------------------------------------------------------------------


def test_inserts_that_fill_nothing_check_each_row_as_the_row_check_does() -> None:
    """New rows of a mapping with no defaults or version are checked inline, row by row,
    with what Validator.row finds, and keep their values and entities in order."""
    stored, new = Owner("Ann", id=4), Owner("Bo")
    good = [Pet("Rex", stored), Pet("Tom", new), Pet("Kit")]
    bad = [
        Pet("far too long"),
        Pet("Max", id=9),
        Pet(None, "an owner"),  # type: ignore[arg-type]
        Pet("Fay", Owner("x" * 21)),
    ]
    meta = registry.meta(Pet)
    inserts = _changes(added=tuple(good)).inserts[meta]
    assert [i.entity for i in inserts] == good
    assert [i.values[:2] for i in inserts] == [(None, "Rex"), (None, "Tom"), (None, "Kit")]
    (_, _, to_stored), (_, _, to_new), (_, _, to_none) = (i.values for i in inserts)
    assert (to_stored, to_new.target, to_none) == (4, new, None)  # the new one's key: pending
    assert [i.writes for i in inserts] == [(), (), ()]
    expected: list[Any] = []
    for pet in bad:
        validator_for(meta).row(entity_codec(meta).values(pet), expected)
    with pytest.raises(ValidationError) as caught:
        _changes(added=(good[0], *bad, good[1]))
    found = [(v.entity, v.attribute, v.value) for v in caught.value.violations]
    assert found == [(v.entity, v.attribute, v.value) for v in expected]
    assert found == [
        ("Pet", "name", "far too long"),
        ("Pet", "id", 9),
        ("Pet", "name", None),
        ("Pet", "owner", "an owner"),
    ]


def test_validation_error_lists_every_bad_value_of_every_entity() -> None:
    """One ValidationError names each bad attribute of each added and changed entity."""
    loaded = _profile(id=7)
    identity = IdentityMap()
    _load(identity, loaded)
    loaded.age = 100_000
    first = _profile(id=None, name="far too long a name", email=None)
    second = _profile(id=None, joined=dt.datetime(2024, 1, 1), settings={"nan": float("nan")})
    token = Token("a\x00b", kind="x" * 11)
    with pytest.raises(ValidationError) as caught:
        _changes(identity, added=(first, second, token))
    found = {(v.entity, v.attribute) for v in caught.value.violations}
    assert found == {
        ("Profile", "name"),
        ("Profile", "email"),
        ("Profile", "joined"),
        ("Profile", "settings"),
        ("Token", "owner"),
        ("Token", "kind"),
        ("Profile", "age"),
    }
    assert len(caught.value.violations) == 7


def test_each_violation_names_entity_attribute_value_and_rule() -> None:
    """Violations carry the entity, attribute, offending value and the rule it broke."""
    naive = dt.datetime(2024, 1, 1)
    with pytest.raises(ValidationError) as caught:
        _changes(added=(_profile(id=None, joined=naive, email=None),))
    by_attribute = {v.attribute: v for v in caught.value.violations}
    joined = by_attribute["joined"]
    assert (joined.entity, joined.value) == ("Profile", naive)
    assert "naive datetime" in joined.rule
    email = by_attribute["email"]
    assert email.value is None
    assert "NOT NULL" in email.rule
    message = str(caught.value)
    assert "2 invalid values, nothing was written" in message
    assert "Profile.joined = datetime.datetime(2024, 1, 1, 0, 0)" in message
    assert "Profile.email = None: may not be None (NOT NULL)" in message


def test_updates_check_only_the_changed_columns() -> None:
    """An update validates the columns it writes, not a bad value it leaves alone."""
    profile = _profile(name="a name that is too long")  # loaded as stored, never written
    identity = IdentityMap()
    _load(identity, profile)
    profile.age = 40
    (update,) = _update_rows(_changes(identity), registry.meta(Profile))
    assert update.values[registry.meta(Profile).column("age").position] == 40
    profile.age = "forty"  # type: ignore[assignment]
    with pytest.raises(ValidationError) as caught:
        _changes(identity)
    assert [(v.attribute, v.value) for v in caught.value.violations] == [("age", "forty")]


def test_updates_check_each_row_by_its_own_changed_columns() -> None:
    """Rows with different changed columns, interleaved, are each checked for theirs."""
    first, second, third = (_profile(id=i, email=f"{i}@example.com") for i in (1, 2, 3))
    identity = IdentityMap()
    _load(identity, first, second, third)
    first.name = "far too long a name"
    second.age = "forty"  # type: ignore[assignment]
    third.name = "Bo"
    third.settings = {"theme": None}
    with pytest.raises(ValidationError) as caught:
        _changes(identity)
    assert [(v.attribute, v.value) for v in caught.value.violations] == [
        ("name", "far too long a name"),
        ("age", "forty"),
    ]
    first.name, second.age = "Al", 41
    groups = _changes(identity).updates[registry.meta(Profile)]
    by_columns = {group.positions: group.entities for group in groups}
    meta = registry.meta(Profile)
    name, age, settings = (meta.column(a).position for a in ("name", "age", "settings"))
    assert by_columns == {(name,): [first], (age,): [second], (name, settings): [third]}


def test_validator_checks_every_column_of_a_row_and_check_source_one() -> None:
    """Validator.row checks a whole row; check_source's statements check one column."""
    meta = registry.meta(Seat)
    validator = validator_for(meta)
    assert isinstance(validator, Validator)
    assert validator_for(meta) is validator
    out: list[Any] = []
    validator.row(("1", None, 5), out)
    assert [(v.attribute, v.value) for v in out] == [("row", "1"), ("number", None), ("holder", 5)]
    out.clear()
    namespace: dict[str, Any] = {}
    lines = check_source(meta, meta.column("holder"), "value", namespace)
    body = "".join(f"    {line}\n" for line in lines)
    check = compile_function("check", f"def check(value, out):\n{body}", namespace)
    for value in ("a holder", None, 5):
        check(value, out)
    assert [(v.attribute, v.value) for v in out] == [("holder", 5)]


# -- identity map ----------------------------------------------------------------------------------


def test_identity_map_holds_one_object_per_key() -> None:
    """get returns the object put for a key; holds tells that object from an equal one."""
    meta = registry.meta(Seat)
    identity = IdentityMap()
    seat = Seat(1, 2)
    identity.put(meta, (1, 2), seat, (1, 2, None))
    assert identity.get(meta, (1, 2)) is seat
    assert identity.holds(meta, (1, 2), seat)
    assert not identity.holds(meta, (1, 2), Seat(1, 2))
    assert identity.get(meta, (2, 1)) is None
    assert identity.get(registry.meta(Point), (1, 2)) is None
    assert len(identity) == 1


def test_identity_map_is_kept_per_mapping() -> None:
    """Equal keys of two mappings are separate entries."""
    identity = IdentityMap()
    point = Point(0, 0, id=1)
    profile = _profile(id=1)
    _load(identity, point, profile)
    assert identity.get(registry.meta(Point), 1) is point
    assert identity.get(registry.meta(Profile), 1) is profile
    assert len(identity) == 2
    assert {meta.table for meta, _ in identity.tables()} == {"points", "profiles"}


def test_identity_map_discard_and_clear() -> None:
    """discard forgets one entity and its snapshot; clear forgets everything."""
    meta = registry.meta(Point)
    identity = IdentityMap()
    _load(identity, Point(0, 0, id=1), Point(0, 0, id=2))
    identity.discard(meta, 1)
    identity.discard(meta, 99)
    identity.discard(registry.meta(Seat), 1)
    assert identity.get(meta, 1) is None
    assert 1 not in identity.table(meta).snapshots
    assert len(identity) == 1
    identity.clear()
    assert len(identity) == 0


def test_unhashable_entities_are_kept_by_key() -> None:
    """attrs.define entities are unhashable, yet the identity map keeps them by key."""
    profile = _profile()
    with pytest.raises(TypeError):
        hash(profile)
    identity = IdentityMap()
    _load(identity, profile)
    assert identity.get(registry.meta(Profile), 1) is profile


def test_key_tuple_wraps_single_keys_only() -> None:
    """A single-column key becomes a 1-tuple; a composite key is already a tuple."""
    assert key_tuple(registry.meta(Profile), 5) == (5,)
    assert key_tuple(registry.meta(Seat), (1, 2)) == (1, 2)


@pytest.mark.parametrize(
    ("entity", "attribute", "before", "after"),
    [
        pytest.param(_profile, "settings", {"beta": 1}, {"beta": True}, id="int_to_bool"),
        pytest.param(Note, "body", [0], [False], id="list_item_to_bool"),
    ],
)
def test_a_json_value_that_serialises_differently_is_a_change(
    entity: Callable[..., Any], attribute: str, before: Any, after: Any
) -> None:
    """JSON 1 and true are different documents, though Python finds them equal."""
    assert before == after
    loaded = entity(**{attribute: before})
    identity = IdentityMap()
    _load(identity, loaded)
    setattr(loaded, attribute, after)
    meta = _meta(loaded)
    updates = _update_rows(_changes(identity), meta)
    assert len(updates) == 1, "the change was not detected"
    assert [meta.columns[p].attribute for p in updates[0].positions] == [attribute]
    assert updates[0].values[meta.column(attribute).position] == after


def test_a_key_that_cannot_be_hashed_is_refused() -> None:
    """A bytearray key is refused before SQL: keys must be hashable to be tracked."""
    import attrs

    from mapper import Column, EntityMap, Registry, ValidationError
    from mapper import types as t

    @attrs.define
    class Blob:
        key: bytes

    local = Registry()

    @local.map
    class BlobMap(EntityMap[Blob]):
        __table__ = "blobs"
        key = Column(t.Bytes(16), primary_key=True)

    meta = local.meta(Blob)
    with pytest.raises(ValidationError, match=r"Blob\.key = bytearray.*hashable"):
        compute_changes(IdentityMap(), [(meta, Blob(bytearray(b"k")))], Removals())


def test_a_signalling_nan_marks_only_its_own_column() -> None:
    """A Decimal sNaN refuses comparison: its column counts as changed, no other does, not
    even a NaN another writer stored and the entity left alone (compared by identity)."""

    @attrs.define
    class Price:
        amount: decimal.Decimal
        label: str
        ratio: float
        id: int = 1

    local = Registry()

    @local.map
    class PriceMap(EntityMap[Price]):
        __table__ = "prices"
        id = Column(t.Integer(), primary_key=True)
        amount = Column(t.Decimal(10, 2))
        label = Column(t.Text())
        ratio = Column(t.Float())  # NaN refused when written; another writer stored one

    meta = local.meta(Price)
    loaded = Price(decimal.Decimal("1.50"), "x", math.nan)
    identity = IdentityMap()
    _load(identity, loaded, meta=meta)
    loaded.amount = decimal.Decimal("sNaN")
    with pytest.raises(ValidationError, match=r"Price\.amount") as raised:
        compute_changes(identity, [], Removals())
    assert [v.attribute for v in raised.value.violations] == ["amount"]
    loaded.amount = decimal.Decimal("1.50")
    loaded.label = "y"
    (update,) = _update_rows(compute_changes(identity, [], Removals()), meta)
    assert [meta.columns[p].attribute for p in update.positions] == ["label"]


def test_changes_of_different_columns_are_listed_per_entity() -> None:
    """Entities changed in different columns each list their own (shared masks, own rows)."""
    identity = IdentityMap()
    first, second, third = _profile(id=1), _profile(id=2, email="b@x"), _profile(id=3, email="c@x")
    _load(identity, first, second, third)
    first.name, second.age, third.name = "A", 5, "C"
    updates = _update_rows(_changes(identity), registry.meta(Profile))
    meta = registry.meta(Profile)
    assert {u.key: [meta.columns[p].attribute for p in u.positions] for u in updates} == {
        1: ["name"],
        2: ["age"],
        3: ["name"],
    }


def test_an_unchanged_nan_is_not_a_change_when_its_row_is_compared() -> None:
    """A NaN still held as loaded compares unchanged (as the scan sees it), so an entity
    named dirty by a relation rule but unchanged writes nothing."""

    @attrs.define
    class Reading:
        value: float
        label: str
        id: int = 1

    local = Registry()

    @local.map
    class ReadingMap(EntityMap[Reading]):
        __table__ = "readings"
        id = Column(t.Integer(), primary_key=True)
        value = Column(t.Float(allow_nan=True))
        label = Column(t.Text())

    meta = local.meta(Reading)
    loaded = Reading(float("nan"), "x")
    identity = IdentityMap()
    _load(identity, loaded, meta=meta)
    assert compute_changes(identity, [], Removals(), dirty={meta: [1]}).updates == {}
    loaded.label = "y"
    (update,) = _update_rows(compute_changes(identity, [], Removals(), dirty={meta: [1]}), meta)
    assert [meta.columns[p].attribute for p in update.positions] == ["label"]
